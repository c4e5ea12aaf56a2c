//! Property test: whatever trace it is given (random hooks, arguments, memory, packets,
//! contexts), `replay` returns records or a clean error: never a panic.

use std::path::Path;

use ebpf_sim::engine::Engine;
use ebpf_sim::loader::{load_file, LoadOptions};
use ebpf_sim::sim::machine::Machine;
use ebpf_sim::sim::run::replay;
use ebpf_sim::sim::trace::Trace;
use ebpf_sim::vm::kernel::KernelConfig;
use proptest::prelude::*;
use serde_json::{json, Value};

const HOOKS: &[&str] = &[
    "tp/syscalls/sys_enter_write",
    "tp/syscalls/sys_enter_openat",
    "tp/syscalls/sys_exit_openat",
    "tp/sched/sched_process_exec",
    "tp/sched/sched_process_exit",
    "raw_tp/sched_switch",
    "raw_tp/sched_wakeup",
    "kprobe/do_unlinkat",
    "kretprobe/do_unlinkat",
    "fentry/do_unlinkat",
    "xdp",
    "tc",
    "socket",
    "perf_event",
    "tp/nope/nothing",
];

/// Mostly valid values, sometimes not (so both paths are exercised).
fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => any::<i64>().prop_map(|v| json!(v)),
        2 => any::<u64>().prop_map(|v| json!(format!("{v:#x}"))),
        2 => "[a-z/]{0,12}".prop_map(|s| json!(s)),
        2 => (1u32..2000).prop_map(|p| json!({"task": p})),
        2 => "[a-z]{0,8}".prop_map(|s| json!({"user": s})),
        1 => "([0-9a-f]{2}){0,8}".prop_map(|s| json!({"kernel_hex": s})),
        1 => Just(json!(null)),
    ]
}

const FIELDS: &[&str] = &[
    "filename", "fd", "dfd", "flags", "pid", "prev_pid", "comm", "count", "bogus",
];

fn event() -> impl Strategy<Value = Value> {
    (
        0..HOOKS.len(),
        0u64..5_000_000,
        0u32..4,
        proptest::option::of((1u32..2000, "[a-z]{0,20}", proptest::option::of(0u32..2000))),
        proptest::collection::vec(value(), 0..7),
        proptest::option::of(value()),
        proptest::option::of("([0-9a-f]{2}){0,70}"),
        proptest::option::of((
            prop_oneof![9 => 0xffff_8880_0000_0000u64..0xffff_8880_1000_0000, 1 => any::<u64>()],
            "[a-z]{0,10}",
        )),
        proptest::option::of((0..FIELDS.len(), value())),
    )
        .prop_map(|(h, t, cpu, task, args, ret, packet, mem, field)| {
            let mut e = json!({"hook": HOOKS[h], "time_ns": t, "cpu": cpu, "args": args});
            // Network hooks need a packet; give most of them one.
            if matches!(HOOKS[h], "xdp" | "tc" | "socket") && packet.is_none() && t % 4 != 0 {
                e["packet"] =
                    json!("02000000000202000000000108004500002800010000400600000a0000010a000002");
            }
            if HOOKS[h] == "perf_event" && t % 4 != 0 {
                e["ctx_hex"] = json!("00".repeat(64));
            }
            if let Some((pid, comm, ppid)) = task {
                e["task"] = json!({"pid": pid, "comm": comm, "ppid": ppid});
            }
            if let Some(r) = ret {
                e["ret"] = r;
            }
            if let Some(p) = packet {
                e["packet"] = json!(p);
            }
            if let Some((addr, s)) = mem {
                e["memory"] =
                    json!([{"space": "kernel", "addr": format!("{addr:#x}"), "string": s}]);
            }
            if let Some((k, v)) = field {
                e["ctx"] = json!({FIELDS[k]: v});
            }
            e
        })
}

fn machines() -> Vec<Machine> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("testdata/obj/tracing.bpf.o"),
        root.join("testdata/obj/net_v1.bpf.o"),
        root.join("testdata/obj/execsnoop.bpf.o"),
    ];
    for p in [
        "bootstrap",
        "opensnoop",
        "runqlat",
        "kprobe-link",
        "fentry-link",
    ] {
        let f = root.join(format!("../shared/packages/eunomia/{p}.package.json"));
        if f.exists() {
            files.push(f);
        }
    }
    files
        .iter()
        .map(|f| {
            let loaded = load_file(f, &LoadOptions::default()).unwrap();
            Machine::new(
                loaded.object().clone(),
                KernelConfig::default(),
                Engine::Interp,
                20_000,
            )
            .unwrap()
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn random_traces_never_panic(mut events in proptest::collection::vec(event(), 1..12)) {
        // Times must not go backwards for the trace to be valid at all: sort them.
        events.sort_by_key(|e| e["time_ns"].as_u64().unwrap_or(0));
        let text = Value::Array(events).to_string();
        let Ok(trace) = Trace::parse(&text, "random") else { return Ok(()) };
        for mut m in machines() {
            let attached = vec![true; m.programs.len()];
            let r = replay(&mut m, &trace, &attached, &[]);
            // Either way the records before an error are kept.
            let _ = (r.records.len(), r.error);
        }
    }
}

/// The generator must reach programs, or the property above tests little.
#[test]
fn generated_traces_reach_programs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = proptest::collection::vec(event(), 1..12);
    let (mut parsed, mut ran, mut faults, mut errors) = (0, 0, 0, 0);
    for _ in 0..100 {
        let mut events = strategy.new_tree(&mut runner).unwrap().current();
        events.sort_by_key(|e| e["time_ns"].as_u64().unwrap_or(0));
        let Ok(trace) = Trace::parse(&Value::Array(events).to_string(), "random") else {
            continue;
        };
        parsed += 1;
        for mut m in machines() {
            let attached = vec![true; m.programs.len()];
            let r = replay(&mut m, &trace, &attached, &[]);
            for rec in &r.records {
                match rec {
                    ebpf_sim::sim::run::Record::Return { .. } => ran += 1,
                    ebpf_sim::sim::run::Record::Fault { .. } => faults += 1,
                    _ => {}
                }
            }
            errors += r.error.is_some() as usize;
        }
    }
    println!("100 random traces: {parsed} parsed; {ran} program runs, {faults} faults, {errors} replays stopped by a trace error");
    assert!(parsed >= 50 && ran >= 100, "{parsed} parsed, {ran} runs");
}
