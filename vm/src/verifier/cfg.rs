//! Structural checks (the kernel's `resolve_pseudo_ldimm64`, `check_subprogs`,
//! `check_cfg`): valid encodings, jumps inside their function and not into an `lddw`,
//! no falling off a function's end, no unreachable instruction; then the per-instruction
//! live registers used to prune states.

use super::helpers;
use super::{ErrorClass, Fail, MapInfo};
use crate::isa::{self, class, pseudo, zero, AtomicOp, DecodeError, Decoded, Insn, Op};

/// The structure of a checked program.
pub struct Cfg {
    /// Per slot: the instruction starting there (`None` for the second slot of `lddw`).
    pub insns: Vec<Option<Decoded>>,
    /// Per slot: absolute jump/call/function target.
    pub target: Vec<Option<usize>>,
    /// Sorted first slots of the functions (0 first).
    pub subprogs: Vec<usize>,
    /// Per slot: index into `subprogs` of the function containing it.
    pub subprog_of: Vec<u32>,
    /// Per slot: whether states are remembered here (jump targets).
    pub prune_point: Vec<bool>,
    /// Per slot: registers (bit per register) read before being written on some path.
    pub live_in: Vec<u16>,
    /// Static call graph: (caller subprog, callee subprog).
    pub calls: Vec<(usize, usize)>,
}

fn class_name(code: u8) -> &'static str {
    match code & 7 {
        class::LD => "BPF_LD",
        class::LDX => "BPF_LDX",
        class::ST => "BPF_ST",
        class::STX => "BPF_STX",
        class::ALU => "BPF_ALU",
        class::JMP => "BPF_JMP",
        class::JMP32 => "BPF_JMP32",
        _ => "BPF_ALU64",
    }
}

fn decode_fail(e: DecodeError, slots: &[Insn]) -> Fail {
    match e {
        DecodeError::UnknownOpcode { index, code } => Fail::new(
            index,
            ErrorClass::InvalidInstruction,
            format!("unknown opcode {code:02x}"),
        ),
        DecodeError::BadSelector { index, code, .. } => {
            let msg = match code & 7 {
                class::ALU | class::ALU64 => "BPF_ALU uses reserved fields".to_string(),
                class::STX => format!(
                    "BPF_ATOMIC uses invalid atomic opcode {:02x}",
                    slots[index].imm
                ),
                class::LD => "invalid BPF_LD_IMM insn".to_string(),
                _ => format!("unknown opcode {code:02x}"),
            };
            Fail::new(index, ErrorClass::InvalidInstruction, msg)
        }
        DecodeError::ReservedNonZero { index, .. } => {
            let code = slots[index].code;
            let name = match slots[index].code {
                c if matches!(c & 7, class::ALU | class::ALU64) && c & 0xf0 == 0xb0 => "BPF_MOV",
                c if matches!(c & 7, class::ALU | class::ALU64) => "BPF_ALU",
                0x85 | 0x8d => "BPF_CALL",
                0x95 => "BPF_EXIT",
                0x05 | 0x06 => "BPF_JA",
                _ => class_name(code),
            };
            Fail::new(
                index,
                ErrorClass::InvalidInstruction,
                format!("{name} uses reserved fields"),
            )
        }
        DecodeError::BadRegister { index, reg, .. } => Fail::new(
            index,
            ErrorClass::InvalidInstruction,
            format!("R{reg} is invalid"),
        ),
        DecodeError::LddwTruncated { index } => Fail::new(
            index,
            ErrorClass::FallsOffEnd,
            "last insn is not an exit or jmp".to_string(),
        ),
        DecodeError::LddwBadSecondSlot { index, .. } => Fail::new(
            index,
            ErrorClass::InvalidInstruction,
            "invalid bpf_ld_imm64 insn".to_string(),
        ),
        DecodeError::Truncated { index, .. } => Fail::new(
            index,
            ErrorClass::InvalidInstruction,
            "program is not a whole number of instructions".to_string(),
        ),
    }
}

