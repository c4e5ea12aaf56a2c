//! Abstract machine states: what the verifier knows about each register and stack byte on
//! one path, and when one state covers another (state pruning).

use std::fmt::{self, Write as _};

use super::scalar::Scalar;
use crate::isa::{NUM_REGS, STACK_SIZE};

/// What a register holds, in the kernel's terms (`enum bpf_reg_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegType {
    /// Never written on this path (`!read_ok`).
    NotInit,
    Scalar,
    /// The program's context argument.
    Ctx,
    /// Inside a stack frame (`fp`).
    Stack,
    /// A map's value; `map` says which.
    MapValue,
    MapValueOrNull,
    /// Packet data (`pkt`), its end (`pkt_end`) and its metadata (`pkt_meta`).
    Packet,
    PacketEnd,
    PacketMeta,
    /// A reserved ring buffer record (`ringbuf_mem`) and its nullable form.
    RingbufMem,
    RingbufMemOrNull,
    /// A map itself (`map_ptr`), as loaded by `lddw`.
    MapPtr,
    /// A map's key (callbacks of `bpf_for_each_map_elem`).
    MapKey,
    /// A kernel object typed by BTF (tracing arguments, `bpf_get_current_task_btf`); the
    /// verifier has no BTF, so loads through it give more of the same and nothing else is
    /// checked (the kernel makes them fault-safe probe reads).
    BtfId,
    /// Generic read-only memory (`mem`) of `mem_size` bytes, e.g. a helper's buffer.
    Mem,
    /// A subprogram's address (`func`), from `lddw` with src 4.
    Func,
}

impl RegType {
    /// The kernel's `reg_type_str`.
    pub fn name(self) -> &'static str {
        match self {
            RegType::NotInit => "?",
            RegType::Scalar => "scalar",
            RegType::Ctx => "ctx",
            RegType::Stack => "fp",
            RegType::MapValue => "map_value",
            RegType::MapValueOrNull => "map_value_or_null",
            RegType::Packet => "pkt",
            RegType::PacketEnd => "pkt_end",
            RegType::PacketMeta => "pkt_meta",
            RegType::RingbufMem => "ringbuf_mem",
            RegType::RingbufMemOrNull => "ringbuf_mem_or_null",
            RegType::MapPtr => "map_ptr",
            RegType::MapKey => "map_key",
            RegType::BtfId => "ptr_",
            RegType::Mem => "mem",
            RegType::Func => "func",
        }
    }

    pub fn is_pointer(self) -> bool {
        !matches!(self, RegType::NotInit | RegType::Scalar)
    }

    pub fn is_or_null(self) -> bool {
        matches!(self, RegType::MapValueOrNull | RegType::RingbufMemOrNull)
    }

    pub fn is_packet(self) -> bool {
        matches!(self, RegType::Packet | RegType::PacketMeta)
    }
}

/// One register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Reg {
    pub ty: RegType,
    /// For a scalar, its value; for a pointer, the variable part of its offset.
    pub var: Scalar,
    /// Constant part of a pointer's offset.
    pub off: i32,
    /// Identity shared by copies (null checks and packet ranges apply to all of them).
    pub id: u32,
    /// For packet pointers: bytes proven readable from the pointer's variable base.
    pub range: u32,
    /// Map index (map pointers and values); frame number (stack pointers); record size
    /// (ring buffer records and `mem`).
    pub aux: u32,
    /// The acquired reference this pointer holds (ring buffer records), 0 if none.
    pub ref_id: u32,
}

impl Reg {
    pub const NOT_INIT: Reg = Reg {
        ty: RegType::NotInit,
        var: Scalar::UNKNOWN,
        off: 0,
        id: 0,
        range: 0,
        aux: 0,
        ref_id: 0,
    };

    pub fn scalar(s: Scalar) -> Reg {
        Reg {
            ty: RegType::Scalar,
            var: s,
            ..Reg::NOT_INIT
        }
    }

    pub fn unknown() -> Reg {
        Reg::scalar(Scalar::UNKNOWN)
    }

    pub fn constant(v: u64) -> Reg {
        Reg::scalar(Scalar::constant(v))
    }

    pub fn pointer(ty: RegType, aux: u32) -> Reg {
        Reg {
            ty,
            var: Scalar::constant(0),
            aux,
            ..Reg::NOT_INIT
        }
    }

    pub fn is_scalar(&self) -> bool {
        self.ty == RegType::Scalar
    }

    pub fn const_value(&self) -> Option<u64> {
        if self.is_scalar() {
            self.var.const_value()
        } else {
            None
        }
    }

