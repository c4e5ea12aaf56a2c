//! The path walk (the kernel's `do_check`): transfer functions for every instruction over
//! abstract states, state pruning at jump targets, and the checks that reject.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::cfg::{self, Cfg, Precision};
use super::ctx::{self, CtxField};
use super::helpers::{self, Arg, Callback, Ret};
use super::scalar::{Scalar, Tnum};
use super::state::{state_covers, ByteKind, Frame, Ref, Reg, RegType, Slot, State, SLOTS};
use super::{CtxAccess, ErrorClass, Facts, Fail, MapInfo, Proven, Verdict, VerifyOptions};
use crate::disasm::format_insn;

/// The identity of the raw context block (and of every pointer derived from it) in raw
/// runs; fresh ids count up from 0 and never reach it.
const RAW_CTX_ID: u32 = u32::MAX;
use crate::isa::{
    pseudo, AluOp, AtomicOp, Decoded, Endian, JmpCond, Op, Size, MAX_CALL_FRAMES, STACK_SIZE,
};

/// The kernel's bound on variable offsets (`BPF_MAX_VAR_OFF`) and sizes (`BPF_MAX_VAR_SIZ`).
const MAX_VAR_OFF: i64 = 1 << 29;
const MAX_VAR_SIZ: u64 = 1 << 29;
/// Largest log kept, like the kernel's 16 MiB buffers.
const MAX_LOG: usize = 16 << 20;
/// States remembered per instruction (older ones are forgotten, as the kernel evicts
/// states that never prune).
const MAX_STATES_PER_INSN: usize = 64;
/// Most branches waiting to be explored (`BPF_COMPLEXITY_LIMIT_JMP_SEQ`).
const MAX_PENDING: usize = 8192;
/// Set in the `aux` of a map pointer that came from a lookup in a map of maps: it names
/// the inner map template of the map whose index is in the other bits.
const INNER_MAP: u32 = 1 << 31;

type R<T> = Result<T, Fail>;

fn fail<T>(insn: usize, class: ErrorClass, message: String) -> R<T> {
    Err(Fail::new(insn, class, message))
}

/// A remembered state at a prune point.
struct Node {
    state: State,
    parent: Option<u32>,
    /// Paths and live child nodes depending on this one; 0 once fully explored.
    live: u32,
}

struct Pending {
    state: State,
    pc: usize,
    cp: Option<u32>,
}

enum Flow {
    Next,
    Goto(usize),
    /// Both directions of a conditional jump: `state` goes on at the next instruction,
    /// this one at the target.
    Branch(Box<State>, usize),
    Done,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
    Atomic,
}

pub(crate) struct Checker<'a> {
    cfg: &'a Cfg,
    opts: &'a VerifyOptions<'a>,
    nodes: Vec<Node>,
    explored: HashMap<usize, Vec<u32>>,
    pending: Vec<Pending>,
    processed: usize,
    /// Per slot: 0 not an access, 1 in bounds on every visit, 2 not proven.
    in_bounds: Vec<u8>,
    proven: Vec<Proven>,
    ctx_extent: [i64; 2],
    ctx_accesses: HashMap<usize, CtxAccess>,
    /// Per slot: 1 accessed through ctx, 2 through another pointer.
    ptr_kind: HashMap<usize, u8>,
    stack_depth: Vec<u32>,
    pub log: String,
    /// What makes scalars precise, as assumed by this walk and as learnt by it.
    pub precision: Precision,
    /// Whether this walk learnt something its pruning did not assume.
    pub learnt: bool,
    precise_in: Vec<u16>,
}

fn alu_str(op: AluOp) -> &'static str {
    match op {
        AluOp::Add => "+=",
        AluOp::Sub => "-=",
        AluOp::Mul => "*=",
        AluOp::Div | AluOp::Sdiv => "/=",
        AluOp::Or => "|=",
        AluOp::And => "&=",
        AluOp::Lsh => "<<=",
        AluOp::Rsh => ">>=",
        AluOp::Neg => "neg",
        AluOp::Mod | AluOp::Smod => "%=",
        AluOp::Xor => "^=",
        AluOp::Mov | AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32 => "=",
        AluOp::Arsh => "s>>=",
    }
}

fn negate(c: JmpCond) -> Option<JmpCond> {
    use JmpCond::*;
    Some(match c {
        Eq => Ne,
        Ne => Eq,
        Gt => Le,
        Le => Gt,
        Ge => Lt,
        Lt => Ge,
        Sgt => Sle,
        Sle => Sgt,
        Sge => Slt,
        Slt => Sge,
        Set => return None,
    })
}

/// Whether `a cond b` is always (Some(true)) or never (Some(false)) true.
fn decide(c: JmpCond, a: &Scalar, b: &Scalar) -> Option<bool> {
    use JmpCond::*;
    let eq = || {
        if let (Some(x), Some(y)) = (a.const_value(), b.const_value()) {
            return Some(x == y);
        }
        let known = !(a.tnum.mask | b.tnum.mask);
        if (a.tnum.value ^ b.tnum.value) & known != 0
            || a.umin > b.umax
            || a.umax < b.umin
            || a.smin > b.smax
            || a.smax < b.smin
        {
            return Some(false);
        }
        None
    };
    let pick = |t: bool, f: bool| {
        if t {
            Some(true)
        } else if f {
            Some(false)
        } else {
            None
        }
    };
    match c {
        Eq => eq(),
        Ne => eq().map(|v| !v),
        Gt => pick(a.umin > b.umax, a.umax <= b.umin),
        Ge => pick(a.umin >= b.umax, a.umax < b.umin),
        Lt => pick(a.umax < b.umin, a.umin >= b.umax),
        Le => pick(a.umax <= b.umin, a.umin > b.umax),
        Sgt => pick(a.smin > b.smax, a.smax <= b.smin),
        Sge => pick(a.smin >= b.smax, a.smax < b.smin),
        Slt => pick(a.smax < b.smin, a.smin >= b.smax),
        Sle => pick(a.smax <= b.smin, a.smin > b.smax),
        Set => {
            if let (Some(x), Some(y)) = (a.const_value(), b.const_value()) {
                Some(x & y != 0)
            } else if a.tnum.value & b.tnum.value != 0 {
                Some(true)
            } else if a.tnum.umax() & b.tnum.umax() == 0 {
                Some(false)
            } else {
                None
            }
        }
    }
}

/// Narrows `a` and `b` to the values where `a c b` holds (`set`: the condition is `jset`
/// taken (`Some(true)`) or not taken (`Some(false)`)). Returns None if impossible.
fn refine(c: JmpCond, set: Option<bool>, a: &Scalar, b: &Scalar) -> Option<(Scalar, Scalar)> {
    use JmpCond::*;
    let (mut a, mut b) = (*a, *b);
    match c {
        Eq => {
            let mut m = a;
            m.tnum = a.tnum.intersect(b.tnum);
            m.umin = a.umin.max(b.umin);
            m.umax = a.umax.min(b.umax);
            m.smin = a.smin.max(b.smin);
            m.smax = a.smax.min(b.smax);
            if (a.tnum.value ^ b.tnum.value) & !(a.tnum.mask | b.tnum.mask) != 0 {
                return None;
            }
            m.sync();
            a = m;
            b = m;
        }
        Ne => {
            let shrink = |x: &mut Scalar, v: u64| {
                if x.umin == v {
                    x.umin = x.umin.checked_add(1)?;
                }
                if x.umax == v {
                    x.umax = x.umax.checked_sub(1)?;
                }
                if x.smin == v as i64 {
                    x.smin = x.smin.checked_add(1)?;
                }
                if x.smax == v as i64 {
                    x.smax = x.smax.checked_sub(1)?;
                }
                x.sync();
                Some(())
            };
            if let Some(v) = b.const_value() {
                shrink(&mut a, v)?;
            } else if let Some(v) = a.const_value() {
                shrink(&mut b, v)?;
            }
        }
        Gt => {
            a.umin = a.umin.max(b.umin.checked_add(1)?);
            b.umax = b.umax.min(a.umax.checked_sub(1)?);
        }
        Ge => {
            a.umin = a.umin.max(b.umin);
            b.umax = b.umax.min(a.umax);
        }
        Lt => {
            a.umax = a.umax.min(b.umax.checked_sub(1)?);
            b.umin = b.umin.max(a.umin.checked_add(1)?);
        }
        Le => {
            a.umax = a.umax.min(b.umax);
            b.umin = b.umin.max(a.umin);
        }
        Sgt => {
            a.smin = a.smin.max(b.smin.checked_add(1)?);
            b.smax = b.smax.min(a.smax.checked_sub(1)?);
        }
        Sge => {
            a.smin = a.smin.max(b.smin);
            b.smax = b.smax.min(a.smax);
        }
        Slt => {
            a.smax = a.smax.min(b.smax.checked_sub(1)?);
            b.smin = b.smin.max(a.smin.checked_add(1)?);
        }
        Sle => {
            a.smax = a.smax.min(b.smax);
            b.smin = b.smin.max(a.smin);
        }
        Set => {
            if let Some(v) = b.const_value() {
                if set == Some(false) {
                    a.tnum.value &= !v;
                    a.tnum.mask &= !v;
                } else if v.is_power_of_two() {
                    a.tnum.value |= v;
                    a.tnum.mask &= !v;
                }
            }
        }
    }
    a.sync();
    b.sync();
    if a.is_empty() || b.is_empty() {
        return None;
    }
    Some((a, b))
}

