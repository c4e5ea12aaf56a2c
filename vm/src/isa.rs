//! The one description of the eBPF instruction set (RFC 9669, cpu v4).
//!
//! [`table`] lists every valid instruction form once: its opcode byte, the field that
//! tells it apart from forms sharing that byte, its mnemonic in the bpf_conformance
//! assembler syntax, its meaning ([`Op`]) and the fields that must be zero. The decoder,
//! the assembler, the disassembler and the verifier all read it; nothing else spells an
//! opcode.

use std::sync::LazyLock;

/// Size of one instruction slot in bytes.
pub const INSN_SIZE: usize = 8;
/// Number of general registers (r0..r10).
pub const NUM_REGS: usize = 11;
/// The read-only frame pointer.
pub const FRAME_REG: u8 = 10;
/// Stack bytes available to each frame.
pub const STACK_SIZE: usize = 512;
/// Deepest chain of bpf-to-bpf calls, counting the entry frame (as the kernel).
pub const MAX_CALL_FRAMES: usize = 8;

/// Instruction classes (low three bits of the opcode).
pub mod class {
    pub const LD: u8 = 0x00;
    pub const LDX: u8 = 0x01;
    pub const ST: u8 = 0x02;
    pub const STX: u8 = 0x03;
    pub const ALU: u8 = 0x04;
    pub const JMP: u8 = 0x05;
    pub const JMP32: u8 = 0x06;
    pub const ALU64: u8 = 0x07;
}

/// `src` values of `lddw` (BPF_PSEUDO_*), as the kernel and libbpf define them.
pub mod pseudo {
    pub const IMM: u8 = 0;
    pub const MAP_FD: u8 = 1;
    pub const MAP_VALUE: u8 = 2;
    pub const BTF_ID: u8 = 3;
    pub const FUNC: u8 = 4;
    pub const MAP_IDX: u8 = 5;
    pub const MAP_IDX_VALUE: u8 = 6;
    /// `src` of `call` for a helper, a bpf-to-bpf call, a kfunc.
    pub const CALL_HELPER: u8 = 0;
    pub const CALL_LOCAL: u8 = 1;
    pub const CALL_KFUNC: u8 = 2;
}

/// One raw instruction slot, fields as encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Insn {
    pub code: u8,
    pub dst: u8,
    pub src: u8,
    pub off: i16,
    pub imm: i32,
}

impl Insn {
    pub const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Self {
        Insn {
            code,
            dst,
            src,
            off,
            imm,
        }
    }

    /// Decodes one little-endian slot (the layout of the ELF and of BPF_PROG_LOAD).
    pub fn from_bytes(b: [u8; INSN_SIZE]) -> Self {
        Insn {
            code: b[0],
            dst: b[1] & 0x0f,
            src: b[1] >> 4,
            off: i16::from_le_bytes([b[2], b[3]]),
            imm: i32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        }
    }

    pub fn to_bytes(self) -> [u8; INSN_SIZE] {
        let off = self.off.to_le_bytes();
        let imm = self.imm.to_le_bytes();
        [
            self.code,
            (self.dst & 0x0f) | (self.src << 4),
            off[0],
            off[1],
            imm[0],
            imm[1],
            imm[2],
            imm[3],
        ]
    }

    /// The conformance suite's `-- raw` form: `imm<<32 | off<<16 | src<<12 | dst<<8 | opcode`.
    pub fn from_u64(v: u64) -> Self {
        Self::from_bytes(v.to_le_bytes())
    }

    pub fn to_u64(self) -> u64 {
        u64::from_le_bytes(self.to_bytes())
    }

    pub fn class(self) -> u8 {
        self.code & 0x07
    }
}

/// Splits a byte string into instruction slots.
pub fn slots_from_bytes(bytes: &[u8]) -> Result<Vec<Insn>, DecodeError> {
    if !bytes.len().is_multiple_of(INSN_SIZE) {
        return Err(DecodeError::Truncated {
            len: bytes.len(),
            index: bytes.len() / INSN_SIZE,
        });
    }
    Ok(bytes
        .chunks_exact(INSN_SIZE)
        .map(|c| Insn::from_bytes(c.try_into().expect("chunks_exact gives 8 bytes")))
        .collect())
}

