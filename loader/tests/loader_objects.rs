//! Loading the committed test objects: programs, sections, subprogram linking, map and
//! global data relocations, BTF line info, CO-RE, and the printed summaries.

mod common;

use common::{load, obj_path, OBJECTS};
use ebpf_sim_loader::{
    load_btf_file, load_object_file, summary, AttachPoint, Btf, LoadOptions, Loaded, MapOrigin,
    Object, Program, ProgramType, POISON_HELPER,
};
use ebpf_sim_vm::isa::{decode, pseudo, Insn};

fn prog<'a>(o: &'a Object, name: &str) -> &'a Program {
    o.program(name)
        .unwrap_or_else(|| panic!("no program {name}"))
}

/// The target slot of a relative call or callback at `i`.
fn target(p: &Program, i: usize) -> usize {
    (i as i64 + p.insns[i].imm as i64 + 1) as usize
}

#[test]
fn every_program_decodes() {
    for name in OBJECTS {
        let o = load(name);
        assert!(!o.programs.is_empty(), "{name}");
        for p in &o.programs {
            decode(&p.insns).unwrap_or_else(|e| panic!("{name} {}: {e}", p.name));
        }
    }
}

#[test]
fn tracing_programs_sections_and_attach_points() {
    let o = load("tracing.bpf.o");
    let expect: &[(&str, &str, ProgramType)] = &[
        (
            "handle_exec",
            "tp/sched/sched_process_exec",
            ProgramType::Tracepoint,
        ),
        (
            "handle_exit",
            "tp/sched/sched_process_exit",
            ProgramType::Tracepoint,
        ),
        ("do_unlinkat", "kprobe/do_unlinkat", ProgramType::Kprobe),
        (
            "do_unlinkat_second",
            "kprobe/do_unlinkat",
            ProgramType::Kprobe,
        ),
        (
            "do_unlinkat_exit",
            "kretprobe/do_unlinkat",
            ProgramType::Kprobe,
        ),
        ("fentry_unlink", "fentry/do_unlinkat", ProgramType::Tracing),
        ("fexit_unlink", "fexit/do_unlinkat", ProgramType::Tracing),
        (
            "handle_switch",
            "raw_tp/sched_switch",
            ProgramType::RawTracepoint,
        ),
        (
            "uprobe_readline",
            "uprobe//bin/bash:readline",
            ProgramType::Kprobe,
        ),
        (
            "uretprobe_readline",
            "uretprobe//bin/bash:readline",
            ProgramType::Kprobe,
        ),
        ("lsm_bprm", "lsm/bprm_check_security", ProgramType::Lsm),
        (
            "enter_openat",
            "tracepoint/syscalls/sys_enter_openat",
            ProgramType::Tracepoint,
        ),
        ("on_sample", "perf_event", ProgramType::PerfEvent),
        ("run_syscall", "syscall", ProgramType::Syscall),
    ];
    assert_eq!(o.programs.len(), expect.len());
    for (name, section, ty) in expect {
        let p = prog(&o, name);
        assert_eq!(&p.section, section, "{name}");
        assert_eq!(p.prog_type, *ty, "{name}");
    }
    assert_eq!(
        prog(&o, "handle_exec").attach,
        AttachPoint::Tracepoint {
            category: "sched".into(),
            name: "sched_process_exec".into()
        }
    );
    assert_eq!(
        prog(&o, "do_unlinkat_exit").attach,
        AttachPoint::Kprobe {
            function: "do_unlinkat".into(),
            offset: 0,
            retprobe: true
        }
    );
    assert_eq!(o.license.as_deref(), Some("GPL"));
    assert_eq!(o.name, "tracing");
}

