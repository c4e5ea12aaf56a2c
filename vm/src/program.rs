//! A decoded, structurally checked program, the input of every engine.
//!
//! These checks are the ones an engine needs to run a program without losing control of
//! it: every instruction valid, every jump and call inside the program and not into the
//! second half of an `lddw`, no way to fall off the end, r10 never written (so accesses at
//! constant offsets from r10 are provably inside the frame), every `lddw` resolved to its
//! 64-bit value. The verifier checks much more; this is the floor.

use crate::isa::{self, pseudo, DecodeError, Decoded, Insn, Op, FRAME_REG};
use crate::memory::{vaddr, CODE_REGION};

/// `bpf_tail_call`'s helper id.
const TAIL_CALL_HELPER: i32 = 12;

/// The kernel's limit on program size for privileged loads.
pub const MAX_INSNS: usize = 1_000_000;

/// Why a program cannot be prepared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProgramError {
    #[error("{0}")]
    Decode(#[from] DecodeError),
    #[error("program is empty")]
    Empty,
    #[error("program has {0} instructions, more than the limit of {MAX_INSNS}")]
    TooLarge(usize),
    #[error("insn {index}: {what} target {target} is outside the program (0..{len})")]
    TargetOutOfRange {
        index: usize,
        what: &'static str,
        target: i64,
        len: usize,
    },
    #[error("insn {index}: {what} target {target} is the second half of the lddw at {}", target - 1)]
    TargetIntoLddw {
        index: usize,
        what: &'static str,
        target: usize,
    },
    #[error("insn {index}: last insn is not an exit or jmp (execution would fall off the end)")]
    FallsOffEnd { index: usize },
    #[error("insn {index}: frame pointer is read only (r10 is written by {mnemonic})")]
    WritesFramePointer {
        index: usize,
        mnemonic: &'static str,
    },
    #[error("insn {index}: calls to kernel functions (kfuncs) are not supported")]
    Kfunc { index: usize },
    #[error("insn {index}: {message}")]
    Lddw { index: usize, message: String },
}

/// One instruction of a prepared program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// Slot index of the instruction (the index used in every message).
    pub index: usize,
    pub decoded: Decoded,
    /// Absolute slot index of the jump, call or function target, if any.
    pub target: Option<usize>,
    /// The value an `lddw` loads, after resolution.
    pub value: u64,
}

/// A program ready for an engine.
#[derive(Clone, Debug)]
pub struct Program {
    slots: Vec<Insn>,
    insns: Vec<Instruction>,
    /// Per slot: the position in `insns` of the instruction starting there.
    by_slot: Vec<Option<u32>>,
    /// Per slot: whether a bpf-to-bpf call or a function address may enter here.
    func_entry: Vec<bool>,
    /// Whether a run may write the stack (see [`Self::touches_stack`]).
    touches_stack: bool,
}

/// Turns an `lddw` with a pseudo source (maps, BTF ids) into its 64-bit value. The runtime
/// supplies one that knows the maps; `None` answers refuse such loads.
pub type LddwResolver<'r> = &'r dyn Fn(&Decoded) -> Result<u64, String>;

impl Program {
    /// Prepares a program with no maps: only plain and function `lddw`s are accepted.
    pub fn new(slots: Vec<Insn>) -> Result<Self, ProgramError> {
        Self::with_resolver(slots, &|d: &Decoded| {
            Err(format!(
                "lddw with src {} ({}) needs a map or BTF object; load the program through the runtime",
                d.insn.src,
                pseudo_name(d.insn.src)
            ))
        })
    }

