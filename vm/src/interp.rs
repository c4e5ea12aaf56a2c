//! The interpreter.
//!
//! A [`Program`] is lowered once into a flat array of [`XInsn`]: one dense opcode per
//! operation, operand kind and width (so one `match` dispatches straight to the work),
//! immediates already widened, jump targets absolute, and stack accesses at constant
//! offsets from r10 turned into unchecked forms (r10 is read-only, so they are provably
//! inside the frame). Every other access goes through the region check of [`Memory`].

use crate::error::VmError;
use crate::helpers::{HelperError, Helpers};
use crate::isa::{AluOp, AtomicOp, Endian, JmpCond, Op, Size, MAX_CALL_FRAMES, STACK_SIZE};
use crate::memory::{
    self, frame_pointer, vaddr, Access, Memory, CODE_REGION, PACKET_REGION, REGION_SHIFT,
};
use crate::program::Program;

/// The helper call in progress: pc, id and name (see `Interpreter::execute`).
type Calling = Option<(usize, u64, &'static str)>;

/// The default instruction budget, the kernel's limit on processed instructions.
pub const DEFAULT_BUDGET: u64 = 1_000_000;

/// Settings of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Most instructions one run may execute. The count is checked at backward jumps and
    /// calls (the only ways to run unboundedly), so a run stops at the first of those
    /// after passing it; the JITs check at the same points and stop at the same place.
    pub budget: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            budget: DEFAULT_BUDGET,
        }
    }
}

macro_rules! ops {
    ($($name:ident),* $(,)?) => {
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, clippy::enum_variant_names)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u8)]
        enum X { $($name),* }
    };
}

// K: immediate operand, X: register operand; 32 suffix: 32-bit ALU / JMP32.
ops! {
    ADD_K, ADD_X, SUB_K, SUB_X, MUL_K, MUL_X, DIV_K, DIV_X, SDIV_K, SDIV_X, MOD_K, MOD_X,
    SMOD_K, SMOD_X, OR_K, OR_X, AND_K, AND_X, XOR_K, XOR_X, LSH_K, LSH_X, RSH_K, RSH_X,
    ARSH_K, ARSH_X, MOV_K, MOV_X, NEG, MOVSX8, MOVSX16, MOVSX32,
    ADD32_K, ADD32_X, SUB32_K, SUB32_X, MUL32_K, MUL32_X, DIV32_K, DIV32_X, SDIV32_K,
    SDIV32_X, MOD32_K, MOD32_X, SMOD32_K, SMOD32_X, OR32_K, OR32_X, AND32_K, AND32_X,
    XOR32_K, XOR32_X, LSH32_K, LSH32_X, RSH32_K, RSH32_X, ARSH32_K, ARSH32_X, MOV32_K,
    MOV32_X, NEG32, MOVSX8_32, MOVSX16_32,
    LE16, LE32, SWAP16, SWAP32, SWAP64, NOP,
    LDXB, LDXH, LDXW, LDXDW, LDXSB, LDXSH, LDXSW,
    STB, STH, STW, STDW, STXB, STXH, STXW, STXDW,
    // Accesses at a constant offset from r10, proven inside the frame.
    FP_LDXB, FP_LDXH, FP_LDXW, FP_LDXDW, FP_LDXSB, FP_LDXSH, FP_LDXSW,
    FP_STB, FP_STH, FP_STW, FP_STDW, FP_STXB, FP_STXH, FP_STXW, FP_STXDW,
    ATOMIC, LDDW, LDABS, LDIND,
    JA, JEQ_K, JEQ_X, JGT_K, JGT_X, JGE_K, JGE_X, JSET_K, JSET_X, JNE_K, JNE_X,
    JSGT_K, JSGT_X, JSGE_K, JSGE_X, JLT_K, JLT_X, JLE_K, JLE_X, JSLT_K, JSLT_X,
    JSLE_K, JSLE_X,
    JEQ32_K, JEQ32_X, JGT32_K, JGT32_X, JGE32_K, JGE32_X, JSET32_K, JSET32_X, JNE32_K,
    JNE32_X, JSGT32_K, JSGT32_X, JSGE32_K, JSGE32_X, JLT32_K, JLT32_X, JLE32_K, JLE32_X,
    JSLT32_K, JSLT32_X, JSLE32_K, JSLE32_X,
    CALL, CALL_LOCAL, CALLX, EXIT,
    // The second slot of an lddw: never reached (jumps into it are refused).
    UNREACHABLE,
}

/// One lowered instruction (16 bytes).
#[derive(Clone, Copy, Debug)]
struct XInsn {
    op: X,
    dst: u8,
    src: u8,
    /// Access size, atomic operation, etc.
    aux: u8,
    /// Memory offset, or absolute jump/call target.
    off: i32,
    /// Widened immediate: sign-extended for 64-bit forms, zero-extended for 32-bit ones.
    imm: u64,
}

/// A program lowered for the interpreter, with its helpers.
pub struct Interpreter<C> {
    code: Vec<XInsn>,
    /// Per slot: whether `callx` may enter there (only function entries may).
    entries: Vec<bool>,
    touches_stack: bool,
    helpers: Helpers<C>,
    config: Config,
}

/// A caller waiting for a bpf-to-bpf call to return: where, in which program (a tail
/// call may have replaced the callee's program), and its r6..r9.
struct Frame<'p, C> {
    ret: usize,
    saved: [u64; 4],
    prog: &'p Interpreter<C>,
}

impl<C> Clone for Frame<'_, C> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<C> Copy for Frame<'_, C> {}

/// The kernel's MAX_TAIL_CALL_CNT: at most 33 tail calls succeed in one chain.
pub const MAX_TAIL_CALLS: u32 = 33;

fn atomic_code(op: AtomicOp) -> u8 {
    op as u8
}