    /// The kernel's verbose rendering, e.g. `scalar()`, `fp-8`, `map_value(map=m,ks=4,vs=8)`.
    pub fn describe(&self, map_name: &dyn Fn(u32) -> String) -> String {
        match self.ty {
            RegType::NotInit => "?".into(),
            RegType::Scalar => self.var.to_string(),
            RegType::Stack if self.var.is_const() && self.var.tnum.value == 0 => {
                if self.off == 0 {
                    "fp0".into()
                } else {
                    format!("fp{}", self.off)
                }
            }
            ty => {
                let mut parts = Vec::new();
                if self.id != 0 {
                    parts.push(format!("id={}", self.id));
                }
                if self.ref_id != 0 {
                    parts.push(format!("ref_obj_id={}", self.ref_id));
                }
                if self.off != 0 {
                    parts.push(format!("off={}", self.off));
                }
                if ty.is_packet() {
                    parts.push(format!("r={}", self.range));
                }
                if matches!(
                    ty,
                    RegType::MapValue | RegType::MapValueOrNull | RegType::MapPtr
                ) {
                    parts.push(format!("map={}", map_name(self.aux)));
                }
                if matches!(
                    ty,
                    RegType::RingbufMem | RegType::RingbufMemOrNull | RegType::Mem
                ) {
                    parts.push(format!("sz={}", self.aux));
                }
                if !(self.var.is_const() && self.var.tnum.value == 0) {
                    let v = self.var.to_string();
                    let v = v.trim_start_matches("scalar(").trim_end_matches(')');
                    if !v.is_empty() {
                        parts.push(v.to_string());
                    }
                }
                format!("{}({})", ty.name(), parts.join(","))
            }
        }
    }
}

/// What one stack byte holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ByteKind {
    /// Never written (`STACK_INVALID`).
    Invalid,
    /// Some scalar bytes (`STACK_MISC`).
    Misc,
    /// Known zero (`STACK_ZERO`).
    Zero,
    /// Part of a spilled register (`STACK_SPILL`).
    Spill,
}

/// One 8-byte stack slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    pub bytes: [ByteKind; 8],
    /// The register spilled here: by an 8-byte store (all bytes `Spill`) or, for a
    /// scalar, by a narrower store at the slot's start (its first bytes `Spill`; the
    /// register is kept whole, fills of at most those bytes truncate it).
    pub spill: Reg,
}

impl Slot {
    pub const EMPTY: Slot = Slot {
        bytes: [ByteKind::Invalid; 8],
        spill: Reg::NOT_INIT,
    };

    /// Whether a register is spilled here (by a store at the slot's start, of 8 bytes or,
    /// for scalars, fewer: see [`Slot::spill_size`]).
    pub fn is_spill(&self) -> bool {
        self.bytes[0] == ByteKind::Spill && self.spill.ty != RegType::NotInit
    }

    /// How many bytes from the slot's start the spilled register covers (0 if none).
    pub fn spill_size(&self) -> usize {
        if !self.is_spill() {
            return 0;
        }
        self.bytes
            .iter()
            .take_while(|b| **b == ByteKind::Spill)
            .count()
    }

    /// Spills a scalar with a store of `size` (< 8) bytes at the slot's start; the other
    /// bytes keep what they were, spilled bytes becoming `Misc` (the kernel's
    /// `save_register_state` and `mark_stack_slot_misc`).
    pub fn spill_narrow(&mut self, reg: Reg, size: usize) {
        for (k, b) in self.bytes.iter_mut().enumerate() {
            if k < size {
                *b = ByteKind::Spill;
            } else if *b == ByteKind::Spill {
                *b = ByteKind::Misc;
            }
        }
        self.spill = reg;
    }

    /// Forgets the spilled register: its bytes become `Misc` (or `Zero`), the others
    /// keep what they were.
    pub fn scrub_spill(&mut self, zero: bool) {
        for b in &mut self.bytes {
            if *b == ByteKind::Spill {
                *b = if zero { ByteKind::Zero } else { ByteKind::Misc };
            }
        }
        self.spill = Reg::NOT_INIT;
    }
}

/// Number of 8-byte slots in a frame.
pub const SLOTS: usize = STACK_SIZE / 8;

/// One call frame.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    pub regs: [Reg; NUM_REGS],
    /// Slot `i` covers `fp-8*(i+1) .. fp-8*i`; grown on demand.
    pub stack: Vec<Slot>,
    /// Slot index of the call instruction that created this frame (0 for the entry).
    pub callsite: usize,
    /// First slot of the function this frame runs.
    pub subprog: usize,
    /// Whether this frame runs a callback of a helper (its r0 is checked, not returned).
    pub callback: bool,
}

impl Frame {
    pub fn new(frameno: u32, callsite: usize, subprog: usize) -> Frame {
        let mut regs = [Reg::NOT_INIT; NUM_REGS];
        regs[10] = Reg::pointer(RegType::Stack, frameno);
        Frame {
            regs,
            stack: Vec::new(),
            callsite,
            subprog,
            callback: false,
        }
    }

