//! Whatever the verifier accepts runs on the interpreter without a memory fault: random
//! programs (biased towards stack and context accesses, pointer arithmetic and branches)
//! are verified as socket filters and the accepted ones run with a 192-byte context.

use ebpf_sim::engine::{run_bare, Engine, RunError};
use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::verifier::{verify, VerifyOptions};
use ebpf_sim::vm::{Config, Program, VmError};
use proptest::prelude::*;

mod engines;
use engines::Outcome;

fn insn() -> impl Strategy<Value = Insn> {
    let reg = 0u8..10;
    prop_oneof![
        // mov rK, imm / mov rK, rJ (pointer copies of r1 and r10 included)
        (reg.clone(), -64i32..600).prop_map(|(d, imm)| Insn::new(0xb7, d, 0, 0, imm)),
        (reg.clone(), prop_oneof![Just(1u8), Just(10u8), 0u8..10])
            .prop_map(|(d, s)| Insn::new(0xbf, d, s, 0, 0)),
        // add/sub/and/rsh with imm, add reg
        (
            reg.clone(),
            prop_oneof![Just(0x07u8), Just(0x17), Just(0x57), Just(0x77), Just(0x04)],
            -600i32..600
        )
            .prop_map(|(d, c, imm)| {
                let imm = if c == 0x77 { imm.rem_euclid(64) } else { imm };
                Insn::new(c, d, 0, 0, imm)
            }),
        (reg.clone(), reg.clone()).prop_map(|(d, s)| Insn::new(0x0f, d, s, 0, 0)),
        // loads and stores of every size through any register
        (
            reg.clone(),
            prop_oneof![Just(10u8), Just(1u8), 0u8..10],
            prop_oneof![Just(0x61u8), Just(0x69), Just(0x71), Just(0x79)],
            -520i16..200
        )
            .prop_map(|(d, s, c, off)| Insn::new(c, d, s, off, 0)),
        (
            prop_oneof![Just(10u8), Just(1u8), 0u8..10],
            reg.clone(),
            prop_oneof![Just(0x63u8), Just(0x6b), Just(0x73), Just(0x7b)],
            -520i16..200
        )
            .prop_map(|(d, s, c, off)| Insn::new(c, d, s, off, 0)),
        (
            prop_oneof![Just(10u8), 0u8..10],
            prop_oneof![Just(0x62u8), Just(0x7a)],
            -520i16..64,
            any::<i32>()
        )
            .prop_map(|(d, c, off, imm)| Insn::new(c, d, 0, off, imm)),
        // forward conditional jumps
        (
            reg.clone(),
            prop_oneof![Just(0x15u8), Just(0x25), Just(0xa5), Just(0x55), Just(0xb5)],
            -8i32..300,
            0i16..4
        )
            .prop_map(|(d, c, imm, off)| Insn::new(c, d, 0, off, imm)),
    ]
}