const ATOMIC_OPS: [AtomicOp; 10] = [
    AtomicOp::Add,
    AtomicOp::Or,
    AtomicOp::And,
    AtomicOp::Xor,
    AtomicOp::FetchAdd,
    AtomicOp::FetchOr,
    AtomicOp::FetchAnd,
    AtomicOp::FetchXor,
    AtomicOp::Xchg,
    AtomicOp::Cmpxchg,
];

fn lower_alu(op: AluOp, is64: bool, reg: bool) -> X {
    use X::*;
    let pick = |k64, x64, k32, x32| match (is64, reg) {
        (true, false) => k64,
        (true, true) => x64,
        (false, false) => k32,
        (false, true) => x32,
    };
    match op {
        AluOp::Add => pick(ADD_K, ADD_X, ADD32_K, ADD32_X),
        AluOp::Sub => pick(SUB_K, SUB_X, SUB32_K, SUB32_X),
        AluOp::Mul => pick(MUL_K, MUL_X, MUL32_K, MUL32_X),
        AluOp::Div => pick(DIV_K, DIV_X, DIV32_K, DIV32_X),
        AluOp::Sdiv => pick(SDIV_K, SDIV_X, SDIV32_K, SDIV32_X),
        AluOp::Mod => pick(MOD_K, MOD_X, MOD32_K, MOD32_X),
        AluOp::Smod => pick(SMOD_K, SMOD_X, SMOD32_K, SMOD32_X),
        AluOp::Or => pick(OR_K, OR_X, OR32_K, OR32_X),
        AluOp::And => pick(AND_K, AND_X, AND32_K, AND32_X),
        AluOp::Xor => pick(XOR_K, XOR_X, XOR32_K, XOR32_X),
        AluOp::Lsh => pick(LSH_K, LSH_X, LSH32_K, LSH32_X),
        AluOp::Rsh => pick(RSH_K, RSH_X, RSH32_K, RSH32_X),
        AluOp::Arsh => pick(ARSH_K, ARSH_X, ARSH32_K, ARSH32_X),
        AluOp::Mov => pick(MOV_K, MOV_X, MOV32_K, MOV32_X),
        AluOp::Neg => pick(NEG, NEG, NEG32, NEG32),
        AluOp::Movsx8 => pick(MOVSX8, MOVSX8, MOVSX8_32, MOVSX8_32),
        AluOp::Movsx16 => pick(MOVSX16, MOVSX16, MOVSX16_32, MOVSX16_32),
        AluOp::Movsx32 => MOVSX32,
    }
}

fn lower_jmp(cond: JmpCond, is64: bool, reg: bool) -> X {
    use X::*;
    let pick = |k64, x64, k32, x32| match (is64, reg) {
        (true, false) => k64,
        (true, true) => x64,
        (false, false) => k32,
        (false, true) => x32,
    };
    match cond {
        JmpCond::Eq => pick(JEQ_K, JEQ_X, JEQ32_K, JEQ32_X),
        JmpCond::Gt => pick(JGT_K, JGT_X, JGT32_K, JGT32_X),
        JmpCond::Ge => pick(JGE_K, JGE_X, JGE32_K, JGE32_X),
        JmpCond::Set => pick(JSET_K, JSET_X, JSET32_K, JSET32_X),
        JmpCond::Ne => pick(JNE_K, JNE_X, JNE32_K, JNE32_X),
        JmpCond::Sgt => pick(JSGT_K, JSGT_X, JSGT32_K, JSGT32_X),
        JmpCond::Sge => pick(JSGE_K, JSGE_X, JSGE32_K, JSGE32_X),
        JmpCond::Lt => pick(JLT_K, JLT_X, JLT32_K, JLT32_X),
        JmpCond::Le => pick(JLE_K, JLE_X, JLE32_K, JLE32_X),
        JmpCond::Slt => pick(JSLT_K, JSLT_X, JSLT32_K, JSLT32_X),
        JmpCond::Sle => pick(JSLE_K, JSLE_X, JSLE32_K, JSLE32_X),
    }
}

/// Whether `[r10 + off]` of `size` bytes is inside the frame's 512 bytes.
fn in_frame(off: i16, size: Size) -> bool {
    let off = off as i64;
    off >= -(STACK_SIZE as i64) && off + size.bytes() as i64 <= 0
}

fn size_index(size: Size) -> usize {
    match size {
        Size::B => 0,
        Size::H => 1,
        Size::W => 2,
        Size::DW => 3,
    }
}