pub fn slots_to_bytes(insns: &[Insn]) -> Vec<u8> {
    insns.iter().flat_map(|i| i.to_bytes()).collect()
}

/// Why a slot is not a valid instruction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("program is {len} bytes, not a whole number of 8-byte instructions (insn {index} is truncated)")]
    Truncated { len: usize, index: usize },
    #[error("insn {index}: unknown opcode {code:#04x}")]
    UnknownOpcode { index: usize, code: u8 },
    #[error("insn {index}: invalid {field} {value} for opcode {code:#04x} ({what})")]
    BadSelector {
        index: usize,
        code: u8,
        field: &'static str,
        value: i64,
        what: &'static str,
    },
    #[error("insn {index}: reserved field {field} of {mnemonic} must be 0, is {value}")]
    ReservedNonZero {
        index: usize,
        mnemonic: &'static str,
        field: &'static str,
        value: i64,
    },
    #[error("insn {index}: invalid register r{reg} in {field} of {mnemonic}")]
    BadRegister {
        index: usize,
        mnemonic: &'static str,
        field: &'static str,
        reg: u8,
    },
    #[error("insn {index}: lddw is missing its second slot")]
    LddwTruncated { index: usize },
    #[error("insn {index}: second slot of lddw must have opcode 0 and zero dst/src/off, found {found:#018x}")]
    LddwBadSecondSlot { index: usize, found: u64 },
}

/// ALU operations. `Movsx*` is `mov` with a sign-extending `off`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AluOp {
    Add,
    Sub,
    Mul,
    Div,
    Sdiv,
    Or,
    And,
    Lsh,
    Rsh,
    Neg,
    Mod,
    Smod,
    Xor,
    Mov,
    Movsx8,
    Movsx16,
    Movsx32,
    Arsh,
}

/// Conditions of conditional jumps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JmpCond {
    Eq,
    Gt,
    Ge,
    Set,
    Ne,
    Sgt,
    Sge,
    Lt,
    Le,
    Slt,
    Sle,
}

/// Atomic read-modify-write operations (`imm` of BPF_ATOMIC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AtomicOp {
    Add,
    Or,
    And,
    Xor,
    FetchAdd,
    FetchOr,
    FetchAnd,
    FetchXor,
    Xchg,
    Cmpxchg,
}

/// Byte-order operations: `le`/`be` convert from host (little-endian) order, `swap` always swaps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endian {
    Le,
    Be,
    Swap,
}

/// Access width of loads and stores, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Size {
    B = 1,
    H = 2,
    W = 4,
    DW = 8,
}

impl Size {
    pub const ALL: [Size; 4] = [Size::B, Size::H, Size::W, Size::DW];
    pub fn bytes(self) -> usize {
        self as usize
    }
    fn bits(self) -> u8 {
        match self {
            Size::W => 0x00,
            Size::H => 0x08,
            Size::B => 0x10,
            Size::DW => 0x18,
        }
    }
    fn suffix(self) -> &'static str {
        match self {
            Size::B => "b",
            Size::H => "h",
            Size::W => "w",
            Size::DW => "dw",
        }
    }
}

/// What an instruction does, free of encoding details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// `dst = dst op (src | imm)`; `is64` false means 32-bit with zero-extended result.
    Alu {
        op: AluOp,
        is64: bool,
        reg: bool,
    },
    /// Byte swap of the low `bits` bits of dst.
    End {
        kind: Endian,
        bits: u8,
    },
    /// `dst = *(size *)(src + off)`, sign-extending when `signed`.
    Load {
        size: Size,
        signed: bool,
    },
    /// `*(size *)(dst + off) = imm`.
    StoreImm {
        size: Size,
    },
    /// `*(size *)(dst + off) = src`.
    StoreReg {
        size: Size,
    },
    Atomic {
        size: Size,
        op: AtomicOp,
    },
    /// 64-bit immediate load over two slots; `src` is a [`pseudo`] source.
    Lddw,
    /// Legacy packet loads into r0 (network byte order).
    LdAbs {
        size: Size,
    },
    LdInd {
        size: Size,
    },
    /// `pc += off` (JMP class) or `pc += imm` (`ja32`, JMP32 class).
    Ja {
        long: bool,
    },
    Jmp {
        cond: JmpCond,
        is64: bool,
        reg: bool,
    },
    /// `call imm` to a helper, a bpf-to-bpf call (`pc += imm`) or a kfunc, by `src`.
    Call,
    /// `call %rD`: an indirect call through a register.
    Callx,
    Exit,
}

