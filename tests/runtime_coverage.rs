//! The runtime testdata (testdata/obj/rt_*.bpf.o, each asserted by a tests/runtime_*.rs)
//! between them call every helper the simulated kernel registers and create every map
//! type it simulates. A helper or map type added to the simulator without a testdata
//! program fails here.

use std::collections::{BTreeMap, BTreeSet};

use ebpf_sim::loader::{load_file, LoadOptions, MapOrigin, Object};
use ebpf_sim::vm::isa::pseudo;
use ebpf_sim::vm::kernel::helpers::kernel_helpers;
use ebpf_sim::vm::maps::map_type;

/// `BPF_JMP | BPF_CALL`.
const CALL: u8 = 0x85;

fn rt_objects() -> Vec<(String, Object)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/obj");
    let mut objs: Vec<(String, Object)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("rt_") && n.ends_with(".bpf.o"))
        .map(|n| {
            let loaded = load_file(dir.join(&n), &LoadOptions::default())
                .unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, loaded.object().clone())
        })
        .collect();
    objs.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        objs.len() >= 7,
        "{:?}",
        objs.iter().map(|o| &o.0).collect::<Vec<_>>()
    );
    objs
}

/// Helper id -> the objects calling it.
fn helper_calls(objs: &[(String, Object)]) -> BTreeMap<u32, BTreeSet<String>> {
    let mut calls: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for (name, obj) in objs {
        for p in &obj.programs {
            for i in &p.insns {
                if i.code == CALL && i.src == pseudo::CALL_HELPER {
                    calls.entry(i.imm as u32).or_default().insert(name.clone());
                }
            }
        }
    }
    calls
}

#[test]
fn every_registered_helper_is_called_by_a_testdata_program() {
    let objs = rt_objects();
    let calls = helper_calls(&objs);
    let missing: Vec<(u32, &str)> = kernel_helpers()
        .ids()
        .filter(|(id, _)| !calls.contains_key(id))
        .collect();
    assert!(
        missing.is_empty(),
        "helpers no rt_* program calls: {missing:?}"
    );
    // The packet helpers the simulator lacks are called too (by rt_netadj, whose tests
    // are ignored until they exist): skb_store_bytes, skb_load_bytes, xdp_adjust_head,
    // xdp_adjust_tail.
    for id in [9, 26, 44, 65] {
        assert!(
            calls
                .get(&id)
                .is_some_and(|o| o.contains("rt_netadj.bpf.o")),
            "helper {id}"
        );
    }
}

#[test]
fn every_simulated_map_type_is_created_by_a_testdata_program() {
    let objs = rt_objects();
    let mut types: BTreeSet<u32> = BTreeSet::new();
    let mut data_sections: BTreeSet<String> = BTreeSet::new();
    for (_, obj) in &objs {
        for m in &obj.maps {
            types.insert(m.map_type);
            if let MapOrigin::GlobalData { .. } = m.origin {
                data_sections.insert(m.section.clone());
            }
        }
    }
    use map_type::*;
    let all = [
        HASH,
        ARRAY,
        PROG_ARRAY,
        PERF_EVENT_ARRAY,
        PERCPU_HASH,
        PERCPU_ARRAY,
        STACK_TRACE,
        CGROUP_ARRAY,
        LRU_HASH,
        LRU_PERCPU_HASH,
        LPM_TRIE,
        ARRAY_OF_MAPS,
        HASH_OF_MAPS,
        QUEUE,
        STACK,
        RINGBUF,
        BLOOM_FILTER,
    ];
    let missing: Vec<&str> = all
        .iter()
        .filter(|t| !types.contains(t))
        .map(|&t| map_type::name(t))
        .collect();
    assert!(
        missing.is_empty(),
        "map types no rt_* program creates: {missing:?}"
    );
    for s in [".data", ".rodata", ".bss"] {
        assert!(data_sections.contains(s), "{s}: {data_sections:?}");
    }
}

#[test]
fn every_testdata_object_has_a_trace() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (name, _) in rt_objects() {
        let stem = name.trim_end_matches(".bpf.o");
        let trace = root.join(format!("testdata/traces/{stem}.json"));
        assert!(trace.exists(), "{name} has no {}", trace.display());
        let src = root.join(format!("testdata/src/{stem}.bpf.c"));
        assert!(src.exists(), "{name} has no {}", src.display());
    }
}
