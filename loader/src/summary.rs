//! What `ebpf-sim inspect` and `ebpf-sim disasm` print: a summary of a loaded file as text
//! or JSON, and a program's instructions with their source lines interleaved.

use std::fmt::Write as _;

use ebpf_sim_vm::isa::Insn;
use serde_json::{json, Value};

use crate::model::{map_type_name, MapOrigin, Program};
use crate::package::Package;
use crate::Loaded;

fn origin_name(o: MapOrigin) -> &'static str {
    match o {
        MapOrigin::Btf => "btf",
        MapOrigin::Legacy => "legacy",
        MapOrigin::GlobalData { readonly: true } => "global data (read-only)",
        MapOrigin::GlobalData { readonly: false } => "global data",
    }
}

/// The text of `ebpf-sim inspect FILE`.
pub fn inspect_text(loaded: &Loaded) -> String {
    let obj = loaded.object();
    let mut s = String::new();
    let _ = writeln!(s, "object: {}", obj.name);
    if let Some(l) = &obj.license {
        let _ = writeln!(s, "license: {l}");
    }
    let target = match &obj.core_target {
        crate::CoreTarget::None => "none (no BTF)".to_string(),
        crate::CoreTarget::Local => "object's own BTF".to_string(),
        crate::CoreTarget::External(n) => n.clone(),
    };
    let _ = writeln!(s, "CO-RE target: {target}");
    if let Loaded::Package(p) = loaded {
        package_header(&mut s, p);
    }

    let _ = writeln!(s, "\nprograms ({}):", obj.programs.len());
    let w = obj
        .programs
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let sw = obj
        .programs
        .iter()
        .map(|p| p.section.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let _ = writeln!(
        s,
        "  {:w$}  {:sw$}  {:16}  {:>6}  ATTACH",
        "NAME", "SECTION", "TYPE", "INSNS"
    );
    for p in &obj.programs {
        let _ = writeln!(
            s,
            "  {:w$}  {:sw$}  {:16}  {:>6}  {}",
            p.name,
            p.section,
            p.prog_type.name(),
            p.insns.len(),
            p.attach
        );
        if p.functions.len() > 1 {
            let subs: Vec<&str> = p.functions[1..].iter().map(|f| f.name.as_str()).collect();
            let _ = writeln!(s, "  {:w$}  calls: {}", "", subs.join(", "));
        }
        if !p.externs.is_empty() {
            let ex: Vec<&str> = p.externs.iter().map(|e| e.name.as_str()).collect();
            let _ = writeln!(s, "  {:w$}  externs: {}", "", ex.join(", "));
        }
    }

    let _ = writeln!(s, "\nmaps ({}):", obj.maps.len());
    let w = obj
        .maps
        .iter()
        .map(|m| m.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(
        s,
        "  {:w$}  {:16}  {:>5}  {:>6}  {:>8}  {:>6}  ORIGIN",
        "NAME", "TYPE", "KEY", "VALUE", "ENTRIES", "FLAGS"
    );
    for m in &obj.maps {
        let _ = writeln!(
            s,
            "  {:w$}  {:16}  {:>5}  {:>6}  {:>8}  {:>#6x}  {}",
            m.name,
            map_type_name(m.map_type),
            m.key_size,
            m.value_size,
            m.max_entries,
            m.flags,
            origin_name(m.origin)
        );
        if let Some(inner) = &m.inner {
            let _ = writeln!(
                s,
                "  {:w$}  inner: {} key {} value {} entries {}",
                "",
                map_type_name(inner.map_type),
                inner.key_size,
                inner.value_size,
                inner.max_entries
            );
        }
    }

    if !obj.globals.is_empty() {
        let _ = writeln!(s, "\nglobal variables ({}):", obj.globals.len());
        for g in &obj.globals {
            let value = obj.global_value(&g.name).unwrap_or_default();
            let _ = writeln!(
                s,
                "  {:14} +{:<4} {:24} {} = {}",
                g.section, g.offset, g.type_name, g.name, value
            );
        }
    }

    if let Loaded::Package(p) = loaded {
        for e in &p.export_types {
            let _ = writeln!(
                s,
                "\nexport type {} (size {}, BTF id {}):",
                e.name, e.size, e.type_id
            );
            for m in &e.members {
                let _ = writeln!(
                    s,
                    "  +{:<4} {:>4} bytes  {:20} {}",
                    m.offset, m.size, m.type_name, m.name
                );
            }
        }
    }

    if !obj.source_files.is_empty() {
        let _ = writeln!(s, "\nsource files:");
        for f in &obj.source_files {
            let _ = writeln!(s, "  {f}");
        }
    }
    s
}

fn package_header(s: &mut String, p: &Package) {
    let _ = writeln!(
        s,
        "package: {} (eunomia {})",
        p.obj_name,
        p.eunomia_version.as_deref().unwrap_or("?")
    );
    if !p.variables.is_empty() {
        let _ = writeln!(s, "options:");
        for v in &p.variables {
            let short = v
                .short
                .as_deref()
                .map(|c| format!("-{c}, "))
                .unwrap_or_default();
            let desc = v.help.as_deref().or(v.description.as_deref()).unwrap_or("");
            let _ = writeln!(s, "  {short}--{} <{}>  {desc}", v.long, v.type_name);
        }
    }
    for m in &p.sample_maps {
        let _ = writeln!(
            s,
            "sample map: {} every {} ms as {}",
            m.name, m.interval_ms, m.print_type
        );
    }
}

/// The JSON of `ebpf-sim inspect FILE --json`.
pub fn inspect_json(loaded: &Loaded) -> Value {
    let obj = loaded.object();
    let programs: Vec<Value> = obj.programs.iter().map(program_json).collect();
    let maps: Vec<Value> = obj
        .maps
        .iter()
        .map(|m| {
            json!({
                "name": m.name,
                "section": m.section,
                "origin": m.origin,
                "type": map_type_name(m.map_type),
                "type_id": m.map_type,
                "key_size": m.key_size,
                "value_size": m.value_size,
                "max_entries": m.max_entries,
                "flags": m.flags,
                "inner": m.inner.as_ref().map(|i| json!({
                    "type": map_type_name(i.map_type),
                    "key_size": i.key_size,
                    "value_size": i.value_size,
                    "max_entries": i.max_entries,
                })),
            })
        })
        .collect();
    let globals: Vec<Value> = obj
        .globals
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "section": g.section,
                "offset": g.offset,
                "size": g.size,
                "type": g.type_name,
                "value": obj.global_value(&g.name),
            })
        })
        .collect();
    let mut v = json!({
        "object": obj.name,
        "license": obj.license,
        "core_target": obj.core_target,
        "programs": programs,
        "maps": maps,
        "globals": globals,
        "source_files": obj.source_files,
    });
    if let (Loaded::Package(p), Some(map)) = (loaded, v.as_object_mut()) {
        map.insert(
            "package".into(),
            json!({
                "obj_name": p.obj_name,
                "eunomia_version": p.eunomia_version,
                "export_types": p.export_types,
                "multiple_export_types": p.multiple_export_types,
                "sample_maps": p.sample_maps,
                "variables": p.variables,
            }),
        );
    }
    v
}

