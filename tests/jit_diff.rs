//! Differential tests: the JIT and the interpreter give the same r0, the same memory and the
//! same error (kind, instruction, address) on random programs.

use ebpf_sim::jit::JitProgram;
use ebpf_sim::vm::helpers::conformance_helpers;
use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::{Config, HelperError, Helpers, Interpreter, Memory, Program};
use proptest::prelude::*;

mod common;
use common::program;
mod engines;

const CONFIG: Config = Config { budget: 20_000 };

/// r0 or the error text, and the memory after the run.
type Outcome = (Result<u64, String>, Vec<u8>);

fn outcome(result: Result<u64, ebpf_sim::vm::VmError>, mem: Vec<u8>) -> Outcome {
    (result.map_err(|e| e.to_string()), mem)
}

/// Helper 5 as the conformance suite has it (returns r1), but sure to clobber the host
/// registers of r1..r5 (what a real helper may do): JIT code must keep the ones the
/// program reads after the call itself.
fn clobbering_identity() -> Helpers<()> {
    fn identity(_: &mut (), _: &mut Memory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
        #[inline(never)]
        extern "C" fn six(a: u64, b: u64, c: u64, d: u64, e: u64, f: u64) -> u64 {
            a ^ b ^ c ^ d ^ e ^ f
        }
        let junk = |v: u64| std::hint::black_box(v ^ 0x5a5a_5a5a_5a5a_5a5a);
        std::hint::black_box(six(junk(1), junk(2), junk(3), junk(4), junk(5), junk(6)));
        Ok(a[0])
    }
    let mut h = Helpers::new();
    h.register(5, "identity", identity);
    h
}

fn both(slots: Vec<Insn>, input: &[u8]) -> Option<[Outcome; 2]> {
    let prog = Program::new(slots).ok()?;
    let interp = Interpreter::new(&prog, clobbering_identity())
        .unwrap()
        .with_config(CONFIG);
    let jit = JitProgram::compile(&prog, clobbering_identity())
        .unwrap()
        .with_config(CONFIG);
    let mut a = input.to_vec();
    let mut b = input.to_vec();
    let ra = {
        let mut m = Memory::new();
        let p = m.set_ctx(&mut a);
        m.packet_is_ctx();
        interp.run(&mut m, &mut (), [p, input.len() as u64, 0, 0, 0])
    };
    let rb = {
        let mut m = Memory::new();
        let p = m.set_ctx(&mut b);
        m.packet_is_ctx();
        jit.run(&mut m, &mut (), [p, input.len() as u64, 0, 0, 0])
    };
    Some([outcome(ra, a), outcome(rb, b)])
}

fn cases() -> u32 {
    std::env::var("EBPF_SIM_DIFF_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn jit_matches_interpreter(slots in program(), mem in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Some([a, b]) = both(slots.clone(), &mem) {
            prop_assert_eq!(&a, &b, "{}", ebpf_sim::vm::disasm::disassemble(&slots).unwrap());
        }
    }
}

