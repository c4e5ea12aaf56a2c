//! Prog arrays and tail calls (testdata/src/rt_tail.bpf.c on testdata/traces/rt_tail.json):
//! the kernel's MAX_TAIL_CALL_CNT of 33, empty slots and indices out of range falling
//! through, and the context passed unchanged. Run through the CLI (the prog array filled
//! with `--map NAME:INDEX=PROGRAM`) and through the library's `Machine` API, on both
//! engines.

mod runtime_common;

use ebpf_sim::engine::Engine;
use ebpf_sim::loader::{load_file, LoadOptions};
use ebpf_sim::sim::machine::Machine;
use ebpf_sim::sim::output::{json_record, OutputInfo};
use ebpf_sim::sim::run::{replay, Record};
use ebpf_sim::sim::trace::Trace;
use ebpf_sim::vm::kernel::{Effect, KernelConfig};
use runtime_common::run;

const OBJ: &str = "testdata/obj/rt_tail.bpf.o";
const TRACE: &str = "testdata/traces/rt_tail.json";
const FILLED: [&str; 6] = [
    "--map",
    "jmp_table:0=tail_self",
    "--map",
    "jmp_table:1=tail_hop",
    "--map",
    "jmp_table:2=tail_end",
];

#[test]
fn a_self_tail_call_chain_stops_after_33_tail_calls() {
    let r = run(OBJ, TRACE, &FILLED);
    r.assert_clean();
    // tail_entry, then 33 successful tail calls into tail_self: 34 runs; the 34th tail
    // call falls through to the code after it. The context is the same in every run.
    let want = "self fell through: runs=34 tail calls=33 ctx changed=0";
    assert_eq!(r.printk_of_event(0), [want]);
    assert_eq!(
        r.printk_of_event(3),
        [want],
        "the count restarts at every event"
    );
    // The chain's r0 is that of the program that exited (tail_self's `runs`), reported
    // under the attached program's name.
    let returns = r.returns();
    assert_eq!(returns[0], (0, "tail_entry".into(), 34));
    assert_eq!(returns[3], (3, "tail_entry".into(), 34));
}

#[test]
fn empty_slots_and_indices_out_of_range_fall_through() {
    let r = run(OBJ, TRACE, &FILLED);
    assert_eq!(
        r.printk_of_event(1),
        [
            "empty slot fell through: runs=1",
            "index out of range fell through: runs=1"
        ]
    );
    assert_eq!(r.r0(1), [7]);
}

#[test]
fn a_chain_of_programs_sees_the_same_context() {
    let r = run(OBJ, TRACE, &FILLED);
    assert_eq!(
        r.printk_of_event(2),
        ["hop end: args 7 35 runs=3", "hop end: ctx changed=0"]
    );
    assert_eq!(r.r0(2), [42]);
    // The prog array holds the three programs.
    let slots: Vec<&str> = r.map("jmp_table").iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(slots, ["00000000", "01000000", "02000000"]);
}

#[test]
fn an_empty_prog_array_makes_every_tail_call_fall_through() {
    let r = run(OBJ, TRACE, &[]);
    r.assert_clean();
    assert_eq!(r.printk_of_event(0), ["entry fell through: runs=1"]);
    assert_eq!(r.printk_of_event(2), ["hops fell through"]);
    // tail_hops returns -1 from an int: r0 holds it zero-extended from 32 bits.
    assert_eq!(r.r0(0), [1001]);
    assert_eq!(r.r0(2), [0xffff_ffff]);
}

