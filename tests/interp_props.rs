//! Property tests: whatever bytes or instructions it is given, the interpreter returns a
//! result or a clean error, never a panic or a hang.

use ebpf_sim::engine::{run_bare, Engine};
use ebpf_sim::vm::isa::{self, pseudo, Insn, Op, Selector};
use ebpf_sim::vm::{Config, Program};
use proptest::prelude::*;

const BUDGET: Config = Config { budget: 20_000 };

/// An instruction of a random form with fields made mostly sensible: registers r0..r10,
/// small memory offsets (so r1 and r10 accesses land near their regions), helper 5, no
/// map references. Jump and call targets are fixed up by [`aim`].
fn instance(form: usize, dst: u8, src: u8, off: i16, imm: i32) -> Vec<Insn> {
    let spec = &isa::table()[form];
    let mut i = Insn::new(spec.code, dst % 11, src % 11, off % 24, imm);
    match spec.selector {
        Selector::None => {}
        Selector::Off(v) => i.off = v,
        Selector::Imm(v) => i.imm = v,
        Selector::Src(v) => i.src = v,
    }
    match spec.op {
        Op::Call if i.src != pseudo::CALL_LOCAL => {
            i.src = pseudo::CALL_HELPER;
            i.imm = 5;
        }
        Op::Lddw if i.src != pseudo::FUNC => i.src = pseudo::IMM,
        _ => {}
    }
    if spec.writes_dst() && i.dst == 10 {
        i.dst = 0;
    }
    let clear = |bit: u8| spec.zero & bit != 0;
    if clear(isa::zero::DST) {
        i.dst = 0;
    }
    if clear(isa::zero::SRC) {
        i.src = 0;
    }
    if clear(isa::zero::OFF) {
        i.off = 0;
    }
    if clear(isa::zero::IMM) {
        i.imm = 0;
    }
    let mut out = vec![i];
    if spec.op == Op::Lddw {
        out.push(Insn::new(0, 0, 0, 0, imm.rotate_left(7)));
    }
    out
}

/// Points every jump, call and function address at a real instruction of the program.
fn aim(slots: &mut [Insn]) {
    let len = slots.len() as i64;
    let decoded = isa::decode(slots).expect("generated slots decode");
    let tails = isa::lddw_tails(&decoded, slots.len());
    for (pos, d) in decoded {
        let pick = |seed: i64| {
            let mut t = seed.rem_euclid(len);
            if tails[t as usize] {
                t -= 1;
            }
            t - pos as i64 - 1
        };
        let i = &mut slots[pos];
        match d.spec.op {
            Op::Ja { long: false } | Op::Jmp { .. } => i.off = pick(i.off as i64 * 7 + 3) as i16,
            Op::Ja { long: true } => i.imm = pick(i.imm as i64) as i32,
            Op::Call if i.src == pseudo::CALL_LOCAL => i.imm = pick(i.imm as i64) as i32,
            Op::Lddw if i.src == pseudo::FUNC => i.imm = pick(i.imm as i64) as i32,
            _ => {}
        }
    }
}

fn program() -> impl Strategy<Value = Vec<Insn>> {
    let n = isa::table().len();
    proptest::collection::vec(
        (0..n, any::<u8>(), any::<u8>(), any::<i16>(), any::<i32>()),
        1..40,
    )
    .prop_map(|raw| {
        let mut slots: Vec<Insn> = raw
            .into_iter()
            .flat_map(|(form, dst, src, off, imm)| instance(form, dst, src, off, imm))
            .collect();
        slots.push(Insn::new(0x95, 0, 0, 0, 0));
        aim(&mut slots);
        slots
    })
}

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
