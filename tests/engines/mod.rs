//! Runs one program on the interpreter and on the JIT (checked code, or code compiled with
//! the verifier's proofs) with the same instruction budget, for the differential tests.

use ebpf_sim::jit::JitProgram;
use ebpf_sim::vm::helpers::conformance_helpers;
use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::verifier::{verify, Facts, VerifyOptions};
use ebpf_sim::vm::{Config, Interpreter, Memory, Program};

/// r0 or the error text, and the context buffer after the run.
pub type Outcome = (Result<u64, String>, Vec<u8>);

/// The interpreter's outcome and the JIT's, each run on a fresh copy of `input` as the
/// context (r1).
pub fn run_pair<C: Default>(
    interp: &Interpreter<C>,
    jit: &JitProgram<C>,
    input: &[u8],
) -> [Outcome; 2] {
    [false, true].map(|jitted| {
        let mut data = input.to_vec();
        let mut m = Memory::new();
        let p = m.set_ctx(&mut data);
        let mut env = C::default();
        let r = if jitted {
            jit.run(&mut m, &mut env, [p, 0, 0, 0, 0])
        } else {
            interp.run(&mut m, &mut env, [p, 0, 0, 0, 0])
        };
        drop(m);
        (r.map_err(|e| e.to_string()), data)
    })
}

/// The interpreter and the JIT (compiled with `facts` when given, else checked) with
/// `config`, both with the conformance helpers.
fn engines(
    prog: &Program,
    facts: Option<&Facts>,
    config: Config,
) -> (Interpreter<()>, JitProgram<()>) {
    let interp = Interpreter::new(prog, conformance_helpers::<()>())
        .unwrap()
        .with_config(config);
    let jit = match facts {
        Some(f) => JitProgram::compile_with_facts(prog, conformance_helpers::<()>(), f),
        None => JitProgram::compile(prog, conformance_helpers::<()>()),
    };
    (interp, jit.unwrap().with_config(config))
}

/// Our verifier's verdict for a raw run (r1 a block of `input_len` bytes).
fn raw_facts(slots: &[Insn], input_len: usize) -> Option<Facts> {
    let opts = VerifyOptions {
        raw_ctx_size: Some(input_len as u32),
        ..VerifyOptions::new(1, &[])
    };
    verify(slots, &opts).ok().map(|v| v.facts)
}

/// [`run_pair`] with the checked JIT code and `budget` on both engines.
#[allow(dead_code)] // not every test binary uses it
pub fn with_budget(prog: &Program, budget: u64, input: &[u8]) -> [Outcome; 2] {
    let (interp, jit) = engines(prog, None, Config { budget });
    run_pair(&interp, &jit, input)
}

/// Verifies `src` for a raw run (r1 a block of `input.len()` bytes) and runs it on the
/// interpreter and on the JIT's code compiled with the verifier's proofs: the proofs and
/// both r0.
#[allow(dead_code)] // not every test binary uses it
pub fn proven(src: &str, input: &[u8]) -> (Facts, [u64; 2]) {
    let slots = ebpf_sim::vm::asm::assemble(src).unwrap();
    let facts = raw_facts(&slots, input.len()).expect("verifies");
    let prog = Program::new(slots).unwrap();
    let (interp, jit) = engines(&prog, Some(&facts), Config::default());
    assert!(jit.has_proven_code());
    let r0 = run_pair(&interp, &jit, input).map(|(r, _)| r.unwrap());
    (facts, r0)
}

/// [`with_budget`] with the JIT's code compiled with the verifier's proofs (raw mode, r1
/// a block of `input.len()` bytes), when the verifier accepts the program and the JIT
/// finds something proven.
#[allow(dead_code)] // not every test binary uses it
pub fn proven_with_budget(slots: &[Insn], budget: u64, input: &[u8]) -> Option<[Outcome; 2]> {
    let facts = raw_facts(slots, input.len())?;
    let prog = Program::new(slots.to_vec()).ok()?;
    let (interp, jit) = engines(&prog, Some(&facts), Config { budget });
    jit.has_proven_code()
        .then(|| run_pair(&interp, &jit, input))
}