/// Registers read and written by one instruction (bit sets).
fn use_def(d: &Decoded) -> (u16, u16) {
    let Insn { dst, src, .. } = d.insn;
    let (dst, src) = (1u16 << (dst & 15), 1u16 << (src & 15));
    let r0_5: u16 = 0x3f;
    match d.spec.op {
        Op::Alu { op, reg, .. } => {
            let mut u = if reg { src } else { 0 };
            if !matches!(
                op,
                isa::AluOp::Mov | isa::AluOp::Movsx8 | isa::AluOp::Movsx16 | isa::AluOp::Movsx32
            ) {
                u |= dst;
            }
            (u, dst)
        }
        Op::End { .. } => (dst, dst),
        Op::Load { .. } => (src, dst),
        Op::StoreImm { .. } => (dst, 0),
        Op::StoreReg { .. } => (dst | src, 0),
        Op::Atomic { op, .. } => match op {
            AtomicOp::Cmpxchg => (dst | src | 1, 1),
            AtomicOp::Add | AtomicOp::Or | AtomicOp::And | AtomicOp::Xor => (dst | src, 0),
            _ => (dst | src, src),
        },
        Op::Lddw => (0, dst),
        Op::LdAbs { .. } => (1 << 6, r0_5),
        Op::LdInd { .. } => ((1 << 6) | src, r0_5),
        Op::Ja { .. } => (0, 0),
        Op::Jmp { reg, .. } => (dst | if reg { src } else { 0 }, 0),
        Op::Call => {
            let n = if d.insn.src == pseudo::CALL_HELPER {
                helpers::arg_count(d.insn.imm as u32)
            } else {
                5
            };
            (((1u16 << (n + 1)) - 2), r0_5)
        }
        Op::Callx => (dst | 0x3e, r0_5),
        Op::Exit => (1, 0),
    }
}

/// For the precision analysis: `(always, from_dst, def)`, where `always` are the
/// registers whose scalar values an instruction itself may depend on (pointer arithmetic,
/// branch decisions, memory addresses and stored values, helper arguments that are not
/// `ARG_ANYTHING`, returned values), `from_dst` those that matter only if the value
/// written to the destination does, and `def` the registers written.
///
/// A backward analysis over these gives, per instruction, the registers whose scalar
/// values may influence any later check or branch; the others may be anything without
/// changing the verdict (the kernel finds the same with `mark_chain_precision`, on demand).
fn precise_use_def(d: &Decoded, at: usize, cfg: &Cfg, p: &Precision) -> (u16, u16, u16) {
    let Insn { dst, src, .. } = d.insn;
    let (dst, src) = (1u16 << (dst & 15), 1u16 << (src & 15));
    let r0_5: u16 = 0x3f;
    let r1_5: u16 = 0x3e;
    match d.spec.op {
        Op::Alu { op, reg, is64 } => {
            let src = if reg { src } else { 0 };
            match op {
                isa::AluOp::Mov
                | isa::AluOp::Movsx8
                | isa::AluOp::Movsx16
                | isa::AluOp::Movsx32 => (0, src, dst),
                // Pointer arithmetic (found on some path): the scalar offset decides
                // bounds and errors.
                isa::AluOp::Add | isa::AluOp::Sub if is64 && reg && p.decided[at] => {
                    (dst | src, 0, dst)
                }
                _ => (0, dst | src, dst),
            }
        }
        Op::End { .. } => (0, dst, dst),
        Op::Load { .. } => (src, 0, dst),
        Op::StoreImm { .. } => (dst, 0, 0),
        // The stored value matters only if some load from the stack needs its value.
        Op::StoreReg { .. } => (dst | if p.fills { src } else { 0 }, 0, 0),
        Op::Atomic { .. } => (dst | src | 1, 0, 0),
        Op::Lddw => (0, 0, dst),
        Op::LdAbs { .. } => (1 << 6, 0, r0_5),
        Op::LdInd { .. } => ((1 << 6) | src, 0, r0_5),
        Op::Ja { .. } => (0, 0, 0),
        // A branch that went both ways depends on nothing of its operands (the
        // refined values are covered by the same registers' precision further on).
        Op::Jmp { reg, .. } if p.decided[at] => (dst | if reg { src } else { 0 }, 0, 0),
        Op::Jmp { .. } => (0, 0, 0),
        Op::Call => {
            let args = if d.insn.src != pseudo::CALL_HELPER {
                r1_5
            } else {
                match helpers::proto(d.insn.imm as u32) {
                    Some(p) if p.callback.is_none() => p
                        .args
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| !matches!(a, helpers::Arg::None | helpers::Arg::Anything))
                        .fold(0u16, |m, (k, _)| m | (1 << (k + 1))),
                    _ => r1_5,
                }
            };
            (args, 0, r0_5)
        }
        Op::Callx => (dst | r1_5, 0, r0_5),
        // A function's value is used by its caller (not followed here); the program's is
        // checked only where the program type has a return range.
        Op::Exit if cfg.subprog_of[at] != 0 || p.exit_range => (1, 0, 0),
        Op::Exit => (0, 0, 0),
    }
}

