//! The helper registry: helper id → Rust function.
//!
//! A helper gets the run's environment `C` (what later issues fill: maps, clock, tasks,
//! emitted events), the address space of the run, and r1..r5; it returns r0 or an error that
//! ends the run. Engines look helpers up by id in the same table.

use crate::memory::{AccessFault, Memory};

/// Why a helper ended the run, or (`TailCall`) the one control transfer a helper can ask of
/// the engine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HelperError {
    #[error("{0}")]
    Memory(#[from] AccessFault),
    #[error("{0}")]
    Other(String),
    /// `bpf_tail_call`: the engine, not the helper, applies the kernel's rules.
    #[error("tail call")]
    TailCall(TailCallTarget),
    /// `bpf_loop`, `bpf_for_each_map_elem`: the engine calls a BPF function once per
    /// argument list, stopping when it returns non-zero; r0 is the number of calls made.
    #[error("callbacks")]
    Callbacks(Callbacks),
}

/// Calls of a BPF callback a helper asks the engine to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callbacks {
    /// The function's address (from `lddw` of a function).
    pub func: u64,
    pub calls: CallList,
}

/// The argument lists of callback calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallList {
    /// `bpf_loop`: `(i, ctx)` for i in 0..count (not materialised: count may be 8M).
    Loop { count: u64, ctx: u64 },
    /// r1..r5 of each call, in order.
    Each(Vec<[u64; 5]>),
}

impl CallList {
    pub fn len(&self) -> u64 {
        match self {
            CallList::Loop { count, .. } => *count,
            CallList::Each(v) => v.len() as u64,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// r1..r5 of call `i`.
    pub fn args(&self, i: u64) -> [u64; 5] {
        match self {
            CallList::Loop { ctx, .. } => [i, *ctx, 0, 0, 0],
            CallList::Each(v) => v.get(i as usize).copied().unwrap_or_default(),
        }
    }
}

/// What `bpf_tail_call` found in the program array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TailCallTarget {
    /// The index is past the array's end: falls through without counting.
    OutOfRange,
    /// The slot is empty: falls through without counting.
    Empty,
    /// Continue in this program (an index into the engine's program table).
    Program(u32),
}

impl TailCallTarget {
    /// The kernel's rule, for every engine: only a call that reaches a program counts, and
    /// once [`MAX_TAIL_CALLS`](crate::interp::MAX_TAIL_CALLS) have been taken every call
    /// falls through. (This kernel's x86-64 JIT, always on, increments the count only when
    /// the slot is populated; its interpreter would count empty slots too.) Gives the
    /// program to continue in, or `None` to fall through with r0 unchanged.
    pub fn take(self, taken: &mut u32) -> Option<u32> {
        match self {
            TailCallTarget::Program(p) if *taken < crate::interp::MAX_TAIL_CALLS => {
                *taken += 1;
                Some(p)
            }
            _ => None,
        }
    }
}

/// A helper: `fn(env, memory, [r1, r2, r3, r4, r5]) -> r0`.
pub type HelperFn<C> = fn(&mut C, &mut Memory<'_>, [u64; 5]) -> Result<u64, HelperError>;

/// The error a panicking helper ends a run with, on every engine.
pub const PANICKED: &str = "the helper panicked";

/// A registered helper.
pub struct Helper<C> {
    pub name: &'static str,
    pub func: HelperFn<C>,
}

impl<C> Clone for Helper<C> {
    fn clone(&self) -> Self {
        Helper {
            name: self.name,
            func: self.func,
        }
    }
}

/// Ids below this are kept in a dense table (the kernel's helpers); larger ones (such as
/// libbpf's poison marker 0xbad2310) in a sorted map.
const DENSE_IDS: usize = 1024;

/// Helpers by id.
pub struct Helpers<C> {
    table: Vec<Option<Helper<C>>>,
    sparse: std::collections::BTreeMap<u64, Helper<C>>,
}

impl<C> Default for Helpers<C> {
    fn default() -> Self {
        Helpers {
            table: Vec::new(),
            sparse: Default::default(),
        }
    }
}

impl<C> Clone for Helpers<C> {
    fn clone(&self) -> Self {
        Helpers {
            table: self.table.clone(),
            sparse: self.sparse.clone(),
        }
    }
}

impl<C> Helpers<C> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) helper `id`.
    pub fn register(&mut self, id: u32, name: &'static str, func: HelperFn<C>) -> &mut Self {
        let helper = Helper { name, func };
        let i = id as usize;
        if i < DENSE_IDS {
            if self.table.len() <= i {
                self.table.resize_with(i + 1, || None);
            }
            self.table[i] = Some(helper);
        } else {
            self.sparse.insert(id as u64, helper);
        }
        self
    }

    #[inline]
    pub fn get(&self, id: u64) -> Option<&Helper<C>> {
        match self.table.get(usize::try_from(id).ok()?) {
            Some(h) => h.as_ref(),
            None => self.sparse.get(&id),
        }
    }

    /// Checks that every helper `program` calls by id is registered (what engines need
    /// before running it).
    pub fn check_calls(&self, program: &crate::program::Program) -> Result<(), crate::VmError> {
        for ins in program.instructions() {
            let id = ins.decoded.insn.imm as u32 as u64;
            if ins.decoded.spec.op == crate::isa::Op::Call
                && ins.target.is_none()
                && self.get(id).is_none()
            {
                return Err(crate::VmError::UnknownHelper { pc: ins.index, id });
            }
        }
        Ok(())
    }

    /// Registered ids with their names, in id order.
    pub fn ids(&self) -> impl Iterator<Item = (u32, &'static str)> + '_ {
        self.table
            .iter()
            .enumerate()
            .filter_map(|(i, h)| h.as_ref().map(|h| (i as u32, h.name)))
            .chain(self.sparse.iter().map(|(&i, h)| (i as u32, h.name)))
    }
}

/// Helper 5 of the bpf_conformance suite: returns its first argument.
pub fn conformance_identity<C>(
    _: &mut C,
    _: &mut Memory<'_>,
    args: [u64; 5],
) -> Result<u64, HelperError> {
    Ok(args[0])
}

/// The helpers the conformance suite expects (only helper 5).
pub fn conformance_helpers<C>() -> Helpers<C> {
    let mut h = Helpers::new();
    h.register(5, "conformance_identity", conformance_identity::<C>);
    h
}

#[cfg(test)]
mod tests {
    use super::TailCallTarget;
    use crate::interp::MAX_TAIL_CALLS;

    #[test]
    fn only_tail_calls_that_reach_a_program_count() {
        let mut taken = 0;
        for _ in 0..100 {
            assert_eq!(TailCallTarget::Empty.take(&mut taken), None);
            assert_eq!(TailCallTarget::OutOfRange.take(&mut taken), None);
        }
        assert_eq!(taken, 0);
        for i in 0..MAX_TAIL_CALLS {
            assert_eq!(TailCallTarget::Program(i).take(&mut taken), Some(i));
        }
        assert_eq!(TailCallTarget::Program(0).take(&mut taken), None);
        assert_eq!(taken, MAX_TAIL_CALLS);
    }
}
