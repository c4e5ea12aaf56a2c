//! Verifier-lite: tells, without a kernel, whether the kernel's verifier would accept a
//! program, with the kernel's own messages; and proves facts the engines can use.
//!
//! # API
//! - [`verify`]`(&insns, &VerifyOptions) -> Result<Verdict, Rejection>`.
//! - [`VerifyOptions`]: the kernel program type number (`BPF_PROG_TYPE_*`, see
//!   [`prog_type`]), the maps the program refers to ([`MapInfo`], indexed like the loader's
//!   `Object::maps`), an optional source-line lookup, the log level, the budget.
//! - [`Rejection`]: the instruction, an [`ErrorClass`], the kernel's message, the
//!   disassembled instruction and source line; its `Display` is
//!   `insn N: <disassembly>: <message>` followed by the source line.
//! - [`Verdict`]: instructions processed, the log, and [`Facts`] for the engines.
//!
//! Map references in `lddw`: src `MAP_IDX` (5) or `MAP_FD` (1) with `imm` = map index
//! give a map pointer; src `MAP_IDX_VALUE` (6) or `MAP_VALUE` (2) with `imm` = map index
//! and the second slot's `imm` = offset give a pointer into the map's (single) value.
//!
//! # What is checked
//! Structure ([`cfg`]): encodings, registers, `r10` writes, jump and call targets,
//! `lddw` pairs and map indices, falling off the end, unreachable code, helper ids.
//! Then every path is walked (with the kernel's budget of 1,000,000 processed
//! instructions) over abstract states ([`state`]): register types, constant offsets,
//! scalar ranges ([`scalar`]), stack contents (spilled registers, also scalars spilled by
//! narrower stores); states already proven safe prune later ones they cover, so loops
//! over constants converge and endless loops are caught. Scalars whose values can decide
//! nothing later (found statically, where the kernel tracks precision on demand) are not
//! compared when pruning, so values that are only computed and printed do not multiply
//! the states.
//! Accesses are checked per pointer kind (stack, context layouts in [`ctx`], map values,
//! packets after `data + n > data_end` checks, ring buffer records), helper arguments
//! against [`helpers`] prototypes, references (ring buffer reservations) must be released
//! on every path, and R0 at exit must be initialised and in the program type's range.
//!
//! The kernel is the reference: the decisions are those of a 6.18 kernel loading as root
//! (so, like it, reads of uninitialised stack are allowed unless
//! [`VerifyOptions::privileged`] is false).

pub(crate) mod cfg;
mod check;
pub mod ctx;
pub mod helpers;
pub mod scalar;
pub mod state;

use std::fmt;

use crate::disasm::format_insn;
use crate::isa::{Decoded, Insn};

pub use ctx::{prog_type, CtxField};

/// What the verifier knows of a map.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapInfo {
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Read-only for programs (`.rodata`, `BPF_F_RDONLY_PROG`).
    pub readonly: bool,
    /// For a map of maps (`ARRAY_OF_MAPS`, `HASH_OF_MAPS`): its inner map template. A
    /// lookup in it gives, once checked for NULL, a pointer to a map of that kind
    /// (`CONST_PTR_TO_MAP`), usable where helpers take a map.
    pub inner: Option<InnerMapInfo>,
}

/// What the verifier knows of the inner map template of a map of maps (the kernel does
/// not nest maps of maps, so it has no inner map of its own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InnerMapInfo {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub readonly: bool,
}

impl MapInfo {
    /// The inner map template as a map of its own.
    pub fn inner_map(&self) -> Option<MapInfo> {
        self.inner.map(|i| MapInfo {
            map_type: i.map_type,
            key_size: i.key_size,
            value_size: i.value_size,
            max_entries: i.max_entries,
            readonly: i.readonly,
            inner: None,
        })
    }
}

/// The kernel's default budget of processed instructions.
pub const COMPLEXITY_LIMIT: usize = 1_000_000;