/// Which encoded field tells apart forms that share an opcode byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selector {
    None,
    Off(i16),
    Imm(i32),
    Src(u8),
}

/// Bit set of fields that must be zero.
pub mod zero {
    pub const DST: u8 = 1;
    pub const SRC: u8 = 2;
    pub const OFF: u8 = 4;
    pub const IMM: u8 = 8;
}

/// How an instruction's operands are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Syntax {
    /// `mnemonic %rD, %rS` or `mnemonic %rD, imm`
    DstSrc,
    /// `mnemonic %rD`
    Dst,
    /// `mnemonic %rD, [%rS+off]`
    Load,
    /// `mnemonic [%rD+off], imm`
    StoreImm,
    /// `mnemonic [%rD+off], %rS`
    StoreReg,
    /// `mnemonic imm` (ldabs)
    Abs,
    /// `mnemonic %rS, imm` (ldind)
    Ind,
    /// `mnemonic %rD, imm64` or a pseudo source
    Lddw,
    /// `mnemonic target`
    Jump,
    /// `mnemonic %rD, %rS|imm, target`
    CondJump,
    /// `call imm`, `call local target`, `call kfunc imm`
    Call,
    /// `call %rD`
    Callx,
    /// `exit`
    None,
}

/// One valid instruction form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSpec {
    pub code: u8,
    pub selector: Selector,
    pub mnemonic: &'static str,
    pub op: Op,
    pub syntax: Syntax,
    /// Fields (see [`zero`]) that must be zero.
    pub zero: u8,
}

impl OpSpec {
    /// Whether this form writes its `dst` register.
    pub fn writes_dst(&self) -> bool {
        match self.op {
            Op::Alu { .. } | Op::End { .. } | Op::Load { .. } | Op::Lddw => true,
            // Fetching atomics write `src` (or r0 for cmpxchg), never `dst`.
            _ => false,
        }
    }

    /// Whether the `dst` field names a register (rather than being zero by rule).
    pub fn names_dst(&self) -> bool {
        self.zero & zero::DST == 0
    }

    /// Whether the `src` field names a register (rather than being zero by rule or
    /// selecting the form, as for calls and `lddw`).
    pub fn names_src(&self) -> bool {
        self.zero & zero::SRC == 0 && !matches!(self.selector, Selector::Src(_))
    }
}

const ALU_OPS: [(AluOp, u8, &str); 14] = [
    (AluOp::Add, 0x00, "add"),
    (AluOp::Sub, 0x10, "sub"),
    (AluOp::Mul, 0x20, "mul"),
    (AluOp::Div, 0x30, "div"),
    (AluOp::Or, 0x40, "or"),
    (AluOp::And, 0x50, "and"),
    (AluOp::Lsh, 0x60, "lsh"),
    (AluOp::Rsh, 0x70, "rsh"),
    (AluOp::Mod, 0x90, "mod"),
    (AluOp::Xor, 0xa0, "xor"),
    (AluOp::Mov, 0xb0, "mov"),
    (AluOp::Arsh, 0xc0, "arsh"),
    (AluOp::Sdiv, 0x30, "sdiv"),
    (AluOp::Smod, 0x90, "smod"),
];