/// The library route: load, fill the prog array through the kernel's maps, replay.
fn replay_with_api(engine: Engine) -> (Vec<Record>, Vec<serde_json::Value>) {
    let root = env!("CARGO_MANIFEST_DIR");
    let loaded = load_file(format!("{root}/{OBJ}"), &LoadOptions::default()).unwrap();
    let text = std::fs::read_to_string(format!("{root}/{TRACE}")).unwrap();
    let trace = Trace::parse(&text, TRACE).unwrap();
    let config = KernelConfig {
        ncpus: trace.config.ncpus,
        ..KernelConfig::default()
    };
    let mut m = Machine::new(loaded.object().clone(), config, engine, 1_000_000).unwrap();
    let table = m.object.map_index("jmp_table").unwrap();
    for (slot, prog) in [(0u32, "tail_self"), (1, "tail_hop"), (2, "tail_end")] {
        let p = m.program_index(prog).unwrap() as u32;
        m.kernel.maps[table]
            .update(&slot.to_le_bytes(), &p.to_le_bytes(), 0, 0)
            .unwrap();
    }
    let replayed = replay(&mut m, &trace, &[], &[]);
    assert_eq!(replayed.error, None);
    let info = OutputInfo::new(&m.object, None, 0, false);
    let json = replayed
        .records
        .iter()
        .map(|r| json_record(&info, r))
        .collect();
    (replayed.records, json)
}

#[test]
fn the_machine_api_gives_the_same_tail_calls_on_both_engines() {
    let mut runs = Engine::available().into_iter().map(replay_with_api);
    let (records, json) = runs.next().unwrap();
    for (other_records, other_json) in runs {
        assert_eq!(records, other_records);
        assert_eq!(json, other_json);
    }
    let r0: Vec<(usize, u64)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Return { event, r0, .. } => Some((*event, *r0)),
            _ => None,
        })
        .collect();
    assert_eq!(r0, [(0, 34), (1, 7), (2, 42), (3, 34)]);
    let texts: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Effect {
                effect: Effect::Printk { text },
                ..
            } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts[0],
        "self fell through: runs=34 tail calls=33 ctx changed=0"
    );
    // The JSON the CLI prints is the same as the library's.
    let cli = run(OBJ, TRACE, &FILLED);
    assert_eq!(cli.records, json);
}

#[test]
fn prog_array_initialisers_fill_the_array_and_types_must_match() {
    let root = env!("CARGO_MANIFEST_DIR");
    let loaded = load_file(
        format!("{root}/testdata/obj/rt_ktail.bpf.o"),
        &LoadOptions::default(),
    )
    .unwrap();
    let object = loaded.object().clone();
    let m = Machine::new(
        object.clone(),
        KernelConfig::default(),
        Engine::Interp,
        1_000_000,
    )
    .unwrap();
    let chain = m.object.map_index("chain").unwrap();
    let slots: Vec<Vec<u8>> = m.kernel.maps[chain]
        .entries()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(slots, [0u32.to_le_bytes(), 2u32.to_le_bytes()]);
    // The kernel refuses a program of another type in a prog array its caller uses.
    let mut other = object;
    let next = other
        .programs
        .iter()
        .position(|p| p.name == "kt_next")
        .unwrap();
    other.programs[next].prog_type = ebpf_sim::loader::ProgramType::SchedCls;
    let err = Machine::new(other, KernelConfig::default(), Engine::Interp, 1_000_000)
        .err()
        .unwrap();
    assert!(
        err.contains("kt_next (sched_cls)") && err.contains("(xdp)") && err.contains("EINVAL"),
        "{err}"
    );
    // `--map` checks the same way: a program of the caller's type is accepted.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebpf-sim"))
        .args(["run", "--map", "chain:1=kt_entry"])
        .arg(format!("{root}/testdata/obj/rt_ktail.bpf.o"))
        .arg("--trace")
        .arg(format!("{root}/testdata/traces/rt_ktail.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn tail_calls_into_empty_slots_do_not_use_up_the_limit() {
    // rt_ktail (prog array filled by its initialiser) on rt_ktail_empty.json: 33 tail calls
    // into an empty slot, with a constant index and with one read from the packet, then
    // one into kt_next, which runs (XDP_TX): only calls that reach a program count, as in
    // the kernel's x86-64 JIT (tests/kernel_parity.rs checks it against the kernel).
    let r = run(
        "testdata/obj/rt_ktail.bpf.o",
        "testdata/traces/rt_ktail_empty.json",
        &["--prog", "kt_entry"],
    );
    r.assert_clean();
    let r0: Vec<i64> = r.returns().into_iter().map(|(_, _, v)| v).collect();
    assert_eq!(r0, [3, 3]);
}