#[test]
fn subprograms_are_appended_and_calls_fixed() {
    let o = load("tracing.bpf.o");
    let p = prog(&o, "handle_exec");
    let names: Vec<&str> = p.functions.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names[0], "handle_exec");
    for sub in ["parent_tgid", "loop_cb", "global_helper"] {
        assert!(names.contains(&sub), "{names:?}");
    }
    // Every local call and callback lands on the first slot of a placed function.
    let starts: Vec<usize> = p.functions.iter().map(|f| f.start).collect();
    let mut calls = 0;
    let mut callbacks = 0;
    for (i, insn) in p.insns.iter().enumerate() {
        if insn.code == 0x85 && insn.src == pseudo::CALL_LOCAL {
            assert!(starts.contains(&target(p, i)), "call at {i}");
            calls += 1;
        }
        if insn.code == 0x18 && insn.src == pseudo::FUNC {
            let t = target(p, i);
            assert_eq!(p.function_of(t).map(|f| f.name.as_str()), Some("loop_cb"));
            assert_eq!(p.function_of(t).map(|f| f.start), Some(t));
            callbacks += 1;
        }
    }
    assert_eq!(calls, 2, "parent_tgid and global_helper");
    assert_eq!(callbacks, 1, "loop_cb for bpf_loop");
    let total: usize = p.functions.iter().map(|f| f.len).sum();
    assert_eq!(total, p.insns.len());
    // A program that calls nothing has just itself.
    assert_eq!(prog(&o, "fentry_unlink").functions.len(), 1);
    // Global functions are shared: both kprobes in one section reach their own callees.
    assert!(prog(&o, "do_unlinkat_second")
        .functions
        .iter()
        .any(|f| f.name == "global_helper"));
}

/// All `lddw` map references of a program: (slot, src, map index, offset).
fn map_refs(p: &Program) -> Vec<(usize, u8, usize, i32)> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < p.insns.len() {
        let x = p.insns[i];
        if x.code == 0x18 {
            if x.src == pseudo::MAP_IDX || x.src == pseudo::MAP_IDX_VALUE {
                v.push((i, x.src, x.imm as usize, p.insns[i + 1].imm));
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    v
}

#[test]
fn map_and_global_data_relocations() {
    let o = load("tracing.bpf.o");
    let idx = |n: &str| o.map_index(n).unwrap_or_else(|| panic!("no map {n}"));
    let exec = map_refs(prog(&o, "handle_exec"));
    assert!(
        exec.contains(&(21, pseudo::MAP_IDX, idx("exec_start"), 0)),
        "{exec:?}"
    );
    assert!(exec
        .iter()
        .any(|r| r.1 == pseudo::MAP_IDX && r.2 == idx("rb")));
    let targ_pid = o.global("targ_pid").unwrap();
    assert!(exec.contains(&(
        11,
        pseudo::MAP_IDX_VALUE,
        idx("tracing.rodata"),
        targ_pid.offset as i32
    )));
    // global_helper reads .data (counter) and .data.custom (custom_flag).
    let exec_refs: Vec<(usize, i32)> = exec
        .iter()
        .filter(|r| r.1 == pseudo::MAP_IDX_VALUE)
        .map(|r| (r.2, r.3))
        .collect();
    assert!(exec_refs.contains(&(idx("tracing.data"), 0)));
    assert!(exec_refs.contains(&(idx(".data.custom"), 0)));
    // .rodata.str1.1 string literals: the offsets point at the right strings.
    let strs = map_refs(prog(&o, "on_sample"));
    let s_idx = idx(".rodata.str1.1");
    let data = &o.maps[s_idx].data;
    let mut found = Vec::new();
    for r in strs.iter().filter(|r| r.2 == s_idx) {
        let rest = &data[r.3 as usize..];
        let end = rest.iter().position(|&b| b == 0).unwrap();
        found.push(String::from_utf8_lossy(&rest[..end]).into_owned());
    }
    found.sort();
    assert_eq!(found, ["failed", "ok"]);
    // .bss through a variable symbol: seen_cpus
    let sw = map_refs(prog(&o, "handle_switch"));
    let seen = o.global("seen_cpus").unwrap();
    assert!(sw
        .iter()
        .any(|r| r.2 == idx("tracing.bss") && r.3 == seen.offset as i32));
}

#[test]
fn btf_maps_and_data_maps() {
    let o = load("tracing.bpf.o");
    let names: Vec<&str> = o.maps.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "inner_a",
            "outer",
            "exec_start",
            "rb",
            "sized",
            "tracing.rodata",
            "tracing.data",
            ".data.custom",
            "tracing.bss",
            ".rodata.str1.1"
        ]
    );
    let m = o.map("exec_start").unwrap();
    assert_eq!(
        (m.map_type, m.key_size, m.value_size, m.max_entries),
        (1, 4, 8, 8192)
    );
    assert!(m.key_type_id.is_some() && m.value_type_id.is_some());
    let rb = o.map("rb").unwrap();
    assert_eq!((rb.map_type, rb.max_entries), (27, 256 * 1024));
    let sized = o.map("sized").unwrap();
    assert_eq!(
        (
            sized.map_type,
            sized.key_size,
            sized.value_size,
            sized.flags
        ),
        (5, 8, 16, 1)
    );
    let outer = o.map("outer").unwrap();
    assert_eq!(outer.map_type, 12);
    let inner = outer.inner.as_ref().unwrap();
    assert_eq!(
        (
            inner.map_type,
            inner.key_size,
            inner.value_size,
            inner.max_entries
        ),
        (2, 4, 8, 4)
    );
    assert_eq!(outer.init_slots, vec![(0, o.map_index("inner_a").unwrap())]);
    let ro = o.map("tracing.rodata").unwrap();
    assert_eq!(ro.origin, MapOrigin::GlobalData { readonly: true });
    assert_eq!(ro.flags & 0x80, 0x80);
    assert_eq!(o.map("tracing.bss").unwrap().data, vec![0; 32]);
}

