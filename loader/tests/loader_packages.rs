//! The ten real eunomia-bpf packages in shared/packages/eunomia load with all their
//! programs, maps, export types and options; malformed packages give clear errors.

mod common;

use std::io::Write;

use base64::Engine;
use common::{package_path, PACKAGES};
use ebpf_sim_loader::globals::ValueKind;
use ebpf_sim_loader::package::load_package;
use ebpf_sim_loader::{load_package_file, summary, ErrorKind, LoadOptions, Loaded, Package};
use serde_json::Value;

fn load(name: &str) -> Option<Package> {
    let p = package_path(name)?;
    Some(load_package_file(&p, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}")))
}

#[test]
fn all_packages_load_with_all_programs_and_maps() {
    for name in PACKAGES {
        let Some(path) = package_path(name) else {
            return;
        };
        let pkg = load_package_file(&path, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let skel = &json["meta"]["bpf_skel"];
        let progs = skel["progs"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(pkg.progs.len(), progs, "{name}");
        assert_eq!(pkg.object.programs.len(), progs, "{name}");
        for m in skel["maps"].as_array().unwrap() {
            let mname = m["name"].as_str().unwrap();
            assert!(pkg.object.map(mname).is_some(), "{name}: map {mname}");
        }
        let exports = json["meta"]["export_types"]
            .as_array()
            .map(Vec::len)
            .unwrap_or(0);
        assert_eq!(pkg.export_types.len(), exports, "{name}");
        for e in &pkg.export_types {
            for m in &e.members {
                assert_eq!(m.btf_type_name, m.type_name, "{name} {}.{}", e.name, m.name);
            }
        }
        for p in &pkg.object.programs {
            ebpf_sim_vm::isa::decode(&p.insns).unwrap_or_else(|e| panic!("{name} {}: {e}", p.name));
            assert!(!p.line_info.is_empty(), "{name} {}", p.name);
        }
        // The summaries render.
        let loaded = Loaded::Package(pkg.clone());
        let text = summary::inspect_text(&loaded);
        assert!(text.contains(&pkg.obj_name));
        let j = summary::inspect_json(&loaded);
        assert_eq!(j["package"]["obj_name"], pkg.obj_name.as_str());
        assert_eq!(j["programs"].as_array().unwrap().len(), progs);
    }
}

#[test]
fn bootstrap_export_type_layout() {
    let Some(pkg) = load("bootstrap") else { return };
    let e = &pkg.export_types[0];
    assert_eq!((e.name.as_str(), e.size), ("event", 168));
    let layout: Vec<(&str, u64, u64)> = e
        .members
        .iter()
        .map(|m| (m.name.as_str(), m.offset, m.size))
        .collect();
    assert_eq!(
        layout,
        [
            ("pid", 0, 4),
            ("ppid", 4, 4),
            ("exit_code", 8, 4),
            ("duration_ns", 16, 8),
            ("comm", 24, 16),
            ("filename", 40, 127),
            ("exit_event", 167, 1)
        ]
    );
    assert_eq!(pkg.object.map("rb").unwrap().map_type, 27);
    assert_eq!(pkg.variables.len(), 1, "dummy pointer is not an option");
    assert_eq!(pkg.variables[0].name, "min_duration_ns");
}

#[test]
fn runqlat_sample_map_and_options() {
    let Some(pkg) = load("runqlat") else { return };
    assert_eq!(pkg.sample_maps.len(), 1);
    let s = &pkg.sample_maps[0];
    assert_eq!(
        (s.name.as_str(), s.print_type.as_str(), s.interval_ms),
        ("hists", "log2_hist", 1000)
    );
    assert_eq!(pkg.object.maps[s.map].name, "hists");
    let slots = &pkg.export_types[0].members[0];
    assert_eq!((slots.name.as_str(), slots.size), ("slots", 104));
    assert_eq!(
        slots.value_kind,
        ValueKind::Array {
            elem: Box::new(ValueKind::Int {
                size: 4,
                signed: false
            }),
            elem_size: 4,
            len: 26
        }
    );
    let comm = &pkg.export_types[0].members[1];
    assert_eq!(comm.value_kind, ValueKind::CharArray { len: 16 });
    let names: Vec<&str> = pkg.variables.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "filter_cg",
            "targ_per_process",
            "targ_per_thread",
            "targ_per_pidns",
            "targ_ms",
            "targ_tgid"
        ]
    );
    assert_eq!(pkg.object.programs.len(), 3);
}

#[test]
fn opensnoop_options_and_globals() {
    let Some(mut pkg) = load("opensnoop") else {
        return;
    };
    let failed = pkg
        .variables
        .iter()
        .find(|v| v.name == "targ_failed")
        .unwrap();
    assert_eq!(
        (failed.long.as_str(), failed.short.as_deref()),
        ("failed", Some("f"))
    );
    assert_eq!(failed.section, ".rodata");
    assert_eq!(failed.type_name, "bool");
    let pid = pkg
        .variables
        .iter()
        .find(|v| v.name == "pid_target")
        .unwrap();
    assert_eq!(pid.description.as_deref(), Some("Process ID to trace"));
    pkg.object.set_global("pid_target", "42").unwrap();
    pkg.object.set_global("targ_failed", "true").unwrap();
    let ro = pkg.object.map("opensnoo.rodata").unwrap();
    assert_eq!(
        ro.data[pid.offset as usize..pid.offset as usize + 4],
        42i32.to_le_bytes()
    );
    assert_eq!(ro.data[failed.offset as usize], 1);
    assert_eq!(pkg.object.map("events").unwrap().map_type, 4);
}

#[test]
fn simple_prog_3_globals_of_many_types() {
    let Some(mut pkg) = load("simple_prog_3") else {
        return;
    };
    pkg.object.set_global("const_val_3", "hello").unwrap();
    assert_eq!(
        pkg.object.global_value("const_val_3").as_deref(),
        Some("\"hello\"")
    );
    pkg.object.set_global("bss_val_2", "-9000000000").unwrap();
    assert_eq!(
        pkg.object.global_value("bss_val_2").as_deref(),
        Some("-9000000000")
    );
    let long = "x".repeat(100);
    assert!(pkg.object.set_global("const_val_3", &long).is_err());
}

#[test]
fn int128_export_type() {
    let Some(pkg) = load("int128_test") else {
        return;
    };
    assert!(pkg.object.programs.is_empty());
    let m = &pkg.export_types[0].members;
    assert_eq!(
        (m[0].offset, m[0].size, m[1].offset, m[1].size),
        (0, 16, 16, 16)
    );
}

#[test]
fn tc_and_xdp_packages() {
    let Some(tc) = load("tc") else { return };
    assert_eq!(
        tc.object.programs[0].prog_type,
        ebpf_sim_loader::ProgramType::SchedCls
    );
    let Some(xdp) = load("xdp") else { return };
    assert_eq!(
        xdp.object.programs[0].prog_type,
        ebpf_sim_loader::ProgramType::Xdp
    );
}

// ---- malformed packages ----

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn minimal_meta() -> Value {
    serde_json::json!({"bpf_skel": {"obj_name": "x_bpf", "maps": [], "progs": []}})
}

fn err_of(json: &Value) -> ebpf_sim_loader::LoadError {
    load_package(
        json.to_string().as_bytes(),
        "bad.json",
        &LoadOptions::default(),
    )
    .unwrap_err()
}

#[test]
fn package_errors_are_clear() {
    let elf = std::fs::read(common::obj_path("net_v1.bpf.o")).unwrap();
    let good_obj = b64(&zlib(&elf));

    let e = load_package(b"not json", "bad.json", &LoadOptions::default()).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Json(_)), "{e}");
    assert!(e.to_string().starts_with("bad.json"), "{e}");

    let e = err_of(&serde_json::json!({"bpf_object_size": 1, "meta": minimal_meta()}));
    assert!(e.to_string().contains("missing field `bpf_object`"), "{e}");

    let e = err_of(&serde_json::json!({"bpf_object": good_obj, "bpf_object_size": elf.len()}));
    assert!(e.to_string().contains("missing field `meta`"), "{e}");

    let e = err_of(
        &serde_json::json!({"bpf_object": "!!!", "bpf_object_size": 3, "meta": minimal_meta()}),
    );
    assert!(matches!(e.kind, ErrorKind::Base64(_)), "{e}");
    assert!(e.to_string().contains("bpf_object"), "{e}");

    let e = err_of(
        &serde_json::json!({"bpf_object": b64(b"not zlib at all"), "bpf_object_size": 3, "meta": minimal_meta()}),
    );
    assert!(matches!(e.kind, ErrorKind::Zlib(_)), "{e}");

    let e = err_of(
        &serde_json::json!({"bpf_object": good_obj, "bpf_object_size": elf.len() + 1, "meta": minimal_meta()}),
    );
    assert_eq!(
        e.kind,
        ErrorKind::SizeMismatch {
            expected: elf.len() as u64 + 1,
            actual: elf.len() as u64
        }
    );
    let e = err_of(
        &serde_json::json!({"bpf_object": good_obj, "bpf_object_size": 10, "meta": minimal_meta()}),
    );
    assert!(
        matches!(e.kind, ErrorKind::SizeMismatch { expected: 10, .. }),
        "{e}"
    );

    // An embedded object that is not ELF names the package and the embedded object.
    let e = err_of(
        &serde_json::json!({"bpf_object": b64(&zlib(b"hello")), "bpf_object_size": 5, "meta": minimal_meta()}),
    );
    assert!(matches!(e.kind, ErrorKind::NotElf(_)), "{e}");
    assert!(e.to_string().contains("bad.json (bpf_object)"), "{e}");

    // Metadata that disagrees with the object.
    let meta = serde_json::json!({"bpf_skel": {"obj_name": "x_bpf", "maps": [],
        "progs": [{"name": "nope", "attach": "xdp", "link": true}]}});
    let e = err_of(
        &serde_json::json!({"bpf_object": good_obj, "bpf_object_size": elf.len(), "meta": meta}),
    );
    assert!(e.to_string().contains("program nope"), "{e}");

    // The good object with consistent metadata loads.
    let meta = serde_json::json!({"bpf_skel": {"obj_name": "net_v1_bpf", "maps": [{"name": "pkt_count", "ident": "pkt_count"}],
        "progs": [{"name": "xdp_pass", "attach": "xdp", "link": true}]}});
    let j = serde_json::json!({"bpf_object": good_obj, "bpf_object_size": elf.len(), "meta": meta});
    let p = load_package(j.to_string().as_bytes(), "ok.json", &LoadOptions::default()).unwrap();
    assert_eq!(
        p.object.map("net_v1_b.rodata").map(|m| m.value_size),
        Some(19)
    );
}