/// Deep recursion, endless loops, packet loads and callx, which random programs rarely
/// reach, compared one by one.
#[test]
fn jit_matches_interpreter_on_control_edge_cases() {
    use ebpf_sim::vm::asm::assemble;
    let programs = [
        "call local f\nexit\nf:\ncall local f\nexit",
        "l:\nadd %r0, 1\nja l\nexit",
        "mov %r6, 3\nldindh %r6, 1\nexit",
        "ldabsw 60\nexit",
        "lddw %r2, func(2, 0)\ncall %r2\nexit\nmov %r0, 7\nexit",
        "mov %r2, 5\nmov %r1, 9\ncall %r2\nexit",
        "mov %r2, 77\ncall %r2\nexit",
        "mov %r1, 0\nldxdw %r0, [%r1]\nexit",
        "stxdw [%r10-8], %r10\nldxdw %r0, [%r10-8]\nexit",
        "mov %r1, %r10\nstdw [%r1-520], 1\nexit",
        "lddw %r0, 0x8000000000000000\nsdiv %r0, -1\nexit",
        "mov32 %r0, 0x80000000\nsmod32 %r0, -1\nmov %r1, 0\nmod32 %r0, %r1\nexit",
    ];
    for text in programs {
        let slots = assemble(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        let [a, b] = both(slots, &[1, 2, 3, 4, 5, 6, 7, 8]).expect("valid program");
        assert_eq!(a, b, "{text}");
    }
}

mod tail_calls {
    use ebpf_sim::jit::JitProgram;
    use ebpf_sim::vm::asm::assemble;
    use ebpf_sim::vm::helpers::{HelperError, TailCallTarget};
    use ebpf_sim::vm::{Helpers, Interpreter, Memory, Program};

    /// Program slots of a prog array, and how many times programs were entered.
    struct Env {
        slots: Vec<Option<u32>>,
        entries: u64,
    }

    fn tail_call(env: &mut Env, _: &mut Memory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
        Err(HelperError::TailCall(match env.slots.get(a[2] as usize) {
            None => TailCallTarget::OutOfRange,
            Some(None) => TailCallTarget::Empty,
            Some(Some(p)) => TailCallTarget::Program(*p),
        }))
    }

    fn enter(env: &mut Env, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
        env.entries += 1;
        Ok(env.entries)
    }

    /// 0: count the entry, tail call slot 0 (itself), exit with the count.
    /// 1: r0 = 7, tail call slot 1 (empty) then slot 9 (out of range): r0 stays 7.
    /// 2: call a function that tail calls slot 2 (program 0): the chain's exit returns to
    ///    the caller, which adds 100.
    /// 3: tail call slot 3 (program 4).
    /// 4: a leaf without calls, whose own code would keep r10 in a register: entered by
    ///    a tail call, it must still read r10 as the frame's pointer.
    const PROGRAMS: [&str; 5] = [
        "call 99\nmov %r3, 0\ncall 12\nexit",
        "mov %r0, 7\nmov %r3, 1\ncall 12\nmov %r3, 9\ncall 12\nexit",
        "call local f\nadd %r0, 100\nexit\nf:\nmov %r0, 5\nmov %r3, 2\ncall 12\nexit",
        "mov %r3, 3\ncall 12\nexit",
        "mov %r0, %r10\nstxdw [%r10-8], %r0\nldxdw %r0, [%r10-8]\nexit",
    ];

    fn helpers() -> Helpers<Env> {
        let mut h = Helpers::new();
        h.register(12, "tail_call", tail_call);
        h.register(99, "enter", enter);
        h
    }

    fn run_both(entry: usize) -> [(Result<u64, String>, u64); 2] {
        let progs: Vec<Program> = PROGRAMS
            .iter()
            .map(|t| Program::new(assemble(t).unwrap()).unwrap())
            .collect();
        let interps: Vec<_> = progs
            .iter()
            .map(|p| Interpreter::new(p, helpers()).unwrap())
            .collect();
        let jits: Vec<_> = progs
            .iter()
            .map(|p| JitProgram::compile(p, helpers()).unwrap())
            .collect();
        let slots = vec![Some(0), None, Some(0), Some(4)];
        let mut a = Env {
            slots: slots.clone(),
            entries: 0,
        };
        let mut b = Env { slots, entries: 0 };
        let ra = interps[entry].run_with_programs(&mut Memory::new(), &mut a, [0; 5], &interps);
        let rb = jits[entry].run_with_programs(&mut Memory::new(), &mut b, [0; 5], &jits);
        [
            (ra.map_err(|e| e.to_string()), a.entries),
            (rb.map_err(|e| e.to_string()), b.entries),
        ]
    }

    #[test]
    fn chains_stop_after_33_tail_calls() {
        for outcome in run_both(0) {
            assert_eq!(
                outcome,
                (Ok(34), 34),
                "one entry and 33 tail calls; the 34th falls through"
            );
        }
    }

    #[test]
    fn empty_and_out_of_range_slots_fall_through() {
        for outcome in run_both(1) {
            assert_eq!(outcome, (Ok(7), 0));
        }
    }

    #[test]
    fn a_tail_call_target_reads_r10_as_its_frame_pointer() {
        let [interp, jit] = run_both(3);
        assert_eq!(interp, jit);
        assert_eq!(interp.0, Ok(ebpf_sim::vm::memory::frame_pointer(0)));
    }

    #[test]
    fn tail_call_from_a_function_returns_to_its_caller() {
        // The first tail call (from f) counts: program 0 then runs 33 times in all.
        for outcome in run_both(2) {
            assert_eq!(outcome, (Ok(133), 33));
        }
    }
}

/// Simulated kernel memory mapped at a trace address is reached the same way by both
/// engines (the JIT through its fault path), and refused the same way.
#[test]
fn far_mappings_behave_the_same() {
    use ebpf_sim::vm::asm::assemble;
    use ebpf_sim::vm::HostBuffer;
    let blob = HostBuffer::from_bytes(&[1, 0, 0, 0, 0x2a, 0, 0, 0]);
    let cases = [
        (
            "lddw %r1, 0xffff888000001000\nldxw %r0, [%r1+4]\nexit",
            Ok(0x2a),
        ),
        (
            "lddw %r1, 0xffff888000001000\nldxw %r0, [%r1+6]\nexit",
            Err("outside task (8 bytes)"),
        ),
        (
            "lddw %r1, 0xffff888000001000\nstw [%r1], 1\nexit",
            Err("task is read-only"),
        ),
        (
            "lddw %r1, 0xffff888000002000\nldxb %r0, [%r1]\nexit",
            Err("invalid load"),
        ),
    ];
    for (text, want) in cases {
        let prog = Program::new(assemble(text).unwrap()).unwrap();
        let mut outcomes = Vec::new();
        for jit in [false, true] {
            let mut mem = Memory::new();
            mem.map_far("task", 0xffff_8880_0000_1000, &blob, false)
                .unwrap();
            let r = if jit {
                JitProgram::compile(&prog, conformance_helpers::<()>())
                    .unwrap()
                    .run(&mut mem, &mut (), [0; 5])
            } else {
                Interpreter::new(&prog, conformance_helpers::<()>())
                    .unwrap()
                    .run(&mut mem, &mut (), [0; 5])
            };
            outcomes.push(r.map_err(|e| e.to_string()));
        }
        assert_eq!(outcomes[0], outcomes[1], "{text}");
        match (want, &outcomes[0]) {
            (Ok(v), Ok(got)) => assert_eq!(*got, v, "{text}"),
            (Err(w), Err(got)) => assert!(got.contains(w), "{text}: {got}"),
            (w, got) => panic!("{text}: expected {w:?}, got {got:?}"),
        }
    }
}

/// The budget runs out at the same back edge, with the same error, whatever the budget:
/// loops whose blocks are charged at their backward jump, nested loops, a loop around a
/// memory access and a loop around a local call.
#[test]
fn budgets_run_out_at_the_same_instruction() {
    use ebpf_sim::vm::asm::assemble;
    let programs = [
        "mov %r0, 0\nloop:\nadd %r0, 1\njlt %r0, 40, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nouter:\nmov %r3, 0\ninner:\nadd %r0, %r3\nadd %r3, 1\njlt %r3, 5, inner\nadd %r2, 1\njlt %r2, 6, outer\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, %r1\nadd %r3, %r2\nldxb %r4, [%r3]\nadd %r0, %r4\nadd %r2, 1\njlt %r2, 16, loop\nexit\n",
        "mov %r0, 0\nloop:\ncall local fn\nadd %r0, 1\njlt %r0, 30, loop\nexit\nfn:\nmov %r0, %r0\nexit\n",
        "mov %r0, 0\nloop:\nadd %r0, 1\njeq %r0, 25, out\nja loop\nout:\nexit\n",
        // Forward branches inside loops: counts handed to a block only one jump reaches,
        // side exits to a shared block (charged on the way), a switch-like chain.
        "mov %r0, 0\nmov %r2, 0\nloop:\nadd %r2, 1\njset %r2, 1, odd\nadd %r0, 3\nja next\nodd:\nadd %r0, 1\nnext:\njlt %r2, 30, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nadd %r2, 1\njeq %r2, 17, out\nadd %r0, %r2\njgt %r0, 90, out\nja loop\nout:\nadd %r0, 1\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, %r2\nand %r3, 3\njne %r3, 0, t1\nadd %r0, 1\nja join\nt1:\njne %r3, 1, t2\nadd %r0, 2\nja join\nt2:\njne %r3, 2, t3\nadd %r0, 3\nja join\nt3:\nadd %r0, 4\njoin:\nadd %r2, 1\njlt %r2, 40, loop\nexit\n",
        // One-block loops, unrolled by the JIT while the budget covers several iterations:
        // stores show how far each engine got.
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, %r1\nadd %r3, %r2\nstxb [%r3], %r2\nadd %r2, 1\njlt %r2, 15, loop\nldxdw %r0, [%r1]\nexit\n",
        "mov %r0, 7\nloop:\nmul %r0, 3\nstxw [%r1+4], %r0\njset %r0, 0x100, loop\nexit\n",
        // Counted loops (the JIT drops the exit tests a counter cannot meet yet): counters
        // starting near, at and past the bound, a step that skips over it, a counter
        // written twice.
        "mov %r0, 0\nmov %r2, 9\nloop:\nadd %r0, %r2\nadd %r2, 3\njlt %r2, 20, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 19\nloop:\nadd %r0, %r2\nadd %r2, 1\njlt %r2, 20, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 25\nloop:\nadd %r0, %r2\nadd %r2, 1\njlt %r2, 20, loop\nexit\n",
        "mov %r0, 0\nmov %r2, -3\nloop:\nadd %r0, 1\nadd %r2, 1\njlt %r2, 20, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nadd %r0, %r2\nadd %r2, 7\nstxdw [%r1], %r2\njlt %r2, 100, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nadd %r2, 2\nadd %r0, %r2\nmov %r2, %r0\njlt %r2, 200, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 2\nloop:\nadd %r2, 3\nadd %r0, %r2\nadd %r2, 3\njlt %r2, 20, loop\nexit\n",
        "mov %r2, 0\nloop:\nadd %r2, 1\nlddw %r0, 0x100000000\nadd %r0, %r2\njne %r2, 60, loop\nexit\n",
        // Chains of equality tests, dispatched through a table by the JIT: `jne` chains
        // (cases on the fall-through), `jeq` chains with a shared case (charged on the
        // way), holes, a repeated key, 32-bit tests, keys out of range.
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, %r2\nand %r3, 7\nsub %r3, 1\njgt %r2, 100, dflt\njne %r3, 0, t1\nadd %r0, 1\nja join\nt1:\njne %r3, 1, t2\nadd %r0, 2\nja join\nt2:\njne %r3, 3, t3\nadd %r0, 3\nja join\nt3:\njne %r3, 4, t4\nadd %r0, 4\nja join\nt4:\njne %r3, 1, dflt\nadd %r0, 100\nja join\ndflt:\nadd %r0, 5\njoin:\nadd %r2, 1\njlt %r2, 20, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, %r2\nmul %r3, 5\nand %r3, 15\njeq %r3, 2, c2\njeq %r3, 5, c5\njeq %r3, 9, c2\njeq %r3, 0, c0\njeq %r3, 12, c12\nadd %r0, 1\nja join\nc2:\nadd %r0, 10\nja join\nc5:\nadd %r0, 20\nja join\nc0:\nadd %r0, 30\nja join\nc12:\nadd %r0, 40\njoin:\nadd %r2, 1\njlt %r2, 16, loop\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nlddw %r3, 0x100000002\nadd %r3, %r2\njeq32 %r3, 2, c2\njeq32 %r3, 3, c3\njeq32 %r3, 4, c4\njeq32 %r3, 5, c5\nadd %r0, 1\nja join\nc2:\nadd %r0, 10\nja join\nc3:\nadd %r0, 20\nja join\nc4:\nadd %r0, 30\nja join\nc5:\nadd %r0, 40\njoin:\njeq %r3, 2, never\njeq %r3, 3, never\njeq %r3, 4, never\njeq %r3, 5, never\nadd %r2, 1\njlt %r2, 6, loop\nexit\nnever:\nmov %r0, -1\nexit\n",
        "mov %r0, 0\nmov %r2, 0\nloop:\nmov %r3, 3\nsub %r3, %r2\njeq %r3, 0, c0\njeq %r3, 1, c1\njeq %r3, 2, c2\njeq %r3, 3, c3\nadd %r0, 1\nja join\nc0:\nadd %r0, 10\nja join\nc1:\nadd %r0, 20\nja join\nc2:\nadd %r0, 30\nja join\nc3:\nadd %r0, 40\njoin:\nadd %r2, 1\njlt %r2, 8, loop\nexit\n",
        // Loops with the test at the top (the JIT repeats the test at the back edge).
        "mov %r0, 0\nmov %r2, 30\nloop:\njeq %r2, 0, out\nsub %r2, 1\nadd %r0, 3\nja loop\nout:\nmov %r3, 9\nagain:\nsub %r3, 1\njne %r3, 0, again\nexit\n",
        "mov %r0, 0\nmov %r2, 30\njgt %r0, 5, out\nloop:\njeq %r2, 0, out\nsub %r2, 1\njeq %r2, 7, out\nadd %r0, 3\nja loop\nout:\nadd %r0, 1\nmov %r3, 9\nagain:\nsub %r3, 1\njne %r3, 0, again\nexit\n",
        // The budget is checked at calls and the count crosses into the callee.
        "mov %r0, 0\nmov %r6, 0\nloop:\nadd %r6, 1\njset %r6, 1, skip\ncall local fn\nskip:\nadd %r0, 1\njlt %r6, 30, loop\nexit\nfn:\nmov %r2, 0\nin:\nadd %r2, 1\njlt %r2, 3, in\nexit\n",
    ];
    for src in programs {
        let slots = assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let prog = Program::new(slots).unwrap();
        let input: Vec<u8> = (0..16).collect();
        for budget in 1..300 {
            let [interp, jit] = engines::with_budget(&prog, budget, &input);
            assert_eq!(interp, jit, "budget {budget}:\n{src}");
        }
    }
}

/// Accesses the verifier proves inside the current frame use that frame's displacement in
/// a callee too: a callee writing its own stack at a variable offset must not touch its
/// caller's slot at the same offset.
#[test]
fn proven_frame_accesses_in_a_callee_stay_in_its_frame() {
    use ebpf_sim::vm::verifier::Proven;
    let src = "\
mov %r6, 5
stxdw [%r10-8], %r6
stxdw [%r10-16], %r6
mov %r1, 1
call local f
ldxdw %r2, [%r10-8]
ldxdw %r3, [%r10-16]
lsh %r0, 16
lsh %r2, 8
or %r0, %r2
or %r0, %r3
exit
f:
mov %r6, 0
stxdw [%r10-8], %r6
stxdw [%r10-16], %r6
mov %r2, %r1
and %r2, 1
lsh %r2, 3
mov %r3, %r10
add %r3, %r2
mov %r4, 77
stxdw [%r3-16], %r4
ldxdw %r0, [%r3-16]
exit
";
    let (facts, [interp, jit]) = engines::proven(src, &[0; 16]);
    // The callee's variable-offset store and load are proven in its own frame.
    let frame: Vec<usize> = (0..facts.proven.len())
        .filter(|&i| facts.proven[i] == Proven::Frame)
        .collect();
    assert!(frame.contains(&21) && frame.contains(&22), "{frame:?}");
    // 77 from the callee; the caller's two slots still hold 5.
    assert_eq!(interp, 77 << 16 | 5 << 8 | 5);
    assert_eq!(jit, interp);
}

/// Proven accesses on one path share the displacement they load into r10; everything that
/// uses r10 in between (a shift by a register, a division, a compare naming r10, a call, a
/// join) must make the next proven access load it again.
#[test]
fn proven_accesses_reload_their_displacement_after_r10_is_used() {
    use ebpf_sim::vm::verifier::Proven;
    let src = "\
mov %r0, 0
mov %r9, %r1
ldxb %r2, [%r9+0]
mov %r4, 0
lsh %r2, %r4
ldxb %r6, [%r9+1]
mov %r4, 1
div %r6, %r4
ldxb %r5, [%r9+1]
add %r6, %r5
stxdw [%r10-8], %r2
jeq %r10, 0, out
ldxb %r7, [%r9+2]
stxdw [%r10-16], %r7
mov %r5, %r10
add %r5, -16
ldxdw %r5, [%r5+0]
ldxdw %r8, [%r10-8]
add %r7, %r5
call local f
ldxb %r2, [%r9+3]
jgt %r2, 100, join
add %r2, 1
join:
ldxb %r3, [%r9+4]
ldxdw %r4, [%r10-16]
lsh %r6, 8
lsh %r7, 16
lsh %r8, 24
lsh %r2, 32
lsh %r3, 40
lsh %r4, 48
or %r0, %r6
or %r0, %r7
or %r0, %r8
or %r0, %r2
or %r0, %r3
or %r0, %r4
out:
exit
f:
mov %r2, 9
stxdw [%r10-8], %r2
mov %r0, 0
exit
";
    let input: Vec<u8> = (1..=16).collect();
    let (facts, [interp, jit]) = engines::proven(src, &input);
    assert!(facts.proven.iter().filter(|&&p| p == Proven::Ctx).count() >= 4);
    let expected = 4 << 8 | 6 << 16 | 1 << 24 | 5 << 32 | 5 << 40 | 3 << 48;
    assert_eq!(interp, expected);
    assert_eq!(jit, expected);
}

/// Pairs the JIT fuses (`r = s; r += x` into a `lea`, `r &= 1; r *= k` into a conditional
/// move): every operand combination gives the interpreter's result, and a second
/// instruction other code jumps to is left alone.
#[test]
fn fused_pairs_match_the_interpreter() {
    use ebpf_sim::vm::asm::assemble;
    let programs = [
        "mov %r1, 40\nmov %r2, 2\nmov %r0, %r1\nadd %r0, %r2\nexit\n",
        "mov %r1, 21\nmov %r0, %r1\nadd %r0, %r0\nexit\n",
        "mov %r1, 21\nmov %r0, %r1\nadd %r0, %r1\nexit\n",
        "lddw %r1, 0x7fffffffffffffff\nmov %r0, %r1\nadd %r0, 1\nexit\n",
        "mov %r1, 5\nmov %r0, %r1\nadd %r0, -7\nexit\n",
        "mov %r1, 5\nmov %r0, %r1\nadd %r0, 0x7fffffff\nexit\n",
        "mov32 %r1, -1\nmov %r0, %r1\nadd32 %r0, 1\nexit\n",
        "mov %r1, 3\nmov %r0, 1\njeq %r1, 3, add\nmov %r0, %r1\nadd:\nadd %r0, %r1\nexit\n",
        "mov %r1, 3\nmov %r0, 1\njeq %r1, 4, add\nmov %r0, %r1\nadd:\nadd %r0, %r1\nexit\n",
        "mov %r2, %r10\nadd %r2, -8\nmov %r0, %r2\nadd %r0, %r10\nexit\n",
        // `r &= 1; r *= k`, in every width, k negative, the bit set or not.
        "lddw %r0, 0xffffffff00000003\nand %r0, 1\nmul %r0, -5\nexit\n",
        "lddw %r0, 0xffffffff00000003\nand32 %r0, 1\nmul %r0, -5\nexit\n",
        "lddw %r0, 0xffffffff00000003\nand %r0, 1\nmul32 %r0, -5\nexit\n",
        "lddw %r0, 0xffffffff00000003\nand32 %r0, 1\nmul32 %r0, 0xedb88320\nexit\n",
        "lddw %r0, 0xffffffff00000002\nand %r0, 1\nmul %r0, 7\nexit\n",
        "lddw %r0, 0xffffffff00000002\nand32 %r0, 1\nmul32 %r0, 7\nexit\n",
        "mov %r1, 3\nmov %r0, 1\njeq %r1, 3, mul\nand %r0, 1\nmul:\nmul %r0, 9\nexit\n",
    ];
    for src in programs {
        let prog = Program::new(assemble(src).unwrap_or_else(|e| panic!("{src}: {e}"))).unwrap();
        let interp = Interpreter::new(&prog, conformance_helpers::<()>()).unwrap();
        let jit = JitProgram::compile(&prog, conformance_helpers::<()>()).unwrap();
        let mut m = Memory::new();
        let expected = interp.run(&mut m, &mut (), [0; 5]).unwrap();
        assert_eq!(jit.run(&mut m, &mut (), [0; 5]).unwrap(), expected, "{src}");
    }
}

/// An unrolled reduction sums into a register no instruction names; registers a call
/// reads without naming them (r1..r5) are never that register.
#[test]
fn reductions_leave_the_registers_calls_read_alone() {
    use ebpf_sim::vm::asm::assemble;
    let src = "mov %r6, 0\nmov %r7, 0\nmov %r8, 3\nmov %r9, 4\nl:\nmov %r0, %r6\nmul %r0, 3\n\
               add %r7, %r0\nadd %r6, 1\njlt %r6, 40, l\ncall 5\nadd %r0, %r7\nadd %r0, %r8\n\
               add %r0, %r9\nexit\n";
    let prog = Program::new(assemble(src).unwrap()).unwrap();
    let interp = Interpreter::new(&prog, conformance_helpers::<()>()).unwrap();
    let jit = JitProgram::compile(&prog, conformance_helpers::<()>()).unwrap();
    let mut m = Memory::new();
    let args = [1000, 2000, 3000, 4000, 5000];
    let expected = interp.run(&mut m, &mut (), args).unwrap();
    // 1000 from r1 through the helper, 3 * (0 + ... + 39) = 2340, r8 and r9.
    assert_eq!(expected, 1000 + 2340 + 3 + 4);
    assert_eq!(jit.run(&mut m, &mut (), args).unwrap(), expected);
}

/// JIT code calls helpers natively, which clobbers r1..r5; the interpreter keeps them. The
/// JIT saves the ones a later instruction may read: across a loop and a branch, as the
/// next helper's arguments, in a function whose caller reads them after it returns, and
/// in a main function called like any other (whose exit returns to a caller too).
#[test]
fn helper_calls_keep_the_argument_registers_read_after_them() {
    use ebpf_sim::vm::asm::assemble;
    let cases = [
        (
            "mov %r6, 0\nmov %r5, 7\nl:\nmov %r1, %r6\ncall 5\nadd %r6, 1\njlt %r6, 3, l\n\
             jeq %r0, 2, read\nmov %r0, 0\nexit\nread:\nmov %r0, %r5\nexit\n",
            7,
        ),
        ("mov %r1, 9\ncall 5\ncall 5\nexit\n", 9),
        (
            "mov %r1, 11\nmov %r2, 22\nmov %r5, 55\ncall local f\nadd %r0, %r2\nadd %r0, %r5\n\
             exit\nf:\ncall 5\nexit\n",
            11 + 22 + 55,
        ),
        (
            "main:\njne %r3, 0, second\nmov %r3, 1\nmov %r4, 40\ncall local main\n\
             add %r0, %r4\nexit\nsecond:\nmov %r1, 2\ncall 5\nexit\n",
            42,
        ),
    ];
    for (src, expected) in cases {
        let prog = Program::new(assemble(src).unwrap()).unwrap();
        let interp = Interpreter::new(&prog, clobbering_identity()).unwrap();
        let jit = JitProgram::compile(&prog, clobbering_identity()).unwrap();
        let args = [0; 5];
        let a = interp.run(&mut Memory::new(), &mut (), args);
        let b = jit.run(&mut Memory::new(), &mut (), args);
        assert_eq!(a, Ok(expected), "interpreter on\n{src}");
        assert_eq!(b, Ok(expected), "JIT on\n{src}");
    }
}

/// A helper that panics ends the run with the same error on both engines, whether called
/// directly or through `callx`, and the host goes on (JIT code cannot be unwound through;
/// the interpreter catches the panic once per run and names the call in progress).
#[test]
fn a_panicking_helper_ends_the_run_with_the_same_error() {
    use ebpf_sim::vm::asm::assemble;
    use ebpf_sim::vm::helpers::PANICKED;
    use ebpf_sim::vm::VmError;
    fn boom(_: &mut (), _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
        panic!("a helper's bug")
    }
    let mut helpers = Helpers::new();
    helpers.register(7, "boom", boom);
    for (src, pc) in [
        ("mov %r1, 1\ncall 7\nexit", 1),
        ("mov %r2, 7\ncall %r2\nexit", 1),
    ] {
        let prog = Program::new(assemble(src).unwrap()).unwrap();
        let interp = Interpreter::new(&prog, helpers.clone()).unwrap();
        let jit = JitProgram::compile(&prog, helpers.clone()).unwrap();
        let expected = Err(VmError::Helper {
            pc,
            id: 7,
            name: "boom",
            error: HelperError::Other(PANICKED.into()),
        });
        assert_eq!(interp.run(&mut Memory::new(), &mut (), [0; 5]), expected);
        assert_eq!(jit.run(&mut Memory::new(), &mut (), [0; 5]), expected);
    }
}