impl<'a> Checker<'a> {
    pub fn new(cfg: &'a Cfg, opts: &'a VerifyOptions<'a>, precision: Precision) -> Self {
        let len = cfg.insns.len();
        Checker {
            precise_in: cfg::precise_in(cfg, &precision),
            precision,
            learnt: false,
            cfg,
            opts,
            nodes: Vec::new(),
            explored: HashMap::new(),
            pending: Vec::new(),
            processed: 0,
            in_bounds: vec![0; len],
            proven: vec![Proven::No; len],
            ctx_extent: [0; 2],
            ctx_accesses: HashMap::new(),
            ptr_kind: HashMap::new(),
            stack_depth: vec![0; cfg.subprogs.len()],
            log: String::new(),
        }
    }

    pub fn into_verdict(self) -> Verdict {
        let mut ctx_accesses: Vec<CtxAccess> = self.ctx_accesses.into_values().collect();
        ctx_accesses.sort_by_key(|a| a.insn);
        let mut log = self.log;
        if self.opts.log_level > 0 {
            let _ = writeln!(
                log,
                "processed {} insns (limit {}) total_states {}",
                self.processed,
                self.opts.complexity_limit,
                self.nodes.len()
            );
        }
        Verdict {
            processed: self.processed,
            total_states: self.nodes.len(),
            facts: Facts {
                in_bounds: self.in_bounds.iter().map(|&b| b == 1).collect(),
                proven: self
                    .in_bounds
                    .iter()
                    .zip(&self.proven)
                    .map(|(&b, &p)| if b == 1 { p } else { Proven::No })
                    .collect(),
                ctx_load_extent: self.ctx_extent[0] as u32,
                ctx_store_extent: self.ctx_extent[1] as u32,
                ctx_accesses,
                stack_depth: self
                    .cfg
                    .subprogs
                    .iter()
                    .copied()
                    .zip(self.stack_depth.iter().copied())
                    .collect(),
            },
            log,
        }
    }