fn lower(program: &Program) -> Vec<XInsn> {
    use X::*;
    let unreachable = XInsn {
        op: UNREACHABLE,
        dst: 0,
        src: 0,
        aux: 0,
        off: 0,
        imm: 0,
    };
    let mut code = vec![unreachable; program.len()];
    for ins in program.instructions() {
        let d = ins.decoded;
        let i = d.insn;
        let is64_imm = i.imm as i64 as u64;
        let mut x = XInsn {
            op: NOP,
            dst: i.dst,
            src: i.src,
            aux: 0,
            off: i.off as i32,
            imm: is64_imm,
        };
        let target = ins.target.map(|t| t as i32).unwrap_or(0);
        x.op = match d.spec.op {
            Op::Alu { op, is64, reg } => {
                if !is64 {
                    x.imm = i.imm as u32 as u64;
                }
                if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) && !reg {
                    x.imm &= if is64 { 63 } else { 31 };
                }
                lower_alu(op, is64, reg)
            }
            Op::End { kind, bits } => match (kind, bits) {
                (Endian::Le, 16) => LE16,
                (Endian::Le, 32) => LE32,
                (Endian::Le, _) => NOP,
                (_, 16) => SWAP16,
                (_, 32) => SWAP32,
                _ => SWAP64,
            },
            Op::Load { size, signed } => {
                let fp = i.src == crate::isa::FRAME_REG && in_frame(i.off, size);
                if fp {
                    x.off = STACK_SIZE as i32 + i.off as i32;
                }
                let table: [[X; 4]; 4] = [
                    [LDXB, LDXH, LDXW, LDXDW],
                    [LDXSB, LDXSH, LDXSW, LDXDW],
                    [FP_LDXB, FP_LDXH, FP_LDXW, FP_LDXDW],
                    [FP_LDXSB, FP_LDXSH, FP_LDXSW, FP_LDXDW],
                ];
                table[fp as usize * 2 + signed as usize][size_index(size)]
            }
            Op::StoreImm { size } | Op::StoreReg { size } => {
                let fp = i.dst == crate::isa::FRAME_REG && in_frame(i.off, size);
                if fp {
                    x.off = STACK_SIZE as i32 + i.off as i32;
                }
                let reg = matches!(d.spec.op, Op::StoreReg { .. });
                let table: [[X; 4]; 4] = [
                    [STB, STH, STW, STDW],
                    [STXB, STXH, STXW, STXDW],
                    [FP_STB, FP_STH, FP_STW, FP_STDW],
                    [FP_STXB, FP_STXH, FP_STXW, FP_STXDW],
                ];
                table[fp as usize * 2 + reg as usize][size_index(size)]
            }
            Op::Atomic { size, op } => {
                x.aux = atomic_code(op) | if size == Size::DW { 0x80 } else { 0 };
                ATOMIC
            }
            Op::Lddw => {
                x.imm = ins.value;
                LDDW
            }
            Op::LdAbs { size } | Op::LdInd { size } => {
                x.aux = size.bytes() as u8;
                if matches!(d.spec.op, Op::LdAbs { .. }) {
                    LDABS
                } else {
                    LDIND
                }
            }
            Op::Ja { .. } => {
                x.off = target;
                JA
            }
            Op::Jmp { cond, is64, reg } => {
                x.off = target;
                if !is64 {
                    x.imm = i.imm as u32 as u64;
                }
                lower_jmp(cond, is64, reg)
            }
            Op::Call => match ins.target {
                Some(t) => {
                    x.off = t as i32;
                    CALL_LOCAL
                }
                None => {
                    x.imm = i.imm as u32 as u64;
                    CALL
                }
            },
            Op::Callx => CALLX,
            Op::Exit => EXIT,
        };
        code[ins.index] = x;
    }
    code
}

impl<C> Interpreter<C> {
    /// Lowers `program`; every helper it calls by id must be in `helpers`.
    pub fn new(program: &Program, helpers: Helpers<C>) -> Result<Self, VmError> {
        helpers.check_calls(program)?;
        Ok(Interpreter {
            code: lower(program),
            entries: (0..program.len())
                .map(|i| program.is_function_entry(i))
                .collect(),
            touches_stack: program.touches_stack(),
            helpers,
            config: Config::default(),
        })
    }

    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    pub fn config(&self) -> Config {
        self.config
    }

    pub fn helpers(&self) -> &Helpers<C> {
        &self.helpers
    }

    /// Runs the program once with r1..r5 set to `args`; returns r0. Tail calls fall
    /// through (there are no other programs).
    pub fn run(&self, mem: &mut Memory<'_>, env: &mut C, args: [u64; 5]) -> Result<u64, VmError> {
        self.run_with_programs(mem, env, args, &[])
    }