/// How to verify.
pub struct VerifyOptions<'a> {
    /// `BPF_PROG_TYPE_*` number.
    pub prog_type: u32,
    pub maps: &'a [MapInfo],
    /// The source line of a slot, for messages (e.g. from BTF line info).
    pub source_line: Option<&'a dyn Fn(usize) -> Option<String>>,
    /// 0: no log; 1: the state at each prune point and the error; 2: every instruction.
    pub log_level: u32,
    /// Most instructions processed on all paths together.
    pub complexity_limit: usize,
    /// Loading as root (CAP_PERFMON): uninitialised stack may be read.
    pub privileged: bool,
    /// Raw runs (`exec`, the benchmarks): r1 points to a writable block of this many bytes
    /// (the context region) instead of the program type's context.
    pub raw_ctx_size: Option<u32>,
}

impl Default for VerifyOptions<'_> {
    fn default() -> Self {
        VerifyOptions {
            prog_type: prog_type::SOCKET_FILTER,
            maps: &[],
            source_line: None,
            log_level: 0,
            complexity_limit: COMPLEXITY_LIMIT,
            privileged: true,
            raw_ctx_size: None,
        }
    }
}

impl<'a> VerifyOptions<'a> {
    pub fn new(prog_type: u32, maps: &'a [MapInfo]) -> Self {
        VerifyOptions {
            prog_type,
            maps,
            ..Default::default()
        }
    }
}