const JMP_CONDS: [(JmpCond, u8, &str); 11] = [
    (JmpCond::Eq, 0x10, "jeq"),
    (JmpCond::Gt, 0x20, "jgt"),
    (JmpCond::Ge, 0x30, "jge"),
    (JmpCond::Set, 0x40, "jset"),
    (JmpCond::Ne, 0x50, "jne"),
    (JmpCond::Sgt, 0x60, "jsgt"),
    (JmpCond::Sge, 0x70, "jsge"),
    (JmpCond::Lt, 0xa0, "jlt"),
    (JmpCond::Le, 0xb0, "jle"),
    (JmpCond::Slt, 0xc0, "jslt"),
    (JmpCond::Sle, 0xd0, "jsle"),
];

const ATOMIC_OPS: [(AtomicOp, i32, &str); 10] = [
    (AtomicOp::Add, 0x00, "lock add"),
    (AtomicOp::Or, 0x40, "lock or"),
    (AtomicOp::And, 0x50, "lock and"),
    (AtomicOp::Xor, 0xa0, "lock xor"),
    (AtomicOp::FetchAdd, 0x01, "lock fetch add"),
    (AtomicOp::FetchOr, 0x41, "lock fetch or"),
    (AtomicOp::FetchAnd, 0x51, "lock fetch and"),
    (AtomicOp::FetchXor, 0xa1, "lock fetch xor"),
    (AtomicOp::Xchg, 0xe1, "lock xchg"),
    (AtomicOp::Cmpxchg, 0xf1, "lock cmpxchg"),
];