#[test]
fn prog_array_initialisers_name_programs() {
    // rt_ktail.bpf.c: `.values = { [0] = &kt_self, [2] = &kt_next }`.
    let o = load("rt_ktail.bpf.o");
    let chain = o.map("chain").unwrap();
    assert_eq!(chain.map_type, 3);
    assert_eq!((chain.key_size, chain.value_size), (4, 4));
    let idx = |n: &str| o.programs.iter().position(|p| p.name == n).unwrap();
    assert_eq!(
        chain.init_slots,
        vec![(0, idx("kt_self")), (2, idx("kt_next"))]
    );
}

#[test]
fn globals_have_types_offsets_and_values() {
    let mut o = load("tracing.bpf.o");
    let g = o.global("min_duration_ns").unwrap();
    assert_eq!((g.section.as_str(), g.offset, g.size), (".rodata", 0, 8));
    assert_eq!(g.type_name, "unsigned long long");
    assert_eq!(o.global_value("counter").as_deref(), Some("7"));
    assert_eq!(o.global_value("custom_flag").as_deref(), Some("42"));
    assert_eq!(o.global("seen_cpus").unwrap().type_name, "u32[4]");
    assert_eq!(o.global_value("seen_cpus").as_deref(), Some("[0, 0, 0, 0]"));

    o.set_global("targ_pid", "1234").unwrap();
    assert_eq!(o.global_bytes("targ_pid").unwrap(), 1234i32.to_le_bytes());
    o.set_global("targ_pid", "-1").unwrap();
    assert_eq!(o.global_value("targ_pid").as_deref(), Some("-1"));
    o.set_global("min_duration_ns", "0x10").unwrap();
    assert_eq!(o.global_value("min_duration_ns").as_deref(), Some("16"));
    o.set_global("targ_verbose", "true").unwrap();
    assert_eq!(o.global_value("targ_verbose").as_deref(), Some("true"));
    o.set_global("total_bytes", "-5").unwrap();
    assert_eq!(o.global_value("total_bytes").as_deref(), Some("-5"));
    // The bytes land in the map the instructions point at.
    let ro = o.data_map(".rodata").unwrap();
    assert_eq!(o.maps[ro].data[8..12], 0xffff_ffffu32.to_le_bytes());

    for (name, bad) in [
        ("targ_pid", "4294967296"),
        ("targ_pid", "abc"),
        ("targ_verbose", "maybe"),
        ("min_duration_ns", "-1"),
        ("nope", "1"),
        ("seen_cpus", "1"),
    ] {
        let e = o.set_global(name, bad).unwrap_err();
        assert!(e.to_string().contains(name), "{e}");
    }
}

