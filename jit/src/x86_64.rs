//! x86_64 code generation.
//!
//! Register mapping (as the kernel's JIT): r0 rax, r1 rdi, r2 rsi, r3 rdx, r4 rcx, r5 r8,
//! r6 rbx, r7 r13, r8 r14, r9 r15: r1..r5 are where the native calling convention passes the
//! first five arguments, so a helper call leaves them in place ([`Gen::helper_call`]).
//! r10's virtual value lives in the context, as does the
//! host address of the current frame's stack top (proven-in-frame stack accesses are a
//! load of it and `[r10 + off]`); in one-function programs that need no scratch r11, r11
//! holds r10's value for the whole run. rbp holds the instruction budget still left
//! (negative once exceeded), charged once per path between the points that observe it
//! (see [`Charging`]), so the count costs a register subtraction, not a memory update.
//! r12 holds the [`JitCtx`]; r9, r10 and r11 are scratch (r10 often keeps a displacement
//! loaded from the context for the next proven access). In programs without calls, the
//! registers of eBPF registers the program never names are spare: they hold the frame's
//! and the context's displacements for the whole run, and the lanes of reductions.
//!
//! Beyond one x86 sequence per instruction: small one-block loops are unrolled while the
//! budget covers it ([`Gen::unrolled_loop`]; in counted loops the counter's steps and
//! accumulators are folded across the copies), switch-like chains of equality tests
//! become a jump table ([`Gen::dispatch`]), and a few instruction pairs are fused
//! ([`Gen::emit_at`]). Each keeps the interpreter's results, faults and budget errors.
//! Instructions with memory operands are encoded by [`encode`], with the shortest
//! displacement.

// dynasm! expands register operands to `.into()` calls clippy finds useless.
#![allow(clippy::useless_conversion)]

use dynasmrt::x64::Assembler;
use dynasmrt::{dynasm, DynamicLabel, DynasmApi, DynasmLabelApi, ExecutableBuffer};

use ebpf_sim_vm::isa::{
    AluOp, AtomicOp, Endian, JmpCond, Op, Size, FRAME_REG, MAX_CALL_FRAMES, STACK_SIZE,
};
use ebpf_sim_vm::memory::{FAST_REGIONS, PACKET_REGION, REGION_SHIFT, STACK_REGION};
use ebpf_sim_vm::program::Program;
use ebpf_sim_vm::verifier::Proven;

use crate::ctx::{self as c, FunctionTable, Status};

mod encode;
use encode::{Form, Mem};

const RAX: u8 = 0;
const RDX: u8 = 2;
const R9: u8 = 9;
const R10: u8 = 10;
const R11: u8 = 11;
const R12: u8 = 12;

/// x86 register of each eBPF register r0..r9.
const MAP: [u8; 10] = [0, 7, 6, 2, 1, 8, 3, 13, 14, 15];
/// log2 of a region table entry's size.
const REGION_BITS: u32 = 5;
const _: () = assert!(std::mem::size_of::<ebpf_sim_vm::memory::Region>() == 1 << REGION_BITS);
const REGION_SIZE: i32 = 1 << REGION_BITS;

/// Out-of-line code reached on a fault or a budget check, emitted after the body.
enum Stub {
    Memory {
        label: DynamicLabel,
        /// Where the access continues once a far mapping was found.
        resume: DynamicLabel,
        pc: usize,
        info: u64,
    },
    Budget {
        label: DynamicLabel,
        pc: usize,
    },
    CallDepth {
        label: DynamicLabel,
        pc: usize,
    },
    /// A helper call returned rdx = [`c::STOP`] (leave) or a tail call's target address
    /// (continue there, in this frame, on the registers the entry left in the context).
    HelperStop {
        label: DynamicLabel,
    },
    /// A backward conditional jump found the budget spent: the budget error if the jump is
    /// taken, the fall-through otherwise.
    BackEdge {
        label: DynamicLabel,
        fall_through: DynamicLabel,
        pc: usize,
        compare: Compare,
    },
    /// Code moved out of the hot path (e.g. division by 0 or -1); it jumps back itself.
    Cold {
        label: DynamicLabel,
        emit: Box<dyn FnOnce(&mut Assembler)>,
    },
}

/// The comparison of a conditional jump.
#[derive(Clone, Copy)]
struct Compare {
    cond: JmpCond,
    is64: bool,
    reg: bool,
    dst: u8,
    src: u8,
    imm: i32,
}

impl Compare {
    /// The comparison `ins` makes, if it is a conditional jump.
    fn of(ins: &ebpf_sim_vm::program::Instruction) -> Option<Self> {
        let Op::Jmp { cond, is64, reg } = ins.decoded.spec.op else {
            return None;
        };
        let i = ins.decoded.insn;
        Some(Compare {
            cond,
            is64,
            reg,
            dst: i.dst,
            src: i.src,
            imm: i.imm,
        })
    }
}

pub(crate) struct Compiled {
    pub code: ExecutableBuffer,
    /// The prologue, inside `code`.
    /// `entry(ctx, &[r1, r2, r3, r4, r5])`.
    pub entry: extern "C" fn(*mut c::JitCtx, *const [u64; 5]) -> u64,
    /// Where tail calls land: the run-wide registers set, then the first instruction.
    pub body: u64,
    /// Function entries for callx and callbacks; boxed so its address, embedded in the
    /// code and stored in the context, is stable.
    pub functions: Box<FunctionTable>,
}

struct Gen<'p> {
    ops: Assembler,
    labels: Vec<DynamicLabel>,
    stubs: Vec<Stub>,
    program: &'p Program,
    /// The verifier's proofs per slot (empty: every access checked).
    proven: &'p [Proven],
    /// Instructions executed on the current path and not yet charged to the budget (see
    /// [`Charging`]).
    pending: u64,
    charging: Charging,
    /// The context field r10 was loaded from, while it still holds it: proven accesses in
    /// a row (on one path) load their displacement once.
    r10_holds: Option<i32>,
    /// The switch-like chain starting at each instruction, dispatched through a table.
    chains: Vec<Option<SwitchChain>>,
    /// r11 holds r10's value for the whole run (see [`frame_pointer_fits_in_r11`]).
    fp_in_r11: bool,
    /// eBPF registers nothing in the program reads or writes (see [`spare_registers`]).
    spares: Vec<u8>,
    /// The registers the program names, if no others are read (see [`named_registers`]).
    named: Option<[bool; 11]>,
    /// Host registers (of spare eBPF registers) holding the frame's and the context's
    /// displacement for the whole run: programs with spares make no calls, so both are
    /// constant.
    pinned_stack_delta: Option<u8>,
    pinned_ctx_delta: Option<u8>,
    /// A counter whose steps an unrolled loop folds (see [`Gen::counter_steps`]), and how
    /// far its register lags behind its value at the instruction being emitted.
    counter_shift: Option<(u8, i64)>,
    /// Set while the copies of a loop with a [`Hoist`] are emitted.
    hoisted: Option<Hoisted>,
    /// Per slot, the address of the helper call site there (see [`c::HelperSite`]).
    sites: &'p [u64],
    /// Per slot, the registers r1..r5 (bit r) a helper call there must keep (see
    /// [`args_live_after_calls`]).
    args_live: Vec<u8>,
    helper_entry: u64,
    callx_tramp: u64,
    far_tramp: u64,
}

pub(crate) fn compile(
    program: &Program,
    proven: &[Proven],
    sites: &[u64],
    helper_entry: u64,
    callx_tramp: u64,
) -> Result<Compiled, String> {
    let far_tramp = c::far_trampoline as *const () as u64;
    let mut ops = Assembler::new().map_err(|e| format!("cannot map code memory: {e}"))?;
    let labels = (0..program.len())
        .map(|_| ops.new_dynamic_label())
        .collect();
    let mut functions = Box::new(FunctionTable {
        entries: Vec::new(),
        code_base: 0,
        callback_entry: 0,
    });
    let mut g = Gen {
        ops,
        labels,
        stubs: Vec::new(),
        program,
        proven,
        pending: 0,
        charging: Charging::new(program),
        r10_holds: None,
        chains: Vec::new(),
        fp_in_r11: false,
        spares: Vec::new(),
        named: named_registers(program),
        pinned_stack_delta: None,
        pinned_ctx_delta: None,
        counter_shift: None,
        hoisted: None,
        sites,
        args_live: args_live_after_calls(program),
        helper_entry,
        callx_tramp,
        far_tramp,
    };
    g.chains = switch_chains(program, &g.charging);
    g.fp_in_r11 = frame_pointer_fits_in_r11(program, proven, &g.chains);
    // Spare registers hold the run's constant displacements first (every proven access
    // saves a load), then the lanes of reductions.
    let mut spares = spare_registers(g.named);
    let proves = |p: Proven| proven.contains(&p);
    // Constant-offset stack accesses use it too, when r11 holds r10.
    let frame_based = program
        .instructions()
        .iter()
        .any(|ins| access(ins).is_some_and(|(base, _)| base == FRAME_REG));
    if proves(Proven::Frame) || (!proven.is_empty() && g.fp_in_r11 && frame_based) {
        g.pinned_stack_delta = spares.pop().map(|r| MAP[r as usize]);
    }
    if proves(Proven::Ctx) {
        g.pinned_ctx_delta = spares.pop().map(|r| MAP[r as usize]);
    }
    g.spares = spares;
    let entry = g.prologue();
    let callback = g.callback_entry();
    // Tail calls land here and fall into the program's first instruction.
    let tail_entry = g.ops.offset();
    g.load_run_registers();
    g.body();
    g.emit_stubs();
    let offset_of = |g: &Gen, i: usize| g.ops.labels().resolve_dynamic(g.labels[i]).ok();
    functions.entries = (0..program.len())
        .map(|i| {
            program
                .is_function_entry(i)
                .then(|| offset_of(&g, i))
                .flatten()
                .map(|o| o.0)
        })
        .collect();
    g.ops.commit().map_err(|e| e.to_string())?;
    let code = g
        .ops
        .finalize()
        .map_err(|_| "cannot make code memory executable".to_string())?;
    functions.code_base = code.ptr(dynasmrt::AssemblyOffset(0)) as usize;
    functions.callback_entry = callback.0;
    // SAFETY: `entry` is the offset of the prologue emitted above, a function with this
    // signature; the buffer is executable and `Compiled` keeps it alive with the pointer.
    let entry = unsafe {
        std::mem::transmute::<*const u8, extern "C" fn(*mut c::JitCtx, *const [u64; 5]) -> u64>(
            code.ptr(entry),
        )
    };
    Ok(Compiled {
        body: code.ptr(tail_entry) as u64,
        code,
        entry,
        functions,
    })
}

/// First instruction of each basic block, and the instruction count of the block that
/// starts there.
fn block_costs(program: &Program) -> Vec<u64> {
    let n = program.len();
    let mut leader = vec![false; n];
    leader[0] = true;
    for ins in program.instructions() {
        if let Some(t) = ins.target {
            leader[t] = true;
        }
        let ends = matches!(
            ins.decoded.spec.op,
            Op::Ja { .. } | Op::Jmp { .. } | Op::Call | Op::Callx | Op::Exit
        );
        let next = ins.index + ins.decoded.slots();
        if ends && next < n {
            leader[next] = true;
        }
    }
    let mut cost = vec![0u64; n];
    let mut current = 0;
    for ins in program.instructions() {
        if leader[ins.index] {
            current = ins.index;
        }
        cost[current] += 1;
    }
    cost
}

/// Copies of a small one-block loop's body run between budget checks.
const UNROLL: u64 = 4;
/// Copies of bodies of at most `SHORT_BODY` instructions: the per-group overhead (budget
/// and bound checks, back edge) is spread over more iterations.
const UNROLL_SHORT: u64 = 8;
const SHORT_BODY: usize = 8;
/// Bodies up to this many instructions are unrolled.
const UNROLL_MAX_BODY: usize = 24;