/// Why the kernel would reject a program: one class per common cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Unknown opcode, reserved field set, bad register number, bad `lddw`.
    InvalidInstruction,
    /// A write to r10.
    FramePointerWrite,
    /// A jump or call outside its function or into the middle of an `lddw`.
    JumpOutOfRange,
    /// A function's last instruction is not `exit` or `ja`.
    FallsOffEnd,
    Unreachable,
    /// More instructions than the kernel takes.
    TooLarge,
    /// A helper id the kernel does not have.
    UnknownHelper,
    /// A helper this program type may not call.
    HelperNotAllowed,
    /// Calls nested deeper than 8 frames, or more than 512 bytes of stack together.
    CallStack,
    /// A register read before it is written (`R2 !read_ok`).
    UninitRegister,
    /// Stack bytes read before they are written (unprivileged only).
    UninitStack,
    /// A stack access outside the 512-byte frame.
    StackBounds,
    /// A stack access not aligned to its size (the kernel is strict for the stack).
    Misaligned,
    /// A map value or ring buffer record used before its NULL check.
    NullDeref,
    /// Packet access not proven inside `data..data_end`.
    PacketBounds,
    /// Context access out of the type's bounds or with a wrong size.
    CtxAccess,
    /// Access outside a map value or ring buffer record.
    MemBounds,
    /// A dereference of a scalar or of a pointer that cannot be dereferenced.
    InvalidMemAccess,
    /// Pointer arithmetic the kernel forbids.
    PointerArithmetic,
    /// The wrong kind of argument to a helper.
    HelperArg,
    /// A ring buffer reservation not submitted or discarded on some path.
    ReferenceLeak,
    /// R0 at exit is a pointer where a number is required.
    ReturnPointer,
    /// R0 at exit outside the program type's range.
    ReturnRange,
    /// A loop that makes no progress.
    InfiniteLoop,
    /// More than the budget of processed instructions.
    Complexity,
    /// Division by a zero constant, an invalid shift.
    InvalidAlu,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 26] = [
        ErrorClass::InvalidInstruction,
        ErrorClass::FramePointerWrite,
        ErrorClass::JumpOutOfRange,
        ErrorClass::FallsOffEnd,
        ErrorClass::Unreachable,
        ErrorClass::TooLarge,
        ErrorClass::UnknownHelper,
        ErrorClass::HelperNotAllowed,
        ErrorClass::CallStack,
        ErrorClass::UninitRegister,
        ErrorClass::UninitStack,
        ErrorClass::StackBounds,
        ErrorClass::Misaligned,
        ErrorClass::NullDeref,
        ErrorClass::PacketBounds,
        ErrorClass::CtxAccess,
        ErrorClass::MemBounds,
        ErrorClass::InvalidMemAccess,
        ErrorClass::PointerArithmetic,
        ErrorClass::HelperArg,
        ErrorClass::ReferenceLeak,
        ErrorClass::ReturnPointer,
        ErrorClass::ReturnRange,
        ErrorClass::InfiniteLoop,
        ErrorClass::Complexity,
        ErrorClass::InvalidAlu,
    ];

    /// A short kebab-case name (used in the corpus headers).
    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::InvalidInstruction => "invalid-insn",
            ErrorClass::FramePointerWrite => "fp-write",
            ErrorClass::JumpOutOfRange => "jump-range",
            ErrorClass::FallsOffEnd => "falls-off-end",
            ErrorClass::Unreachable => "unreachable",
            ErrorClass::TooLarge => "too-large",
            ErrorClass::UnknownHelper => "unknown-helper",
            ErrorClass::HelperNotAllowed => "helper-not-allowed",
            ErrorClass::CallStack => "call-stack",
            ErrorClass::UninitRegister => "uninit-reg",
            ErrorClass::UninitStack => "uninit-stack",
            ErrorClass::StackBounds => "stack-bounds",
            ErrorClass::Misaligned => "misaligned",
            ErrorClass::NullDeref => "null-deref",
            ErrorClass::PacketBounds => "packet-bounds",
            ErrorClass::CtxAccess => "ctx-access",
            ErrorClass::MemBounds => "mem-bounds",
            ErrorClass::InvalidMemAccess => "invalid-mem-access",
            ErrorClass::PointerArithmetic => "pointer-arith",
            ErrorClass::HelperArg => "helper-arg",
            ErrorClass::ReferenceLeak => "ref-leak",
            ErrorClass::ReturnPointer => "return-pointer",
            ErrorClass::ReturnRange => "return-range",
            ErrorClass::InfiniteLoop => "infinite-loop",
            ErrorClass::Complexity => "complexity",
            ErrorClass::InvalidAlu => "invalid-alu",
        }
    }

    pub fn from_name(s: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.iter().copied().find(|c| c.name() == s)
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The kernel would reject the program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// Slot index of the offending instruction.
    pub insn: usize,
    pub class: ErrorClass,
    /// The kernel's message, e.g. `R1 invalid mem access 'map_value_or_null'`.
    pub message: String,
    /// The instruction in assembler syntax (empty when it does not decode).
    pub disasm: String,
    /// Its C source line, when line info is available.
    pub source: Option<String>,
    /// The verifier log up to the error (see [`VerifyOptions::log_level`]).
    pub log: String,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.disasm.is_empty() {
            write!(f, "insn {}: {}", self.insn, self.message)?;
        } else {
            write!(f, "insn {}: {}: {}", self.insn, self.disasm, self.message)?;
        }
        if let Some(s) = &self.source {
            write!(f, "\n  source: {}", s.trim())?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejection {}

/// One context access, for the runtime to rewrite (e.g. `xdp_md.data` → a packet address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct CtxAccess {
    /// Slot index of the load or store.
    pub insn: usize,
    /// Byte offset into the context structure.
    pub offset: u32,
    /// Access width in bytes.
    pub size: u32,
    pub write: bool,
    /// What the field holds.
    pub field: CtxField,
}

/// Facts proven on every path, for the engines.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Per slot: `true` when the instruction is a memory access (load, store, atomic) that
    /// is inside its region on every path (stack at a proven offset, context, map value,
    /// checked packet, ring buffer record); such accesses need no runtime check. `false`
    /// for everything else (including accesses through kernel pointers, which the kernel
    /// itself makes fault-safe).
    pub in_bounds: Vec<bool>,
    /// Per slot: where an access that is in bounds on every path lands, for engines that
    /// translate it without looking the region up.
    pub proven: Vec<Proven>,
    /// Bytes of the context region that [`Proven::Ctx`] loads and stores reach at most
    /// (an engine using those proofs must check the region is that large).
    pub ctx_load_extent: u32,
    pub ctx_store_extent: u32,
    /// Every context access, sorted by instruction; one instruction always accesses the
    /// same field (the kernel requires it).
    pub ctx_accesses: Vec<CtxAccess>,
    /// Stack bytes used by each function (by first slot).
    pub stack_depth: Vec<(usize, u32)>,
}

