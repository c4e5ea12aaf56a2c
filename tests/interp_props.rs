//! Property tests: whatever bytes or instructions it is given, the interpreter returns a
//! result or a clean error, never a panic or a hang.

use ebpf_sim::engine::{run_bare, Engine};
use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::{Config, Program};
use proptest::prelude::*;

mod common;
use common::program;

const BUDGET: Config = Config { budget: 20_000 };

fn run(slots: Vec<Insn>, mem: &[u8]) {
    if let Ok(p) = Program::new(slots) {
        // Ok or a clean error are both fine: the point is that it returns.
        let _ = run_bare(&p, mem, Engine::Interp, BUDGET);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256), mem in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(p) = Program::from_bytes(&bytes) {
            let _ = run_bare(&p, &mem, Engine::Interp, BUDGET);
        }
    }

    #[test]
    fn random_valid_programs_never_panic(slots in program(), mem in proptest::collection::vec(any::<u8>(), 0..64)) {
        run(slots, &mem);
    }
}

/// The generator must produce programs that pass preparation, or the property above would
/// test little: check that most do and that they execute a fair number of instructions.
#[test]
fn generator_produces_runnable_programs() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = program();
    let (mut prepared, mut ok, mut faults) = (0, 0, 0);
    for _ in 0..500 {
        let slots = strategy.new_tree(&mut runner).unwrap().current();
        if let Ok(p) = Program::new(slots) {
            prepared += 1;
            match run_bare(&p, &[0u8; 64], Engine::Interp, BUDGET) {
                Ok(_) => ok += 1,
                Err(_) => faults += 1,
            }
        }
    }
    println!(
        "generated 500: {prepared} prepared, {ok} ran to exit, {faults} stopped with an error"
    );
    assert!(
        prepared >= 400,
        "only {prepared} of 500 generated programs were valid"
    );
    assert!(
        ok >= 50 && faults >= 50,
        "runs should both finish and fault: {ok} ok, {faults} errors"
    );
}