/// The number of instructions of the loop starting at `instructions[k]`, if it can be
/// unrolled: one block (nothing jumps into it but its own back edge and the way in, no
/// calls, exits or other jumps) closed by a backward conditional jump to its first
/// instruction, and followed by another instruction.
fn unrollable_loop(program: &Program, charging: &Charging, k: usize) -> Option<usize> {
    let instructions = program.instructions();
    let head = instructions[k].index;
    if !charging.loop_head[head] {
        return None;
    }
    for (n, ins) in instructions[k..].iter().enumerate().take(UNROLL_MAX_BODY) {
        if n > 0 && charging.join[ins.index] {
            return None;
        }
        match ins.decoded.spec.op {
            Op::Jmp { .. } if ins.target == Some(head) => {
                let next = ins.index + ins.decoded.slots();
                return (next < program.len()).then_some(n + 1);
            }
            Op::Alu { .. }
            | Op::End { .. }
            | Op::Load { .. }
            | Op::StoreImm { .. }
            | Op::StoreReg { .. }
            | Op::Lddw => {}
            _ => return None,
        }
    }
    None
}

/// In a counted loop whose counter steps are folded (see [`Gen::counter_steps`]): a
/// `r = b + counter` pair (or `r = counter + imm`) whose `r` only serves as the base of
/// proven accesses after it in the same copy, `b` unchanged by the loop. In all copies
/// but the last the pair is left out (the next copy writes `r` again before anything
/// reads it) and the accesses address `[h + counter + displacement]`, `h` the region's
/// displacement plus `b` computed once per group; the last copy runs as written, so `r`
/// ends as the interpreter leaves it.
#[derive(Clone, Copy)]
struct Hoist {
    /// Position of the pair in the body.
    at: usize,
    /// The pair's destination.
    r: u8,
    /// The loop-invariant operand, if any.
    base: Option<u8>,
    /// The pair's immediate (0 for two registers).
    disp: i32,
    /// Host register holding the accesses' region displacement for the run.
    pin: u8,
}

/// After a [`Hoist`]ed pair left out of a copy: accesses based on `r` address
/// `[h + counter + disp]`, `disp` including the counter's lag where the pair stood.
#[derive(Clone, Copy)]
struct Hoisted {
    r: u8,
    h: u8,
    counter: u8,
    disp: i32,
}

/// How the copies of an unrolled loop depart from its body (see [`Gen::emit_copy`]).
struct CopyPlan<'a> {
    copies: u64,
    counter: u8,
    /// The counter's steps are folded (see [`Gen::counter_steps`]).
    steps: Option<Counted>,
    /// An address sum kept across the copies, and the host register holding its `h`.
    hoist: Option<(Hoist, u8)>,
    folds: &'a [Reduction],
}

/// `dst = base + index + disp` in one `lea` (eBPF registers).
struct LeaPair {
    dst: u8,
    base: u8,
    index: Option<u8>,
    disp: i32,
}

/// Chains of at least this many tests get a table.
const SWITCH_MIN_TESTS: usize = 4;
/// Largest key a table covers.
const SWITCH_MAX_KEY: i32 = 255;

/// A chain of equality tests of one register against small constants, as compilers emit
/// for a `switch`: each test either jumps to its case (`jeq`, the next test is the
/// fall-through) or to the next test (`jne`, the case is the fall-through).
struct SwitchChain {
    reg: u8,
    is64: bool,
    /// `jeq` tests (else `jne`).
    equal: bool,
    /// Index in the instruction list and key of each test, in order.
    tests: Vec<(usize, i32)>,
    max_key: i32,
}

/// The chain whose first test is `instructions[k]`, if it is long enough for a table. A
/// test after the first is reached from the previous test alone, and so is every
/// fall-through the table jumps to (so the code there expects the count the chain
/// charges: see [`Gen::dispatch`]).
fn switch_chain(program: &Program, charging: &Charging, k: usize) -> Option<SwitchChain> {
    let instructions = program.instructions();
    let test = |k: usize| -> Option<(u8, bool, bool, i32, usize)> {
        let ins = instructions.get(k)?;
        let Op::Jmp {
            cond,
            is64,
            reg: false,
        } = ins.decoded.spec.op
        else {
            return None;
        };
        let t = ins.target?;
        let key = ins.decoded.insn.imm;
        let equal = match cond {
            JmpCond::Eq => true,
            JmpCond::Ne => false,
            _ => return None,
        };
        let dst = ins.decoded.insn.dst;
        (t > ins.index && dst != FRAME_REG && (0..=SWITCH_MAX_KEY).contains(&key))
            .then_some((dst, is64, equal, key, t))
    };
    let (reg, is64, equal, key, mut t) = test(k)?;
    let mut tests = vec![(k, key)];
    let mut at = k;
    // A test whose fall-through (its case, or the default after the last `jeq`) other code
    // also reaches cannot be an entry: the chain ends before it (the default is then that
    // test itself). Ending the walk this way, never failing it, keeps `switch_chains`
    // linear.
    let usable = |at: usize| {
        instructions
            .get(at + 1)
            .is_some_and(|fall| !charging.join[fall.index])
    };
    loop {
        if !usable(at) {
            tests.pop();
            break;
        }
        let next = if equal {
            at + 1
        } else {
            match program.position(t) {
                Some(n) if charging.single_jump[t] => n,
                _ => break,
            }
        };
        match test(next) {
            Some((r, w, e, key, target)) if r == reg && w == is64 && e == equal => {
                tests.push((next, key));
                at = next;
                t = target;
            }
            _ => break,
        }
    }
    let max_key = tests.iter().map(|&(_, key)| key).max()?;
    (tests.len() >= SWITCH_MIN_TESTS).then_some(SwitchChain {
        reg,
        is64,
        equal,
        tests,
        max_key,
    })
}

/// A loop body closed by `if r < n goto head` (unsigned, 64 bits, `n` a positive
/// constant) whose only write to `r` is one `r += step` (`step > 0`).
#[derive(Clone, Copy)]
struct Counted {
    /// The counter must be below this at the head for the first `copies - 1` copies to
    /// continue for sure (`r` cannot wrap before reaching `n`).
    below: i32,
    /// Position of the step in the body.
    at: usize,
    step: i32,
}

fn counted_loop(
    body: &[ebpf_sim_vm::program::Instruction],
    compare: Compare,
    copies: u64,
) -> Option<Counted> {
    let Compare {
        cond: JmpCond::Lt,
        is64: true,
        reg: false,
        dst,
        imm: n,
        ..
    } = compare
    else {
        return None;
    };
    let mut step = None;
    for (at, ins) in body.iter().enumerate() {
        let i = ins.decoded.insn;
        if !(ins.decoded.spec.writes_dst() && i.dst == dst) {
            continue;
        }
        match (ins.decoded.spec.op, step) {
            (
                Op::Alu {
                    op: AluOp::Add,
                    is64: true,
                    reg: false,
                },
                None,
            ) if i.imm > 0 => step = Some((at, i.imm)),
            _ => return None,
        }
    }
    let (at, step) = step?;
    let below = n as i64 - step as i64 * (copies as i64 - 1);
    (below > 0).then_some(Counted {
        below: below as i32,
        at,
        step,
    })
}

/// The registers an instruction's fields name.
fn names(ins: &ebpf_sim_vm::program::Instruction) -> impl Iterator<Item = u8> {
    let (spec, i) = (ins.decoded.spec, ins.decoded.insn);
    let dst = spec.names_dst().then_some(i.dst);
    let src = spec.names_src().then_some(i.src);
    dst.into_iter().chain(src)
}

/// Which eBPF registers r0..r10 some instruction names, or `None` when registers are
/// also read without being named: helpers read r1..r5, a tail call's target any register
/// (it runs on this program's registers), packet loads r6.
fn named_registers(program: &Program) -> Option<[bool; 11]> {
    let mut named = [false; 11];
    for ins in program.instructions() {
        if matches!(
            ins.decoded.spec.op,
            Op::Call | Op::Callx | Op::LdAbs { .. } | Op::LdInd { .. }
        ) {
            return None;
        }
        for r in names(ins) {
            named[r as usize] = true;
        }
    }
    Some(named)
}

/// r1..r5 as bits 1..=5 of a mask.
const ARG_REGS: u8 = 0b11_1110;

/// Per slot: for a helper call there, the argument registers r1..r5 (bit r) some path
/// after the call may read before writing. The interpreter keeps them across helper
/// calls; JIT code calls helpers natively, which clobbers them, so it saves and reloads
/// these (none, in code the kernel's verifier would accept: it forbids such reads).
/// Conservative where it cannot know: a call, `callx` or helper call reads all five (a
/// helper its arguments, a tail call's target every register), and so does the code a
/// function returns to.
fn args_live_after_calls(program: &Program) -> Vec<u8> {
    let instructions = program.instructions();
    let n = instructions.len();
    let position = |slot: usize| program.position(slot);
    // The main function ends where the next function starts; its exit returns from the
    // run unless something can call slot 0 (a local call to it, or any callx).
    let main_end = instructions
        .iter()
        .position(|ins| ins.index > 0 && program.is_function_entry(ins.index))
        .unwrap_or(n);
    let main_is_called = instructions.iter().any(|ins| match ins.decoded.spec.op {
        Op::Call => ins.target == Some(0),
        Op::Callx => true,
        _ => false,
    });
    let bit = |r: u8| if (1..=5).contains(&r) { 1u8 << r } else { 0 };
    let (reads, writes): (Vec<u8>, Vec<u8>) = instructions
        .iter()
        .map(|ins| {
            let (op, i) = (ins.decoded.spec.op, ins.decoded.insn);
            let src = if ins.decoded.spec.names_src() {
                bit(i.src)
            } else {
                0
            };
            match op {
                Op::Alu {
                    op: AluOp::Mov | AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32,
                    ..
                } => (src, bit(i.dst)),
                Op::Alu { .. } | Op::End { .. } => (src | bit(i.dst), bit(i.dst)),
                Op::Load { .. } => (src, bit(i.dst)),
                Op::Lddw => (0, bit(i.dst)),
                Op::Call | Op::Callx => (ARG_REGS, 0),
                _ => (names(ins).map(bit).fold(0, |a, b| a | b), 0),
            }
        })
        .unzip();
    let mut live_in = vec![0u8; n];
    let mut changed = true;
    while changed {
        changed = false;
        for k in (0..n).rev() {
            let ins = &instructions[k];
            let next = |k: usize| live_in.get(k + 1).copied().unwrap_or(ARG_REGS);
            let at = |slot: Option<usize>| slot.and_then(position).map_or(ARG_REGS, |t| live_in[t]);
            let out = match ins.decoded.spec.op {
                Op::Exit if k < main_end && !main_is_called => 0,
                Op::Exit => ARG_REGS,
                Op::Ja { .. } => at(ins.target),
                Op::Jmp { .. } => next(k) | at(ins.target),
                _ => next(k),
            };
            let v = reads[k] | (out & !writes[k]);
            if v != live_in[k] {
                live_in[k] = v;
                changed = true;
            }
        }
    }
    let mut live_after = vec![0u8; program.len()];
    for (k, ins) in instructions.iter().enumerate() {
        if ins.decoded.spec.op == Op::Call && ins.target.is_none() {
            live_after[ins.index] = live_in.get(k + 1).copied().unwrap_or(ARG_REGS);
        }
    }
    live_after
}

/// The register a load or store addresses through, and its size.
fn access(ins: &ebpf_sim_vm::program::Instruction) -> Option<(u8, Size)> {
    let i = ins.decoded.insn;
    match ins.decoded.spec.op {
        Op::Load { size, .. } => Some((i.src, size)),
        Op::StoreImm { size } | Op::StoreReg { size } => Some((i.dst, size)),
        _ => None,
    }
}

