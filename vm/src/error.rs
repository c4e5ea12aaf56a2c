//! Errors of a run, shared by every engine so that they report faults identically.

use crate::helpers::HelperError;
use crate::memory::AccessFault;
use crate::program::ProgramError;

/// Why a program could not be run or stopped before `exit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Program(#[from] ProgramError),
    #[error("insn {pc}: {fault}")]
    Memory { pc: usize, fault: AccessFault },
    #[error("insn {pc}: instruction budget of {budget} exceeded (endless loop?)")]
    Budget { pc: usize, budget: u64 },
    #[error("insn {pc}: the call stack of {frames} frames is too deep (at most 8)")]
    CallDepth { pc: usize, frames: usize },
    #[error("insn {pc}: call to unknown helper {id}")]
    UnknownHelper { pc: usize, id: u64 },
    #[error("insn {pc}: helper {name} (#{id}) failed: {error}")]
    Helper {
        pc: usize,
        id: u64,
        name: &'static str,
        error: HelperError,
    },
    #[error("insn {pc}: callx target {target:#x} is neither a function nor a helper")]
    BadCallx { pc: usize, target: u64 },
    #[error("insn {pc}: internal error: {what}")]
    Internal { pc: usize, what: &'static str },
}

impl VmError {
    /// The instruction at which the run stopped, if it started.
    pub fn pc(&self) -> Option<usize> {
        match self {
            VmError::Program(_) => None,
            VmError::Memory { pc, .. }
            | VmError::Budget { pc, .. }
            | VmError::CallDepth { pc, .. }
            | VmError::UnknownHelper { pc, .. }
            | VmError::Helper { pc, .. }
            | VmError::BadCallx { pc, .. }
            | VmError::Internal { pc, .. } => Some(*pc),
        }
    }
}