#[test]
fn legacy_maps_and_network_programs_v1() {
    let o = load("net_v1.bpf.o");
    let pc = o.map("pkt_count").unwrap();
    assert_eq!(pc.origin, MapOrigin::Legacy);
    assert_eq!(
        (pc.map_type, pc.key_size, pc.value_size, pc.max_entries),
        (2, 4, 8, 4)
    );
    let flows = o.map("flows").unwrap();
    assert_eq!(
        (
            flows.map_type,
            flows.key_size,
            flows.value_size,
            flows.max_entries
        ),
        (9, 8, 4, 1024)
    );
    let types: Vec<(&str, ProgramType)> = o
        .programs
        .iter()
        .map(|p| (p.section.as_str(), p.prog_type))
        .collect();
    assert_eq!(
        types,
        [
            ("xdp", ProgramType::Xdp),
            ("tc", ProgramType::SchedCls),
            ("classifier", ProgramType::SchedCls),
            ("socket", ProgramType::SocketFilter),
            ("cgroup_skb/ingress", ProgramType::CgroupSkb),
            ("cgroup_skb/egress", ProgramType::CgroupSkb),
        ]
    );
    // cpu v1: no 32-bit jumps, no 32-bit ALU.
    for p in &o.programs {
        assert!(
            p.insns
                .iter()
                .all(|i| i.class() != 0x06 && i.class() != 0x04),
            "{}",
            p.name
        );
    }
    // The static const string lives in .rodata and is reached at its offset.
    let xdp = prog(&o, "xdp_pass");
    let ro = o.data_map(".rodata").unwrap();
    let data = &o.maps[ro].data;
    let refs: Vec<_> = map_refs(xdp).into_iter().filter(|r| r.2 == ro).collect();
    assert!(refs
        .iter()
        .any(|r| data[r.3 as usize..].starts_with(b"hello from xdp\0")));
    assert!(refs
        .iter()
        .any(|r| r.3 as u32 == o.global("verbose").unwrap().offset));
    let pc_idx = o.map_index("pkt_count").unwrap();
    assert!(map_refs(xdp)
        .iter()
        .any(|r| r.1 == pseudo::MAP_IDX && r.2 == pc_idx));
}

#[test]
fn cpu_v4_instructions_survive_loading() {
    let o = load("alu_v4.bpf.o");
    let p = prog(&o, "v4_ops");
    let all: Vec<Insn> = p.insns.clone();
    let has = |f: &dyn Fn(&Insn) -> bool| all.iter().any(f);
    assert!(has(&|i| i.code == 0x3f && i.off == 1), "sdiv64");
    assert!(has(&|i| i.code == 0x9c && i.off == 1), "smod32");
    assert!(has(&|i| i.code == 0xbf && i.off == 32), "movsx64 32");
    assert!(has(&|i| i.code == 0xbf && i.off == 8), "movsx64 8");
    assert!(has(&|i| i.code == 0x91), "ldxsb");
    assert!(has(&|i| i.code == 0x89), "ldxsh");
    assert!(has(&|i| i.code == 0xd7 && i.imm == 64), "bswap64");
    assert_eq!(o.global_value("numer").as_deref(), Some("-100"));
    assert_eq!(o.global_value("small").as_deref(), Some("-5"));
}