/// eBPF registers whose host registers the code may use as scratch: nothing reads them.
fn spare_registers(named: Option<[bool; 11]>) -> Vec<u8> {
    match named {
        Some(named) => (1..FRAME_REG).filter(|&r| !named[r as usize]).collect(),
        None => Vec::new(),
    }
}

/// A register a counted loop's body only folds values into, with one `acc op= x` (op
/// associative and commutative: add, or, and, xor, mul; `x` not the register itself)
/// that nothing else in the body (its exit test included) reads or writes. Unrolled, the
/// copies fold their `x` into spare registers in turn (two lanes where there are spares
/// enough), and the lanes go into `acc` once, after the last copy: `acc`'s dependency
/// chain takes one step per group of copies instead of one per iteration, and each lane
/// half the steps of the group. Nothing between the copies can leave the loop (see
/// [`counted_loop`]) and a fault reports no register, so only the value after the last
/// copy is ever seen.
struct Reduction {
    /// Position of `acc op= x` in the body.
    at: usize,
    op: AluOp,
    is64: bool,
    lanes: Vec<u8>,
}

fn reductions(body: &[ebpf_sim_vm::program::Instruction], spares: &[u8]) -> Vec<Reduction> {
    let mut found = Vec::new();
    for (at, ins) in body.iter().enumerate() {
        if found.len() == spares.len() {
            break;
        }
        let i = ins.decoded.insn;
        let Op::Alu { op, is64, reg } = ins.decoded.spec.op else {
            continue;
        };
        let folds = matches!(
            op,
            AluOp::Add | AluOp::Or | AluOp::And | AluOp::Xor | AluOp::Mul
        );
        let alone = body
            .iter()
            .enumerate()
            .all(|(k, other)| k == at || !names(other).any(|r| r == i.dst));
        if folds && alone && i.dst != FRAME_REG && !(reg && i.src == i.dst) {
            found.push(Reduction {
                at,
                op,
                is64,
                lanes: Vec::new(),
            });
        }
    }
    let per = if spares.len() >= 2 * found.len() {
        2
    } else {
        1
    };
    for (r, lanes) in found.iter_mut().zip(spares.chunks(per)) {
        r.lanes = lanes.to_vec();
    }
    found
}

/// Whether r11 can hold r10's value for the whole run, as the kernel keeps its frame
/// pointer in a register: one function (no calls of any kind, so one frame), and no
/// instruction whose code uses r11 as scratch (checked memory accesses, divisions,
/// atomics, packet loads, switch tables). Then reading r10 costs no load, which matters
/// most on paths restarted after a mispredicted branch.
fn frame_pointer_fits_in_r11(
    program: &Program,
    proven: &[Proven],
    chains: &[Option<SwitchChain>],
) -> bool {
    let instructions = program.instructions();
    instructions.iter().enumerate().all(|(k, ins)| {
        let fits = match (ins.decoded.spec.op, access(ins)) {
            (_, Some((base, size))) => {
                matches!(proven.get(ins.index), Some(Proven::Frame | Proven::Ctx))
                    || (base == FRAME_REG && in_frame(ins.decoded.insn.off, size))
            }
            (Op::Alu { op, .. }, _) => {
                !matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod)
            }
            (Op::End { .. } | Op::Lddw | Op::Ja { .. } | Op::Jmp { .. } | Op::Exit, _) => true,
            _ => false,
        };
        fits && chains[k].is_none()
    })
}

/// The chain starting at each instruction (see [`switch_chain`]). A test inside a chain
/// found earlier starts none, so a long chain is walked once, not once per test.
fn switch_chains(program: &Program, charging: &Charging) -> Vec<Option<SwitchChain>> {
    let n = program.instructions().len();
    let mut chains: Vec<Option<SwitchChain>> = (0..n).map(|_| None).collect();
    let mut inside = vec![false; n];
    for k in 0..n {
        if inside[k] {
            continue;
        }
        if let Some(chain) = switch_chain(program, charging, k) {
            for &(t, _) in &chain.tests {
                inside[t] = true;
            }
            chains[k] = Some(chain);
        }
    }
    chains
}

/// Where the budget is charged. Nothing observes the count between its checks (backward
/// jumps, calls, helpers, exits), so a path's instructions are charged together when it
/// reaches one of them, leaves through a forward jump, or falls into a block that other
/// jumps also reach: one `sub` per loop iteration instead of one per block, which matters
/// because the subtractions form a dependency chain. A forward jump to a block it alone
/// reaches hands its pending count over to that block; other forward jumps charge it on
/// the way (a two-instruction stub on the taken side).
struct Charging {
    costs: Vec<u64>,
    /// Reached by a jump or a call from somewhere, or entered from outside.
    join: Vec<bool>,
    /// Reached only by one forward jump (never by falling through, a call or an entry).
    single_jump: Vec<bool>,
    /// Count handed over by that jump.
    carried: Vec<u64>,
    /// The target of a backward jump.
    loop_head: Vec<bool>,
}

impl Charging {
    fn new(program: &Program) -> Self {
        let n = program.len();
        let mut jumps = vec![0u32; n];
        let mut join = vec![false; n];
        let mut forward_only = vec![true; n];
        let mut loop_head = vec![false; n];
        join[0] = true;
        for (i, j) in join.iter_mut().enumerate() {
            *j |= program.is_function_entry(i);
        }
        let instructions = program.instructions();
        for (k, ins) in instructions.iter().enumerate() {
            if let Some(t) = ins.target {
                join[t] = true;
                if matches!(ins.decoded.spec.op, Op::Ja { .. } | Op::Jmp { .. }) {
                    jumps[t] += 1;
                    forward_only[t] &= t > ins.index;
                    loop_head[t] |= t <= ins.index;
                } else {
                    forward_only[t] = false;
                }
            }
            let falls_through = !matches!(ins.decoded.spec.op, Op::Ja { .. } | Op::Exit);
            if falls_through {
                if let Some(next) = instructions.get(k + 1) {
                    forward_only[next.index] = false;
                }
            }
        }
        let single_jump = (0..n)
            .map(|t| t != 0 && jumps[t] == 1 && forward_only[t] && !program.is_function_entry(t))
            .collect();
        Charging {
            costs: block_costs(program),
            join,
            single_jump,
            carried: vec![0; n],
            loop_head,
        }
    }
}