fn program() -> impl Strategy<Value = Vec<Insn>> {
    proptest::collection::vec(insn(), 1..24).prop_map(|mut body| {
        // Every register starts initialised: scalars, context and stack pointers.
        let mut p = vec![
            Insn::new(0xb7, 0, 0, 0, 0),
            Insn::new(0xbf, 2, 10, 0, 0),
            Insn::new(0x07, 2, 0, 0, -64),
            Insn::new(0xbf, 3, 1, 0, 0),
            Insn::new(0xb7, 4, 0, 0, 8),
            Insn::new(0xb7, 5, 0, 0, 0),
            Insn::new(0xbf, 6, 1, 0, 0),
            Insn::new(0xbf, 7, 10, 0, 0),
            Insn::new(0xb7, 8, 0, 0, 16),
            Insn::new(0x61, 9, 1, 0, 0),
        ];
        p.append(&mut body);
        // Keep jumps inside the program and end with exit.
        let n = p.len();
        for (i, x) in p.iter_mut().enumerate() {
            if x.code & 0x07 == 0x05 && x.code != 0x95 {
                let max = (n - i - 1) as i16;
                x.off = x.off.min(max);
            }
        }
        p.push(Insn::new(0x95, 0, 0, 0, 0));
        p
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn verified_programs_run_without_memory_faults(p in program()) {
        let opts = VerifyOptions::new(1, &[]);
        if verify(&p, &opts).is_ok() {
            let prog = Program::new(p.clone()).expect("verified programs prepare");
            let config = Config { budget: 100_000 };
            let r = run_bare(&prog, &[0u8; 192], Engine::Interp, config);
            let memory_fault = matches!(r, Err(RunError::Vm(VmError::Memory { .. })));
            prop_assert!(!memory_fault, "accepted program faulted: {:?}\n{:?}", r, p);
        }
    }
}

#[test]
fn the_generator_produces_accepted_programs() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = program();
    let mut accepted = 0;
    for _ in 0..2000 {
        let p = strat.new_tree(&mut runner).unwrap().current();
        if verify(&p, &VerifyOptions::new(1, &[])).is_ok() {
            accepted += 1;
        }
    }
    println!("verifier property: {accepted}/2000 random programs accepted");
    assert!(
        accepted > 50,
        "only {accepted} of 2000 generated programs verify"
    );
}

/// Runs `p` on a fresh copy of `ctx`: the interpreter with every access checked, and the
/// JIT with the accesses `opts`' verdict proves translated unchecked. Gives (result,
/// context after) of each, and whether the JIT had proven code.
#[cfg(target_arch = "x86_64")]
fn interp_and_proven_jit(p: &[Insn], opts: &VerifyOptions, ctx: &[u8]) -> Option<[Outcome; 2]> {
    use ebpf_sim::jit::JitProgram;
    use ebpf_sim::vm::{Helpers, Interpreter};
    let facts = verify(p, opts).ok()?.facts;
    let prog = Program::new(p.to_vec()).expect("verified programs prepare");
    let config = Config { budget: 100_000 };
    let interp = Interpreter::new(&prog, Helpers::<()>::new())
        .unwrap()
        .with_config(config);
    let jit = JitProgram::compile_with_facts(&prog, Helpers::<()>::new(), &facts)
        .unwrap()
        .with_config(config);
    Some(engines::run_pair(&interp, &jit, ctx))
}

#[cfg(target_arch = "x86_64")]
proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]
    /// The JIT's unchecked translation of proven accesses gives what the checked
    /// interpreter gives: as a socket filter (constant context offsets) and as a raw run
    /// (r1 a 192-byte block, variable offsets into it).
    #[test]
    fn proven_jit_code_matches_the_interpreter(p in program(), raw in any::<bool>()) {
        let ctx: Vec<u8> = (0..192u32).map(|i| (i * 7 + 3) as u8).collect();
        let opts = VerifyOptions {
            raw_ctx_size: raw.then_some(192),
            ..VerifyOptions::new(1, &[])
        };
        if let Some([interp, jit]) = interp_and_proven_jit(&p, &opts, &ctx) {
            prop_assert_eq!(&interp, &jit, "program {:?}", p);
        }
    }
}

#[test]
#[cfg(target_arch = "x86_64")]
fn proven_jit_code_is_used_and_falls_back_when_the_context_is_smaller() {
    use ebpf_sim::jit::JitProgram;
    use ebpf_sim::vm::Helpers;
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strat = program();
    let opts = VerifyOptions {
        raw_ctx_size: Some(192),
        ..VerifyOptions::new(1, &[])
    };
    let (mut proven, mut compared) = (0, 0);
    for _ in 0..2000 {
        let p = strat.new_tree(&mut runner).unwrap().current();
        let Ok(v) = verify(&p, &opts) else { continue };
        let prog = Program::new(p.clone()).unwrap();
        let jit = JitProgram::compile_with_facts(&prog, Helpers::<()>::new(), &v.facts).unwrap();
        if !jit.has_proven_code() {
            continue;
        }
        proven += 1;
        // A context smaller than the verifier assumed: the checked code runs, and faults
        // exactly where the interpreter does.
        let small: Vec<u8> = (0..16u8).collect();
        let [interp, jit] = interp_and_proven_jit(&p, &opts, &small).unwrap();
        assert_eq!(interp, jit, "program {p:?}");
        compared += 1;
    }
    println!(
        "proven JIT code: {proven} of 2000 random programs, {compared} compared on a short context"
    );
    assert!(proven > 100, "only {proven} programs had proven accesses");
}