#[test]
fn line_info_maps_instructions_to_source() {
    let o = load("tracing.bpf.o");
    assert_eq!(o.source_files, ["./tracing.bpf.c"]);
    let p = prog(&o, "handle_exec");
    let first = p.line_of(0).unwrap();
    assert!(first.text.contains("int handle_exec("), "{first:?}");
    assert_eq!(first.file, "./tracing.bpf.c");
    assert!(first.line > 0);
    // The appended subprogram keeps its own lines.
    let sub = p
        .functions
        .iter()
        .find(|f| f.name == "parent_tgid")
        .unwrap();
    let l = p.line_of(sub.start).unwrap();
    assert!(
        l.text.contains("parent_tgid") || l.text.contains("BPF_CORE_READ"),
        "{l:?}"
    );
    assert!(p.line_info.windows(2).all(|w| w[0].insn <= w[1].insn));
    assert!(p.functions.iter().all(|f| f.btf_type_id != 0));
}

#[test]
fn core_against_own_btf_keeps_compiled_values() {
    let o = load("tracing.bpf.o");
    let p = prog(&o, "handle_exit");
    assert!(p.core_relocs.len() >= 12);
    for c in &p.core_relocs {
        assert_eq!(c.target_value, Some(c.local_value), "{c:?}");
    }
    let kinds: Vec<&str> = p.core_relocs.iter().map(|c| c.kind.as_str()).collect();
    for k in [
        "byte_off",
        "byte_sz",
        "field_exists",
        "signed",
        "lshift_u64",
        "rshift_u64",
        "local_type_id",
        "target_type_id",
        "type_exists",
        "type_size",
        "enumval_exists",
        "enumval_value",
        "type_matches",
    ] {
        assert!(kinds.contains(&k), "missing {k} in {kinds:?}");
    }
}

fn find_member_offset(btf: &Btf, strukt: &str, member: &str) -> Option<u64> {
    let id = btf.find(strukt, 4)?;
    btf.members(id)
        .iter()
        .find(|m| btf.str_at(m.name_off) == member)
        .map(|m| m.bit_offset as u64 / 8)
}

#[test]
fn core_against_kernel_btf() {
    let path = "/sys/kernel/btf/vmlinux";
    if !std::path::Path::new(path).exists() {
        eprintln!("skipping: {path} not present");
        return;
    }
    let kbtf = load_btf_file(path).unwrap();
    let opts = LoadOptions {
        target_btf: Some((path.into(), kbtf.clone())),
        ..Default::default()
    };
    let o = load_object_file(obj_path("tracing.bpf.o"), &opts).unwrap();
    let p = prog(&o, "handle_exit");
    let find = |kind: &str, spec: &str| {
        p.core_relocs
            .iter()
            .find(|c| c.kind == kind && c.spec.contains(spec))
            .unwrap_or_else(|| panic!("no {kind} {spec}"))
    };
    let exit_code = find("byte_off", "task_struct::exit_code");
    assert_eq!(
        exit_code.target_value,
        find_member_offset(&kbtf, "task_struct", "exit_code")
    );
    // The instruction carries the kernel's offset.
    assert_eq!(
        p.insns[exit_code.insn].imm as u64,
        exit_code.target_value.unwrap()
    );
    assert_eq!(
        find("field_exists", "nonexistent_field").target_value,
        Some(0)
    );
    assert_eq!(
        find("field_exists", "task_struct::exit_code").target_value,
        Some(1)
    );
    assert_eq!(
        find("type_size", "struct task_struct").target_value,
        kbtf.find("task_struct", 4).and_then(|id| kbtf.size_of(id))
    );
    assert_eq!(
        find("target_type_id", "task_struct").target_value,
        kbtf.find("task_struct", 4).map(u64::from)
    );
    assert_eq!(find("enumval_value", "PIDTYPE_TGID").target_value, Some(1));
    // The CO-RE read of real_parent in the appended subprogram is relocated as well.
    let e = prog(&o, "handle_exec");
    let rp = e
        .core_relocs
        .iter()
        .find(|c| c.spec.contains("real_parent"))
        .unwrap();
    assert_eq!(
        rp.target_value,
        find_member_offset(&kbtf, "task_struct", "real_parent")
    );
}