    fn map_name(&self) -> impl Fn(u32) -> String + '_ {
        |i| {
            if i & INNER_MAP != 0 {
                format!("{}.inner", i & !INNER_MAP)
            } else {
                format!("{i}")
            }
        }
    }

    /// The map a map pointer's or map value's `aux` names (see [`INNER_MAP`]).
    fn map_info(&self, aux: u32) -> Option<MapInfo> {
        let m = self.opts.maps.get((aux & !INNER_MAP) as usize)?;
        if aux & INNER_MAP != 0 {
            m.inner_map()
        } else {
            Some(*m)
        }
    }

    pub fn run(&mut self) -> R<()> {
        let mut init = State {
            frames: vec![Frame::new(0, 0, 0)],
            refs: Vec::new(),
            next_id: 0,
        };
        init.frames[0].regs[1] = match self.opts.raw_ctx_size {
            Some(size) => Reg {
                aux: size,
                id: RAW_CTX_ID,
                ..Reg::pointer(RegType::Mem, 0)
            },
            None => Reg::pointer(RegType::Ctx, 0),
        };
        self.pending.push(Pending {
            state: init,
            pc: 0,
            cp: None,
        });
        while let Some(p) = self.pending.pop() {
            self.walk(p)?;
        }
        self.check_stack_depth()
    }

    fn release(&mut self, mut cp: Option<u32>) {
        while let Some(n) = cp {
            let node = &mut self.nodes[n as usize];
            node.live = node.live.saturating_sub(1);
            if node.live > 0 {
                break;
            }
            cp = node.parent;
        }
    }

    /// Registers that matter per frame at `pc`, from a per-slot analysis (`live_in` or
    /// `precise_in`): in callers, the callee-saved ones at the return address.
    fn frame_masks(&self, per_slot: &[u16], st: &State, pc: usize) -> Vec<u16> {
        let n = st.frames.len();
        (0..n)
            .map(|k| {
                if k + 1 == n {
                    per_slot.get(pc).copied().unwrap_or(u16::MAX)
                } else {
                    let ret = st.frames[k + 1].callsite + 1;
                    (per_slot.get(ret).copied().unwrap_or(u16::MAX) & 0x7c0) | (1 << 10)
                }
            })
            .collect()
    }

    /// Prunes the path if a remembered state covers it; else remembers it.
    fn visit(&mut self, st: &State, pc: usize, cp: Option<u32>) -> R<Option<u32>> {
        let live = self.frame_masks(&self.cfg.live_in, st, pc);
        let precise = self.frame_masks(&self.precise_in, st, pc);
        let stack_precise = self.precision.fills;
        if let Some(list) = self.explored.get(&pc) {
            for &n in list {
                let node = &self.nodes[n as usize];
                if node.live > 0 {
                    if state_covers(&node.state, st, &live, &precise, stack_precise, true) {
                        return fail(
                            pc,
                            ErrorClass::InfiniteLoop,
                            format!("infinite loop detected at insn {pc}"),
                        );
                    }
                } else if state_covers(&node.state, st, &live, &precise, stack_precise, false) {
                    return Ok(None);
                }
            }
        }
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            state: st.clone(),
            parent: cp,
            live: 1,
        });
        let list = self.explored.entry(pc).or_default();
        list.push(id);
        if list.len() > MAX_STATES_PER_INSN {
            // Forget the oldest state here (it only served pruning); keep its node for
            // the bookkeeping of live paths.
            let old = list.remove(0);
            let node = &mut self.nodes[old as usize];
            node.state.frames.clear();
            node.state.frames.shrink_to_fit();
        }
        Ok(Some(id))
    }

    fn walk(&mut self, p: Pending) -> R<()> {
        let Pending {
            mut state,
            mut pc,
            mut cp,
        } = p;
        loop {
            self.processed += 1;
            if self.processed > self.opts.complexity_limit {
                return fail(
                    pc,
                    ErrorClass::Complexity,
                    format!(
                        "BPF program is too large. Processed {} insn",
                        self.processed
                    ),
                );
            }
            if self.cfg.prune_point.get(pc).copied().unwrap_or(false) {
                match self.visit(&state, pc, cp)? {
                    None => {
                        if self.opts.log_level > 0 {
                            let _ = writeln!(self.log, "{pc}: safe");
                        }
                        self.release(cp);
                        return Ok(());
                    }
                    Some(n) => cp = Some(n),
                }
            }
            let Some(d) = self.cfg.insns.get(pc).copied().flatten() else {
                return fail(
                    pc,
                    ErrorClass::JumpOutOfRange,
                    format!("jump out of range from insn {pc}"),
                );
            };
            let flow = self.step(&mut state, pc, &d)?;
            if self.opts.log_level > 0 && self.log.len() < MAX_LOG {
                let regs = state.describe(&self.map_name());
                let _ = writeln!(
                    self.log,
                    "{pc}: ({:02x}) {:<36} ; {regs}",
                    d.insn.code,
                    format_insn(&d)
                );
            }
            match flow {
                Flow::Next => pc += d.slots(),
                Flow::Goto(t) => pc = t,
                Flow::Branch(other, t) => {
                    if let Some(n) = cp {
                        self.nodes[n as usize].live += 1;
                    }
                    if self.opts.log_level > 0 && self.log.len() < MAX_LOG {
                        let _ = writeln!(self.log, "from {pc} to {t}: pushed");
                    }
                    if self.pending.len() >= MAX_PENDING {
                        return fail(
                            pc,
                            ErrorClass::Complexity,
                            format!(
                                "The sequence of {} jumps is too complex.",
                                self.pending.len() + 1
                            ),
                        );
                    }
                    self.pending.push(Pending {
                        state: *other,
                        pc: t,
                        cp,
                    });
                    pc += 1;
                }
                Flow::Done => {
                    self.release(cp);
                    return Ok(());
                }
            }
        }
    }

    fn reg(&self, st: &State, pc: usize, r: u8) -> R<Reg> {
        let reg = st.cur().regs[r as usize];
        if reg.ty == RegType::NotInit {
            return fail(pc, ErrorClass::UninitRegister, format!("R{r} !read_ok"));
        }
        Ok(reg)
    }

    fn set(st: &mut State, r: u8, reg: Reg) {
        st.cur_mut().regs[r as usize] = reg;
    }

    fn note_bounds(&mut self, pc: usize, ok: bool) {
        let v = &mut self.in_bounds[pc];
        *v = match (*v, ok) {
            (0, true) | (1, true) => 1,
            _ => 2,
        };
    }

    /// Records where an access in bounds landed (merged over paths).
    fn note_proven(&mut self, pc: usize, region: Proven) {
        self.note_bounds(pc, true);
        let p = &mut self.proven[pc];
        *p = match *p {
            Proven::No => region,
            old if old == region => old,
            _ => Proven::Elsewhere,
        };
    }

    /// A context access reaching `end` bytes into the context.
    fn note_ctx(&mut self, pc: usize, end: i64, write: bool) {
        self.note_proven(pc, Proven::Ctx);
        let e = &mut self.ctx_extent[write as usize];
        *e = (*e).max(end);
    }

    fn step(&mut self, st: &mut State, pc: usize, d: &Decoded) -> R<Flow> {
        let insn = d.insn;
        match d.spec.op {
            Op::Alu { op, is64, reg } => {
                self.alu(st, pc, d, op, is64, reg)?;
                Ok(Flow::Next)
            }
            Op::End { kind, bits } => {
                let r = self.reg(st, pc, insn.dst)?;
                let v = match r.const_value() {
                    Some(v) => {
                        let v = match (kind, bits) {
                            (Endian::Le, 16) => v & 0xffff,
                            (Endian::Le, 32) => v & 0xffff_ffff,
                            (Endian::Le, _) => v,
                            (_, 16) => (v as u16).swap_bytes() as u64,
                            (_, 32) => (v as u32).swap_bytes() as u64,
                            _ => v.swap_bytes(),
                        };
                        Scalar::constant(v)
                    }
                    None => Scalar::unsigned_range(
                        0,
                        if bits == 64 {
                            u64::MAX
                        } else {
                            (1u64 << bits) - 1
                        },
                    ),
                };
                Self::set(st, insn.dst, Reg::scalar(v));
                Ok(Flow::Next)
            }
            Op::Load { size, signed } => {
                if st.cur().regs[insn.src as usize].ty == RegType::Stack
                    && self.precise_in.get(pc + 1).copied().unwrap_or(u16::MAX) & (1 << insn.dst)
                        != 0
                    && !self.precision.fills
                {
                    self.precision.fills = true;
                    self.learnt = true;
                }
                let v = self.mem(st, pc, insn.src, insn.off, size, Access::Read, None, false)?;
                let v = if signed && v.is_scalar() {
                    Reg::scalar(v.var.sext(size.bytes() as u32 * 8))
                } else {
                    v
                };
                Self::set(st, insn.dst, v);
                Ok(Flow::Next)
            }
            Op::StoreImm { size } => {
                let val = Reg::constant(insn.imm as i64 as u64);
                self.mem(
                    st,
                    pc,
                    insn.dst,
                    insn.off,
                    size,
                    Access::Write,
                    Some(val),
                    true,
                )?;
                Ok(Flow::Next)
            }
            Op::StoreReg { size } => {
                let val = self.reg(st, pc, insn.src)?;
                self.mem(
                    st,
                    pc,
                    insn.dst,
                    insn.off,
                    size,
                    Access::Write,
                    Some(val),
                    false,
                )?;
                Ok(Flow::Next)
            }
            Op::Atomic { size, op } => {
                let val = self.reg(st, pc, insn.src)?;
                if op == AtomicOp::Cmpxchg {
                    self.reg(st, pc, 0)?;
                }
                let _ = val;
                self.mem(
                    st,
                    pc,
                    insn.dst,
                    insn.off,
                    size,
                    Access::Atomic,
                    None,
                    false,
                )?;
                let res = Reg::scalar(Scalar::UNKNOWN.truncate(size.bytes()));
                match op {
                    AtomicOp::Cmpxchg => Self::set(st, 0, res),
                    AtomicOp::Add | AtomicOp::Or | AtomicOp::And | AtomicOp::Xor => {}
                    _ => Self::set(st, insn.src, res),
                }
                Ok(Flow::Next)
            }
            Op::Lddw => {
                let v = match insn.src {
                    pseudo::IMM => Reg::constant(d.imm64()),
                    pseudo::MAP_FD | pseudo::MAP_IDX => {
                        Reg::pointer(RegType::MapPtr, insn.imm as u32)
                    }
                    pseudo::MAP_VALUE | pseudo::MAP_IDX_VALUE => {
                        let mut r = Reg::pointer(RegType::MapValue, insn.imm as u32);
                        r.off = d.imm_hi;
                        r
                    }
                    pseudo::FUNC => {
                        Reg::pointer(RegType::Func, self.cfg.target[pc].unwrap_or(0) as u32)
                    }
                    _ => Reg::pointer(RegType::BtfId, 0),
                };
                Self::set(st, insn.dst, v);
                Ok(Flow::Next)
            }
            Op::LdAbs { size } | Op::LdInd { size } => {
                if !ctx::may_access_skb(self.opts.prog_type) {
                    return fail(
                        pc,
                        ErrorClass::InvalidInstruction,
                        "BPF_LD_[ABS|IND] instructions not allowed for this program type".into(),
                    );
                }
                let r6 = self.reg(st, pc, 6)?;
                if r6.ty != RegType::Ctx {
                    return fail(
                        pc,
                        ErrorClass::HelperArg,
                        "at the time of BPF_LD_ABS|IND R6 != pointer to skb".into(),
                    );
                }
                if matches!(d.spec.op, Op::LdInd { .. }) {
                    self.reg(st, pc, insn.src)?;
                }
                if !st.refs.is_empty() {
                    return fail(
                        pc,
                        ErrorClass::ReferenceLeak,
                        "BPF_LD_[ABS|IND] cannot be mixed with socket references".into(),
                    );
                }
                for r in 1..=5 {
                    Self::set(st, r, Reg::NOT_INIT);
                }
                Self::set(st, 0, Reg::scalar(Scalar::UNKNOWN.truncate(size.bytes())));
                Ok(Flow::Next)
            }
            Op::Ja { .. } => Ok(Flow::Goto(self.cfg.target[pc].unwrap_or(pc + 1))),
            Op::Jmp { cond, is64, reg } => {
                if reg && !self.precision.linked[pc] {
                    let (a, b) = (
                        st.cur().regs[insn.dst as usize],
                        st.cur().regs[insn.src as usize],
                    );
                    if (a.is_scalar() && a.id != 0) || (b.is_scalar() && b.id != 0) {
                        self.precision.linked[pc] = true;
                        self.learnt = true;
                    }
                }
                let flow = self.branch(st, pc, d, cond, is64, reg)?;
                if !matches!(flow, Flow::Branch(..)) && !self.precision.decided[pc] {
                    self.precision.decided[pc] = true;
                    self.learnt = true;
                }
                Ok(flow)
            }
            Op::Call => match insn.src {
                pseudo::CALL_LOCAL => {
                    let t = self.cfg.target[pc].unwrap_or(0);
                    self.enter(st, pc, t, false)?;
                    let caller = st.frames.len() - 2;
                    for r in 1..=5 {
                        st.frames.last_mut().expect("frame").regs[r] = st.frames[caller].regs[r];
                    }
                    Ok(Flow::Goto(t))
                }
                pseudo::CALL_KFUNC => {
                    for r in 1..=5 {
                        Self::set(st, r, Reg::NOT_INIT);
                    }
                    Self::set(st, 0, Reg::pointer(RegType::BtfId, 0));
                    Ok(Flow::Next)
                }
                _ => self.call_helper(st, pc, insn.imm as u32),
            },
            Op::Callx => fail(
                pc,
                ErrorClass::InvalidInstruction,
                "BPF_CALL uses reserved fields".into(),
            ),
            Op::Exit => self.exit(st, pc),
        }
    }

    /// Pushes a frame for a call from `pc` to `target`.
    fn enter(&mut self, st: &mut State, pc: usize, target: usize, callback: bool) -> R<()> {
        if st.frames.len() >= MAX_CALL_FRAMES {
            return fail(
                pc,
                ErrorClass::CallStack,
                format!(
                    "the call stack of {} frames is too deep !",
                    st.frames.len() + 1
                ),
            );
        }
        let mut f = Frame::new(st.frames.len() as u32, pc, target);
        f.callback = callback;
        st.frames.push(f);
        Ok(())
    }

    fn exit(&mut self, st: &mut State, pc: usize) -> R<Flow> {
        let r0 = self.reg(st, pc, 0)?;
        if st.frames.len() > 1 {
            let callee = st.frames.pop().expect("frame");
            let frameno = st.frames.len() as u32;
            if callee.callback {
                if !r0.is_scalar() {
                    return fail(
                        pc,
                        ErrorClass::ReturnPointer,
                        format!(
                            "At callback return the register R0 is not a known value ({})",
                            r0.ty
                        ),
                    );
                }
                if r0.var.smin < 0 || r0.var.smax > 1 {
                    return fail(
                        pc,
                        ErrorClass::ReturnRange,
                        format!(
                            "At callback return the register R0 has {} should have been in [0, 1]",
                            range_text(&r0.var)
                        ),
                    );
                }
                havoc_scalars(st.cur_mut());
                Self::set(st, 0, Reg::unknown());
            } else {
                if r0.ty == RegType::Stack && r0.aux == frameno {
                    return fail(
                        pc,
                        ErrorClass::InvalidMemAccess,
                        "cannot return stack pointer to the caller frame".into(),
                    );
                }
                Self::set(st, 0, r0);
            }
            for r in 1..=5 {
                Self::set(st, r, Reg::NOT_INIT);
            }
            // Pointers into the popped frame are gone.
            st.for_each_reg(|r| {
                if r.ty == RegType::Stack && r.aux >= frameno {
                    *r = Reg::unknown();
                }
            });
            return Ok(Flow::Goto(callee.callsite + 1));
        }
        if let Some(r) = st.refs.first() {
            return fail(
                pc,
                ErrorClass::ReferenceLeak,
                format!(
                    "Unreleased reference id={} alloc_insn={}\nBPF_EXIT instruction in main prog would lead to reference leak",
                    r.id, r.insn
                ),
            );
        }
        if let Some((lo, hi)) = ctx::return_range(self.opts.prog_type) {
            if !r0.is_scalar() {
                return fail(
                    pc,
                    ErrorClass::ReturnPointer,
                    format!(
                        "At program exit the register R0 is not a known value ({})",
                        r0.ty
                    ),
                );
            }
            if r0.var.smin < lo || r0.var.smax > hi {
                return fail(
                    pc,
                    ErrorClass::ReturnRange,
                    format!(
                        "At program exit the register R0 has {} should have been in [{lo}, {hi}]",
                        range_text(&r0.var)
                    ),
                );
            }
        }
        Ok(Flow::Done)
    }

    fn alu(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        op: AluOp,
        is64: bool,
        reg: bool,
    ) -> R<()> {
        let insn = d.insn;
        let imm = if is64 {
            insn.imm as i64 as u64
        } else {
            insn.imm as u32 as u64
        };
        let src = if reg {
            self.reg(st, pc, insn.src)?
        } else {
            Reg::constant(imm)
        };
        let bits = if is64 { 64 } else { 32 };
        let fix = |s: Scalar| if is64 { s } else { s.truncate(4) };
        match op {
            AluOp::Mov => {
                let v = if src.ty == RegType::Scalar || !is64 {
                    if src.is_scalar() && is64 {
                        // Copies share an id so that a bounds check on one narrows both.
                        let mut s = src;
                        if reg && s.id == 0 && !s.var.is_const() {
                            let id = st.fresh_id();
                            s.id = id;
                            st.cur_mut().regs[insn.src as usize].id = id;
                        }
                        s
                    } else if src.is_scalar() {
                        Reg::scalar(src.var.truncate(4))
                    } else {
                        Reg::scalar(Scalar::UNKNOWN.truncate(4))
                    }
                } else {
                    src
                };
                Self::set(st, insn.dst, v);
                return Ok(());
            }
            AluOp::Movsx8 | AluOp::Movsx16 | AluOp::Movsx32 => {
                let b = match op {
                    AluOp::Movsx8 => 8,
                    AluOp::Movsx16 => 16,
                    _ => 32,
                };
                let v = if src.is_scalar() {
                    fix(src.var.sext(b))
                } else {
                    fix(Scalar::UNKNOWN.sext(b))
                };
                Self::set(st, insn.dst, Reg::scalar(v));
                return Ok(());
            }
            AluOp::Neg => {
                let dst = self.reg(st, pc, insn.dst)?;
                let v = match dst.const_value() {
                    Some(v) => fix(Scalar::constant(v.wrapping_neg())),
                    None => fix(Scalar::UNKNOWN),
                };
                Self::set(st, insn.dst, Reg::scalar(v));
                return Ok(());
            }
            _ => {}
        }
        let dst = self.reg(st, pc, insn.dst)?;
        if matches!(op, AluOp::Div | AluOp::Mod | AluOp::Sdiv | AluOp::Smod)
            && !reg
            && insn.imm == 0
        {
            return fail(pc, ErrorClass::InvalidAlu, "div by zero".into());
        }
        if matches!(op, AluOp::Lsh | AluOp::Rsh | AluOp::Arsh) && !reg && (insn.imm as u32) >= bits
        {
            return fail(
                pc,
                ErrorClass::InvalidAlu,
                format!("invalid shift {}", insn.imm),
            );
        }
        if dst.ty.is_pointer() || src.ty.is_pointer() {
            if !self.precision.decided[pc] {
                self.precision.decided[pc] = true;
                self.learnt = true;
            }
            let r = self.ptr_alu(st, pc, insn.dst, op, dst, src, is64)?;
            Self::set(st, insn.dst, r);
            return Ok(());
        }
        let (a, b) = if is64 {
            (dst.var, src.var)
        } else {
            (dst.var.truncate(4), src.var.truncate(4))
        };
        let shift = |s: &Scalar| -> Option<u32> {
            s.const_value()
                .filter(|v| *v < bits as u64)
                .map(|v| v as u32)
        };
        let r = match op {
            AluOp::Add => a.add(&b),
            AluOp::Sub => a.sub(&b),
            AluOp::Mul => a.mul(&b),
            AluOp::And => a.and(&b),
            AluOp::Or => a.or(&b),
            AluOp::Xor => a.xor(&b),
            AluOp::Lsh => match shift(&b) {
                Some(s) => a.lsh(s),
                None => Scalar::UNKNOWN,
            },
            AluOp::Rsh => match shift(&b) {
                Some(s) => a.rsh(s),
                None => Scalar::UNKNOWN,
            },
            AluOp::Arsh => match (shift(&b), a.const_value()) {
                (Some(s), Some(v)) if !is64 => {
                    Scalar::constant(((v as u32 as i32) >> s) as u32 as u64)
                }
                (Some(s), _) if is64 => a.arsh(s),
                (Some(s), _) if a.umax <= i32::MAX as u64 => a.rsh(s),
                _ => Scalar::UNKNOWN,
            },
            AluOp::Div => match (a.const_value(), b.const_value()) {
                (Some(x), Some(y)) => Scalar::constant(x.checked_div(y).unwrap_or(0)),
                _ if b.umin > 0 => Scalar::unsigned_range(a.umin / b.umax, a.umax / b.umin),
                _ => Scalar::unsigned_range(0, a.umax),
            },
            AluOp::Mod => match (a.const_value(), b.const_value()) {
                (Some(x), Some(y)) => Scalar::constant(if y == 0 { x } else { x % y }),
                _ if b.umin > 0 => Scalar::unsigned_range(0, a.umax.min(b.umax - 1)),
                _ => Scalar::unsigned_range(0, a.umax),
            },
            AluOp::Sdiv | AluOp::Smod => match (a.const_value(), b.const_value()) {
                (Some(x), Some(y)) => {
                    let (x, y) = if is64 {
                        (x as i64, y as i64)
                    } else {
                        (x as u32 as i32 as i64, y as u32 as i32 as i64)
                    };
                    let v = if op == AluOp::Sdiv {
                        if y == 0 {
                            0
                        } else {
                            x.wrapping_div(y)
                        }
                    } else if y == 0 {
                        x
                    } else {
                        x.wrapping_rem(y)
                    };
                    Scalar::constant(v as u64)
                }
                _ => Scalar::UNKNOWN,
            },
            _ => Scalar::UNKNOWN,
        };
        Self::set(st, insn.dst, Reg::scalar(fix(r)));
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn ptr_alu(
        &mut self,
        st: &mut State,
        pc: usize,
        dst_no: u8,
        op: AluOp,
        dst: Reg,
        src: Reg,
        is64: bool,
    ) -> R<Reg> {
        let arith = ErrorClass::PointerArithmetic;
        if dst.ty == RegType::BtfId || src.ty == RegType::BtfId {
            let mut r = if dst.ty == RegType::BtfId { dst } else { src };
            r.var = Scalar::UNKNOWN;
            return Ok(r);
        }
        if dst.ty.is_pointer() && src.ty.is_pointer() {
            if op == AluOp::Sub {
                return Ok(Reg::unknown());
            }
            return fail(
                pc,
                arith,
                format!("R{dst_no} pointer {} pointer prohibited", alu_str(op)),
            );
        }
        let (ptr, off) = if dst.ty.is_pointer() {
            (dst, src)
        } else {
            (src, dst)
        };
        if !is64 {
            if op == AluOp::Sub {
                return Ok(Reg::scalar(Scalar::UNKNOWN.truncate(4)));
            }
            return fail(
                pc,
                arith,
                format!("R{dst_no} 32-bit pointer arithmetic prohibited"),
            );
        }
        if ptr.ty.is_or_null() {
            return fail(
                pc,
                arith,
                format!(
                    "R{dst_no} pointer arithmetic on {} prohibited, null-check it first",
                    ptr.ty
                ),
            );
        }
        let known = off.var.const_value();
        match ptr.ty {
            RegType::MapPtr if known == Some(0) && op == AluOp::Add => {}
            RegType::MapPtr | RegType::PacketEnd | RegType::Func => {
                return fail(
                    pc,
                    arith,
                    format!("R{dst_no} pointer arithmetic on {} prohibited", ptr.ty),
                )
            }
            _ => {}
        }
        match op {
            AluOp::Add => {}
            AluOp::Sub => {
                if !dst.ty.is_pointer() {
                    return fail(
                        pc,
                        arith,
                        format!("R{dst_no} tried to subtract pointer from scalar"),
                    );
                }
                if ptr.ty == RegType::Stack {
                    return fail(
                        pc,
                        arith,
                        format!("R{dst_no} subtraction from stack pointer prohibited"),
                    );
                }
            }
            AluOp::And | AluOp::Or | AluOp::Xor => {
                return fail(
                    pc,
                    arith,
                    format!(
                        "R{dst_no} bitwise operator {} on pointer prohibited",
                        alu_str(op)
                    ),
                )
            }
            _ => {
                return fail(
                    pc,
                    arith,
                    format!(
                        "R{dst_no} pointer arithmetic with {} operator prohibited",
                        alu_str(op)
                    ),
                )
            }
        }
        let name = ptr.ty.name();
        if let Some(v) = known {
            let v = v as i64;
            if !(-MAX_VAR_OFF + 1..MAX_VAR_OFF).contains(&v) {
                return fail(
                    pc,
                    arith,
                    format!("math between {name} pointer and {v} is not allowed"),
                );
            }
            let mut r = ptr;
            let new = if op == AluOp::Add {
                r.off as i64 + v
            } else {
                r.off as i64 - v
            };
            if !(-MAX_VAR_OFF + 1..MAX_VAR_OFF).contains(&new) {
                return fail(
                    pc,
                    arith,
                    format!("value {new} makes {name} pointer be out of bounds"),
                );
            }
            r.off = new as i32;
            return Ok(r);
        }
        if off.var.smin == i64::MIN {
            return fail(
                pc,
                arith,
                format!(
                    "math between {name} pointer and register with unbounded min value is not allowed"
                ),
            );
        }
        let mut r = ptr;
        r.var = if op == AluOp::Add {
            ptr.var.add(&off.var)
        } else {
            ptr.var.sub(&off.var)
        };
        if off.var.smin <= -MAX_VAR_OFF || off.var.smin >= MAX_VAR_OFF {
            return fail(
                pc,
                arith,
                format!(
                    "value {} makes {name} pointer be out of bounds",
                    off.var.smin
                ),
            );
        }
        if r.var.smin <= -MAX_VAR_OFF || r.var.smin >= MAX_VAR_OFF {
            return fail(
                pc,
                arith,
                format!("value {} makes {name} pointer be out of bounds", r.var.smin),
            );
        }
        if ptr.ty.is_packet() {
            r.id = st.fresh_id();
            r.range = 0;
        }
        Ok(r)
    }

    fn branch(
        &mut self,
        st: &mut State,
        pc: usize,
        d: &Decoded,
        cond: JmpCond,
        is64: bool,
        reg: bool,
    ) -> R<Flow> {
        let insn = d.insn;
        let target = self.cfg.target[pc].unwrap_or(pc + 1);
        let a = self.reg(st, pc, insn.dst)?;
        let b = if reg {
            self.reg(st, pc, insn.src)?
        } else if is64 {
            Reg::constant(insn.imm as i64 as u64)
        } else {
            Reg::constant(insn.imm as u32 as u64)
        };
        if a.ty.is_pointer() || b.ty.is_pointer() {
            return Ok(self.ptr_branch(st, insn.dst, insn.src, reg, cond, is64, a, b, target));
        }
        if a.ty == RegType::BtfId || b.ty == RegType::BtfId {
            return Ok(both(st, target));
        }
        // 32-bit comparisons are refined only where they agree with 64-bit ones.
        let (mut sa, mut sb) = (a.var, b.var);
        let mut exact = true;
        if !is64 {
            let signed = matches!(
                cond,
                JmpCond::Sgt | JmpCond::Sge | JmpCond::Slt | JmpCond::Sle
            );
            let lim = if signed {
                i32::MAX as u64
            } else {
                u32::MAX as u64
            };
            if signed && !reg {
                sb = Scalar::constant(insn.imm as i64 as u64);
            }
            let b_ok = sb.umax <= lim || (signed && !reg);
            if !(sa.umax <= lim && b_ok) {
                exact = false;
                sa = sa.truncate(4);
                if reg {
                    sb = sb.truncate(4);
                }
                if signed {
                    // Decide only on 32-bit constants.
                    if let (Some(x), Some(y)) = (sa.const_value(), sb.const_value()) {
                        let (x, y) = (x as u32 as i32, y as u32 as i32);
                        let t = match cond {
                            JmpCond::Sgt => x > y,
                            JmpCond::Sge => x >= y,
                            JmpCond::Slt => x < y,
                            _ => x <= y,
                        };
                        return Ok(if t { Flow::Goto(target) } else { Flow::Next });
                    }
                    return Ok(both(st, target));
                }
            }
        }
        match decide(cond, &sa, &sb) {
            Some(true) => return Ok(Flow::Goto(target)),
            Some(false) => return Ok(Flow::Next),
            None => {}
        }
        if !exact {
            // Refine the low 32 bits only, keeping what is known of the upper ones.
            if reg
                || !matches!(
                    cond,
                    JmpCond::Gt | JmpCond::Ge | JmpCond::Lt | JmpCond::Le | JmpCond::Eq
                )
            {
                return Ok(both(st, target));
            }
            let sub = |s: Scalar| -> Option<Scalar> {
                let low = s.tnum.cast32().intersect(Tnum::range(s.umin, s.umax));
                let upper = Tnum {
                    value: a.var.tnum.value & !0xffff_ffff,
                    mask: a.var.tnum.mask & !0xffff_ffff,
                };
                let t = Tnum {
                    value: upper.value | low.value,
                    mask: upper.mask | low.mask,
                };
                let mut r = a.var;
                r.tnum = r.tnum.intersect(t);
                r.sync();
                (!r.is_empty()).then_some(r)
            };
            let taken = refine(cond, Some(true), &sa, &sb).and_then(|(x, _)| sub(x));
            let fall = negate(cond)
                .and_then(|n| refine(n, None, &sa, &sb))
                .and_then(|(x, _)| sub(x));
            return Ok(match (taken, fall) {
                (None, None) => both(st, target),
                (Some(t), None) => {
                    set_scalar(st, insn.dst, a, t);
                    Flow::Goto(target)
                }
                (None, Some(f)) => {
                    set_scalar(st, insn.dst, a, f);
                    Flow::Next
                }
                (Some(t), Some(f)) => {
                    let mut other = st.clone();
                    set_scalar(&mut other, insn.dst, a, t);
                    set_scalar(st, insn.dst, a, f);
                    Flow::Branch(Box::new(other), target)
                }
            });
        }
        let taken = refine(cond, Some(true), &sa, &sb);
        let fall = match negate(cond) {
            Some(n) => refine(n, None, &sa, &sb),
            None => refine(JmpCond::Set, Some(false), &sa, &sb),
        };
        let apply = |s: &mut State, (na, nb): (Scalar, Scalar)| {
            set_scalar(s, insn.dst, a, na);
            if reg {
                set_scalar(s, insn.src, b, nb);
            }
        };
        match (taken, fall) {
            (None, None) => Ok(Flow::Next),
            (Some(t), None) => {
                apply(st, t);
                Ok(Flow::Goto(target))
            }
            (None, Some(f)) => {
                apply(st, f);
                Ok(Flow::Next)
            }
            (Some(t), Some(f)) => {
                let mut other = st.clone();
                apply(&mut other, t);
                apply(st, f);
                Ok(Flow::Branch(Box::new(other), target))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ptr_branch(
        &mut self,
        st: &mut State,
        dst: u8,
        src: u8,
        reg: bool,
        cond: JmpCond,
        is64: bool,
        a: Reg,
        b: Reg,
        target: usize,
    ) -> Flow {
        use JmpCond::*;
        let zero = |r: &Reg| r.const_value() == Some(0);
        if is64 && matches!(cond, Eq | Ne) {
            // NULL checks.
            let (p, other) = if a.ty.is_pointer() { (a, b) } else { (b, a) };
            if zero(&other) {
                if p.ty.is_or_null() {
                    let mut taken = st.clone();
                    mark_null(&mut taken, p.id, cond == Eq, self.opts.maps);
                    mark_null(st, p.id, cond != Eq, self.opts.maps);
                    return Flow::Branch(Box::new(taken), target);
                }
                if p.ty != RegType::BtfId && p.ty != RegType::Scalar {
                    // A non-NULL pointer is never 0.
                    return if cond == Eq {
                        Flow::Next
                    } else {
                        Flow::Goto(target)
                    };
                }
            }
        }
        let _ = (dst, src);
        // Packet range checks: `pkt + n <op> pkt_end` (or meta against data).
        if is64 && reg && matches!(cond, Gt | Ge | Lt | Le) {
            let pair = |lo: &Reg, hi: &Reg| {
                (lo.ty == RegType::Packet && hi.ty == RegType::PacketEnd)
                    || (lo.ty == RegType::PacketMeta && hi.ty == RegType::Packet)
            };
            // In which branch (true: taken) is `lo` (the packet pointer) <= / < `hi`.
            let (lo, in_taken, open) = if pair(&a, &b) {
                match cond {
                    Gt => (a, false, false),
                    Ge => (a, false, true),
                    Lt => (a, true, true),
                    _ => (a, true, false),
                }
            } else if pair(&b, &a) {
                match cond {
                    Gt => (b, true, true),
                    Ge => (b, true, false),
                    Lt => (b, false, false),
                    _ => (b, false, true),
                }
            } else {
                return both(st, target);
            };
            let mut taken = st.clone();
            let s = if in_taken { &mut taken } else { &mut *st };
            mark_packet_range(s, &lo, open);
            return Flow::Branch(Box::new(taken), target);
        }
        both(st, target)
    }

    /// Loads and stores through register `regno`; returns the loaded value for reads.
    #[allow(clippy::too_many_arguments)]
    fn mem(
        &mut self,
        st: &mut State,
        pc: usize,
        regno: u8,
        off: i16,
        size: Size,
        kind: Access,
        val: Option<Reg>,
        is_st: bool,
    ) -> R<Reg> {
        let ptr = self.reg(st, pc, regno)?;
        let size = size.bytes() as i64;
        let off = off as i64;
        let write = kind != Access::Read;
        // One instruction may not access the context on one path and other memory on another.
        let kind_bit = if ptr.ty == RegType::Ctx { 1 } else { 2 };
        let prev = self.ptr_kind.entry(pc).or_insert(kind_bit);
        if *prev != kind_bit {
            return fail(
                pc,
                ErrorClass::InvalidMemAccess,
                "same insn cannot be used with different pointers".into(),
            );
        }
        let invalid = |ty: RegType| {
            fail(
                pc,
                if ty.is_or_null() {
                    ErrorClass::NullDeref
                } else {
                    ErrorClass::InvalidMemAccess
                },
                format!("R{regno} invalid mem access '{}'", ty),
            )
        };
        let not_allowed = |what: &str, ty: RegType| {
            fail(
                pc,
                ErrorClass::InvalidMemAccess,
                format!("{what} stores into R{regno} {ty} is not allowed"),
            )
        };
        match ptr.ty {
            RegType::Stack => {
                // check_ptr_alignment: strict for the stack, whatever the architecture.
                let at = ptr
                    .var
                    .tnum
                    .add(Tnum::constant((ptr.off as i64 + off) as u64));
                if (at.value | at.mask) & (size as u64 - 1) != 0 {
                    return fail(
                        pc,
                        ErrorClass::Misaligned,
                        format!(
                            "misaligned stack access off {}+{}+{off} size {size}",
                            ptr.var.tnum, ptr.off
                        ),
                    );
                }
                let r = self.stack_access(st, pc, regno, &ptr, off, size, kind, val, false)?;
                let current = ptr.aux as usize + 1 == st.frames.len();
                self.note_proven(
                    pc,
                    if current {
                        Proven::Frame
                    } else {
                        Proven::Elsewhere
                    },
                );
                Ok(r)
            }
            RegType::Ctx => {
                if kind == Access::Atomic {
                    return not_allowed("BPF_ATOMIC", ptr.ty);
                }
                if is_st {
                    return not_allowed("BPF_ST", ptr.ty);
                }
                if ptr.off != 0 {
                    return fail(
                        pc,
                        ErrorClass::CtxAccess,
                        format!(
                            "dereference of modified ctx ptr R{regno} off={} disallowed",
                            ptr.off
                        ),
                    );
                }
                if !(ptr.var.is_const() && ptr.var.tnum.value == 0) {
                    return fail(
                        pc,
                        ErrorClass::CtxAccess,
                        format!("variable ctx access var_off={} disallowed", ptr.var.tnum),
                    );
                }
                let Some(field) = ctx::access(self.opts.prog_type, off, size, write) else {
                    return fail(
                        pc,
                        ErrorClass::CtxAccess,
                        format!("invalid bpf_context access off={off} size={size}"),
                    );
                };
                let acc = CtxAccess {
                    insn: pc,
                    offset: off as u32,
                    size: size as u32,
                    write,
                    field,
                };
                if let Some(old) = self.ctx_accesses.insert(pc, acc) {
                    if old != acc {
                        return fail(
                            pc,
                            ErrorClass::CtxAccess,
                            "same insn cannot be used with different pointers".into(),
                        );
                    }
                }
                self.note_ctx(pc, off + size, write);
                Ok(match field {
                    _ if write => Reg::NOT_INIT,
                    CtxField::Scalar => Reg::scalar(Scalar::UNKNOWN.truncate(size as usize)),
                    CtxField::PacketData => Reg::pointer(RegType::Packet, 0),
                    CtxField::PacketEnd => Reg::pointer(RegType::PacketEnd, 0),
                    CtxField::PacketMeta => Reg::pointer(RegType::PacketMeta, 0),
                    CtxField::BtfId if size == 8 => Reg::pointer(RegType::BtfId, 0),
                    CtxField::BtfId => Reg::scalar(Scalar::UNKNOWN.truncate(size as usize)),
                })
            }
            RegType::MapValue | RegType::RingbufMem | RegType::Mem | RegType::MapKey => {
                let (limit, what) = self.region(&ptr);
                if ptr.ty == RegType::MapValue && write {
                    if let Some(m) = self.map_info(ptr.aux) {
                        if m.readonly {
                            return fail(
                                pc,
                                ErrorClass::MemBounds,
                                format!(
                                    "write into map forbidden, value_size={} off={} size={size}",
                                    m.value_size,
                                    ptr.off as i64 + off
                                ),
                            );
                        }
                    }
                }
                check_region(pc, regno, &ptr, off, size, limit, what)?;
                if ptr.ty == RegType::Mem && ptr.id == RAW_CTX_ID {
                    let end = ptr.off as i64 + ptr.var.umax as i64 + off + size;
                    self.note_ctx(pc, end, write || kind == Access::Atomic);
                } else {
                    self.note_proven(pc, Proven::Elsewhere);
                }
                Ok(load_result(size, write))
            }
            RegType::Packet | RegType::PacketMeta => {
                if kind == Access::Atomic {
                    return not_allowed("BPF_ATOMIC", ptr.ty);
                }
                if write && !ctx::packet_writable(self.opts.prog_type) {
                    return fail(
                        pc,
                        ErrorClass::PacketBounds,
                        "cannot write into packet".into(),
                    );
                }
                let o = ptr.off as i64 + off;
                if ptr.var.smin < 0 {
                    return fail(
                        pc,
                        ErrorClass::PacketBounds,
                        format!("R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."),
                    );
                }
                if o < 0 || o + size > ptr.range as i64 {
                    return fail(
                        pc,
                        ErrorClass::PacketBounds,
                        format!(
                            "invalid access to packet, off={o} size={size}, R{regno}(id={},off={o},r={})\nR{regno} offset is outside of the packet",
                            ptr.id, ptr.range
                        ),
                    );
                }
                self.note_proven(pc, Proven::Elsewhere);
                Ok(load_result(size, write))
            }
            RegType::BtfId => {
                self.note_bounds(pc, false);
                Ok(if write {
                    Reg::NOT_INIT
                } else if size == 8 {
                    Reg::pointer(RegType::BtfId, 0)
                } else {
                    Reg::scalar(Scalar::UNKNOWN.truncate(size as usize))
                })
            }
            RegType::MapPtr if !write => {
                // Reads of `struct bpf_map` fields are allowed (through BTF).
                self.note_bounds(pc, false);
                Ok(Reg::scalar(Scalar::UNKNOWN.truncate(size as usize)))
            }
            ty => invalid(ty),
        }
    }

    /// The size and message name of a bounded memory region.
    fn region(&self, ptr: &Reg) -> (i64, &'static str) {
        match ptr.ty {
            RegType::MapValue => (
                self.map_info(ptr.aux)
                    .map(|m| m.value_size as i64)
                    .unwrap_or(0),
                "map value, value_size",
            ),
            RegType::MapKey => (
                self.map_info(ptr.aux)
                    .map(|m| m.key_size as i64)
                    .unwrap_or(0),
                "map key, key_size",
            ),
            _ => (ptr.aux as i64, "memory, mem_size"),
        }
    }

    fn frame_depth(&mut self, st: &State, frameno: usize, min_off: i64) {
        if let Some(f) = st.frames.get(frameno) {
            let k = self.cfg.subprogs.binary_search(&f.subprog).unwrap_or(0);
            if let Some(d) = self.stack_depth.get_mut(k) {
                *d = (*d).max((-min_off).max(0) as u32);
            }
        }
    }

    /// A stack access at `ptr + off` of `size` bytes (helper: from a helper argument).
    #[allow(clippy::too_many_arguments)]
    fn stack_access(
        &mut self,
        st: &mut State,
        pc: usize,
        regno: u8,
        ptr: &Reg,
        off: i64,
        size: i64,
        kind: Access,
        val: Option<Reg>,
        helper: bool,
    ) -> R<Reg> {
        let frameno = ptr.aux as usize;
        let base = ptr.off as i64 + off;
        let write = kind != Access::Read;
        let (min, max) = if let Some(v) = ptr.var.const_value() {
            let o = base + v as i64;
            (o, o)
        } else {
            (
                base.saturating_add(ptr.var.smin),
                base.saturating_add(ptr.var.smax),
            )
        };
        let _ = helper;
        let extra = if write { " write to" } else { " read from" };
        if min < -(STACK_SIZE as i64) || max.saturating_add(size) > 0 || min >= 0 {
            let msg = if ptr.var.is_const() {
                format!("invalid{extra} stack R{regno} off={min} size={size}")
            } else {
                format!(
                    "invalid variable-offset{extra} stack R{regno} var_off={} off={base} size={size}",
                    ptr.var.tnum
                )
            };
            return fail(pc, ErrorClass::StackBounds, msg);
        }
        self.frame_depth(st, frameno, min);
        let privileged = self.opts.privileged;
        let Some(frame) = st.frames.get_mut(frameno) else {
            return fail(
                pc,
                ErrorClass::StackBounds,
                format!("R{regno} invalid stack frame"),
            );
        };
        let end = max + size;
        // Byte position x (negative offset) lives in slot (-x-1)/8 at byte (x+8*(slot+1)).
        let pos = |x: i64| {
            let s = ((-x - 1) / 8) as usize;
            (s, (x + 8 * (s as i64 + 1)) as usize)
        };
        if min != max {
            // Variable offset: every byte that may be touched.
            for x in min..end {
                let (s, b) = pos(x);
                if write {
                    let slot = frame.slot_mut(s);
                    if slot.bytes[0] == ByteKind::Spill {
                        slot.scrub_spill(false);
                    }
                    slot.bytes[b] = ByteKind::Misc;
                } else if frame.slot(s).bytes[b] == ByteKind::Invalid && !privileged {
                    return fail(
                        pc,
                        ErrorClass::UninitStack,
                        format!(
                            "invalid variable-offset read from stack R{regno} var_off={} off={base} size={size}",
                            ptr.var.tnum
                        ),
                    );
                }
            }
            return Ok(load_result(size, write));
        }
        let o = min;
        let (s0, b0) = pos(o);
        if write && kind == Access::Write {
            let aligned = o % 8 == 0 && size == 8;
            if aligned {
                if let Some(v) = val {
                    let slot = frame.slot_mut(s0);
                    if v.const_value() == Some(0) && v.id == 0 {
                        *slot = Slot {
                            bytes: [ByteKind::Zero; 8],
                            spill: Reg::NOT_INIT,
                        };
                    } else {
                        *slot = Slot {
                            bytes: [ByteKind::Spill; 8],
                            spill: v,
                        };
                    }
                    return Ok(Reg::NOT_INIT);
                }
            }
            let zero = val.and_then(|v| v.const_value()) == Some(0);
            if let Some(v) = val.filter(|v| v.is_scalar() && !zero && o % 8 == 0) {
                // A narrow spill (the kernel's `save_register_state` with size < 8): the
                // register is kept for the low `size` bytes; a fill of at most that many
                // bytes at the same offset gives it back (truncated).
                frame.slot_mut(s0).spill_narrow(v, size as usize);
                return Ok(Reg::NOT_INIT);
            }
            for x in o..o + size {
                let (s, b) = pos(x);
                let slot = frame.slot_mut(s);
                if slot.bytes[0] == ByteKind::Spill {
                    let keep_zero = slot.spill.const_value() == Some(0);
                    slot.scrub_spill(keep_zero);
                }
                slot.bytes[b] = if zero { ByteKind::Zero } else { ByteKind::Misc };
            }
            return Ok(Reg::NOT_INIT);
        }
        // Reads (and the read half of atomics).
        let slot = frame.slot(s0);
        if slot.is_spill() && o % 8 == 0 && kind == Access::Read {
            if size == 8 && slot.spill_size() == 8 {
                return Ok(slot.spill);
            }
            // A narrow fill at the spill's offset (`bpf_stack_narrow_access_ok`): the
            // spilled scalar, truncated; it stays linked to the slot if it fits.
            if slot.spill.is_scalar() && (size as usize) <= slot.spill_size() && size < 8 {
                let bits = size as u32 * 8;
                let mut r = Reg::scalar(slot.spill.var.truncate(size as usize));
                if slot.spill.var.umax >> bits == 0 {
                    r.id = slot.spill.id;
                }
                return Ok(r);
            }
        }
        let mut all_zero = true;
        for x in o..o + size {
            let (s, b) = pos(x);
            let sl = frame.slot(s);
            match sl.bytes[b] {
                ByteKind::Zero => {}
                ByteKind::Spill if sl.spill.const_value() == Some(0) => {}
                ByteKind::Invalid if !privileged => {
                    return fail(
                        pc,
                        ErrorClass::UninitStack,
                        if helper {
                            format!(
                                "invalid indirect read from stack R{regno} off {o}+{} size {size}",
                                x - o
                            )
                        } else {
                            format!("invalid read from stack R{regno} off={o} size={size}")
                        },
                    );
                }
                _ => all_zero = false,
            }
        }
        let _ = b0;
        // A partial read of a spilled constant at the spill's offset (reads are handled
        // above; this is the read half of an atomic) gives its low bytes. Elsewhere in the
        // slot, the kernel knows nothing of the bytes.
        if slot.is_spill() && size < 8 && b0 == 0 && size as usize <= slot.spill_size() {
            if let Some(v) = slot.spill.const_value() {
                let v = v & ((1u64 << (size * 8)) - 1);
                if kind == Access::Atomic {
                    let sl = frame.slot_mut(s0);
                    sl.scrub_spill(false);
                    for b in &mut sl.bytes[b0..b0 + size as usize] {
                        *b = ByteKind::Misc;
                    }
                }
                return Ok(Reg::constant(v));
            }
        }
        if kind == Access::Atomic {
            for x in o..o + size {
                let (s, b) = pos(x);
                let sl = frame.slot_mut(s);
                if sl.bytes[0] == ByteKind::Spill {
                    sl.scrub_spill(false);
                }
                sl.bytes[b] = ByteKind::Misc;
            }
        }
        Ok(if all_zero {
            Reg::constant(0)
        } else {
            Reg::scalar(Scalar::UNKNOWN.truncate(size as usize))
        })
    }

    /// Checks that `[ptr, ptr + size)` may be passed to a helper (read or written).
    fn helper_mem(
        &mut self,
        st: &mut State,
        pc: usize,
        regno: u8,
        ptr: &Reg,
        size: u64,
        write: bool,
    ) -> R<()> {
        if size == 0 {
            return Ok(());
        }
        let size = size as i64;
        match ptr.ty {
            RegType::Stack => {
                if write {
                    // Written by the helper: spilled registers there are lost.
                    let kind = Access::Write;
                    self.stack_access(st, pc, regno, ptr, 0, size, kind, None, true)?;
                } else {
                    self.stack_access(st, pc, regno, ptr, 0, size, Access::Read, None, true)?;
                }
                Ok(())
            }
            RegType::MapValue | RegType::MapKey | RegType::RingbufMem | RegType::Mem => {
                let (limit, what) = self.region(ptr);
                if ptr.ty == RegType::MapValue && write {
                    if let Some(m) = self.map_info(ptr.aux) {
                        if m.readonly {
                            return fail(
                                pc,
                                ErrorClass::HelperArg,
                                format!(
                                    "write into map forbidden, value_size={} off={} size={size}",
                                    m.value_size, ptr.off
                                ),
                            );
                        }
                    }
                }
                check_region(pc, regno, ptr, 0, size, limit, what)
            }
            RegType::Packet | RegType::PacketMeta => {
                let o = ptr.off as i64;
                if o < 0 || o + size > ptr.range as i64 || ptr.var.smin < 0 {
                    return fail(
                        pc,
                        ErrorClass::PacketBounds,
                        format!(
                            "invalid access to packet, off={o} size={size}, R{regno}(id={},off={o},r={})",
                            ptr.id, ptr.range
                        ),
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn call_helper(&mut self, st: &mut State, pc: usize, id: u32) -> R<Flow> {
        let name = helpers::name(id).unwrap_or("unknown");
        if !helpers::allowed(self.opts.prog_type, id) {
            return fail(
                pc,
                ErrorClass::HelperNotAllowed,
                format!("program of this type cannot use helper {name}#{id}"),
            );
        }
        let Some(proto) = helpers::proto(id) else {
            // Unknown prototype: the helper may write to any stack it is given.
            for r in 1..=5u8 {
                let reg = st.cur().regs[r as usize];
                if reg.ty == RegType::Stack {
                    if let (Some(v), Some(f)) =
                        (reg.var.const_value(), st.frames.get_mut(reg.aux as usize))
                    {
                        let o = reg.off as i64 + v as i64;
                        if (-(STACK_SIZE as i64)..0).contains(&o) {
                            let first = ((-o - 1) / 8) as usize;
                            for s in 0..=first.min(SLOTS - 1) {
                                let sl = f.slot_mut(s);
                                if sl.bytes[0] == ByteKind::Spill && sl.spill.is_scalar() {
                                    sl.spill = Reg::unknown();
                                } else {
                                    sl.bytes = [ByteKind::Misc; 8];
                                    sl.spill = Reg::NOT_INIT;
                                }
                            }
                        }
                    }
                }
            }
            clobber(st, Reg::unknown());
            return Ok(Flow::Next);
        };
        let expected_mem =
            "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_";
        let mut map: Option<u32> = None;
        let mut mem: Option<(u8, Reg, bool)> = None;
        let mut alloc = 0u32;
        let mut func: Option<usize> = None;
        let helper_arg = ErrorClass::HelperArg;
        let type_err = |r: u8, reg: &Reg, exp: &str| {
            fail::<()>(
                pc,
                helper_arg,
                format!("R{r} type={} expected={exp}", reg.ty),
            )
        };
        for (i, arg) in proto.args.iter().enumerate() {
            let r = i as u8 + 1;
            if *arg == Arg::None {
                continue;
            }
            let reg = self.reg(st, pc, r)?;
            match arg {
                Arg::None | Arg::Anything => {}
                Arg::MapPtr => {
                    if reg.ty != RegType::MapPtr {
                        type_err(r, &reg, "map_ptr")?;
                    }
                    if let Some(m) = self.map_info(reg.aux) {
                        if !helpers::map_compatible(m.map_type, id, &proto) {
                            return fail(
                                pc,
                                helper_arg,
                                format!(
                                    "cannot pass map_type {} into func {name}#{id}",
                                    m.map_type
                                ),
                            );
                        }
                    }
                    map = Some(reg.aux);
                }
                Arg::MapKey | Arg::MapValue => {
                    if !matches!(
                        reg.ty,
                        RegType::Stack
                            | RegType::Packet
                            | RegType::PacketMeta
                            | RegType::MapKey
                            | RegType::MapValue
                    ) {
                        type_err(r, &reg, "fp, pkt, pkt_meta, map_key, map_value")?;
                    }
                    let m = map.and_then(|m| self.map_info(m));
                    let size = m
                        .map(|m| {
                            if *arg == Arg::MapKey {
                                m.key_size
                            } else {
                                m.value_size
                            }
                        })
                        .unwrap_or(0);
                    self.helper_mem(st, pc, r, &reg, size as u64, false)?;
                }
                Arg::Ctx => {
                    if reg.ty != RegType::Ctx {
                        type_err(r, &reg, "ctx")?;
                    }
                    if reg.off != 0 {
                        return fail(
                            pc,
                            helper_arg,
                            format!(
                                "dereference of modified ctx ptr R{r} off={} disallowed",
                                reg.off
                            ),
                        );
                    }
                }
                Arg::Mem | Arg::MemUninit => {
                    if !matches!(
                        reg.ty,
                        RegType::Stack
                            | RegType::Packet
                            | RegType::PacketMeta
                            | RegType::MapKey
                            | RegType::MapValue
                            | RegType::Mem
                            | RegType::RingbufMem
                            | RegType::BtfId
                    ) {
                        type_err(r, &reg, expected_mem)?;
                    }
                    mem = Some((r, reg, *arg == Arg::MemUninit));
                }
                Arg::Size(zero_ok) => {
                    if !reg.is_scalar() {
                        type_err(r, &reg, "scalar")?;
                    }
                    let v = reg.var;
                    if v.smin < 0 {
                        return fail(
                            pc,
                            helper_arg,
                            format!(
                                "R{r} min value is negative, either use unsigned or 'var &= const'"
                            ),
                        );
                    }
                    if v.umin == 0 && !zero_ok {
                        return fail(
                            pc,
                            helper_arg,
                            format!("R{r} invalid zero-sized read: u64=[{},{}]", v.umin, v.umax),
                        );
                    }
                    if v.umax >= MAX_VAR_SIZ {
                        return fail(
                            pc,
                            helper_arg,
                            format!("R{r} unbounded memory access, use 'var &= const' or 'if (var < const)'"),
                        );
                    }
                    if let Some((mr, mreg, write)) = mem.take() {
                        self.helper_mem(st, pc, mr, &mreg, v.umax, write)?;
                    }
                }
                Arg::AllocSize => match reg.const_value() {
                    Some(v) if v <= u32::MAX as u64 => alloc = v as u32,
                    _ => {
                        return fail(pc, helper_arg, format!("R{r} is not a known constant'"));
                    }
                },
                Arg::RingbufRelease => {
                    if reg.ty != RegType::RingbufMem {
                        type_err(r, &reg, "ringbuf_mem")?;
                    }
                    if reg.off != 0 || !reg.var.is_const() || reg.var.tnum.value != 0 {
                        return fail(
                            pc,
                            helper_arg,
                            format!("R{r} must have zero offset when passed to release func or trusted arg to kfunc"),
                        );
                    }
                    let rid = reg.ref_id;
                    if !st.refs.iter().any(|x| x.id == rid) {
                        return fail(
                            pc,
                            helper_arg,
                            format!("R{r} must be referenced when passed to release function"),
                        );
                    }
                    st.refs.retain(|x| x.id != rid);
                    st.for_each_reg(|x| {
                        if x.ref_id == rid {
                            *x = Reg::unknown();
                        }
                    });
                }
                Arg::Func => {
                    if reg.ty != RegType::Func {
                        type_err(r, &reg, "func")?;
                    }
                    func = Some(reg.aux as usize);
                }
            }
        }
        if id == 12 && !st.refs.is_empty() {
            return fail(
                pc,
                ErrorClass::ReferenceLeak,
                "tail_call would lead to reference leak".into(),
            );
        }
        if let (Some(cb), Some(target)) = (proto.callback, func) {
            let args = st.cur().regs;
            havoc_scalars(st.cur_mut());
            self.enter(st, pc, target, true)?;
            let f = st.cur_mut();
            match cb {
                Callback::Loop => {
                    f.regs[1] = Reg::unknown();
                    f.regs[2] = args[3];
                }
                Callback::ForEachMapElem => {
                    let m = map.unwrap_or(0);
                    f.regs[1] = Reg::pointer(RegType::MapPtr, m);
                    f.regs[2] = Reg::pointer(RegType::MapKey, m);
                    f.regs[3] = Reg::pointer(RegType::MapValue, m);
                    f.regs[4] = args[3];
                }
                Callback::Other => {
                    for r in 1..=5 {
                        f.regs[r] = Reg::unknown();
                    }
                }
            }
            return Ok(Flow::Goto(target));
        }
        let r0 = match proto.ret {
            Ret::Scalar => Reg::unknown(),
            Ret::U32 => Reg::scalar(Scalar::unsigned_range(0, u32::MAX as u64)),
            Ret::BtfId => Reg::pointer(RegType::BtfId, 0),
            Ret::MapValueOrNull => {
                let mut r = Reg::pointer(RegType::MapValueOrNull, map.unwrap_or(0));
                r.id = st.fresh_id();
                r
            }
            Ret::RingbufMemOrNull => {
                let mut r = Reg::pointer(RegType::RingbufMemOrNull, alloc);
                r.id = st.fresh_id();
                r.ref_id = st.fresh_id();
                st.refs.push(Ref {
                    id: r.ref_id,
                    insn: pc,
                });
                r
            }
        };
        clobber(st, r0);
        Ok(Flow::Next)
    }

    /// The kernel's `check_max_stack_depth`: along every static call chain, the frames'
    /// stacks (each rounded up to 16 bytes) must fit in 512 bytes.
    fn check_stack_depth(&self) -> R<()> {
        let n = self.cfg.subprogs.len();
        let depth = |k: usize| -> i64 { ((self.stack_depth[k] as i64 + 15) / 16) * 16 };
        let idx = |s: usize| self.cfg.subprogs.binary_search(&s).unwrap_or(0);
        // Depth-first over the call graph from the entry, with the path's total.
        let mut work = vec![(0usize, depth(0), 1usize)];
        let mut steps = 0usize;
        while let Some((k, total, frames)) = work.pop() {
            steps += 1;
            if steps > 100_000 {
                break;
            }
            if total > STACK_SIZE as i64 {
                return fail(
                    self.cfg.subprogs[k],
                    ErrorClass::CallStack,
                    format!("combined stack size of {frames} calls is {total}. Too large"),
                );
            }
            if frames > MAX_CALL_FRAMES {
                return fail(
                    self.cfg.subprogs[k],
                    ErrorClass::CallStack,
                    format!("the call stack of {frames} frames is too deep !"),
                );
            }
            for &(from, to) in &self.cfg.calls {
                if idx(from) == k {
                    let c = idx(to);
                    if c < n {
                        work.push((c, total + depth(c), frames + 1));
                    }
                }
            }
        }
        Ok(())
    }
}

fn range_text(v: &Scalar) -> String {
    let mut s = String::new();
    if v.smin > i64::MIN {
        let _ = write!(s, "smin={}", v.smin);
    }
    if v.smax < i64::MAX {
        if !s.is_empty() {
            s.push(' ');
        }
        let _ = write!(s, "smax={}", v.smax);
    }
    if s.is_empty() {
        s.push_str("unknown scalar value");
    }
    s
}

fn both(st: &State, target: usize) -> Flow {
    Flow::Branch(Box::new(st.clone()), target)
}

fn load_result(size: i64, write: bool) -> Reg {
    if write {
        Reg::NOT_INIT
    } else {
        Reg::scalar(Scalar::UNKNOWN.truncate(size as usize))
    }
}

/// Checks `[ptr + off, +size)` against a region of `limit` bytes.
fn check_region(
    pc: usize,
    regno: u8,
    ptr: &Reg,
    off: i64,
    size: i64,
    limit: i64,
    what: &str,
) -> R<()> {
    let o = ptr.off as i64 + off;
    let v = ptr.var;
    let class = ErrorClass::MemBounds;
    if v.smin < 0 && (v.smin == i64::MIN || o + v.smin < 0) {
        return fail(
            pc,
            class,
            format!("R{regno} min value is negative, either use unsigned index or do a if (index >=0) check."),
        );
    }
    let lo = o + v.smin;
    if lo < 0 || lo + size > limit {
        return fail(
            pc,
            class,
            format!(
                "invalid access to {what}={limit} off={lo} size={size}\nR{regno} min value is outside of the allowed memory range"
            ),
        );
    }
    if v.umax >= MAX_VAR_OFF as u64 {
        return fail(
            pc,
            class,
            format!("R{regno} unbounded memory access, make sure to bounds check any such access"),
        );
    }
    let hi = o + v.umax as i64;
    if hi + size > limit {
        return fail(
            pc,
            class,
            format!(
                "invalid access to {what}={limit} off={hi} size={size}\nR{regno} max value is outside of the allowed memory range"
            ),
        );
    }
    Ok(())
}

/// Sets r1-r5 uninitialised and r0 to the helper's result.
fn clobber(st: &mut State, r0: Reg) {
    let f = st.cur_mut();
    for r in 1..=5 {
        f.regs[r] = Reg::NOT_INIT;
    }
    f.regs[0] = r0;
}

/// Forgets the values of the scalars a callback may change through its context pointer.
fn havoc_scalars(f: &mut Frame) {
    for s in &mut f.stack {
        if s.bytes[0] == ByteKind::Spill {
            if s.spill.is_scalar() {
                s.spill = Reg::unknown();
            }
        } else {
            for b in &mut s.bytes {
                if *b == ByteKind::Zero {
                    *b = ByteKind::Misc;
                }
            }
        }
    }
}

/// Writes a refined scalar to a register and to every copy sharing its id.
fn set_scalar(st: &mut State, r: u8, old: Reg, v: Scalar) {
    if old.is_scalar() && old.id != 0 {
        let id = old.id;
        st.for_each_reg(|x| {
            if x.is_scalar() && x.id == id {
                x.var = v;
            }
        });
    }
    let reg = &mut st.cur_mut().regs[r as usize];
    if reg.is_scalar() {
        reg.var = v;
    }
}

/// After a NULL check: every copy of the pointer with `id` is NULL (a scalar 0) or not;
/// not NULL, a value of a map of maps is its inner map (the kernel's
/// `mark_ptr_not_null_reg`).
fn mark_null(st: &mut State, id: u32, is_null: bool, maps: &[MapInfo]) {
    let mut released = Vec::new();
    st.for_each_reg(|r| {
        if r.ty.is_or_null() && r.id == id {
            if is_null {
                if r.ref_id != 0 {
                    released.push(r.ref_id);
                }
                *r = Reg::constant(0);
            } else {
                r.ty = match r.ty {
                    RegType::MapValueOrNull
                        if maps.get(r.aux as usize).is_some_and(|m| m.inner.is_some()) =>
                    {
                        r.aux |= INNER_MAP;
                        RegType::MapPtr
                    }
                    RegType::MapValueOrNull => RegType::MapValue,
                    _ => RegType::RingbufMem,
                };
            }
        }
    });
    st.refs.retain(|x| !released.contains(&x.id));
}

/// After `pkt + off <= pkt_end`: `off` bytes from every copy of `pkt` are readable.
fn mark_packet_range(st: &mut State, pkt: &Reg, open: bool) {
    if pkt.off < 0 || (pkt.off == 0 && open) || pkt.var.umax > 0xffff {
        return;
    }
    let range = pkt.off as u32;
    let (ty, id) = (pkt.ty, pkt.id);
    st.for_each_reg(|r| {
        if r.ty == ty && r.id == id {
            r.range = r.range.max(range);
        }
    });
}