const MODE_IMM: u8 = 0x00;
const MODE_ABS: u8 = 0x20;
const MODE_IND: u8 = 0x40;
const MODE_MEM: u8 = 0x60;
const MODE_MEMSX: u8 = 0x80;
const MODE_ATOMIC: u8 = 0xc0;
const SRC_REG: u8 = 0x08;
const OP_NEG: u8 = 0x80;
const OP_END: u8 = 0xd0;
const OP_JA: u8 = 0x00;
const OP_CALL: u8 = 0x80;
const OP_EXIT: u8 = 0x90;

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn build_table() -> Vec<OpSpec> {
    use zero::*;
    let mut t = Vec::new();
    let mut add = |code, selector, mnemonic: &'static str, op, syntax, zero| {
        t.push(OpSpec {
            code,
            selector,
            mnemonic,
            op,
            syntax,
            zero,
        })
    };

    for (cls, is64, suffix) in [(class::ALU64, true, ""), (class::ALU, false, "32")] {
        for &(op, bits, name) in &ALU_OPS {
            let signed_div = matches!(op, AluOp::Sdiv | AluOp::Smod);
            let selector = Selector::Off(signed_div as i16);
            let mnemonic = leak(format!("{name}{suffix}"));
            add(
                cls | bits,
                selector,
                mnemonic,
                Op::Alu {
                    op,
                    is64,
                    reg: false,
                },
                Syntax::DstSrc,
                SRC,
            );
            add(
                cls | SRC_REG | bits,
                selector,
                mnemonic,
                Op::Alu {
                    op,
                    is64,
                    reg: true,
                },
                Syntax::DstSrc,
                IMM,
            );
        }
        add(
            cls | OP_NEG,
            Selector::None,
            leak(format!("neg{suffix}")),
            Op::Alu {
                op: AluOp::Neg,
                is64,
                reg: false,
            },
            Syntax::Dst,
            SRC | OFF | IMM,
        );
        let movsx: &[(AluOp, i16)] = if is64 {
            &[
                (AluOp::Movsx8, 8),
                (AluOp::Movsx16, 16),
                (AluOp::Movsx32, 32),
            ]
        } else {
            &[(AluOp::Movsx8, 8), (AluOp::Movsx16, 16)]
        };
        for &(op, bits) in movsx {
            add(
                cls | SRC_REG | 0xb0,
                Selector::Off(bits),
                leak(format!("movsx{bits}{}", if is64 { 64 } else { 32 })),
                Op::Alu {
                    op,
                    is64,
                    reg: true,
                },
                Syntax::DstSrc,
                IMM,
            );
        }
    }
    for (kind, code, name) in [
        (Endian::Le, class::ALU | OP_END, "le"),
        (Endian::Be, class::ALU | SRC_REG | OP_END, "be"),
        (Endian::Swap, class::ALU64 | OP_END, "swap"),
    ] {
        for bits in [16u8, 32, 64] {
            add(
                code,
                Selector::Imm(bits as i32),
                leak(format!("{name}{bits}")),
                Op::End { kind, bits },
                Syntax::Dst,
                SRC | OFF,
            );
        }
    }
    for size in Size::ALL {
        let s = size.suffix();
        add(
            class::LDX | MODE_MEM | size.bits(),
            Selector::None,
            leak(format!("ldx{s}")),
            Op::Load {
                size,
                signed: false,
            },
            Syntax::Load,
            IMM,
        );
        if size != Size::DW {
            add(
                class::LDX | MODE_MEMSX | size.bits(),
                Selector::None,
                leak(format!("ldxs{s}")),
                Op::Load { size, signed: true },
                Syntax::Load,
                IMM,
            );
        }
        add(
            class::ST | MODE_MEM | size.bits(),
            Selector::None,
            leak(format!("st{s}")),
            Op::StoreImm { size },
            Syntax::StoreImm,
            SRC,
        );
        add(
            class::STX | MODE_MEM | size.bits(),
            Selector::None,
            leak(format!("stx{s}")),
            Op::StoreReg { size },
            Syntax::StoreReg,
            IMM,
        );
        if size != Size::DW {
            add(
                class::LD | MODE_ABS | size.bits(),
                Selector::None,
                leak(format!("ldabs{s}")),
                Op::LdAbs { size },
                Syntax::Abs,
                DST | SRC | OFF,
            );
            add(
                class::LD | MODE_IND | size.bits(),
                Selector::None,
                leak(format!("ldind{s}")),
                Op::LdInd { size },
                Syntax::Ind,
                DST | OFF,
            );
        }
    }
    for (size, suffix) in [(Size::DW, ""), (Size::W, "32")] {
        for &(op, imm, name) in &ATOMIC_OPS {
            add(
                class::STX | MODE_ATOMIC | size.bits(),
                Selector::Imm(imm),
                leak(format!("{name}{suffix}")),
                Op::Atomic { size, op },
                Syntax::StoreReg,
                0,
            );
        }
    }
    for src in [
        pseudo::IMM,
        pseudo::MAP_FD,
        pseudo::MAP_VALUE,
        pseudo::BTF_ID,
        pseudo::FUNC,
        pseudo::MAP_IDX,
        pseudo::MAP_IDX_VALUE,
    ] {
        add(
            class::LD | MODE_IMM | Size::DW.bits(),
            Selector::Src(src),
            "lddw",
            Op::Lddw,
            Syntax::Lddw,
            OFF,
        );
    }
    add(
        class::JMP | OP_JA,
        Selector::None,
        "ja",
        Op::Ja { long: false },
        Syntax::Jump,
        DST | SRC | IMM,
    );
    add(
        class::JMP32 | OP_JA,
        Selector::None,
        "ja32",
        Op::Ja { long: true },
        Syntax::Jump,
        DST | SRC | OFF,
    );
    for (cls, is64, suffix) in [(class::JMP, true, ""), (class::JMP32, false, "32")] {
        for &(cond, bits, name) in &JMP_CONDS {
            let mnemonic = leak(format!("{name}{suffix}"));
            add(
                cls | bits,
                Selector::None,
                mnemonic,
                Op::Jmp {
                    cond,
                    is64,
                    reg: false,
                },
                Syntax::CondJump,
                SRC,
            );
            add(
                cls | SRC_REG | bits,
                Selector::None,
                mnemonic,
                Op::Jmp {
                    cond,
                    is64,
                    reg: true,
                },
                Syntax::CondJump,
                IMM,
            );
        }
    }
    for src in [pseudo::CALL_HELPER, pseudo::CALL_LOCAL, pseudo::CALL_KFUNC] {
        add(
            class::JMP | OP_CALL,
            Selector::Src(src),
            "call",
            Op::Call,
            Syntax::Call,
            DST | OFF,
        );
    }
    add(
        class::JMP | SRC_REG | OP_CALL,
        Selector::None,
        "call",
        Op::Callx,
        Syntax::Callx,
        SRC | OFF | IMM,
    );
    add(
        class::JMP | OP_EXIT,
        Selector::None,
        "exit",
        Op::Exit,
        Syntax::None,
        DST | SRC | OFF | IMM,
    );
    t
}