    pub fn slot(&self, i: usize) -> Slot {
        self.stack.get(i).copied().unwrap_or(Slot::EMPTY)
    }

    pub fn slot_mut(&mut self, i: usize) -> &mut Slot {
        if self.stack.len() <= i {
            self.stack.resize(i + 1, Slot::EMPTY);
        }
        &mut self.stack[i]
    }
}

/// An acquired reference (a ring buffer reservation) that must be released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ref {
    pub id: u32,
    pub insn: usize,
}

/// The verifier's state on one path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct State {
    pub frames: Vec<Frame>,
    pub refs: Vec<Ref>,
    /// Next fresh id for `Reg::id` / `Reg::ref_id`.
    pub next_id: u32,
}

impl State {
    pub fn cur(&self) -> &Frame {
        self.frames.last().expect("a state has a frame")
    }

    pub fn cur_mut(&mut self) -> &mut Frame {
        self.frames.last_mut().expect("a state has a frame")
    }

    pub fn fresh_id(&mut self) -> u32 {
        self.next_id += 1;
        self.next_id
    }

    /// Applies `f` to every register and spilled register of every frame.
    pub fn for_each_reg(&mut self, mut f: impl FnMut(&mut Reg)) {
        for fr in &mut self.frames {
            for r in &mut fr.regs {
                f(r);
            }
            for s in &mut fr.stack {
                if s.bytes[0] == ByteKind::Spill {
                    f(&mut s.spill);
                }
            }
        }
    }

    /// The registers of the current frame in the verbose log's form.
    pub fn describe(&self, map_name: &dyn Fn(u32) -> String) -> String {
        let mut s = String::new();
        let depth = self.frames.len() - 1;
        for (i, fr) in self.frames.iter().enumerate() {
            if i != depth {
                continue;
            }
            if depth > 0 {
                let _ = write!(s, "frame{depth}: ");
            }
            let mut first = true;
            for (r, reg) in fr.regs.iter().enumerate() {
                if reg.ty == RegType::NotInit {
                    continue;
                }
                if !first {
                    s.push(' ');
                }
                first = false;
                let _ = write!(s, "R{r}={}", reg.describe(map_name));
            }
            for (k, slot) in fr.stack.iter().enumerate() {
                let off = -8 * (k as i64 + 1);
                if slot.is_spill() {
                    // The bytes above a narrow spill, then the register (as the kernel).
                    let above: String = slot.bytes[slot.spill_size()..]
                        .iter()
                        .rev()
                        .map(|b| match b {
                            ByteKind::Zero => '0',
                            ByteKind::Misc => 'm',
                            _ => '?',
                        })
                        .collect();
                    let _ = write!(s, " fp{off}={above}{}", slot.spill.describe(map_name));
                } else if slot.bytes.iter().any(|b| *b != ByteKind::Invalid) {
                    let marks: String = slot
                        .bytes
                        .iter()
                        .rev()
                        .map(|b| match b {
                            ByteKind::Invalid => '?',
                            ByteKind::Misc => 'm',
                            ByteKind::Zero => '0',
                            ByteKind::Spill => 'r',
                        })
                        .collect();
                    let _ = write!(s, " fp{off}={marks}");
                }
            }
        }
        s
    }
}

/// Maps ids of an old state to ids of a new one while comparing them.
#[derive(Default)]
pub struct IdMap {
    pairs: Vec<(u32, u32)>,
}

impl IdMap {
    pub fn check(&mut self, old: u32, cur: u32) -> bool {
        if old == 0 && cur == 0 {
            return true;
        }
        if old == 0 || cur == 0 {
            return false;
        }
        for &(o, c) in &self.pairs {
            if o == old {
                return c == cur;
            }
            if c == cur {
                return false;
            }
        }
        self.pairs.push((old, cur));
        true
    }

    pub fn clear(&mut self) {
        self.pairs.clear();
    }
}

/// Whether everything `old` allows, `cur` allows too: a path from `cur` is safe if the
/// one from `old` was. With `exact`, whether they are the same (loop detection).
pub fn reg_covers(old: &Reg, cur: &Reg, ids: &mut IdMap, exact: bool) -> bool {
    if exact {
        return old.ty == cur.ty
            && old.var == cur.var
            && old.off == cur.off
            && old.range == cur.range
            && old.aux == cur.aux
            && ids.check(old.id, cur.id)
            && ids.check(old.ref_id, cur.ref_id);
    }
    match old.ty {
        RegType::NotInit => true,
        RegType::Scalar => cur.ty == RegType::Scalar && old.var.contains(&cur.var),
        ty => {
            cur.ty == ty
                && old.off == cur.off
                && old.aux == cur.aux
                && old.var.contains(&cur.var)
                && (!ty.is_packet() || cur.range >= old.range)
                && (!(ty.is_or_null() || ty.is_packet()) || ids.check(old.id, cur.id))
                && ids.check(old.ref_id, cur.ref_id)
        }
    }
}