/// Where an access proven in bounds lands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Proven {
    /// Not proven on every path, or not a memory access.
    #[default]
    No,
    /// The stack of the frame executing it.
    Frame,
    /// The context r1 points to at entry (the raw block in raw runs).
    Ctx,
    /// Some other region (map value, ring buffer record, a caller's frame, packet), or
    /// different ones on different paths.
    Elsewhere,
}

/// The kernel would accept the program.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Instructions processed on all paths (the kernel's "processed N insns").
    pub processed: usize,
    /// States remembered for pruning.
    pub total_states: usize,
    pub facts: Facts,
    pub log: String,
}

/// An error found while verifying, before it is dressed as a [`Rejection`].
#[derive(Debug)]
pub(crate) struct Fail {
    pub insn: usize,
    pub class: ErrorClass,
    pub message: String,
}

impl Fail {
    pub fn new(insn: usize, class: ErrorClass, message: String) -> Fail {
        Fail {
            insn,
            class,
            message,
        }
    }
}

/// Verifies a program: `Ok` when the kernel would load it.
pub fn verify(insns: &[Insn], opts: &VerifyOptions) -> Result<Verdict, Rejection> {
    let reject = |f: Fail, log: String, decoded: Option<Decoded>| Rejection {
        insn: f.insn,
        class: f.class,
        message: f.message,
        disasm: decoded.map(|d| format_insn(&d)).unwrap_or_default(),
        source: opts.source_line.and_then(|s| s(f.insn)),
        log,
    };
    if insns.is_empty() {
        return Err(reject(
            Fail::new(0, ErrorClass::InvalidInstruction, "program is empty".into()),
            String::new(),
            None,
        ));
    }
    if insns.len() > crate::program::MAX_INSNS {
        return Err(reject(
            Fail::new(
                0,
                ErrorClass::TooLarge,
                format!(
                    "program of {} insns is too large (limit {})",
                    insns.len(),
                    crate::program::MAX_INSNS
                ),
            ),
            String::new(),
            None,
        ));
    }
    let decoded_at = |i: usize| {
        insns
            .get(i)
            .and_then(|s| crate::isa::lookup(s, i).ok())
            .map(|spec| Decoded {
                spec,
                insn: insns[i],
                imm_hi: insns.get(i + 1).map(|n| n.imm).unwrap_or(0),
            })
    };
    let cfg = match cfg::build(insns, opts.maps) {
        Ok(c) => c,
        Err(f) => {
            let d = decoded_at(f.insn);
            return Err(reject(f, String::new(), d));
        }
    };
    // Which scalars are precise is learnt by walking: walk again, with more of them
    // precise, until a walk learns nothing its pruning did not assume.
    let mut precision =
        cfg::Precision::new(insns.len(), ctx::return_range(opts.prog_type).is_some());
    let (mut checker, result) = loop {
        let mut checker = check::Checker::new(&cfg, opts, precision);
        let result = checker.run();
        if !checker.learnt {
            break (checker, result);
        }
        precision = std::mem::replace(&mut checker.precision, cfg::Precision::new(0, false));
    };
    match result {
        Ok(()) => Ok(checker.into_verdict()),
        Err(f) => {
            let d = cfg.insns.get(f.insn).copied().flatten();
            let mut log = std::mem::take(&mut checker.log);
            if opts.log_level > 0 {
                log.push_str(&f.message);
                log.push('\n');
            }
            Err(reject(f, log, d))
        }
    }
}

#[cfg(test)]
mod tests;