struct Index {
    table: Vec<OpSpec>,
    by_code: Vec<Vec<u16>>,
}

static INDEX: LazyLock<Index> = LazyLock::new(|| {
    let table = build_table();
    let mut by_code = vec![Vec::new(); 256];
    for (i, spec) in table.iter().enumerate() {
        by_code[spec.code as usize].push(i as u16);
    }
    Index { table, by_code }
});

/// Every valid instruction form.
pub fn table() -> &'static [OpSpec] {
    &INDEX.table
}

/// The forms sharing an opcode byte.
pub fn forms_of(code: u8) -> impl Iterator<Item = &'static OpSpec> {
    INDEX.by_code[code as usize]
        .iter()
        .map(|&i| &INDEX.table[i as usize])
}

fn selector_matches(sel: Selector, insn: &Insn) -> bool {
    match sel {
        Selector::None => true,
        Selector::Off(v) => insn.off == v,
        Selector::Imm(v) => insn.imm == v,
        Selector::Src(v) => insn.src == v,
    }
}

/// Finds the form of one slot and checks its fields; `index` is for messages only.
pub fn lookup(insn: &Insn, index: usize) -> Result<&'static OpSpec, DecodeError> {
    let mut forms = forms_of(insn.code).peekable();
    let first = *forms.peek().ok_or(DecodeError::UnknownOpcode {
        index,
        code: insn.code,
    })?;
    let spec = forms
        .find(|s| selector_matches(s.selector, insn))
        .ok_or_else(|| {
            let (field, value, what) = match first.selector {
                Selector::Off(_) => ("off", insn.off as i64, "not a known variant"),
                Selector::Imm(_) => ("imm", insn.imm as i64, "not a known variant"),
                Selector::Src(_) => ("src", insn.src as i64, "not a known source"),
                Selector::None => ("field", 0, "unreachable"),
            };
            DecodeError::BadSelector {
                index,
                code: insn.code,
                field,
                value,
                what,
            }
        })?;
    let reserved = |bit: u8, field: &'static str, value: i64| {
        if spec.zero & bit != 0 && value != 0 {
            Err(DecodeError::ReservedNonZero {
                index,
                mnemonic: spec.mnemonic,
                field,
                value,
            })
        } else {
            Ok(())
        }
    };
    reserved(zero::DST, "dst", insn.dst as i64)?;
    reserved(zero::SRC, "src", insn.src as i64)?;
    reserved(zero::OFF, "off", insn.off as i64)?;
    reserved(zero::IMM, "imm", insn.imm as i64)?;
    let reg = |field: &'static str, reg: u8, used: bool| {
        if used && reg as usize >= NUM_REGS {
            Err(DecodeError::BadRegister {
                index,
                mnemonic: spec.mnemonic,
                field,
                reg,
            })
        } else {
            Ok(())
        }
    };
    reg("dst", insn.dst, spec.names_dst())?;
    reg("src", insn.src, spec.names_src())?;
    Ok(spec)
}

/// A decoded instruction: its form and fields, with the full 64-bit immediate for `lddw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub spec: &'static OpSpec,
    pub insn: Insn,
    /// For `lddw`: the second slot's `imm`; 0 otherwise.
    pub imm_hi: i32,
}

impl Decoded {
    /// Number of slots this instruction occupies.
    pub fn slots(&self) -> usize {
        if self.spec.op == Op::Lddw {
            2
        } else {
            1
        }
    }

    /// `lddw`'s 64-bit value (`imm | imm_hi << 32`).
    pub fn imm64(&self) -> u64 {
        (self.insn.imm as u32 as u64) | ((self.imm_hi as u32 as u64) << 32)
    }
}