#[test]
fn core_missing_fields_are_poisoned() {
    // net_v1's BTF has no task_struct: field reads become libbpf's poison call,
    // existence checks become 0.
    let target = load("net_v1.bpf.o").btf.unwrap();
    let opts = LoadOptions {
        target_btf: Some(("net_v1.bpf.o".into(), target)),
        ..Default::default()
    };
    let o = load_object_file(obj_path("tracing.bpf.o"), &opts).unwrap();
    let p = prog(&o, "handle_exit");
    let off = p
        .core_relocs
        .iter()
        .find(|c| c.kind == "byte_off" && c.spec.contains("exit_code"))
        .unwrap();
    assert_eq!(off.target_value, None);
    assert_eq!(p.insns[off.insn], Insn::new(0x85, 0, 0, 0, POISON_HELPER));
    let ex = p
        .core_relocs
        .iter()
        .find(|c| c.kind == "field_exists" && c.spec.contains("exit_code"))
        .unwrap();
    assert_eq!(ex.target_value, Some(0));
    assert_eq!(p.insns[ex.insn].imm, 0);
}

#[test]
fn summaries_text_json_and_disasm() {
    let o = load("tracing.bpf.o");
    let loaded = Loaded::Object(o);
    let text = summary::inspect_text(&loaded);
    for needle in [
        "handle_exec",
        "tp/sched/sched_process_exec",
        "tracepoint sched:sched_process_exec",
        "ringbuf",
        "array_of_maps",
        "min_duration_ns = 0",
        "custom_flag = 42",
        "./tracing.bpf.c",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let j = summary::inspect_json(&loaded);
    assert_eq!(j["programs"].as_array().unwrap().len(), 14);
    assert_eq!(j["programs"][0]["type"], "tracepoint");
    assert_eq!(j["maps"][3]["type"], "ringbuf");
    assert_eq!(j["globals"][0]["name"], "min_duration_ns");
    assert_eq!(j["source_files"][0], "./tracing.bpf.c");

    let p = loaded.object().program("handle_exec").unwrap();
    let text = summary::disasm_with_source(p, |insns, i| format!("op {:#04x}", insns[i].code));
    assert!(text.contains("; int handle_exec("), "{text}");
    assert!(text.contains("parent_tgid:"));
    assert!(text.contains("CO-RE <byte_off>"));
    assert!(text.contains("     0: op 0xbf"));
}

#[test]
fn kernel_symbols_and_btf_attached_programs() {
    let o = load("kfunc.bpf.o");
    let p = prog(&o, "on_switch");
    assert_eq!(p.prog_type, ProgramType::Tracing);
    assert_eq!(
        p.attach,
        AttachPoint::Btf {
            attach_type: "BPF_TRACE_RAW_TP".into(),
            target: "sched_switch".into()
        }
    );
    let ex: Vec<(&str, bool)> = p
        .externs
        .iter()
        .map(|e| (e.name.as_str(), e.is_call))
        .collect();
    assert_eq!(
        ex,
        [
            ("bpf_task_acquire", true),
            ("bpf_prog_active", false),
            ("bpf_task_release", true)
        ]
    );
    for e in &p.externs {
        let i = p.insns[e.insn];
        let src = if e.is_call {
            pseudo::CALL_KFUNC
        } else {
            pseudo::BTF_ID
        };
        assert_eq!(i.src, src, "{e:?}");
    }
    assert_eq!(prog(&o, "fmod_open").prog_type, ProgramType::Tracing);
    assert_eq!(prog(&o, "dump_task").prog_type, ProgramType::Tracing);
    assert_eq!(
        prog(&o, "my_init").attach,
        AttachPoint::StructOps {
            member: "my_init".into()
        }
    );
}