    /// Runs the program once; a tail call to program `p` (as the tail-call helper reports
    /// it) continues in `programs[p]`, as the kernel does: same frame, same registers, no
    /// return, at most [`MAX_TAIL_CALLS`] in the chain.
    pub fn run_with_programs(
        &self,
        mem: &mut Memory<'_>,
        env: &mut C,
        args: [u64; 5],
        programs: &[Interpreter<C>],
    ) -> Result<u64, VmError> {
        mem.reset_stack();
        let mut count = 0;
        let mut calling = None;
        // A panicking helper ends the run with the error the JIT gives (JIT code cannot be
        // unwound through, so it catches each call; here one catch per run costs nothing
        // per call). Any other panic is the interpreter's own bug: it goes on unwinding.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.execute(mem, env, args, programs, 0, 0, &mut count, &mut calling)
        }))
        .unwrap_or_else(|panic| match calling {
            Some((pc, id, name)) => Err(VmError::Helper {
                pc,
                id,
                name,
                error: HelperError::Other(crate::helpers::PANICKED.into()),
            }),
            None => std::panic::resume_unwind(panic),
        });
        if !self.touches_stack {
            mem.stack_untouched();
        }
        r
    }

    /// Runs from slot `entry` in call frame `base` until that frame exits (the whole
    /// program from 0/0, or a callback one frame deeper than its caller). `executed`
    /// carries the budget count across nested runs; `calling` names the helper call in
    /// progress (pc, id, name), for the error if it panics.
    #[allow(clippy::too_many_lines, clippy::too_many_arguments)]
    fn execute(
        &self,
        mem: &mut Memory<'_>,
        env: &mut C,
        args: [u64; 5],
        programs: &[Interpreter<C>],
        entry: usize,
        base: usize,
        executed: &mut u64,
        calling: &mut Calling,
    ) -> Result<u64, VmError> {
        use X::*;
        let mut cur = self;
        let mut code = &cur.code[..];
        let mut tail_calls = 0u32;
        let budget = self.config.budget;
        let mut r = [0u64; 16];
        r[1..6].copy_from_slice(&args);
        r[10] = frame_pointer(base);
        // Callers of the current frame, by depth above `base` (no allocation per run).
        let mut frames = [Frame {
            ret: 0,
            saved: [0; 4],
            prog: self,
        }; MAX_CALL_FRAMES];
        let mut depth = base;
        let mut stack_top = mem.stack_base(base).wrapping_add(STACK_SIZE);
        let mut pc = entry;
        let mut count = *executed;

        macro_rules! d {
            ($x:expr) => {
                r[($x.dst & 15) as usize]
            };
        }
        macro_rules! s {
            ($x:expr) => {
                r[($x.src & 15) as usize]
            };
        }
        macro_rules! alu64 {
            ($x:expr, $b:expr, |$a:ident, $v:ident| $e:expr) => {{
                let $v = $b;
                let $a = d!($x);
                d!($x) = $e;
            }};
        }
        macro_rules! alu32 {
            ($x:expr, $b:expr, |$a:ident, $v:ident| $e:expr) => {{
                let $v = $b as u32;
                let $a = d!($x) as u32;
                d!($x) = ($e) as u32 as u64;
            }};
        }
        macro_rules! jump {
            ($x:expr, $cond:expr) => {{
                if $cond {
                    let t = $x.off as usize;
                    if t < pc && count > budget {
                        return Err(VmError::Budget { pc: pc - 1, budget });
                    }
                    pc = t;
                }
            }};
        }
        macro_rules! load {
            ($x:expr, $size:expr, $ext:expr) => {{
                let addr = s!($x).wrapping_add($x.off as i64 as u64);
                let v = mem
                    .load(addr, $size)
                    .map_err(|fault| VmError::Memory { pc: pc - 1, fault })?;
                d!($x) = $ext(v);
            }};
        }
        macro_rules! store {
            ($x:expr, $size:expr, $v:expr) => {{
                let addr = d!($x).wrapping_add($x.off as i64 as u64);
                mem.store(addr, $size, $v)
                    .map_err(|fault| VmError::Memory { pc: pc - 1, fault })?;
            }};
        }
        macro_rules! fp_load {
            ($x:expr, $size:expr, $ext:expr) => {{
                // SAFETY: lowering proved r10 + off .. + size lies inside the current
                // frame's 512 bytes (r10 is never written), and `stack_top` is the top of
                // that frame's stack, owned by `mem` for the whole run.
                let v = unsafe {
                    memory::read_host(
                        stack_top.wrapping_sub(STACK_SIZE).add($x.off as usize),
                        $size,
                    )
                };
                d!($x) = $ext(v);
            }};
        }
        macro_rules! fp_store {
            ($x:expr, $size:expr, $v:expr) => {{
                let v = $v;
                // SAFETY: as for fp_load: the range is inside the current frame's stack.
                unsafe {
                    memory::write_host(
                        stack_top.wrapping_sub(STACK_SIZE).add($x.off as usize),
                        $size,
                        v,
                    )
                };
            }};
        }
        let id = |v: u64| v;
        let sx8 = |v: u64| v as i8 as i64 as u64;
        let sx16 = |v: u64| v as i16 as i64 as u64;
        let sx32 = |v: u64| v as i32 as i64 as u64;

        loop {
            let x = code[pc];
            pc += 1;
            count += 1;
            match x.op {
                ADD_K => alu64!(x, x.imm, |a, b| a.wrapping_add(b)),
                ADD_X => alu64!(x, s!(x), |a, b| a.wrapping_add(b)),
                SUB_K => alu64!(x, x.imm, |a, b| a.wrapping_sub(b)),
                SUB_X => alu64!(x, s!(x), |a, b| a.wrapping_sub(b)),
                MUL_K => alu64!(x, x.imm, |a, b| a.wrapping_mul(b)),
                MUL_X => alu64!(x, s!(x), |a, b| a.wrapping_mul(b)),
                DIV_K => alu64!(x, x.imm, |a, b| a.checked_div(b).unwrap_or(0)),
                DIV_X => alu64!(x, s!(x), |a, b| a.checked_div(b).unwrap_or(0)),
                SDIV_K => alu64!(x, x.imm, |a, b| sdiv64(a, b)),
                SDIV_X => alu64!(x, s!(x), |a, b| sdiv64(a, b)),
                MOD_K => alu64!(x, x.imm, |a, b| a.checked_rem(b).unwrap_or(a)),
                MOD_X => alu64!(x, s!(x), |a, b| a.checked_rem(b).unwrap_or(a)),
                SMOD_K => alu64!(x, x.imm, |a, b| smod64(a, b)),
                SMOD_X => alu64!(x, s!(x), |a, b| smod64(a, b)),
                OR_K => alu64!(x, x.imm, |a, b| a | b),
                OR_X => alu64!(x, s!(x), |a, b| a | b),
                AND_K => alu64!(x, x.imm, |a, b| a & b),
                AND_X => alu64!(x, s!(x), |a, b| a & b),
                XOR_K => alu64!(x, x.imm, |a, b| a ^ b),
                XOR_X => alu64!(x, s!(x), |a, b| a ^ b),
                LSH_K => alu64!(x, x.imm, |a, b| a << b),
                LSH_X => alu64!(x, s!(x), |a, b| a << (b & 63)),
                RSH_K => alu64!(x, x.imm, |a, b| a >> b),
                RSH_X => alu64!(x, s!(x), |a, b| a >> (b & 63)),
                ARSH_K => alu64!(x, x.imm, |a, b| ((a as i64) >> b) as u64),
                ARSH_X => alu64!(x, s!(x), |a, b| ((a as i64) >> (b & 63)) as u64),
                MOV_K => d!(x) = x.imm,
                MOV_X => d!(x) = s!(x),
                NEG => d!(x) = d!(x).wrapping_neg(),
                MOVSX8 => d!(x) = sx8(s!(x)),
                MOVSX16 => d!(x) = sx16(s!(x)),
                MOVSX32 => d!(x) = sx32(s!(x)),
                ADD32_K => alu32!(x, x.imm, |a, b| a.wrapping_add(b)),
                ADD32_X => alu32!(x, s!(x), |a, b| a.wrapping_add(b)),
                SUB32_K => alu32!(x, x.imm, |a, b| a.wrapping_sub(b)),
                SUB32_X => alu32!(x, s!(x), |a, b| a.wrapping_sub(b)),
                MUL32_K => alu32!(x, x.imm, |a, b| a.wrapping_mul(b)),
                MUL32_X => alu32!(x, s!(x), |a, b| a.wrapping_mul(b)),
                DIV32_K => alu32!(x, x.imm, |a, b| a.checked_div(b).unwrap_or(0)),
                DIV32_X => alu32!(x, s!(x), |a, b| a.checked_div(b).unwrap_or(0)),
                SDIV32_K => alu32!(x, x.imm, |a, b| sdiv32(a, b)),
                SDIV32_X => alu32!(x, s!(x), |a, b| sdiv32(a, b)),
                MOD32_K => alu32!(x, x.imm, |a, b| a.checked_rem(b).unwrap_or(a)),
                MOD32_X => alu32!(x, s!(x), |a, b| a.checked_rem(b).unwrap_or(a)),
                SMOD32_K => alu32!(x, x.imm, |a, b| smod32(a, b)),
                SMOD32_X => alu32!(x, s!(x), |a, b| smod32(a, b)),
                OR32_K => alu32!(x, x.imm, |a, b| a | b),
                OR32_X => alu32!(x, s!(x), |a, b| a | b),
                AND32_K => alu32!(x, x.imm, |a, b| a & b),
                AND32_X => alu32!(x, s!(x), |a, b| a & b),
                XOR32_K => alu32!(x, x.imm, |a, b| a ^ b),
                XOR32_X => alu32!(x, s!(x), |a, b| a ^ b),
                LSH32_K => alu32!(x, x.imm, |a, b| a << b),
                LSH32_X => alu32!(x, s!(x), |a, b| a << (b & 31)),
                RSH32_K => alu32!(x, x.imm, |a, b| a >> b),
                RSH32_X => alu32!(x, s!(x), |a, b| a >> (b & 31)),
                ARSH32_K => alu32!(x, x.imm, |a, b| ((a as i32) >> b) as u32),
                ARSH32_X => alu32!(x, s!(x), |a, b| ((a as i32) >> (b & 31)) as u32),
                MOV32_K => d!(x) = x.imm,
                MOV32_X => d!(x) = s!(x) as u32 as u64,
                NEG32 => d!(x) = (d!(x) as u32).wrapping_neg() as u64,
                MOVSX8_32 => d!(x) = s!(x) as i8 as i32 as u32 as u64,
                MOVSX16_32 => d!(x) = s!(x) as i16 as i32 as u32 as u64,
                LE16 => d!(x) = d!(x) as u16 as u64,
                LE32 => d!(x) = d!(x) as u32 as u64,
                SWAP16 => d!(x) = (d!(x) as u16).swap_bytes() as u64,
                SWAP32 => d!(x) = (d!(x) as u32).swap_bytes() as u64,
                SWAP64 => d!(x) = d!(x).swap_bytes(),
                NOP => {}
                LDXB => load!(x, 1, id),
                LDXH => load!(x, 2, id),
                LDXW => load!(x, 4, id),
                LDXDW => load!(x, 8, id),
                LDXSB => load!(x, 1, sx8),
                LDXSH => load!(x, 2, sx16),
                LDXSW => load!(x, 4, sx32),
                STB => store!(x, 1, x.imm),
                STH => store!(x, 2, x.imm),
                STW => store!(x, 4, x.imm),
                STDW => store!(x, 8, x.imm),
                STXB => store!(x, 1, s!(x)),
                STXH => store!(x, 2, s!(x)),
                STXW => store!(x, 4, s!(x)),
                STXDW => store!(x, 8, s!(x)),
                FP_LDXB => fp_load!(x, 1, id),
                FP_LDXH => fp_load!(x, 2, id),
                FP_LDXW => fp_load!(x, 4, id),
                FP_LDXDW => fp_load!(x, 8, id),
                FP_LDXSB => fp_load!(x, 1, sx8),
                FP_LDXSH => fp_load!(x, 2, sx16),
                FP_LDXSW => fp_load!(x, 4, sx32),
                FP_STB => fp_store!(x, 1, x.imm),
                FP_STH => fp_store!(x, 2, x.imm),
                FP_STW => fp_store!(x, 4, x.imm),
                FP_STDW => fp_store!(x, 8, x.imm),
                FP_STXB => fp_store!(x, 1, s!(x)),
                FP_STXH => fp_store!(x, 2, s!(x)),
                FP_STXW => fp_store!(x, 4, s!(x)),
                FP_STXDW => fp_store!(x, 8, s!(x)),
                ATOMIC => {
                    let addr = d!(x).wrapping_add(x.off as i64 as u64);
                    let size = if x.aux & 0x80 != 0 { 8 } else { 4 };
                    let op = ATOMIC_OPS[(x.aux & 0x7f) as usize];
                    atomic(mem, &mut r, x, addr, size, op)
                        .map_err(|fault| VmError::Memory { pc: pc - 1, fault })?;
                }
                LDDW => {
                    d!(x) = x.imm;
                    pc += 1;
                }
                LDABS | LDIND => {
                    // Legacy packet loads read network-order data; out of range ends the
                    // program with r0 = 0, as in the kernel.
                    let base = if x.op == LDIND {
                        s!(x) as u32 as i64
                    } else {
                        0
                    };
                    let off = base + x.imm as i64;
                    let size = x.aux as usize;
                    let v = u32::try_from(off)
                        .ok()
                        .and_then(|off| mem.load(vaddr(PACKET_REGION, off), size).ok());
                    match v {
                        Some(v) => {
                            r[0] = match size {
                                1 => v,
                                2 => (v as u16).swap_bytes() as u64,
                                _ => (v as u32).swap_bytes() as u64,
                            }
                        }
                        None => {
                            return self.unwind(mem, depth, 0);
                        }
                    }
                }
                JA => jump!(x, true),
                JEQ_K => jump!(x, d!(x) == x.imm),
                JEQ_X => jump!(x, d!(x) == s!(x)),
                JGT_K => jump!(x, d!(x) > x.imm),
                JGT_X => jump!(x, d!(x) > s!(x)),
                JGE_K => jump!(x, d!(x) >= x.imm),
                JGE_X => jump!(x, d!(x) >= s!(x)),
                JSET_K => jump!(x, d!(x) & x.imm != 0),
                JSET_X => jump!(x, d!(x) & s!(x) != 0),
                JNE_K => jump!(x, d!(x) != x.imm),
                JNE_X => jump!(x, d!(x) != s!(x)),
                JSGT_K => jump!(x, (d!(x) as i64) > x.imm as i64),
                JSGT_X => jump!(x, (d!(x) as i64) > s!(x) as i64),
                JSGE_K => jump!(x, (d!(x) as i64) >= x.imm as i64),
                JSGE_X => jump!(x, (d!(x) as i64) >= s!(x) as i64),
                JLT_K => jump!(x, d!(x) < x.imm),
                JLT_X => jump!(x, d!(x) < s!(x)),
                JLE_K => jump!(x, d!(x) <= x.imm),
                JLE_X => jump!(x, d!(x) <= s!(x)),
                JSLT_K => jump!(x, (d!(x) as i64) < x.imm as i64),
                JSLT_X => jump!(x, (d!(x) as i64) < s!(x) as i64),
                JSLE_K => jump!(x, (d!(x) as i64) <= x.imm as i64),
                JSLE_X => jump!(x, (d!(x) as i64) <= s!(x) as i64),
                JEQ32_K => jump!(x, d!(x) as u32 == x.imm as u32),
                JEQ32_X => jump!(x, d!(x) as u32 == s!(x) as u32),
                JGT32_K => jump!(x, d!(x) as u32 > x.imm as u32),
                JGT32_X => jump!(x, d!(x) as u32 > s!(x) as u32),
                JGE32_K => jump!(x, d!(x) as u32 >= x.imm as u32),
                JGE32_X => jump!(x, d!(x) as u32 >= s!(x) as u32),
                JSET32_K => jump!(x, d!(x) as u32 & x.imm as u32 != 0),
                JSET32_X => jump!(x, d!(x) as u32 & s!(x) as u32 != 0),
                JNE32_K => jump!(x, d!(x) as u32 != x.imm as u32),
                JNE32_X => jump!(x, d!(x) as u32 != s!(x) as u32),
                JSGT32_K => jump!(x, (d!(x) as i32) > x.imm as i32),
                JSGT32_X => jump!(x, (d!(x) as i32) > s!(x) as i32),
                JSGE32_K => jump!(x, (d!(x) as i32) >= x.imm as i32),
                JSGE32_X => jump!(x, (d!(x) as i32) >= s!(x) as i32),
                JLT32_K => jump!(x, (d!(x) as u32) < x.imm as u32),
                JLT32_X => jump!(x, (d!(x) as u32) < s!(x) as u32),
                JLE32_K => jump!(x, d!(x) as u32 <= x.imm as u32),
                JLE32_X => jump!(x, d!(x) as u32 <= s!(x) as u32),
                JSLT32_K => jump!(x, (d!(x) as i32) < x.imm as i32),
                JSLT32_X => jump!(x, (d!(x) as i32) < s!(x) as i32),
                JSLE32_K => jump!(x, (d!(x) as i32) <= x.imm as i32),
                JSLE32_X => jump!(x, (d!(x) as i32) <= s!(x) as i32),
                CALL => match cur.call_helper(mem, env, x.imm, &r, pc - 1, calling) {
                    Ok(v) => r[0] = v,
                    Err(HelperError::TailCall(target)) => {
                        if let Some(p) = target.take(&mut tail_calls) {
                            cur = programs.get(p as usize).ok_or(VmError::Internal {
                                pc: pc - 1,
                                what: "tail call to a program that is not loaded",
                            })?;
                            code = &cur.code[..];
                            pc = 0;
                        }
                    }
                    Err(HelperError::Callbacks(plan)) => {
                        let entry = cur.callx_target(plan.func).ok_or(VmError::BadCallx {
                            pc: pc - 1,
                            target: plan.func,
                        })?;
                        let mut calls = 0u64;
                        for i in 0..plan.calls.len() {
                            let args = plan.calls.args(i);
                            if count > budget {
                                return Err(VmError::Budget { pc: pc - 1, budget });
                            }
                            if depth + 1 >= MAX_CALL_FRAMES {
                                return Err(VmError::CallDepth {
                                    pc: pc - 1,
                                    frames: depth + 2,
                                });
                            }
                            mem.set_frame_mapped(depth + 1, true);
                            let ret = cur.execute(
                                mem,
                                env,
                                args,
                                programs,
                                entry,
                                depth + 1,
                                &mut count,
                                calling,
                            )?;
                            mem.set_frame_mapped(depth + 1, false);
                            calls += 1;
                            // 0 continues, 1 stops (the verifier allows nothing else).
                            if ret != 0 {
                                break;
                            }
                        }
                        r[0] = calls;
                    }
                    Err(error) => return Err(cur.helper_error(x.imm, pc - 1, error)),
                },
                CALL_LOCAL | CALLX => {
                    let target = if x.op == CALL_LOCAL {
                        x.off as usize
                    } else {
                        let v = d!(x);
                        match cur.callx_target(v) {
                            Some(t) => t,
                            None if v >> REGION_SHIFT == 0 && cur.helpers.get(v).is_some() => {
                                // A plain number names a helper, as in ubpf and rbpf (tail
                                // calls are only taken from a direct `call`).
                                r[0] = cur
                                    .call_helper(mem, env, v, &r, pc - 1, calling)
                                    .map_err(|e| cur.helper_error(v, pc - 1, e))?;
                                continue;
                            }
                            None => {
                                return Err(VmError::BadCallx {
                                    pc: pc - 1,
                                    target: v,
                                })
                            }
                        }
                    };
                    if count > budget {
                        return Err(VmError::Budget { pc: pc - 1, budget });
                    }
                    if depth + 1 >= MAX_CALL_FRAMES {
                        return Err(VmError::CallDepth {
                            pc: pc - 1,
                            frames: depth + 2,
                        });
                    }
                    frames[depth - base] = Frame {
                        ret: pc,
                        saved: [r[6], r[7], r[8], r[9]],
                        prog: cur,
                    };
                    depth += 1;
                    mem.set_frame_mapped(depth, true);
                    r[10] = frame_pointer(depth);
                    stack_top = mem.stack_base(depth).wrapping_add(STACK_SIZE);
                    pc = target;
                }
                EXIT => match (depth - base).checked_sub(1) {
                    None => {
                        *executed = count;
                        return Ok(r[0]);
                    }
                    Some(caller) => {
                        let f = frames[caller];
                        let caller = base + caller;
                        mem.set_frame_mapped(depth, false);
                        depth = caller;
                        r[6..10].copy_from_slice(&f.saved);
                        cur = f.prog;
                        code = &cur.code[..];
                        r[10] = frame_pointer(depth);
                        stack_top = mem.stack_base(depth).wrapping_add(STACK_SIZE);
                        pc = f.ret;
                    }
                },
                UNREACHABLE => {
                    return Err(VmError::Internal {
                        pc: pc - 1,
                        what: "reached the second slot of an lddw",
                    })
                }
            }
        }
    }

    /// Ends the run from any depth with `r0` (LD_ABS failure), unmapping callee frames.
    fn unwind(&self, mem: &mut Memory<'_>, depth: usize, r0: u64) -> Result<u64, VmError> {
        for frame in 1..=depth {
            mem.set_frame_mapped(frame, false);
        }
        Ok(r0)
    }

    fn callx_target(&self, v: u64) -> Option<usize> {
        if v >> REGION_SHIFT != CODE_REGION as u64 {
            return None;
        }
        let t = (v & 0xffff_ffff) as usize;
        // Only function entries are valid: they are the only values `lddw func` produces.
        self.entries.get(t).copied().unwrap_or(false).then_some(t)
    }

    #[inline]
    fn call_helper(
        &self,
        mem: &mut Memory<'_>,
        env: &mut C,
        id: u64,
        r: &[u64; 16],
        pc: usize,
        calling: &mut Calling,
    ) -> Result<u64, HelperError> {
        match self.helpers.get(id) {
            Some(h) => {
                *calling = Some((pc, id, h.name));
                let result = (h.func)(env, mem, [r[1], r[2], r[3], r[4], r[5]]);
                *calling = None;
                result
            }
            None => Err(HelperError::Other(String::new())),
        }
    }

    #[cold]
    fn helper_error(&self, id: u64, pc: usize, error: HelperError) -> VmError {
        match self.helpers.get(id) {
            None => VmError::UnknownHelper { pc, id },
            Some(_) if matches!(error, HelperError::TailCall(_)) => VmError::Internal {
                pc,
                what: "tail calls are only taken from a direct call instruction",
            },
            Some(h) => VmError::Helper {
                pc,
                id,
                name: h.name,
                error,
            },
        }
    }
}