/// Decodes a whole program. The result has one entry per instruction (an `lddw` covers two
/// slots); pair it with [`slot_indices`] to map back to slot numbers.
pub fn decode(slots: &[Insn]) -> Result<Vec<(usize, Decoded)>, DecodeError> {
    let mut out = Vec::with_capacity(slots.len());
    let mut i = 0;
    while i < slots.len() {
        let insn = slots[i];
        let spec = lookup(&insn, i)?;
        let mut imm_hi = 0;
        if spec.op == Op::Lddw {
            let next = slots
                .get(i + 1)
                .ok_or(DecodeError::LddwTruncated { index: i })?;
            if next.code != 0 || next.dst != 0 || next.src != 0 || next.off != 0 {
                return Err(DecodeError::LddwBadSecondSlot {
                    index: i,
                    found: next.to_u64(),
                });
            }
            imm_hi = next.imm;
        }
        let d = Decoded { spec, insn, imm_hi };
        out.push((i, d));
        i += d.slots();
    }
    Ok(out)
}

/// For each slot, whether it is the second half of an `lddw` (not a valid jump target).
pub fn lddw_tails(decoded: &[(usize, Decoded)], len: usize) -> Vec<bool> {
    let mut tails = vec![false; len];
    for (i, d) in decoded {
        if d.slots() == 2 {
            tails[i + 1] = true;
        }
    }
    tails
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_is_found_by_its_own_encoding() {
        for spec in table() {
            let mut insn = Insn {
                code: spec.code,
                ..Insn::default()
            };
            match spec.selector {
                Selector::None => {}
                Selector::Off(v) => insn.off = v,
                Selector::Imm(v) => insn.imm = v,
                Selector::Src(v) => insn.src = v,
            }
            let found = lookup(&insn, 0).unwrap();
            assert_eq!(found.op, spec.op, "{}", spec.mnemonic);
        }
    }

    #[test]
    fn forms_are_unique() {
        let t = table();
        for (i, a) in t.iter().enumerate() {
            for b in &t[i + 1..] {
                assert!(
                    !(a.code == b.code && a.selector == b.selector),
                    "{} and {} collide",
                    a.mnemonic,
                    b.mnemonic
                );
            }
        }
    }

    #[test]
    fn raw_round_trip() {
        let v = 0x5566778800000018u64;
        let i = Insn::from_u64(v);
        assert_eq!(i.code, 0x18);
        assert_eq!(i.imm, 0x55667788);
        assert_eq!(i.to_u64(), v);
    }

    #[test]
    fn rejects_bad_fields() {
        // add64 imm with a non-zero src
        let e = lookup(&Insn::new(0x07, 1, 2, 0, 1), 3).unwrap_err();
        assert!(
            matches!(e, DecodeError::ReservedNonZero { index: 3, .. }),
            "{e}"
        );
        // register 11
        assert!(matches!(
            lookup(&Insn::new(0xbf, 11, 1, 0, 0), 0),
            Err(DecodeError::BadRegister { .. })
        ));
        // sdiv with off 2
        assert!(matches!(
            lookup(&Insn::new(0x3f, 1, 1, 2, 0), 0),
            Err(DecodeError::BadSelector { .. })
        ));
        assert!(matches!(
            lookup(&Insn::new(0xff, 0, 0, 0, 0), 0),
            Err(DecodeError::UnknownOpcode { .. })
        ));
        // movsx32 in ALU32 does not exist
        assert!(lookup(&Insn::new(0xbc, 1, 2, 32, 0), 0).is_err());
    }

    #[test]
    fn lddw_needs_its_second_slot() {
        let lddw = Insn::new(0x18, 0, 0, 0, 1);
        assert_eq!(
            decode(&[lddw]).unwrap_err(),
            DecodeError::LddwTruncated { index: 0 }
        );
        let d = decode(&[lddw, Insn::new(0, 0, 0, 0, 2)]).unwrap();
        assert_eq!(d[0].1.imm64(), 0x2_0000_0001);
    }
}