    /// Prepares a program from raw little-endian bytecode.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProgramError> {
        Self::new(isa::slots_from_bytes(bytes)?)
    }

    pub fn with_resolver(slots: Vec<Insn>, resolve: LddwResolver) -> Result<Self, ProgramError> {
        if slots.is_empty() {
            return Err(ProgramError::Empty);
        }
        if slots.len() > MAX_INSNS {
            return Err(ProgramError::TooLarge(slots.len()));
        }
        let decoded = isa::decode(&slots)?;
        let tails = isa::lddw_tails(&decoded, slots.len());
        let len = slots.len();
        let check_target = |index: usize, what: &'static str, rel: i64| {
            let target = index as i64 + 1 + rel;
            if target < 0 || target >= len as i64 {
                return Err(ProgramError::TargetOutOfRange {
                    index,
                    what,
                    target,
                    len,
                });
            }
            let target = target as usize;
            if tails[target] {
                return Err(ProgramError::TargetIntoLddw {
                    index,
                    what,
                    target,
                });
            }
            Ok(target)
        };
        let mut insns = Vec::with_capacity(decoded.len());
        let mut by_slot = vec![None; len];
        let mut func_entry = vec![false; len];
        func_entry[0] = true;
        for &(index, d) in &decoded {
            let spec = d.spec;
            if spec.writes_dst() && d.insn.dst == FRAME_REG {
                return Err(ProgramError::WritesFramePointer {
                    index,
                    mnemonic: spec.mnemonic,
                });
            }
            if let Op::Atomic { op, .. } = spec.op {
                use crate::isa::AtomicOp::*;
                let fetches = matches!(op, FetchAdd | FetchOr | FetchAnd | FetchXor | Xchg);
                if fetches && d.insn.src == FRAME_REG {
                    return Err(ProgramError::WritesFramePointer {
                        index,
                        mnemonic: spec.mnemonic,
                    });
                }
            }
            let mut target = None;
            let mut value = 0;
            match spec.op {
                Op::Ja { long: false } | Op::Jmp { .. } => {
                    target = Some(check_target(index, "jump", d.insn.off as i64)?);
                }
                Op::Ja { long: true } => {
                    target = Some(check_target(index, "jump", d.insn.imm as i64)?);
                }
                Op::Call => match d.insn.src {
                    pseudo::CALL_LOCAL => {
                        let t = check_target(index, "call", d.insn.imm as i64)?;
                        func_entry[t] = true;
                        target = Some(t);
                    }
                    pseudo::CALL_KFUNC => return Err(ProgramError::Kfunc { index }),
                    _ => {}
                },
                Op::Lddw => match d.insn.src {
                    pseudo::IMM => value = d.imm64(),
                    pseudo::FUNC => {
                        let t = check_target(index, "function address", d.insn.imm as i64)?;
                        func_entry[t] = true;
                        target = Some(t);
                        value = vaddr(CODE_REGION, t as u32);
                    }
                    _ => {
                        value =
                            resolve(&d).map_err(|message| ProgramError::Lddw { index, message })?
                    }
                },
                _ => {}
            }
            by_slot[index] = Some(insns.len() as u32);
            insns.push(Instruction {
                index,
                decoded: d,
                target,
                value,
            });
        }
        let last = insns
            .last()
            .expect("a non-empty program decodes to instructions");
        if !matches!(last.decoded.spec.op, Op::Exit | Op::Ja { .. }) {
            return Err(ProgramError::FallsOffEnd { index: last.index });
        }
        let touches_stack = insns.iter().any(|i| {
            let x = i.decoded.insn;
            let reads_r10 = x.dst == FRAME_REG || x.src == FRAME_REG;
            // A tail call or a callx (which may name the tail-call helper) continues in
            // another program, which may use the stack.
            let leaves = match i.decoded.spec.op {
                Op::Callx => true,
                Op::Call => i.target.is_none() && x.imm == TAIL_CALL_HELPER,
                _ => false,
            };
            reads_r10 || leaves
        });
        Ok(Program {
            slots,
            insns,
            by_slot,
            func_entry,
            touches_stack,
        })
    }

    /// The raw slots as given.
    pub fn slots(&self) -> &[Insn] {
        &self.slots
    }

    /// The instructions in order.
    pub fn instructions(&self) -> &[Instruction] {
        &self.insns
    }

    /// The instruction starting at slot `index`, if one does.
    pub fn at_slot(&self, index: usize) -> Option<&Instruction> {
        self.insns.get(self.position(index)?)
    }

    /// Where the instruction starting at slot `index` is in [`Self::instructions`].
    pub fn position(&self, index: usize) -> Option<usize> {
        Some((*self.by_slot.get(index)?)? as usize)
    }

    /// Whether a run may write the stack: some instruction names r10 (every stack pointer
    /// derives from it), or the program may tail-call another. Engines let the memory skip
    /// clearing the stack after runs of programs that cannot.
    pub fn touches_stack(&self) -> bool {
        self.touches_stack
    }

    /// Whether a call may enter at slot `index`.
    pub fn is_function_entry(&self, index: usize) -> bool {
        self.func_entry.get(index).copied().unwrap_or(false)
    }

    /// Number of slots (an `lddw` counts two).
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}

/// Name of an `lddw` pseudo source, for messages.
pub fn pseudo_name(src: u8) -> &'static str {
    match src {
        pseudo::IMM => "immediate",
        pseudo::MAP_FD => "map fd",
        pseudo::MAP_VALUE => "map value",
        pseudo::BTF_ID => "BTF id",
        pseudo::FUNC => "function",
        pseudo::MAP_IDX => "map index",
        pseudo::MAP_IDX_VALUE => "map index value",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXIT: Insn = Insn::new(0x95, 0, 0, 0, 0);

    #[test]
    fn structural_errors_name_the_instruction() {
        let ja = |off| Insn::new(0x05, 0, 0, off, 0);
        let mov = Insn::new(0xb7, 0, 0, 0, 1);
        assert_eq!(Program::new(vec![]).unwrap_err(), ProgramError::Empty);
        assert!(matches!(
            Program::new(vec![ja(5), EXIT]).unwrap_err(),
            ProgramError::TargetOutOfRange {
                index: 0,
                target: 6,
                ..
            }
        ));
        let lddw = [Insn::new(0x18, 0, 0, 0, 1), Insn::new(0, 0, 0, 0, 0)];
        assert!(matches!(
            Program::new(vec![ja(1), lddw[0], lddw[1], EXIT]).unwrap_err(),
            ProgramError::TargetIntoLddw {
                index: 0,
                target: 2,
                ..
            }
        ));
        assert_eq!(
            Program::new(vec![mov]).unwrap_err(),
            ProgramError::FallsOffEnd { index: 0 }
        );
        assert!(matches!(
            Program::new(vec![Insn::new(0xb7, 10, 0, 0, 1), EXIT]).unwrap_err(),
            ProgramError::WritesFramePointer { index: 0, .. }
        ));
        assert!(matches!(
            Program::new(vec![Insn::new(0x18, 1, 1, 0, 3), Insn::default(), EXIT]).unwrap_err(),
            ProgramError::Lddw { index: 0, .. }
        ));
        assert!(Program::from_bytes(&[0x95, 0, 0]).is_err());
    }
}