/// What decides which scalars are precise (see [`precise_in`]); learnt while walking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Precision {
    /// Per slot: a conditional jump that went only one way on some path (its operands
    /// decided it, as the kernel's `is_branch_taken` that marks them precise), or an
    /// ALU instruction that did pointer arithmetic on some path.
    pub decided: Vec<bool>,
    /// Per slot: a comparison of two registers one of which was linked to other scalars
    /// (an id) on some path, so that the branch refined those too.
    pub linked: Vec<bool>,
    /// Some load from the stack gave a register whose value matters: stored values and
    /// spilled scalars then matter too.
    pub fills: bool,
    /// The program type checks R0 at the main program's exit.
    pub exit_range: bool,
}

impl Precision {
    pub fn new(len: usize, exit_range: bool) -> Self {
        Precision {
            decided: vec![false; len],
            linked: vec![false; len],
            fills: false,
            exit_range,
        }
    }
}

/// For a backward analysis: the union of `sets` over the instructions that can follow
/// instruction `i` (none after an exit, the target of a `ja`, both ways of a conditional
/// jump, the next instruction otherwise).
fn successors_union(d: &Decoded, i: usize, target: Option<usize>, sets: &[u16]) -> u16 {
    let at = |j: usize| sets.get(j).copied().unwrap_or(0);
    let next = i + d.slots();
    match d.spec.op {
        Op::Exit => 0,
        Op::Ja { .. } => target.map(at).unwrap_or(0),
        Op::Jmp { .. } => at(next) | target.map(at).unwrap_or(0),
        _ => at(next),
    }
}

