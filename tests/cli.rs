//! The `ebpf-sim` command line, run as a user would.

use std::process::{Command, Output};

fn ebpf_sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ebpf-sim"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn exec_runs_the_bundled_example() {
    let o = ebpf_sim(&["exec", "testdata/asm/fnv1a.s", "--mem", "68 65 6c 6c 6f"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "0x4f9f2cab\n");
}

#[test]
fn asm_then_disasm_then_exec_raw() {
    let dir = std::env::temp_dir().join(format!("ebpf-sim-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("fnv1a.bin");
    let o = ebpf_sim(&["asm", "testdata/asm/fnv1a.s", "-o", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(&bin).unwrap().len(), 11 * 8);

    let o = ebpf_sim(&["disasm", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let want = "mov32 %r0, -2128831035\nmov %r3, 0\njge %r3, %r2, +7\nmov %r4, %r1\nadd %r4, %r3\n\
                ldxb %r5, [%r4]\nxor32 %r0, %r5\nmul32 %r0, 16777619\nadd %r3, 1\nja -8\nexit\n";
    assert_eq!(text, want);
    let asm = dir.join("round.s");
    std::fs::write(&asm, &text).unwrap();
    let o = ebpf_sim(&["exec", asm.to_str().unwrap(), "--mem", "68656c6c6f"]);
    assert_eq!(stdout(&o), "0x4f9f2cab\n", "{}", stderr(&o));

    let o = ebpf_sim(&["exec", bin.to_str().unwrap(), "--mem", "68 65 6c 6c 6f"]);
    assert_eq!(stdout(&o), "0x4f9f2cab\n", "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn errors_are_clear_and_exit_non_zero() {
    let dir = std::env::temp_dir().join(format!("ebpf-sim-cli-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        ("bad.s", b"mov %r0, 1\nfrob %r1\nexit\n", "bad.s: line 2"),
        (
            "noexit.s",
            b"mov %r0, 1\n",
            "insn 0: last insn is not an exit or jmp",
        ),
        (
            "loop.s",
            b"l:\nja l\nexit\n",
            "insn 0: instruction budget of 1000000 exceeded",
        ),
        (
            "fault.s",
            b"ldxdw %r0, [%r1+0]\nexit\n",
            "invalid load of 8 bytes at 0x0",
        ),
        (
            "trunc.bin",
            &[0x95, 0, 0, 0, 0, 0, 0, 0, 0xb7],
            "not a whole number of 8-byte instructions",
        ),
        (
            "opcode.bin",
            &[0xff, 0, 0, 0, 0, 0, 0, 0],
            "insn 0: unknown opcode 0xff",
        ),
        (
            "r12.bin",
            &[0xbf, 0x0c, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0],
            "invalid register r12",
        ),
    ];
    for (name, content, want) in cases {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let o = ebpf_sim(&["exec", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(want),
            "{name}: '{}' lacks '{want}'",
            stderr(&o)
        );
    }
    let o = ebpf_sim(&["exec", "/nonexistent/prog.s"]);
    assert!(stderr(&o).contains("/nonexistent/prog.s"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).ok();
}

fn eunomia(name: &str) -> Option<String> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/packages/eunomia")
        .join(name);
    if p.exists() {
        Some(p.to_string_lossy().into_owned())
    } else {
        eprintln!(
            "SKIPPED: {} is not present beside the checkout",
            p.display()
        );
        None
    }
}

#[test]
fn inspect_shows_programs_maps_globals_and_export_types() {
    let Some(pkg) = eunomia("bootstrap.package.json") else {
        return;
    };
    let o = ebpf_sim(&["inspect", &pkg]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for want in [
        "handle_exec  tp/sched/sched_process_exec",
        "rb               ringbuf",
        "min_duration_ns = 0",
        "export type event (size 168",
        "+40    127 bytes  char[127]            filename",
    ] {
        assert!(text.contains(want), "missing '{want}' in\n{text}");
    }
    let o = ebpf_sim(&["inspect", &pkg, "--json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("inspect --json prints JSON");
    assert_eq!(v["programs"].as_array().map(|a| a.len()), Some(2));
}

#[test]
fn disasm_of_an_object_interleaves_source_lines() {
    let o = ebpf_sim(&["disasm", "testdata/obj/net_v1.bpf.o"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.lines().any(|l| l.starts_with("; ")),
        "no source lines in\n{text}"
    );
    assert!(text.contains("exit"), "{text}");
    let o = ebpf_sim(&["disasm", "testdata/obj/net_v1.bpf.o", "--prog", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("no program named 'nope'"),
        "{}",
        stderr(&o)
    );
    let o = ebpf_sim(&["inspect", "Cargo.toml"]);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn run_verifies_first_and_no_verify_runs_anyway() {
    // rt_ringbuf leaks a ring buffer reservation on purpose: the kernel refuses it.
    let args = [
        "run",
        "testdata/obj/rt_output.bpf.o",
        "--trace",
        "testdata/traces/rt_output.json",
        "--prog",
        "rt_ringbuf",
    ];
    let o = ebpf_sim(&args);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("program rt_ringbuf would not load"), "{err}");
    assert!(err.contains("Unreleased reference"), "{err}");
    let mut with = args.to_vec();
    with.push("--no-verify");
    let o = ebpf_sim(&with);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn bad_traces_name_the_event_and_keep_earlier_output() {
    let Some(pkg) = eunomia("xdp.package.json") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("ebpf-sim-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    // Not JSON.
    let t = write("bad.json", "{\"events\": [");
    let o = ebpf_sim(&["run", &pkg, "--trace", &t]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("bad.json"), "{}", stderr(&o));
    // A misspelt key.
    let t = write("typo.json", r#"[{"hook": "xdp", "pakcet": "00"}]"#);
    let o = ebpf_sim(&["run", &pkg, "--trace", &t]);
    assert!(
        stderr(&o).contains("event 0: unknown field `pakcet`"),
        "{}",
        stderr(&o)
    );
    // The second event does not fit its hook (no packet): the first one's output stays.
    let pkt = "02000000000202000000000108004500002800010000400600000a0000010a0000029c400050000000010000000050022000";
    let t = write(
        "nofit.json",
        &format!(r#"[{{"hook": "xdp", "packet": "{pkt}"}}, {{"hook": "xdp"}}]"#),
    );
    let o = ebpf_sim(&["run", &pkg, "--trace", &t]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("packet size is 50"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("event 1 (xdp): program xdp_pass: a network program needs \"packet\""),
        "{}",
        stderr(&o)
    );
    // A hook nothing is attached to is reported.
    let t = write("unknown.json", r#"[{"hook": "kprobe/no_such_function"}]"#);
    let o = ebpf_sim(&["run", &pkg, "--trace", &t]);
    assert!(o.status.success());
    assert!(
        stderr(&o)
            .contains("1 event(s) reached no attached program (hooks: kprobe/no_such_function)"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}