impl Gen<'_> {
    fn prologue(&mut self) -> dynasmrt::AssemblyOffset {
        let entry = self.ops.offset();
        let main = self.labels[0];
        self.enter();
        // r1..r5 from the caller's array (8-byte loads: the caller just stored them), r0
        // and r6..r9 zero; registers nothing reads are left as they are.
        let read = |r: usize| self.named.is_none_or(|named| named[r]);
        dynasm!(self.ops ; .arch x64 ; mov rax, rsi);
        for (r, at) in (1..=5).zip((0..).step_by(8)) {
            if read(r) {
                dynasm!(self.ops ; .arch x64 ; mov Rq(MAP[r]), [rax + at]);
            }
        }
        for r in [0, 6, 7, 8, 9] {
            if r == 0 || read(r) {
                dynasm!(self.ops ; .arch x64 ; xor Rd(MAP[r]), Rd(MAP[r]));
            }
        }
        self.load_run_registers();
        // A run that returns normally leaves through the first epilogue, with rsp as the
        // call left it; stops from anywhere else (faults, budget) through `exit`, which
        // resets rsp and leaves the budget for the Rust code that re-entered (callbacks).
        dynasm!(self.ops ; .arch x64 ; mov rbp, [r12 + c::REMAINING] ; call =>main);
        self.leave();
        dynasm!(self.ops
            ; .arch x64
            ; ->exit:
            ; mov [r12 + c::REMAINING], rbp
            ; mov rsp, [r12 + c::SAVED_RSP]
        );
        self.leave();
        entry
    }

    /// The registers that hold a value for the whole run: r11 = r10 (see
    /// [`frame_pointer_fits_in_r11`]) and the pinned displacements. The prologue sets
    /// them, and so does the entry tail calls land on (they arrive from another
    /// program's code, which keeps other things there).
    fn load_run_registers(&mut self) {
        if self.fp_in_r11 {
            dynasm!(self.ops ; .arch x64 ; mov r11, [r12 + c::FP]);
        }
        if let Some(d) = self.pinned_stack_delta {
            dynasm!(self.ops ; .arch x64 ; mov Rq(d), [r12 + c::STACK_DELTA]);
        }
        if let Some(d) = self.pinned_ctx_delta {
            dynasm!(self.ops ; .arch x64 ; mov Rq(d), [r12 + c::CTX_DELTA]);
        }
    }

    /// Back to Rust from the stack `enter` left: the callee-saved registers restored.
    fn leave(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; add rsp, 8
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop r12
            ; pop rbx
            ; pop rbp
            ; ret
        );
    }

    /// The entry a helper's callbacks (bpf_loop, for_each) come in through:
    /// `extern "C" fn(ctx, function address) -> r0`, in the frame `run_callbacks` set up
    /// (`ctx.depth`), with r1..r5 from the context. It leaves through the shared exit, so a
    /// fault inside unwinds to here; `run_callbacks` restores the outer `saved_rsp`.
    fn callback_entry(&mut self) -> dynasmrt::AssemblyOffset {
        let entry = self.ops.offset();
        self.enter();
        dynasm!(self.ops
            ; .arch x64
            ; mov r11, [r12 + c::DEPTH]
            ; shl r11, 9
            ; add r11, [r12 + c::STACK_BASE]
            ; add r11, STACK_SIZE as i32
            ; mov [r12 + c::STACK_TOP], r11
            ; sub r11, [r12 + c::FP]
            ; mov [r12 + c::STACK_DELTA], r11
            ; mov r11, rsi
            ; mov rbp, [r12 + c::REMAINING]
        );
        self.load_args();
        dynasm!(self.ops
            ; .arch x64
            ; xor eax, eax
            ; call r11
            ; jmp ->exit
        );
        entry
    }

    /// Entry from Rust: save the callee-saved registers (keeping the stack 16-byte
    /// aligned), take the context from rdi, and note the stack pointer the exit returns to.
    fn enter(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; push rbp
            ; push rbx
            ; push r12
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, 8
            ; mov r12, rdi
            ; mov [r12 + c::SAVED_RSP], rsp
        );
    }

    /// r1..r5 from the context's argument slots.
    fn load_args(&mut self) {
        dynasm!(self.ops
            ; .arch x64
            ; mov rdi, [r12 + c::ARGS]
            ; mov rsi, [r12 + c::ARGS + 8]
            ; mov rdx, [r12 + c::ARGS + 16]
            ; mov rcx, [r12 + c::ARGS + 24]
            ; mov r8, [r12 + c::ARGS + 32]
        );
    }

    fn reg(&self, bpf: u8) -> u8 {
        MAP[bpf as usize]
    }

    /// The x86 register holding eBPF register `bpf`, loading r10's value into `scratch`.
    fn read(&mut self, bpf: u8, scratch: u8) -> u8 {
        if bpf == FRAME_REG && self.fp_in_r11 {
            R11
        } else if bpf == FRAME_REG {
            dynasm!(self.ops ; .arch x64 ; mov Rq(scratch), [r12 + c::FP]);
            scratch
        } else {
            self.reg(bpf)
        }
    }

    fn status_exit(&mut self, status: Status, pc: usize) {
        dynasm!(self.ops
            ; .arch x64
            ; mov QWORD [r12 + c::FAULT_PC], pc as i32
            ; mov QWORD [r12 + c::STATUS], status as i32
            ; jmp ->exit
        );
    }

    /// Pads with long NOPs to a multiple of `to` bytes.
    fn align_code(&mut self, to: usize) {
        const NOPS: [&[u8]; 9] = [
            &[0x90],
            &[0x66, 0x90],
            &[0x0f, 0x1f, 0x00],
            &[0x0f, 0x1f, 0x40, 0x00],
            &[0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00],
            &[0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00],
            &[0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
            &[0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00],
        ];
        let mut pad = (to - self.ops.offset().0 % to) % to;
        while pad > 0 {
            let n = pad.min(NOPS.len());
            self.ops.extend(NOPS[n - 1].iter().copied());
            pad -= n;
        }
    }

    /// Charges the pending count (before anything that observes the budget).
    fn flush(&mut self) {
        let c = std::mem::take(&mut self.pending);
        if c > 0 {
            self.sub_rbp(c);
        }
    }

    /// Charges `c` instructions (sets the sign flag once the budget is spent).
    fn sub_rbp(&mut self, c: u64) {
        match i8::try_from(c) {
            Ok(b) => dynasm!(self.ops ; .arch x64 ; sub rbp, BYTE b),
            Err(_) => dynasm!(self.ops ; .arch x64 ; sub rbp, c as i32),
        }
    }

    /// A forward jump's label: the target's own when the pending count can travel with the
    /// jump (the target alone reaches that block, or nothing is pending), else a stub that
    /// charges it first. The fall-through keeps the pending count.
    fn forward_label(&mut self, t: usize) -> DynamicLabel {
        let l = self.labels[t];
        if self.pending == 0 {
            return l;
        }
        if self.charging.single_jump[t] {
            self.charging.carried[t] = self.pending;
            return l;
        }
        let stub = self.ops.new_dynamic_label();
        let cost = self.pending as i32;
        self.stubs.push(Stub::Cold {
            label: stub,
            emit: Box::new(
                move |ops: &mut Assembler| dynasm!(ops ; .arch x64 ; sub rbp, cost ; jmp =>l),
            ),
        });
        stub
    }

    fn budget_check(&mut self, pc: usize) {
        let label = self.ops.new_dynamic_label();
        self.charge_and_test();
        dynasm!(self.ops ; .arch x64 ; js =>label);
        self.stubs.push(Stub::Budget { label, pc });
    }

    /// Sets the sign flag when the budget is spent, charging the block's deferred cost.
    fn charge_and_test(&mut self) {
        match std::mem::take(&mut self.pending) {
            0 => dynasm!(self.ops ; .arch x64 ; test rbp, rbp),
            c => self.sub_rbp(c),
        }
    }

    /// r10 = the context field at `field` (unless it still holds it).
    fn load_r10(&mut self, field: i32) {
        if self.r10_holds != Some(field) {
            dynasm!(self.ops ; .arch x64 ; mov r10, [r12 + field]);
            self.r10_holds = Some(field);
        }
    }

    /// Leaves in r10 a host address such that the access is `[r10 + returned displacement]`
    /// (see [`Self::address_indexed`]).
    fn address(
        &mut self,
        base: u8,
        off: i16,
        size: Size,
        store: bool,
        atomic: bool,
        pc: usize,
    ) -> i32 {
        let at = self.address_indexed(base, off, size, store, atomic, pc);
        if at.base != R10 || at.index.is_some() {
            self.memory(Form::Lea, R10, Mem { disp: 0, ..at }, 0);
        }
        at.disp
    }

    /// The access's host address as a memory operand. Constant offsets from r10 are
    /// proven inside the frame when the program is prepared: the frame's stack top plus
    /// the offset. Accesses the verifier proved inside the current frame or the context
    /// (when compiled with its facts): the pointer's register plus the displacement from
    /// virtual to host addresses, kept in a register for the run where one is spare, else
    /// loaded into r10. Otherwise the checked translation, left in r10. Clobbers r9 and
    /// r11.
    fn address_indexed(
        &mut self,
        base: u8,
        off: i16,
        size: Size,
        store: bool,
        atomic: bool,
        pc: usize,
    ) -> Mem {
        let disp = off as i32;
        if let Some(h) = self.hoisted.filter(|h| h.r == base) {
            let disp = i32::try_from(disp as i64 + h.disp as i64)
                .expect("Gen::hoist keeps displacements in range");
            let counter = self.reg(h.counter);
            return Mem {
                base: h.h,
                index: Some(counter),
                disp,
            };
        }
        if base == FRAME_REG && in_frame(off, size) {
            if let (Some(d), true) = (self.pinned_stack_delta, self.fp_in_r11) {
                return Mem {
                    base: d,
                    index: Some(R11),
                    disp,
                };
            }
            self.load_r10(c::STACK_TOP);
            return Mem {
                base: R10,
                index: None,
                disp,
            };
        }
        let (pinned, field) = match self.proven.get(pc).copied().unwrap_or(Proven::No) {
            Proven::Frame => (self.pinned_stack_delta, c::STACK_DELTA),
            Proven::Ctx => (self.pinned_ctx_delta, c::CTX_DELTA),
            Proven::No | Proven::Elsewhere => {
                self.r10_holds = None;
                self.translate(base, off, size.bytes(), store, atomic, pc);
                let disp = -(size.bytes() as i32);
                return Mem {
                    base: R10,
                    index: None,
                    disp,
                };
            }
        };
        let b = self.read(base, R11);
        let base = pinned.unwrap_or_else(|| {
            self.load_r10(field);
            R10
        });
        Mem {
            base,
            index: Some(b),
            disp,
        }
    }

    /// Checks an access of `size` bytes at `base + off` against the fast region table (one
    /// compare, see `ebpf_sim_vm::memory`) and leaves `host address + size` in r10 (so the
    /// access is `[r10 - size]`); the vaddr stays in r11 for the slow path. Clobbers r9.
    fn translate(&mut self, base: u8, off: i16, size: usize, store: bool, atomic: bool, pc: usize) {
        let fault = self.ops.new_dynamic_label();
        let limit = if store {
            c::REGION_STORE_LIMIT
        } else {
            c::REGION_LOAD_LIMIT
        };
        let base = self.read(base, R11);
        let at = |base: u8, disp: i32| Mem {
            base,
            index: None,
            disp,
        };
        if off != 0 {
            self.memory(Form::Lea, R11, at(base, off as i32), 0);
        } else if base != R11 {
            dynasm!(self.ops ; .arch x64 ; mov r11, Rq(base));
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov r9, r11
            ; shr r9, (REGION_SHIFT - REGION_BITS) as i8
            ; and r9d, ((FAST_REGIONS - 1) << REGION_BITS) as i32
        );
        self.memory(Form::Add64, R9, at(R12, c::FAST), 0);
        self.memory(Form::Lea, R10, at(R11, size as i32), 0);
        self.memory(Form::Cmp64, R10, at(R9, limit), 0);
        dynasm!(self.ops ; .arch x64 ; jae =>fault);
        self.memory(Form::Add64, R10, at(R9, c::REGION_DELTA), 0);
        let resume = self.ops.new_dynamic_label();
        dynasm!(self.ops ; .arch x64 ; =>resume);
        let kind = if atomic { 2 } else { store as u64 };
        self.stubs.push(Stub::Memory {
            label: fault,
            resume,
            pc,
            info: size as u64 | kind << 8,
        });
    }

    fn body(&mut self) {
        let program = self.program;
        let instructions = program.instructions();
        let mut k = 0;
        while k < instructions.len() {
            let ins = &instructions[k];
            let pc = ins.index;
            let label = self.labels[pc];
            if self.charging.join[pc] {
                // Falling into a block other paths reach: charge this path first.
                self.flush();
                self.r10_holds = None;
            }
            if self.charging.loop_head[pc] {
                // Measured: loops that start on a 32-byte boundary run up to 25% faster
                // (the op cache and branch predictor work in aligned windows).
                self.align_code(32);
            }
            dynasm!(self.ops ; .arch x64 ; =>label);
            if let Some(n) = unrollable_loop(program, &self.charging, k) {
                self.unrolled_loop(&instructions[k..k + n]);
                k += n;
                continue;
            }
            self.pending += self.charging.carried[pc] + self.charging.costs[pc];
            if let Some(chain) = self.chains[k].take() {
                self.dispatch(&chain);
            }
            k += self.emit_at(instructions, k);
        }
    }

    /// An indirect jump through a table for a chain of equality tests (see
    /// [`switch_chain`]), in place of its first test; the chain's code follows, unused.
    /// Every entry lands where the chain would have gone, with the count the chain would
    /// have charged: a block only the chain reaches already expects that count (the tests
    /// hand theirs over), and other targets get a table slot that charges it first. r10
    /// is left as it is, as the tests leave it.
    fn dispatch(&mut self, chain: &SwitchChain) {
        let instructions = self.program.instructions();
        let p0 = self.pending;
        let mut slots: Vec<Option<(DynamicLabel, u64)>> = vec![None; chain.max_key as usize + 1];
        let target = |g: &Self, t: usize, count: u64| {
            if g.charging.single_jump[t] || count == 0 {
                (g.labels[t], 0)
            } else {
                (g.labels[t], count)
            }
        };
        let mut last = 0;
        for (i, &(k, key)) in chain.tests.iter().enumerate() {
            let ins = &instructions[k];
            let count = p0 + i as u64;
            let entry = if chain.equal {
                target(self, ins.target.expect("a jump"), count)
            } else {
                // The case is the test's fall-through: it expects the count.
                (self.labels[instructions[k + 1].index], 0)
            };
            let slot = &mut slots[key as usize];
            if slot.is_none() {
                *slot = Some(entry);
            }
            last = k;
        }
        let count = p0 + chain.tests.len() as u64 - 1;
        let default = if chain.equal {
            (self.labels[instructions[last + 1].index], 0)
        } else {
            target(self, instructions[last].target.expect("a jump"), count)
        };
        // A table of code addresses: an entry that must charge first points at a stub
        // that does, then jumps on.
        let mut charges = Vec::new();
        let mut entry_label = |g: &mut Self, (l, charge): (DynamicLabel, u64)| {
            if charge == 0 {
                return l;
            }
            let stub = g.ops.new_dynamic_label();
            charges.push((stub, l, charge));
            stub
        };
        let entries: Vec<DynamicLabel> = slots
            .into_iter()
            .map(|s| entry_label(self, s.unwrap_or(default)))
            .collect();
        let default_entry = entry_label(self, default);
        let table = self.ops.new_dynamic_label();
        let x = self.reg(chain.reg);
        let index = if chain.is64 {
            dynasm!(self.ops ; .arch x64 ; cmp Rq(x), chain.max_key ; ja =>default_entry);
            x
        } else {
            dynasm!(self.ops
                ; .arch x64
                ; cmp Rd(x), chain.max_key
                ; ja =>default_entry
                ; mov r9d, Rd(x)
            );
            R9
        };
        dynasm!(self.ops
            ; .arch x64
            ; lea r11, [=>table]
            ; jmp QWORD [r11 + Rq(index) * 8]
        );
        let cold = self.ops.new_dynamic_label();
        self.stubs.push(Stub::Cold {
            label: cold,
            emit: Box::new(move |ops: &mut Assembler| {
                dynasm!(ops ; .arch x64 ; .align 8, 0xcc ; =>table);
                for l in entries {
                    dynasm!(ops ; .arch x64 ; .abs64 =>l);
                }
                for (stub, l, charge) in charges {
                    dynasm!(ops ; .arch x64 ; =>stub ; sub rbp, charge as i32 ; jmp =>l);
                }
            }),
        });
    }

    /// `r = s; r += x` at `list[k]`, when it can be one `lea`: nothing jumps to the add,
    /// and r10 is an operand only while r11 holds it.
    fn lea_pair(&self, list: &[ebpf_sim_vm::program::Instruction], k: usize) -> Option<LeaPair> {
        let (ins, next) = (list.get(k)?, list.get(k + 1)?);
        let Op::Alu {
            op: AluOp::Mov,
            is64: true,
            reg: true,
        } = ins.decoded.spec.op
        else {
            return None;
        };
        let Op::Alu {
            op: AluOp::Add,
            is64: true,
            reg,
        } = next.decoded.spec.op
        else {
            return None;
        };
        let (a, b) = (ins.decoded.insn, next.decoded.insn);
        let plain = |r: u8| r != FRAME_REG || self.fp_in_r11;
        if b.dst != a.dst || self.charging.join[next.index] || !plain(a.src) {
            return None;
        }
        // `r += r` after the move adds the source again.
        let index = reg.then_some(if b.src == a.dst { a.src } else { b.src });
        if index.is_some_and(|x| !plain(x)) {
            return None;
        }
        Some(LeaPair {
            dst: a.dst,
            base: a.src,
            index,
            disp: if reg { 0 } else { b.imm },
        })
    }

    /// Whether the copies of a counted loop can leave its counter's steps out, the last
    /// copy stepping it by `copies * step` at once: true when the body reads the counter
    /// only as an operand of `lea` pairs (see [`Self::lea_pair`]), which then read it
    /// through their displacement, and the displacements stay in range.
    fn counter_steps(
        &self,
        body: &[ebpf_sim_vm::program::Instruction],
        counter: u8,
        step: i32,
        copies: u64,
    ) -> bool {
        let most = step as i64 * copies as i64;
        let mut k = 0;
        while k < body.len() {
            if let Some(p) = self.lea_pair(body, k) {
                let reads = [Some(p.base), p.index]
                    .iter()
                    .filter(|&&r| r == Some(counter))
                    .count();
                if i32::try_from(p.disp as i64 + most * reads as i64).is_err() {
                    return false;
                }
                k += 2;
                continue;
            }
            let ins = &body[k];
            let steps = ins.decoded.spec.writes_dst() && ins.decoded.insn.dst == counter;
            if !steps && names(ins).any(|r| r == counter) {
                return false;
            }
            k += 1;
        }
        true
    }

    /// The [`Hoist`] of a counted loop's body whose counter steps are folded, if one
    /// qualifies (the first that does).
    fn hoist(
        &self,
        body: &[ebpf_sim_vm::program::Instruction],
        counter: u8,
        step: i32,
        copies: u64,
    ) -> Option<Hoist> {
        // The exit test of a counted loop names only the counter.
        let (_, straight) = body.split_last()?;
        let writes = |r: u8| {
            straight
                .iter()
                .any(|i| i.decoded.spec.writes_dst() && i.decoded.insn.dst == r)
        };
        let most = step as i64 * copies as i64;
        let mut k = 0;
        while k < straight.len() {
            let Some(p) = self.lea_pair(straight, k) else {
                k += 1;
                continue;
            };
            let at = k;
            k += 2;
            let base = match (p.base == counter, p.index) {
                (true, None) => None,
                (true, Some(x)) if x != counter => Some(x),
                (false, Some(x)) if x == counter => Some(p.base),
                _ => continue,
            };
            let r = p.dst;
            if r == counter || base.is_some_and(|b| b == r || writes(b)) {
                continue;
            }
            // Every other instruction naming `r`: a proven load or store based on it,
            // after the pair, all in one region whose displacement is in a register.
            let mut pin = None;
            let mut uses = 0;
            let qualifies = straight.iter().enumerate().all(|(j, ins)| {
                if j == at || j == at + 1 || !names(ins).any(|n| n == r) {
                    return true;
                }
                let i = ins.decoded.insn;
                // `r` the base, and named nowhere else (not loaded into, not stored).
                let based = access(ins).is_some_and(|(base, _)| base == r)
                    && names(ins).filter(|&n| n == r).count() == 1;
                let region = match self.proven.get(ins.index) {
                    Some(Proven::Frame) => self.pinned_stack_delta,
                    Some(Proven::Ctx) => self.pinned_ctx_delta,
                    _ => None,
                };
                let fits = i32::try_from(i.off as i64 + p.disp as i64 + most).is_ok()
                    && i32::try_from(i.off as i64 + p.disp as i64).is_ok();
                uses += 1;
                match (based && j > at + 1 && fits, region, pin) {
                    (true, Some(h), None) => {
                        pin = Some(h);
                        true
                    }
                    (true, Some(h), Some(p)) => h == p,
                    _ => false,
                }
            });
            if qualifies && uses > 0 {
                return Some(Hoist {
                    at,
                    r,
                    base,
                    disp: p.disp,
                    pin: pin?,
                });
            }
        }
        None
    }

    /// Instruction `k`, or it and the next one together; returns how many it took. When
    /// nothing jumps to the second: `r = s; r += x` (pointer arithmetic, mostly) becomes
    /// `lea r, [s + x]`, and `r &= 1; r *= k` a conditional move.
    fn emit_at(&mut self, list: &[ebpf_sim_vm::program::Instruction], k: usize) -> usize {
        if let Some(p) = self.lea_pair(list, k) {
            let d = self.reg(p.dst);
            let base = self.read(p.base, R11);
            // A folded counter (see `counter_steps`) reads as its value plus the shift.
            let counter_shift = self.counter_shift;
            let shifted = |r: u8| match counter_shift {
                Some((c, shift)) if r == c => shift,
                _ => 0,
            };
            let mut disp = p.disp as i64 + shifted(p.base);
            let index = match p.index {
                Some(index) => {
                    disp += shifted(index);
                    Some(if index == p.base {
                        base
                    } else {
                        self.read(index, R11)
                    })
                }
                None => None,
            };
            let disp = i32::try_from(disp).expect("counter_steps keeps displacements in range");
            self.memory(Form::Lea, d, Mem { base, index, disp }, 0);
            return 2;
        }
        let ins = &list[k];
        if let (
            Some(next),
            Op::Alu {
                op: AluOp::And,
                reg: false,
                ..
            },
        ) = (list.get(k + 1), ins.decoded.spec.op)
        {
            let (a, b) = (ins.decoded.insn, next.decoded.insn);
            if let Op::Alu {
                op: AluOp::Mul,
                is64,
                reg: false,
            } = next.decoded.spec.op
            {
                if a.imm == 1
                    && b.dst == a.dst
                    && a.dst != FRAME_REG
                    && !self.charging.join[next.index]
                {
                    // `r &= 1; r *= k` selects k or 0: a test and a conditional move are
                    // two cycles of latency where the multiply takes four.
                    let d = self.reg(a.dst);
                    dynasm!(self.ops ; .arch x64 ; test Rd(d), 1 ; mov Rd(d), 0);
                    if is64 {
                        dynasm!(self.ops ; .arch x64 ; mov r9, b.imm ; cmovnz Rq(d), r9);
                    } else {
                        dynasm!(self.ops ; .arch x64 ; mov r9d, b.imm ; cmovnz Rd(d), r9d);
                    }
                    return 2;
                }
            }
        }
        self.emit(ins);
        1
    }

    /// An instruction with a memory operand, its displacement in the shortest form (see
    /// [`encode`]).
    fn memory(&mut self, form: Form, reg: u8, at: Mem, imm: i32) {
        self.ops.extend(
            encode::encode(form, reg, at, imm)
                .as_slice()
                .iter()
                .copied(),
        );
    }

    /// One instruction, keeping track of what r10 holds.
    fn emit(&mut self, ins: &ebpf_sim_vm::program::Instruction) {
        self.insn(ins);
        // Plain loads and stores leave r10 as `address_indexed` says; conditional jumps
        // only use it for r10's value; most ALU instructions never touch it.
        let keeps = match ins.decoded.spec.op {
            Op::Load { .. } | Op::StoreImm { .. } | Op::StoreReg { .. } => true,
            Op::Jmp { .. } => ins.decoded.insn.dst != FRAME_REG,
            // Shifts by a register and divisions work in r9/r10.
            Op::Alu { op, reg, .. } => {
                let divides = matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod);
                let shifts = matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh);
                !(divides || reg && shifts)
            }
            Op::End { .. } | Op::Lddw => true,
            _ => false,
        };
        if !keeps {
            self.r10_holds = None;
        }
    }

    /// `h` of a [`Hoist`] (the region's displacement plus the invariant operand) in the
    /// spare register the reductions' lanes leave, computed once per group; the
    /// displacement's own register when there is no operand. `None` without a spare.
    fn hoist_sum(&mut self, h: Hoist, lanes: usize) -> Option<(Hoist, u8)> {
        let Some(b) = h.base else {
            return Some((h, h.pin));
        };
        let spare = *self.spares.get(lanes..)?.last()?;
        let host = MAP[spare as usize];
        let b = self.read(b, R11);
        let sum = Mem {
            base: h.pin,
            index: Some(b),
            disp: 0,
        };
        self.memory(Form::Lea, host, sum, 0);
        Some((h, host))
    }

    /// Copy `copy` (of `plan.copies`) of an unrolled loop's body without its exit test:
    /// folded counter steps, a left-out address sum and reductions as `plan` says.
    fn emit_copy(
        &mut self,
        straight: &[ebpf_sim_vm::program::Instruction],
        copy: u64,
        plan: &CopyPlan,
    ) {
        let last = copy == plan.copies;
        let mut k = 0;
        while k < straight.len() {
            if let Some(c) = plan.steps {
                // Before the step, copy `copy` reads the counter `copy - 1` steps on;
                // after it, `copy` steps on, less the steps the last copy has made.
                let ahead = if k < c.at { copy - 1 } else { copy };
                let made = if last && k > c.at { plan.copies } else { 0 };
                let shift = (ahead as i64 - made as i64) * c.step as i64;
                self.counter_shift = Some((plan.counter, shift));
                if let Some((h, host)) = plan.hoist.filter(|(h, _)| h.at == k && !last) {
                    // `r` would be `b + counter + disp` with the counter as it reads here:
                    // the accesses after this point use that address.
                    let disp = i32::try_from(h.disp as i64 + shift)
                        .expect("Gen::hoist keeps displacements in range");
                    self.hoisted = Some(Hoisted {
                        r: h.r,
                        h: host,
                        counter: plan.counter,
                        disp,
                    });
                    k += 2;
                    continue;
                }
                if k == c.at {
                    if last {
                        let all_steps = (c.step as i64 * plan.copies as i64) as i32;
                        self.alu(AluOp::Add, true, false, plan.counter, 0, all_steps);
                    }
                    k += 1;
                    continue;
                }
            }
            match plan.folds.iter().find(|r| r.at == k) {
                Some(r) => {
                    self.fold(r, &straight[k], copy, last);
                    k += 1;
                }
                None => k += self.emit_at(straight, k),
            }
        }
        self.counter_shift = None;
        self.hoisted = None;
    }

    /// `acc op= x` of a [`Reduction`] in copy `copy`: into the copy's lane, and in the
    /// last copy the lanes into `acc`.
    fn fold(
        &mut self,
        r: &Reduction,
        ins: &ebpf_sim_vm::program::Instruction,
        copy: u64,
        last: bool,
    ) {
        let i = ins.decoded.insn;
        let reg = matches!(ins.decoded.spec.op, Op::Alu { reg: true, .. });
        let n = r.lanes.len() as u64;
        let lane = r.lanes[((copy - 1) % n) as usize];
        // Each lane starts with the value of its first copy.
        let op = if copy <= n { AluOp::Mov } else { r.op };
        self.alu(op, r.is64, reg, lane, i.src, i.imm);
        if last {
            let (&first, rest) = r.lanes.split_first().expect("a reduction has a lane");
            for &other in rest {
                self.alu(r.op, r.is64, true, first, other, 0);
            }
            self.alu(r.op, r.is64, true, i.dst, first, 0);
        }
    }

    /// A loop that is one block closed by a backward conditional jump (see
    /// [`unrollable_loop`]), its head's label already bound. While the budget still covers
    /// `UNROLL` iterations (`UNROLL_SHORT` for short bodies), they run as as many copies of
    /// the body with no budget check
    /// between them (none could fail) and one charge for all; the iterations that leave
    /// the loop early charge what they ran on the way out. With less budget left, the
    /// original loop runs, checking at every back edge as the interpreter does.
    fn unrolled_loop(&mut self, body: &[ebpf_sim_vm::program::Instruction]) {
        let (last, straight) = body.split_last().expect("a loop has instructions");
        let compare = Compare::of(last).expect("an unrollable loop ends in a conditional jump");
        let cond = compare.cond;
        let cost = body.len() as u64;
        let copies = if body.len() <= SHORT_BODY {
            UNROLL_SHORT
        } else {
            UNROLL
        };
        let all = cost * copies;
        let head = self.labels[body[0].index];
        let after = self.labels[last.index + last.decoded.slots()];
        let single = self.ops.new_dynamic_label();
        self.flush();
        self.r10_holds = None;
        dynasm!(self.ops ; .arch x64 ; cmp rbp, all as i32 ; jl =>single);
        let counted = counted_loop(straight, compare, copies);
        if let Some(c) = counted {
            // The counter stays below the bound through all copies but the last: their
            // exit tests could not exit.
            let x = self.reg(compare.dst);
            dynasm!(self.ops ; .arch x64 ; cmp Rq(x), c.below ; jae =>single);
        }
        let folds = match counted {
            // The whole body: a register the exit test reads is no accumulator.
            Some(_) => reductions(body, &self.spares),
            None => Vec::new(),
        };
        let steps = counted.filter(|c| self.counter_steps(straight, compare.dst, c.step, copies));
        let hoist = steps.and_then(|c| self.hoist(body, compare.dst, c.step, copies));
        let lanes: usize = folds.iter().map(|r| r.lanes.len()).sum();
        let plan = CopyPlan {
            copies,
            counter: compare.dst,
            steps,
            hoist: hoist.and_then(|h| self.hoist_sum(h, lanes)),
            folds: &folds,
        };
        for copy in 1..=copies {
            self.emit_copy(straight, copy, &plan);
            if copy < copies && counted.is_some() {
                continue;
            }
            if copy < copies {
                let out = self.ops.new_dynamic_label();
                let charge = (cost * copy) as i32;
                self.stubs.push(Stub::Cold {
                    label: out,
                    emit: Box::new(move |ops: &mut Assembler| {
                        dynasm!(ops ; .arch x64 ; sub rbp, charge ; jmp =>after)
                    }),
                });
                self.compare(compare);
                self.jcc(cond, true, out);
                if compare.dst == FRAME_REG {
                    self.r10_holds = None;
                }
            } else {
                self.sub_rbp(all);
                self.compare(compare);
                self.jcc(cond, false, head);
                dynasm!(self.ops ; .arch x64 ; jmp =>after);
            }
        }
        self.align_code(32);
        dynasm!(self.ops ; .arch x64 ; =>single);
        self.r10_holds = None;
        let mut k = 0;
        while k < straight.len() {
            k += self.emit_at(straight, k);
        }
        self.pending = cost;
        self.backward_jump(compare, last.index, single);
        self.r10_holds = None;
    }

    fn insn(&mut self, ins: &ebpf_sim_vm::program::Instruction) {
        let pc = ins.index;
        let i = ins.decoded.insn;
        match ins.decoded.spec.op {
            Op::Alu { op, is64, reg } => self.alu(op, is64, reg, i.dst, i.src, i.imm),
            Op::End { kind, bits } => {
                let d = self.reg(i.dst);
                match (kind, bits) {
                    (Endian::Le, 16) => dynasm!(self.ops ; .arch x64 ; movzx Rd(d), Rw(d)),
                    (Endian::Le, 32) => dynasm!(self.ops ; .arch x64 ; mov Rd(d), Rd(d)),
                    (Endian::Le, _) => {}
                    (_, 16) => dynasm!(self.ops ; .arch x64 ; ror Rw(d), 8 ; movzx Rd(d), Rw(d)),
                    (_, 32) => dynasm!(self.ops ; .arch x64 ; bswap Rd(d)),
                    _ => dynasm!(self.ops ; .arch x64 ; bswap Rq(d)),
                }
            }
            Op::Load { size, signed } => {
                let d = self.reg(i.dst);
                let at = self.address_indexed(i.src, i.off, size, false, false, pc);
                let form = match (size, signed) {
                    (Size::B, false) => Form::LoadU8,
                    (Size::H, false) => Form::LoadU16,
                    (Size::W, false) => Form::LoadU32,
                    (Size::DW, _) => Form::Load64,
                    (Size::B, true) => Form::LoadS8,
                    (Size::H, true) => Form::LoadS16,
                    (Size::W, true) => Form::LoadS32,
                };
                self.memory(form, d, at, 0);
            }
            Op::StoreImm { size } | Op::StoreReg { size } => {
                let at = self.address_indexed(i.dst, i.off, size, true, false, pc);
                if matches!(ins.decoded.spec.op, Op::StoreImm { .. }) {
                    let form = match size {
                        Size::B => Form::StoreImm8,
                        Size::H => Form::StoreImm16,
                        Size::W => Form::StoreImm32,
                        Size::DW => Form::StoreImm64,
                    };
                    self.memory(form, 0, at, i.imm);
                } else {
                    let s = self.read(i.src, R9);
                    let form = match size {
                        Size::B => Form::Store8,
                        Size::H => Form::Store16,
                        Size::W => Form::Store32,
                        Size::DW => Form::Store64,
                    };
                    self.memory(form, s, at, 0);
                }
            }
            Op::Atomic { size, op } => self.atomic(size, op, i.dst, i.src, i.off, pc),
            Op::Lddw => {
                let d = self.reg(i.dst);
                dynasm!(self.ops ; .arch x64 ; mov Rq(d), QWORD ins.value as i64);
            }
            Op::LdAbs { size } | Op::LdInd { size } => {
                let indirect = matches!(ins.decoded.spec.op, Op::LdInd { .. });
                self.ld_packet(size, indirect, i.src, i.imm);
            }
            Op::Ja { .. } => {
                let t = ins.target.expect("jumps have targets");
                let l = if t <= pc {
                    self.budget_check(pc);
                    if self.thread_loop_test(t) {
                        return;
                    }
                    self.labels[t]
                } else if self.charging.single_jump[t] {
                    self.forward_label(t)
                } else {
                    self.flush();
                    self.labels[t]
                };
                self.pending = 0;
                dynasm!(self.ops ; .arch x64 ; jmp =>l);
            }
            Op::Jmp { cond, is64, reg } => {
                let t = ins.target.expect("jumps have targets");
                self.cond_jump(cond, is64, reg, i.dst, i.src, i.imm, pc, t);
            }
            Op::Call => match ins.target {
                Some(t) => {
                    let l = self.labels[t];
                    self.local_call(pc, |g| dynasm!(g.ops ; .arch x64 ; call =>l));
                }
                None => self.helper_call(pc),
            },
            Op::Callx => self.callx(i.dst, pc),
            Op::Exit => {
                self.flush();
                dynasm!(self.ops ; .arch x64 ; ret);
            }
        }
    }

    fn alu(&mut self, op: AluOp, is64: bool, reg: bool, dst: u8, src: u8, imm: i32) {
        let d = self.reg(dst);
        if op == AluOp::Mov && is64 && reg && src == FRAME_REG {
            if self.fp_in_r11 {
                dynasm!(self.ops ; .arch x64 ; mov Rq(d), r11);
            } else {
                dynasm!(self.ops ; .arch x64 ; mov Rq(d), [r12 + c::FP]);
            }
            return;
        }
        let s = if reg { self.read(src, R11) } else { R11 };
        macro_rules! both {
            ($mn:ident) => {
                // The sign-extended 8-bit immediate form where the value fits: denser code.
                match (is64, reg, i8::try_from(imm)) {
                    (true, true, _) => dynasm!(self.ops ; .arch x64 ; $mn Rq(d), Rq(s)),
                    (true, false, Ok(b)) => dynasm!(self.ops ; .arch x64 ; $mn Rq(d), BYTE b),
                    (true, false, Err(_)) => dynasm!(self.ops ; .arch x64 ; $mn Rq(d), imm),
                    (false, true, _) => dynasm!(self.ops ; .arch x64 ; $mn Rd(d), Rd(s)),
                    (false, false, Ok(b)) => dynasm!(self.ops ; .arch x64 ; $mn Rd(d), BYTE b),
                    (false, false, Err(_)) => dynasm!(self.ops ; .arch x64 ; $mn Rd(d), imm),
                }
            };
        }
        match op {
            AluOp::Add => both!(add),
            AluOp::Sub => both!(sub),
            AluOp::Or => both!(or),
            AluOp::And => both!(and),
            AluOp::Xor => both!(xor),
            AluOp::Mov => match (is64, reg) {
                (true, true) => dynasm!(self.ops ; .arch x64 ; mov Rq(d), Rq(s)),
                // A 32-bit move zero-extends, which is the sign extension for imm >= 0.
                (true, false) if imm >= 0 => dynasm!(self.ops ; .arch x64 ; mov Rd(d), imm),
                (true, false) => dynasm!(self.ops ; .arch x64 ; mov Rq(d), imm),
                (false, true) => dynasm!(self.ops ; .arch x64 ; mov Rd(d), Rd(s)),
                (false, false) => dynasm!(self.ops ; .arch x64 ; mov Rd(d), imm),
            },
            AluOp::Mul => match (is64, reg) {
                (true, true) => dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(s)),
                (true, false) => dynasm!(self.ops ; .arch x64 ; imul Rq(d), Rq(d), imm),
                (false, true) => dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(s)),
                (false, false) => dynasm!(self.ops ; .arch x64 ; imul Rd(d), Rd(d), imm),
            },
            AluOp::Neg => {
                if is64 {
                    dynasm!(self.ops ; .arch x64 ; neg Rq(d))
                } else {
                    dynasm!(self.ops ; .arch x64 ; neg Rd(d))
                }
            }
            AluOp::Movsx8 => {
                if is64 {
                    dynasm!(self.ops ; .arch x64 ; movsx Rq(d), Rb(s))
                } else {
                    dynasm!(self.ops ; .arch x64 ; movsx Rd(d), Rb(s))
                }
            }
            AluOp::Movsx16 => {
                if is64 {
                    dynasm!(self.ops ; .arch x64 ; movsx Rq(d), Rw(s))
                } else {
                    dynasm!(self.ops ; .arch x64 ; movsx Rd(d), Rw(s))
                }
            }
            AluOp::Movsx32 => dynasm!(self.ops ; .arch x64 ; movsxd Rq(d), Rd(s)),
            AluOp::Lsh | AluOp::Rsh | AluOp::Arsh => {
                if reg {
                    // The count must be in cl, which is r4's register.
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov r10, Rq(d)
                        ; mov r9, rcx
                        ; mov rcx, Rq(s)
                    );
                    match (op, is64) {
                        (AluOp::Lsh, true) => dynasm!(self.ops ; .arch x64 ; shl r10, cl),
                        (AluOp::Rsh, true) => dynasm!(self.ops ; .arch x64 ; shr r10, cl),
                        (AluOp::Arsh, true) => dynasm!(self.ops ; .arch x64 ; sar r10, cl),
                        (AluOp::Lsh, false) => dynasm!(self.ops ; .arch x64 ; shl r10d, cl),
                        (AluOp::Rsh, false) => dynasm!(self.ops ; .arch x64 ; shr r10d, cl),
                        _ => dynasm!(self.ops ; .arch x64 ; sar r10d, cl),
                    }
                    dynasm!(self.ops ; .arch x64 ; mov rcx, r9 ; mov Rq(d), r10);
                } else {
                    let n = (imm as u32 & if is64 { 63 } else { 31 }) as i8;
                    match (op, is64) {
                        (AluOp::Lsh, true) => dynasm!(self.ops ; .arch x64 ; shl Rq(d), n),
                        (AluOp::Rsh, true) => dynasm!(self.ops ; .arch x64 ; shr Rq(d), n),
                        (AluOp::Arsh, true) => dynasm!(self.ops ; .arch x64 ; sar Rq(d), n),
                        (AluOp::Lsh, false) => dynasm!(self.ops ; .arch x64 ; shl Rd(d), n),
                        (AluOp::Rsh, false) => dynasm!(self.ops ; .arch x64 ; shr Rd(d), n),
                        _ => dynasm!(self.ops ; .arch x64 ; sar Rd(d), n),
                    }
                }
            }
            AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod => {
                self.divide(op, is64, reg, d, s, imm)
            }
        }
    }

    /// Division through rdx:rax, which hold r3 and r0: both are saved in r9/r10 and the
    /// divisor kept in r11. Zero divisors and INT_MIN / -1 follow the kernel, not the trap.
    fn divide(&mut self, op: AluOp, is64: bool, reg: bool, d: u8, s: u8, imm: i32) {
        let done = self.ops.new_dynamic_label();
        let special = self.ops.new_dynamic_label();
        let signed = matches!(op, AluOp::Sdiv | AluOp::Smod);
        let modulo = matches!(op, AluOp::Mod | AluOp::Smod);
        if reg {
            if s != R11 {
                dynasm!(self.ops ; .arch x64 ; mov r11, Rq(s));
            }
        } else if is64 {
            dynasm!(self.ops ; .arch x64 ; mov r11, imm);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov r11d, imm);
        }
        if is64 {
            dynasm!(self.ops ; .arch x64 ; test r11, r11 ; jz =>special);
        } else {
            dynasm!(self.ops ; .arch x64 ; test r11d, r11d ; jz =>special);
        }
        if signed {
            if is64 {
                dynasm!(self.ops ; .arch x64 ; cmp r11, -1 ; je =>special);
            } else {
                dynasm!(self.ops ; .arch x64 ; cmp r11d, -1 ; je =>special);
            }
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov r9, rax
            ; mov r10, rdx
            ; mov rax, Rq(d)
        );
        match (signed, is64) {
            (false, true) => dynasm!(self.ops ; .arch x64 ; xor edx, edx ; div r11),
            (false, false) => dynasm!(self.ops ; .arch x64 ; xor edx, edx ; div r11d),
            (true, true) => dynasm!(self.ops ; .arch x64 ; cqo ; idiv r11),
            (true, false) => dynasm!(self.ops ; .arch x64 ; cdq ; idiv r11d),
        }
        let result = if modulo { RDX } else { RAX };
        if is64 {
            dynasm!(self.ops ; .arch x64 ; mov r11, Rq(result));
        } else {
            dynasm!(self.ops ; .arch x64 ; mov r11d, Rd(result));
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, r9
            ; mov rdx, r10
            ; mov Rq(d), r11
            ; =>done
        );
        // Divisor 0: quotient 0, remainder the dividend. Divisor -1 (signed): quotient
        // -dividend (INT_MIN stays INT_MIN), remainder 0. Out of line: rare.
        let emit = move |ops: &mut Assembler| {
            if signed {
                let zero = ops.new_dynamic_label();
                if is64 {
                    dynasm!(ops ; .arch x64 ; test r11, r11 ; jz =>zero);
                } else {
                    dynasm!(ops ; .arch x64 ; test r11d, r11d ; jz =>zero);
                }
                match (modulo, is64) {
                    (false, true) => dynasm!(ops ; .arch x64 ; neg Rq(d)),
                    (false, false) => dynasm!(ops ; .arch x64 ; neg Rd(d)),
                    (true, _) => dynasm!(ops ; .arch x64 ; xor Rd(d), Rd(d)),
                }
                dynasm!(ops ; .arch x64 ; jmp =>done ; =>zero);
            }
            match (modulo, is64) {
                (false, _) => dynasm!(ops ; .arch x64 ; xor Rd(d), Rd(d)),
                (true, true) => {}
                (true, false) => dynasm!(ops ; .arch x64 ; mov Rd(d), Rd(d)),
            }
            dynasm!(ops ; .arch x64 ; jmp =>done);
        };
        self.stubs.push(Stub::Cold {
            label: special,
            emit: Box::new(emit),
        });
    }

    fn atomic(&mut self, size: Size, op: AtomicOp, dst: u8, src: u8, off: i16, pc: usize) {
        let n = -self.address(dst, off, size, true, true, pc);
        // A run is single-threaded: plain read-modify-write sequences are atomic for it.
        let s = self.read(src, R11);
        let w = size == Size::DW;
        macro_rules! rmw {
            ($mn:ident) => {
                if w {
                    dynasm!(self.ops ; .arch x64 ; mov r9, [r10 - n] ; $mn r9, Rq(s) ; mov [r10 - n], r9)
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov r9d, [r10 - n] ; $mn r9d, Rd(s) ; mov [r10 - n], r9d)
                }
            };
        }
        match op {
            AtomicOp::Add => rmw!(add),
            AtomicOp::Or => rmw!(or),
            AtomicOp::And => rmw!(and),
            AtomicOp::Xor => rmw!(xor),
            AtomicOp::FetchAdd
            | AtomicOp::FetchOr
            | AtomicOp::FetchAnd
            | AtomicOp::FetchXor
            | AtomicOp::Xchg => {
                // old value to r11, new value stored, src = old
                if w {
                    dynasm!(self.ops ; .arch x64 ; mov r11, [r10 - n] ; mov r9, r11);
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov r11d, [r10 - n] ; mov r9d, r11d);
                }
                let sr = self.reg(src);
                match op {
                    AtomicOp::FetchAdd => dynasm!(self.ops ; .arch x64 ; add r9, Rq(sr)),
                    AtomicOp::FetchOr => dynasm!(self.ops ; .arch x64 ; or r9, Rq(sr)),
                    AtomicOp::FetchAnd => dynasm!(self.ops ; .arch x64 ; and r9, Rq(sr)),
                    AtomicOp::FetchXor => dynasm!(self.ops ; .arch x64 ; xor r9, Rq(sr)),
                    _ => dynasm!(self.ops ; .arch x64 ; mov r9, Rq(sr)),
                }
                if w {
                    dynasm!(self.ops ; .arch x64 ; mov [r10 - n], r9 ; mov Rq(sr), r11);
                } else {
                    dynasm!(self.ops ; .arch x64 ; mov [r10 - n], r9d ; mov Rd(sr), r11d);
                }
            }
            AtomicOp::Cmpxchg => {
                let skip = self.ops.new_dynamic_label();
                if w {
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov r9, [r10 - n]
                        ; cmp r9, rax
                        ; jne =>skip
                        ; mov [r10 - n], Rq(s)
                        ; =>skip
                        ; mov rax, r9
                    );
                } else {
                    dynasm!(self.ops
                        ; .arch x64
                        ; mov r9d, [r10 - n]
                        ; cmp r9d, eax
                        ; jne =>skip
                        ; mov [r10 - n], Rd(s)
                        ; =>skip
                        ; mov eax, r9d
                    );
                }
            }
        }
    }

    /// LD_ABS/LD_IND: r0 = packet[off..off+size] in network order; out of range ends the
    /// program with r0 = 0, as in the kernel.
    fn ld_packet(&mut self, size: Size, indirect: bool, src: u8, imm: i32) {
        let fail = self.ops.new_dynamic_label();
        let ok = self.ops.new_dynamic_label();
        let n = size.bytes() as i32;
        let packet = PACKET_REGION as i32 * REGION_SIZE;
        dynasm!(self.ops ; .arch x64 ; mov r11, imm);
        if indirect {
            let s = self.read(src, R9);
            dynasm!(self.ops ; .arch x64 ; mov r9d, Rd(s) ; add r11, r9);
        }
        dynasm!(self.ops
            ; .arch x64
            ; test r11, r11
            ; js =>fail
            ; mov r9, QWORD (PACKET_REGION as i64) << REGION_SHIFT
            ; add r9, r11
            ; add r9, n
            ; mov r10, [r12 + c::FAST]
            ; cmp r9, [r10 + packet + c::REGION_LOAD_LIMIT]
            ; jae =>fail
            ; add r11, [r10 + packet + c::REGION_HOST]
        );
        match size {
            Size::B => dynasm!(self.ops ; .arch x64 ; movzx eax, BYTE [r11]),
            Size::H => dynasm!(self.ops ; .arch x64 ; movzx eax, WORD [r11] ; ror ax, 8),
            _ => dynasm!(self.ops ; .arch x64 ; mov eax, DWORD [r11] ; bswap eax),
        }
        dynasm!(self.ops
            ; .arch x64
            ; jmp =>ok
            ; =>fail
            ; xor eax, eax
            ; mov QWORD [r12 + c::STATUS], Status::Ok as i32
            ; jmp ->exit
            ; =>ok
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn cond_jump(
        &mut self,
        cond: JmpCond,
        is64: bool,
        reg: bool,
        dst: u8,
        src: u8,
        imm: i32,
        pc: usize,
        t: usize,
    ) {
        let compare = Compare {
            cond,
            is64,
            reg,
            dst,
            src,
            imm,
        };
        if t > pc {
            let l = self.forward_label(t);
            self.compare(compare);
            self.jcc(cond, false, l);
            return;
        }
        let l = self.labels[t];
        self.backward_jump(compare, pc, l);
    }

    /// A backward conditional jump: the budget is tested first (the stub decides whether
    /// the jump would have been taken), so the loop costs one taken branch and no extra
    /// jump.
    fn backward_jump(&mut self, compare: Compare, pc: usize, l: DynamicLabel) {
        let cond = compare.cond;
        let spent = self.ops.new_dynamic_label();
        let fall_through = self.ops.new_dynamic_label();
        self.charge_and_test();
        dynasm!(self.ops ; .arch x64 ; js =>spent);
        self.compare(compare);
        self.jcc(cond, false, l);
        dynasm!(self.ops ; .arch x64 ; =>fall_through);
        self.stubs.push(Stub::BackEdge {
            label: spent,
            fall_through,
            pc,
            compare,
        });
    }

    /// A backward `ja` to a loop head that is a lone forward conditional jump (a loop with
    /// its test at the top): the test is repeated here, so an iteration takes one taken
    /// branch instead of two. Both ways continue with the count the head's own test would
    /// have left pending (its one instruction), as the code after it expects.
    fn thread_loop_test(&mut self, head: usize) -> bool {
        let instructions = self.program.instructions();
        let Some(k) = self.program.position(head) else {
            return false;
        };
        let test = &instructions[k];
        let (Some(compare), Some(t), Some(next)) =
            (Compare::of(test), test.target, instructions.get(k + 1))
        else {
            return false;
        };
        if t <= head || self.charging.costs[head] != 1 || self.charging.join[next.index] {
            return false;
        }
        self.pending = 1;
        let out = self.forward_label(t);
        let body = self.labels[next.index];
        self.compare(compare);
        self.jcc(compare.cond, true, body);
        dynasm!(self.ops ; .arch x64 ; jmp =>out);
        self.pending = 0;
        true
    }

    /// The cmp or test of a conditional jump (flags for [`Self::jcc`]).
    fn compare(&mut self, c: Compare) {
        let Compare {
            cond,
            is64,
            reg,
            dst,
            src,
            imm,
        } = c;
        let d = self.read(dst, R10);
        if reg {
            let s = self.read(src, R11);
            match (cond, is64) {
                (JmpCond::Set, true) => dynasm!(self.ops ; .arch x64 ; test Rq(d), Rq(s)),
                (JmpCond::Set, false) => dynasm!(self.ops ; .arch x64 ; test Rd(d), Rd(s)),
                (_, true) => dynasm!(self.ops ; .arch x64 ; cmp Rq(d), Rq(s)),
                (_, false) => dynasm!(self.ops ; .arch x64 ; cmp Rd(d), Rd(s)),
            }
        } else {
            match (cond, is64) {
                (JmpCond::Set, true) => dynasm!(self.ops ; .arch x64 ; test Rq(d), imm),
                (JmpCond::Set, false) => dynasm!(self.ops ; .arch x64 ; test Rd(d), imm),
                (_, true) => match i8::try_from(imm) {
                    Ok(b) => dynasm!(self.ops ; .arch x64 ; cmp Rq(d), BYTE b as i32),
                    Err(_) => dynasm!(self.ops ; .arch x64 ; cmp Rq(d), imm),
                },
                (_, false) => match i8::try_from(imm) {
                    Ok(b) => dynasm!(self.ops ; .arch x64 ; cmp Rd(d), BYTE b as i32),
                    Err(_) => dynasm!(self.ops ; .arch x64 ; cmp Rd(d), imm),
                },
            }
        }
    }

    /// The conditional jump of `cond` (or of its negation) to `l`, after a cmp/test.
    fn jcc(&mut self, cond: JmpCond, negate: bool, l: DynamicLabel) {
        use JmpCond::*;
        match (cond, negate) {
            (Eq, false) | (Ne, true) => dynasm!(self.ops ; .arch x64 ; je =>l),
            (Ne, false) | (Eq, true) => dynasm!(self.ops ; .arch x64 ; jne =>l),
            (Set, false) => dynasm!(self.ops ; .arch x64 ; jnz =>l),
            (Set, true) => dynasm!(self.ops ; .arch x64 ; jz =>l),
            (Gt, false) | (Le, true) => dynasm!(self.ops ; .arch x64 ; ja =>l),
            (Ge, false) | (Lt, true) => dynasm!(self.ops ; .arch x64 ; jae =>l),
            (Lt, false) | (Ge, true) => dynasm!(self.ops ; .arch x64 ; jb =>l),
            (Le, false) | (Gt, true) => dynasm!(self.ops ; .arch x64 ; jbe =>l),
            (Sgt, false) | (Sle, true) => dynasm!(self.ops ; .arch x64 ; jg =>l),
            (Sge, false) | (Slt, true) => dynasm!(self.ops ; .arch x64 ; jge =>l),
            (Slt, false) | (Sge, true) => dynasm!(self.ops ; .arch x64 ; jl =>l),
            (Sle, false) | (Sgt, true) => dynasm!(self.ops ; .arch x64 ; jle =>l),
        }
    }

    /// A helper call, direct: r1..r5 are already where the native convention passes the
    /// first five arguments; the context goes in r9 and the call site on the stack
    /// ([`c::helper_entry`]). r0 is saved first (a tail call leaves it unchanged), and the
    /// argument registers the program may read after the call (the helper's native code
    /// clobbers them; the interpreter keeps them) in the context. The entry's second return
    /// value (rdx) is not [`c::CONTINUE`] when the run stops or continues elsewhere.
    fn helper_call(&mut self, pc: usize) {
        self.flush();
        let keep = self.args_live[pc];
        let kept = (1..=5u8).filter(move |r| keep & (1 << r) != 0);
        dynasm!(self.ops ; .arch x64 ; mov [r12 + c::SAVED_R0], rax);
        // r1..r5's slots in `args`.
        let slot = |r: u8| c::ARGS + 8 * (r as i32 - 1);
        for r in kept.clone() {
            dynasm!(self.ops ; .arch x64 ; mov [r12 + slot(r)], Rq(MAP[r as usize]));
        }
        // Every function body runs with rsp 8 below a 16-byte boundary (see `local_call`):
        // the pushed site aligns the stack for the call.
        dynasm!(self.ops
            ; .arch x64
            ; mov [r12 + c::REMAINING], rbp
            ; mov r9, r12
            ; mov r11, QWORD self.sites[pc] as i64
            ; push r11
            ; mov r11, QWORD self.helper_entry as i64
            ; call r11
            ; add rsp, 8
            ; mov rbp, [r12 + c::REMAINING]
        );
        let stop = self.ops.new_dynamic_label();
        dynasm!(self.ops ; .arch x64 ; test rdx, rdx ; jnz =>stop);
        for r in kept {
            dynasm!(self.ops ; .arch x64 ; mov Rq(MAP[r as usize]), [r12 + slot(r)]);
        }
        self.r10_holds = None;
        self.stubs.push(Stub::HelperStop { label: stop });
    }

    /// `callx`: the trampoline either returns the code address of a function entry, or
    /// runs the helper the value names and returns 0 with r0 in the context. r1..r5 go to
    /// the context (the helper reads them there, and they come back unchanged).
    fn callx(&mut self, dst: u8, pc: usize) {
        let helper_done = self.ops.new_dynamic_label();
        let done = self.ops.new_dynamic_label();
        let v = self.read(dst, R10);
        self.flush();
        // Function bodies run 8 below a 16-byte boundary (see `local_call`).
        dynasm!(self.ops
            ; .arch x64
            ; mov [r12 + c::SAVED_R0], rax
            ; mov [r12 + c::ARGS], rdi
            ; mov [r12 + c::ARGS + 8], rsi
            ; mov [r12 + c::ARGS + 16], rdx
            ; mov [r12 + c::ARGS + 24], rcx
            ; mov [r12 + c::ARGS + 32], r8
            ; mov rsi, Rq(v)
            ; mov rdi, r12
            ; mov rdx, pc as i32
            ; mov r11, QWORD self.callx_tramp as i64
            ; mov [r12 + c::REMAINING], rbp
            ; sub rsp, 8
            ; call r11
            ; add rsp, 8
            ; mov rbp, [r12 + c::REMAINING]
            ; cmp QWORD [r12 + c::STATUS], 0
            ; jne ->exit
        );
        self.load_args();
        dynasm!(self.ops
            ; .arch x64
            ; test rax, rax
            ; jz =>helper_done
            ; mov r9, rax
            ; mov rax, [r12 + c::SAVED_R0]
        );
        // r9 survives the frame setup (which uses r10 and r11).
        self.local_call(pc, |g| dynasm!(g.ops ; .arch x64 ; call r9));
        dynasm!(self.ops
            ; .arch x64
            ; jmp =>done
            ; =>helper_done
            ; mov rax, [r12 + c::CALLX_R0]
            ; =>done
        );
    }

    /// A bpf-to-bpf call: budget and depth checks, a new frame (mapped in the region table,
    /// its r10 and host stack top), r6..r9 saved across the call.
    fn local_call(&mut self, pc: usize, call: impl FnOnce(&mut Self)) {
        self.budget_check(pc);
        let too_deep = self.ops.new_dynamic_label();
        self.stubs.push(Stub::CallDepth {
            label: too_deep,
            pc,
        });
        let stack = STACK_REGION as i32 * REGION_SIZE;
        let frame_step = 1i64 << 32;
        // The host stack top moves by a frame's size, r10 by a region.
        let delta_step = STACK_SIZE as i64 - frame_step;
        let no_new_max = self.ops.new_dynamic_label();
        dynasm!(self.ops
            ; .arch x64
            ; mov r10, [r12 + c::DEPTH]
            ; cmp r10, (MAX_CALL_FRAMES - 1) as i32
            ; jae =>too_deep
            ; add r10, 1
            ; mov [r12 + c::DEPTH], r10
            ; cmp r10, [r12 + c::MAX_DEPTH]
            ; jbe =>no_new_max
            ; mov [r12 + c::MAX_DEPTH], r10
            ; =>no_new_max
            ; shl r10, REGION_BITS as i8
            ; add r10, [r12 + c::FAST]
            ; mov r11, QWORD frame_step
            ; add r11, [r12 + c::FP]
            ; mov [r12 + c::FP], r11
            ; add r11, 1
            ; mov [r10 + stack + c::REGION_LOAD_LIMIT], r11
            ; mov [r10 + stack + c::REGION_STORE_LIMIT], r11
            ; add QWORD [r12 + c::STACK_TOP], STACK_SIZE as i32
            ; mov r11, QWORD delta_step
            ; add [r12 + c::STACK_DELTA], r11
            ; push rbx
            ; push r13
            ; push r14
            ; push r15
            ; sub rsp, 8
        );
        call(self);
        dynasm!(self.ops
            ; .arch x64
            ; add rsp, 8
            ; pop r15
            ; pop r14
            ; pop r13
            ; pop rbx
            ; sub QWORD [r12 + c::STACK_TOP], STACK_SIZE as i32
            ; mov r10, QWORD frame_step
            ; sub [r12 + c::FP], r10
            ; mov r10, QWORD delta_step
            ; sub [r12 + c::STACK_DELTA], r10
            ; mov r11, [r12 + c::DEPTH]
            ; mov r10, r11
            ; shl r10, REGION_BITS as i8
            ; add r10, [r12 + c::FAST]
            ; mov QWORD [r10 + stack + c::REGION_LOAD_LIMIT], 0
            ; mov QWORD [r10 + stack + c::REGION_STORE_LIMIT], 0
            ; sub r11, 1
            ; mov [r12 + c::DEPTH], r11
        );
    }

    fn emit_stubs(&mut self) {
        for stub in std::mem::take(&mut self.stubs) {
            match stub {
                Stub::Memory {
                    label,
                    resume,
                    pc,
                    info,
                } => {
                    // Not in the fast table: the memory's slow path (regions beyond the
                    // table, far mappings of simulated kernel memory) before giving up.
                    let fault = self.ops.new_dynamic_label();
                    let far = self.far_tramp;
                    dynasm!(self.ops
                        ; .arch x64
                        ; =>label
                        ; push rax
                        ; push rdi
                        ; push rsi
                        ; push rdx
                        ; push rcx
                        ; push r8
                        ; push r11
                        ; mov rdi, r12
                        ; mov rsi, r11
                        ; mov rdx, info as i32
                        ; mov rax, QWORD far as i64
                        ; mov r9, rsp
                        ; and rsp, -16
                        ; push r9
                        ; sub rsp, 8
                        ; call rax
                        ; add rsp, 8
                        ; pop rsp
                        ; mov r10, rax
                        ; pop r11
                        ; pop r8
                        ; pop rcx
                        ; pop rdx
                        ; pop rsi
                        ; pop rdi
                        ; pop rax
                        ; test r10, r10
                        ; jz =>fault
                        ; add r10, (info & 0xff) as i32
                        ; jmp =>resume
                        ; =>fault
                        ; mov [r12 + c::FAULT_ADDR], r11
                        ; mov QWORD [r12 + c::FAULT_INFO], info as i32
                    );
                    self.status_exit(Status::Memory, pc);
                }
                Stub::Budget { label, pc } => {
                    dynasm!(self.ops ; .arch x64 ; =>label);
                    self.status_exit(Status::Budget, pc);
                }
                Stub::CallDepth { label, pc } => {
                    dynasm!(self.ops ; .arch x64 ; =>label);
                    self.status_exit(Status::CallDepth, pc);
                }
                Stub::HelperStop { label } => {
                    dynasm!(self.ops
                        ; .arch x64
                        ; =>label
                        ; cmp rdx, c::STOP as i32
                        ; je ->exit
                        ; mov r11, rdx
                    );
                    self.load_args();
                    dynasm!(self.ops ; .arch x64 ; jmp r11);
                }
                Stub::BackEdge {
                    label,
                    fall_through,
                    pc,
                    compare,
                } => {
                    let taken = self.ops.new_dynamic_label();
                    dynasm!(self.ops ; .arch x64 ; =>label);
                    self.compare(compare);
                    self.jcc(compare.cond, false, taken);
                    dynasm!(self.ops ; .arch x64 ; jmp =>fall_through ; =>taken);
                    self.status_exit(Status::Budget, pc);
                }
                Stub::Cold { label, emit } => {
                    dynasm!(self.ops ; .arch x64 ; =>label);
                    emit(&mut self.ops);
                }
            }
        }
    }
}

fn in_frame(off: i16, size: Size) -> bool {
    let off = off as i64;
    off >= -(STACK_SIZE as i64) && off + size.bytes() as i64 <= 0
}