fn program_json(p: &Program) -> Value {
    json!({
        "name": p.name,
        "section": p.section,
        "type": p.prog_type.name(),
        "attach": p.attach,
        "attach_text": p.attach.to_string(),
        "insns": p.insns.len(),
        "functions": p.functions,
        "core_relocs": p.core_relocs,
        "externs": p.externs,
    })
}

/// A program's instructions with source lines interleaved, like `llvm-objdump -S`.
/// `format_insn(insns, i)` renders the instruction at slot `i` (it sees the whole slice so
/// that it can read an `lddw`'s second slot); second slots of `lddw` are skipped.
pub fn disasm_with_source(
    prog: &Program,
    format_insn: impl Fn(&[Insn], usize) -> String,
) -> String {
    let mut s = String::new();
    let mut lines = prog.line_info.iter().peekable();
    let mut last_line: Option<(&str, u32)> = None;
    let mut i = 0;
    while i < prog.insns.len() {
        if let Some(f) = prog.functions.iter().find(|f| f.start == i) {
            let _ = writeln!(s, "\n{}:", f.name);
        }
        while let Some(l) = lines.peek() {
            if l.insn > i {
                break;
            }
            // Print a source line once per run of instructions it covers.
            if last_line != Some((l.file.as_str(), l.line)) {
                let _ = writeln!(s, "; {}", l.text.trim_end());
                last_line = Some((l.file.as_str(), l.line));
            }
            lines.next();
        }
        let _ = writeln!(s, "{i:>6}: {}", format_insn(&prog.insns, i));
        for c in prog.core_relocs.iter().filter(|c| c.insn == i) {
            let target = c
                .target_value
                .map(|v| v.to_string())
                .unwrap_or_else(|| "poisoned".into());
            let _ = writeln!(
                s,
                "        CO-RE <{}> {} = {} (local {})",
                c.kind, c.spec, target, c.local_value
            );
        }
        i += if prog.insns[i].code == 0x18 { 2 } else { 1 };
    }
    s
}