/// Per slot: registers whose value, when a scalar, may decide something on some path
/// (see [`precise_use_def`]), given what the walk found decided; other scalars are alike
/// for pruning, as the kernel's imprecise scalars.
///
/// Sound once `p` holds every jump the walk decided and whether a precise register was
/// filled from the stack (the walk is redone until it learns nothing more): a pruned
/// state then differs from the one covering it only in values that decide no branch,
/// offset, helper argument or return value on any path from there.
pub fn precise_in(cfg: &Cfg, p: &Precision) -> Vec<u16> {
    let insns = &cfg.insns;
    let target = &cfg.target;
    let len = insns.len();
    let mut precise_in = vec![0u16; len];
    let pud: Vec<(u16, u16, u16)> = insns
        .iter()
        .enumerate()
        .map(|(i, d)| {
            d.as_ref()
                .map(|d| precise_use_def(d, i, cfg, p))
                .unwrap_or((0, 0, 0))
        })
        .collect();
    loop {
        let mut changed = false;
        for i in (0..len).rev() {
            let Some(d) = insns[i] else { continue };
            let out = successors_union(&d, i, target[i], &precise_in);
            let (always, from_dst, def) = pud[i];
            let dst_matters = out & def & (1 << (d.insn.dst & 15)) != 0;
            let mut v = always | (out & !def) | if dst_matters { from_dst } else { 0 };
            // A branch comparing two registers refines each (and every scalar linked to
            // it by id, in registers or spilled) by the other's range: when anything is
            // precise after it, both operands are precise before it (the kernel's
            // `backtrack_insn` marks both, and syncs linked registers).
            if let Op::Jmp { reg: true, .. } = d.spec.op {
                let operands = (1 << (d.insn.dst & 15)) | (1 << (d.insn.src & 15));
                // Linked copies are not known here: where the walk found an operand
                // linked (`linked`), anything precise after the branch may be one.
                if out & operands != 0 || (p.linked[i] && (out != 0 || p.fills)) {
                    v |= (1 << (d.insn.dst & 15)) | (1 << (d.insn.src & 15));
                }
            }
            if v != precise_in[i] {
                precise_in[i] = v;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    precise_in
}

/// Runs the structural checks.
pub fn build(slots: &[Insn], maps: &[MapInfo]) -> Result<Cfg, Fail> {
    let len = slots.len();
    let mut insns: Vec<Option<Decoded>> = vec![None; len];
    let mut tails = vec![false; len];
    // Decode every slot; lddw pairs first, as the kernel's resolve_pseudo_ldimm64.
    let mut i = 0;
    while i < len {
        let spec = isa::lookup(&slots[i], i).map_err(|e| decode_fail(e, slots))?;
        let mut d = Decoded {
            spec,
            insn: slots[i],
            imm_hi: 0,
        };
        if spec.op == Op::Lddw {
            let next = slots.get(i + 1).ok_or_else(|| {
                Fail::new(
                    i,
                    ErrorClass::FallsOffEnd,
                    "last insn is not an exit or jmp".into(),
                )
            })?;
            if next.code != 0 || next.dst != 0 || next.src != 0 || next.off != 0 {
                return Err(Fail::new(
                    i,
                    ErrorClass::InvalidInstruction,
                    "invalid bpf_ld_imm64 insn".into(),
                ));
            }
            d.imm_hi = next.imm;
            match d.insn.src {
                pseudo::MAP_FD | pseudo::MAP_IDX | pseudo::MAP_VALUE | pseudo::MAP_IDX_VALUE => {
                    let idx = d.insn.imm;
                    if idx < 0 || idx as usize >= maps.len() {
                        return Err(Fail::new(
                            i,
                            ErrorClass::InvalidInstruction,
                            format!("fd {idx} is not pointing to valid bpf_map"),
                        ));
                    }
                    if matches!(d.insn.src, pseudo::MAP_VALUE | pseudo::MAP_IDX_VALUE) {
                        let m = &maps[idx as usize];
                        let off = d.imm_hi as u32;
                        if off >= m.value_size.max(1) {
                            return Err(Fail::new(
                                i,
                                ErrorClass::InvalidInstruction,
                                format!(
                                    "invalid access to map value pointer, value_size={} off={}",
                                    m.value_size, off
                                ),
                            ));
                        }
                    }
                }
                pseudo::BTF_ID => {}
                pseudo::FUNC => {}
                _ => {}
            }
            tails[i + 1] = true;
            insns[i] = Some(d);
            i += 2;
        } else {
            insns[i] = Some(d);
            i += 1;
        }
    }

    // Function boundaries and call targets.
    let mut subprogs = vec![0usize];
    let mut target = vec![None; len];
    let rel = |i: usize, off: i64| -> Result<usize, Fail> {
        let t = i as i64 + 1 + off;
        if t < 0 || t >= len as i64 {
            return Err(Fail::new(
                i,
                ErrorClass::JumpOutOfRange,
                format!("jump out of range from insn {i} to {t}"),
            ));
        }
        Ok(t as usize)
    };
    for (i, d) in insns.iter().enumerate() {
        let Some(d) = d else { continue };
        let is_func = (d.spec.op == Op::Call && d.insn.src == pseudo::CALL_LOCAL)
            || (d.spec.op == Op::Lddw && d.insn.src == pseudo::FUNC);
        if is_func {
            let t = rel(i, d.insn.imm as i64)?;
            subprogs.push(t);
            target[i] = Some(t);
        }
    }
    subprogs.sort_unstable();
    subprogs.dedup();
    let mut subprog_of = vec![0u32; len];
    for (k, &s) in subprogs.iter().enumerate() {
        let end = subprogs.get(k + 1).copied().unwrap_or(len);
        for x in subprog_of.iter_mut().take(end).skip(s) {
            *x = k as u32;
        }
    }
    // Jumps stay in their function; each function ends with exit or ja.
    for (k, &s) in subprogs.iter().enumerate() {
        let end = subprogs.get(k + 1).copied().unwrap_or(len);
        for i in s..end {
            let Some(d) = insns[i] else { continue };
            let off = match d.spec.op {
                Op::Ja { long: false } | Op::Jmp { .. } => Some(d.insn.off as i64),
                Op::Ja { long: true } => Some(d.insn.imm as i64),
                _ => None,
            };
            if let Some(off) = off {
                let t = i as i64 + 1 + off;
                if t < s as i64 || t >= end as i64 {
                    return Err(Fail::new(
                        i,
                        ErrorClass::JumpOutOfRange,
                        format!("jump out of range from insn {i} to {t}"),
                    ));
                }
                target[i] = Some(rel(i, off)?);
            }
        }
        let last = (s..end).rev().find(|&i| insns[i].is_some()).unwrap_or(s);
        let ok = insns[last].is_some_and(|d| matches!(d.spec.op, Op::Exit | Op::Ja { .. }));
        if !ok {
            return Err(Fail::new(
                last,
                ErrorClass::FallsOffEnd,
                "last insn is not an exit or jmp".into(),
            ));
        }
    }
    // Writes to r10.
    for (i, d) in insns.iter().enumerate() {
        let Some(d) = d else { continue };
        let writes_fp = (d.spec.writes_dst() && d.insn.dst == isa::FRAME_REG)
            || matches!(
                d.spec.op,
                Op::Atomic {
                    op: AtomicOp::FetchAdd
                        | AtomicOp::FetchOr
                        | AtomicOp::FetchAnd
                        | AtomicOp::FetchXor
                        | AtomicOp::Xchg,
                    ..
                }
            ) && d.insn.src == isa::FRAME_REG;
        if writes_fp {
            return Err(Fail::new(
                i,
                ErrorClass::FramePointerWrite,
                "frame pointer is read only".into(),
            ));
        }
        if d.spec.op == Op::Call && d.insn.src == pseudo::CALL_HELPER {
            let id = d.insn.imm as u32;
            if !helpers::exists(id) || d.insn.imm < 0 {
                return Err(Fail::new(
                    i,
                    ErrorClass::UnknownHelper,
                    format!("invalid func unknown#{}", d.insn.imm),
                ));
            }
        }
        let _ = zero::DST;
    }

    // Reachability from the entry, following calls and function addresses.
    let mut seen = vec![false; len];
    let mut work = vec![0usize];
    let mut calls = Vec::new();
    while let Some(i) = work.pop() {
        if i >= len || seen[i] {
            continue;
        }
        seen[i] = true;
        let Some(d) = insns[i] else { continue };
        let next = i + d.slots();
        match d.spec.op {
            Op::Exit => {}
            Op::Ja { .. } => work.extend(target[i]),
            Op::Jmp { .. } => {
                work.push(next);
                work.extend(target[i]);
            }
            _ => {
                if let Some(t) = target[i] {
                    work.push(t);
                    let from = subprogs[subprog_of[i] as usize];
                    calls.push((from, t));
                }
                work.push(next);
            }
        }
    }
    if let Some(i) = (0..len).find(|&i| insns[i].is_some() && !seen[i]) {
        return Err(Fail::new(
            i,
            ErrorClass::Unreachable,
            format!("unreachable insn {i}"),
        ));
    }
    calls.sort_unstable();
    calls.dedup();
    for (i, t) in target.iter().enumerate() {
        if let Some(t) = *t {
            if tails[t] {
                return Err(Fail::new(
                    i,
                    ErrorClass::JumpOutOfRange,
                    format!("jump into the middle of ldimm64 insn {}", t - 1),
                ));
            }
        }
    }

    // Prune points: jump targets and the instructions after calls.
    let mut prune_point = vec![false; len];
    for i in 0..len {
        if let Some(d) = insns[i] {
            match d.spec.op {
                Op::Ja { .. } | Op::Jmp { .. } => {
                    if let Some(t) = target[i] {
                        prune_point[t] = true;
                    }
                    if matches!(d.spec.op, Op::Jmp { .. }) && i + 1 < len {
                        prune_point[i + 1] = true;
                    }
                }
                Op::Call if i + 1 < len => prune_point[i + 1] = true,
                _ => {}
            }
        }
    }

    // Live registers, by backward iteration to a fixed point.
    let mut live_in = vec![0u16; len];
    let ud: Vec<(u16, u16)> = insns
        .iter()
        .map(|d| d.as_ref().map(use_def).unwrap_or((0, 0)))
        .collect();
    loop {
        let mut changed = false;
        for i in (0..len).rev() {
            let Some(d) = insns[i] else { continue };
            let out = successors_union(&d, i, target[i], &live_in);
            let (u, def) = ud[i];
            let v = u | (out & !def) | (1 << 10);
            if v != live_in[i] {
                live_in[i] = v;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    Ok(Cfg {
        insns,
        target,
        subprogs,
        subprog_of,
        prune_point,
        live_in,
        calls,
    })
}