fn atomic(
    mem: &mut Memory<'_>,
    r: &mut [u64; 16],
    x: XInsn,
    addr: u64,
    size: usize,
    op: AtomicOp,
) -> Result<(), memory::AccessFault> {
    let p = mem.translate(addr, size, Access::Atomic)?;
    // SAFETY: `translate` checked `size` writable bytes at `p` inside a live region; a run
    // is single-threaded, so a plain read-modify-write is atomic for the program.
    let old = unsafe { memory::read_host(p, size) };
    let src = r[(x.src & 15) as usize];
    let trunc = |v: u64| if size == 4 { v as u32 as u64 } else { v };
    let new = match op {
        AtomicOp::Add | AtomicOp::FetchAdd => Some(old.wrapping_add(src)),
        AtomicOp::Or | AtomicOp::FetchOr => Some(old | src),
        AtomicOp::And | AtomicOp::FetchAnd => Some(old & src),
        AtomicOp::Xor | AtomicOp::FetchXor => Some(old ^ src),
        AtomicOp::Xchg => Some(src),
        AtomicOp::Cmpxchg => (trunc(r[0]) == old).then_some(src),
    };
    if let Some(new) = new {
        // SAFETY: as above.
        unsafe { memory::write_host(p, size, new) };
    }
    match op {
        AtomicOp::Add | AtomicOp::Or | AtomicOp::And | AtomicOp::Xor => {}
        AtomicOp::Cmpxchg => r[0] = old,
        _ => r[(x.src & 15) as usize] = old,
    }
    Ok(())
}