/// Whether stack byte `k` of a slot holds scalar data (written, and not part of a
/// spilled pointer).
fn scalar_byte(s: &Slot, k: usize) -> bool {
    match s.bytes[k] {
        ByteKind::Invalid => false,
        ByteKind::Misc | ByteKind::Zero => true,
        ByteKind::Spill => s.spill.ty == RegType::Scalar,
    }
}

fn slot_covers(old: &Slot, cur: &Slot, ids: &mut IdMap, exact: bool, precise: bool) -> bool {
    if exact {
        return old.bytes == cur.bytes
            && (!old.is_spill() || reg_covers(&old.spill, &cur.spill, ids, true));
    }
    let old_pointer = old.is_spill() && old.spill.ty != RegType::Scalar;
    if !precise && !old_pointer {
        // No scalar read from the stack matters (the kernel's imprecise spilled scalars
        // in `stacksafe`): written scalar bytes are alike, whatever their values.
        return (0..8).all(|k| old.bytes[k] == ByteKind::Invalid || scalar_byte(cur, k));
    }
    if old.spill_size() == 8 {
        let cur_full = cur.spill_size() == 8;
        if old.spill.ty == RegType::Scalar && cur_full {
            return reg_covers(&old.spill, &cur.spill, ids, false);
        }
        if old.spill.ty == RegType::Scalar && old.spill.var == Scalar::UNKNOWN {
            return cur.bytes.iter().all(|b| *b != ByteKind::Invalid)
                && (!cur.is_spill() || cur.spill.ty == RegType::Scalar);
        }
        return cur_full && reg_covers(&old.spill, &cur.spill, ids, false);
    }
    // A narrow spill in `old` (a scalar) needs one in `cur` covering at least its bytes.
    if old.is_spill()
        && !(cur.is_spill()
            && cur.spill.ty == RegType::Scalar
            && reg_covers(&old.spill, &cur.spill, ids, false))
    {
        return false;
    }
    for k in 0..8 {
        let ok = match old.bytes[k] {
            ByteKind::Invalid => true,
            ByteKind::Misc => {
                cur.bytes[k] == ByteKind::Misc
                    || cur.bytes[k] == ByteKind::Zero
                    || (cur.bytes[k] == ByteKind::Spill && cur.spill.ty == RegType::Scalar)
            }
            ByteKind::Zero => {
                cur.bytes[k] == ByteKind::Zero
                    || (cur.bytes[k] == ByteKind::Spill && cur.spill.const_value() == Some(0))
            }
            ByteKind::Spill => cur.bytes[k] == ByteKind::Spill,
        };
        if !ok {
            return false;
        }
    }
    true
}

/// Whether `old` covers `cur`; `live` gives, per frame, the registers that matter, and
/// `precise` those of them whose scalar values matter (unless `exact`, other scalars
/// cover each other whatever their values); `stack_precise`, whether scalars in the
/// stack matter.
pub fn state_covers(
    old: &State,
    cur: &State,
    live: &[u16],
    precise: &[u16],
    stack_precise: bool,
    exact: bool,
) -> bool {
    if old.frames.len() != cur.frames.len() || old.refs.len() != cur.refs.len() {
        return false;
    }
    let mut ids = IdMap::default();
    for (fi, (of, cf)) in old.frames.iter().zip(&cur.frames).enumerate() {
        if of.callsite != cur.frames[fi].callsite || of.subprog != cf.subprog {
            return false;
        }
        let mask = live.get(fi).copied().unwrap_or(u16::MAX);
        let prec = precise.get(fi).copied().unwrap_or(u16::MAX);
        for r in 0..NUM_REGS {
            if mask & (1 << r) == 0 {
                continue;
            }
            if !exact
                && prec & (1 << r) == 0
                && of.regs[r].ty == RegType::Scalar
                && cf.regs[r].ty == RegType::Scalar
            {
                continue;
            }
            if !reg_covers(&of.regs[r], &cf.regs[r], &mut ids, exact) {
                return false;
            }
        }
        let n = of.stack.len().max(cf.stack.len());
        for k in 0..n {
            if !slot_covers(&of.slot(k), &cf.slot(k), &mut ids, exact, stack_precise) {
                return false;
            }
        }
    }
    // Every reference of `old` must be held in `cur` under the id mapping.
    old.refs
        .iter()
        .zip(&cur.refs)
        .all(|(o, c)| ids.check(o.id, c.id))
}

impl fmt::Display for RegType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