fn sdiv64(a: u64, b: u64) -> u64 {
    if b == 0 {
        0
    } else {
        (a as i64).wrapping_div(b as i64) as u64
    }
}

fn smod64(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        (a as i64).wrapping_rem(b as i64) as u64
    }
}

fn sdiv32(a: u32, b: u32) -> u32 {
    if b == 0 {
        0
    } else {
        (a as i32).wrapping_div(b as i32) as u32
    }
}

fn smod32(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        (a as i32).wrapping_rem(b as i32) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::helpers::{HelperError, TailCallTarget};
    use crate::isa::Insn;

    fn run(insns: &[Insn], mem: &mut [u8]) -> Result<u64, VmError> {
        let prog = Program::new(insns.to_vec()).map_err(VmError::Program)?;
        let vm = Interpreter::new(&prog, crate::helpers::conformance_helpers::<()>())?
            .with_config(Config { budget: 10_000 });
        let mut m = Memory::new();
        let len = mem.len() as u64;
        let a = m.set_ctx(mem);
        vm.run(&mut m, &mut (), [a, len, 0, 0, 0])
    }

    const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

    #[test]
    fn division_by_zero_follows_the_kernel() {
        // r0 = 7; r1 = 0; r0 /= r1 -> 0
        let p = [
            Insn::new(0xb7, 0, 0, 0, 7),
            Insn::new(0xb7, 1, 0, 0, 0),
            Insn::new(0x3f, 0, 1, 0, 0),
            EXIT,
        ];
        assert_eq!(run(&p, &mut []).unwrap(), 0);
        // r0 = -1 (64-bit); w0 %= w1 (zero) -> dst keeps its low half, zero-extended
        let p = [
            Insn::new(0xb7, 0, 0, 0, -1),
            Insn::new(0xb7, 1, 0, 0, 0),
            Insn::new(0x9c, 0, 1, 0, 0),
            EXIT,
        ];
        assert_eq!(run(&p, &mut []).unwrap(), 0xffff_ffff);
    }

    #[test]
    fn endless_loop_hits_the_budget() {
        let p = [Insn::new(0x05, 0, 0, -1, 0), EXIT];
        assert_eq!(
            run(&p, &mut []).unwrap_err(),
            VmError::Budget {
                pc: 0,
                budget: 10_000
            }
        );
    }

    #[test]
    fn out_of_bounds_load_names_insn_and_address() {
        let p = [Insn::new(0x61, 0, 1, 4, 0), EXIT];
        let e = run(&p, &mut [0; 4]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "insn 0: invalid load of 4 bytes at 0x900000004: offset 4 is outside context (4 bytes)"
        );
    }

    #[test]
    fn recursion_stops_at_eight_frames() {
        // call itself forever
        let p = [Insn::new(0x85, 0, 1, 0, -1), EXIT];
        assert!(matches!(
            run(&p, &mut []).unwrap_err(),
            VmError::CallDepth { pc: 0, frames: 9 }
        ));
    }

    #[test]
    fn callx_enters_functions_only() {
        // r2 = &fn (slot 4); callx r2; exit | fn: r0 = 42; exit
        let mut p = vec![
            Insn::new(0x18, 2, crate::isa::pseudo::FUNC, 0, 3),
            Insn::default(),
            Insn::new(0x8d, 2, 0, 0, 0),
            EXIT,
            Insn::new(0xb7, 0, 0, 0, 42),
            EXIT,
        ];
        assert_eq!(run(&p, &mut []).unwrap(), 42);
        // r2 += 1 points into the middle of the function
        p.insert(2, Insn::new(0x07, 2, 0, 0, 1));
        p[0].imm = 4;
        assert!(matches!(
            run(&p, &mut []).unwrap_err(),
            VmError::BadCallx { pc: 3, .. }
        ));
    }

    struct TailEnv {
        entries: u64,
        slots: Vec<Option<u32>>,
    }

    fn tail_call(env: &mut TailEnv, _: &mut Memory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
        Err(HelperError::TailCall(match env.slots.get(a[2] as usize) {
            None => TailCallTarget::OutOfRange,
            Some(None) => TailCallTarget::Empty,
            Some(Some(p)) => TailCallTarget::Program(*p),
        }))
    }

    fn count_entry(env: &mut TailEnv, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
        env.entries += 1;
        Ok(env.entries)
    }

    /// Programs: 0 counts its entry and tail-calls slot r3 = 0; 1 tail-calls slot 1 (empty)
    /// then slot 9 (out of range) and returns r0 as the helper left it.
    fn tail_programs() -> Vec<Interpreter<TailEnv>> {
        let mut helpers = Helpers::new();
        helpers.register(12, "tail_call", tail_call);
        helpers.register(99, "count_entry", count_entry);
        let texts: [&[Insn]; 2] = [
            &[
                Insn::new(0x85, 0, 0, 0, 99),
                Insn::new(0xb7, 3, 0, 0, 0),
                Insn::new(0x85, 0, 0, 0, 12),
                EXIT,
            ],
            &[
                Insn::new(0xb7, 0, 0, 0, 7),
                Insn::new(0xb7, 3, 0, 0, 1),
                Insn::new(0x85, 0, 0, 0, 12),
                Insn::new(0xb7, 3, 0, 0, 9),
                Insn::new(0x85, 0, 0, 0, 12),
                EXIT,
            ],
        ];
        texts
            .iter()
            .map(|t| Interpreter::new(&Program::new(t.to_vec()).unwrap(), helpers.clone()).unwrap())
            .collect()
    }

    #[test]
    fn tail_call_chain_stops_after_33() {
        let progs = tail_programs();
        let mut env = TailEnv {
            entries: 0,
            slots: vec![Some(0)],
        };
        let mut mem = Memory::new();
        let r0 = progs[0]
            .run_with_programs(&mut mem, &mut env, [0; 5], &progs)
            .unwrap();
        // The first run plus 33 successful tail calls; the 34th falls through and the
        // program exits with r0 as the last count left it.
        assert_eq!(env.entries, 34);
        assert_eq!(r0, 34);
    }

    #[test]
    fn missing_and_out_of_range_slots_fall_through() {
        let progs = tail_programs();
        let mut env = TailEnv {
            entries: 0,
            slots: vec![Some(0), None],
        };
        let r0 = progs[1]
            .run_with_programs(&mut Memory::new(), &mut env, [0; 5], &progs)
            .unwrap();
        assert_eq!(r0, 7, "r0 is left unchanged by failed tail calls");
        assert_eq!(env.entries, 0);
    }

    #[test]
    fn ld_abs_out_of_range_returns_zero() {
        let p = [
            Insn::new(0xb7, 0, 0, 0, 5),
            Insn::new(0x28, 0, 0, 0, 100),
            EXIT,
        ];
        assert_eq!(run(&p, &mut [0; 4]).unwrap(), 0);
    }
}
