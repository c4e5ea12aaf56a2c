//! Shared by the property tests: a generator of random programs that pass preparation.

use ebpf_sim::vm::isa::{self, pseudo, Insn, Op, Selector};
use proptest::prelude::*;

/// An instruction of a random form with fields made mostly sensible: registers r0..r10,
/// small memory offsets (so r1 and r10 accesses land near their regions), helper 5, no
/// map references. Jump and call targets are fixed up by [`aim`].
fn instance(form: usize, dst: u8, src: u8, off: i16, imm: i32) -> Vec<Insn> {
    let spec = &isa::table()[form];
    let mut i = Insn::new(spec.code, dst % 11, src % 11, off % 24, imm);
    match spec.selector {
        Selector::None => {}
        Selector::Off(v) => i.off = v,
        Selector::Imm(v) => i.imm = v,
        Selector::Src(v) => i.src = v,
    }
    match spec.op {
        Op::Call if i.src != pseudo::CALL_LOCAL => {
            i.src = pseudo::CALL_HELPER;
            i.imm = 5;
        }
        Op::Lddw if i.src != pseudo::FUNC => i.src = pseudo::IMM,
        _ => {}
    }
    if spec.writes_dst() && i.dst == 10 {
        i.dst = 0;
    }
    let clear = |bit: u8| spec.zero & bit != 0;
    if clear(isa::zero::DST) {
        i.dst = 0;
    }
    if clear(isa::zero::SRC) {
        i.src = 0;
    }
    if clear(isa::zero::OFF) {
        i.off = 0;
    }
    if clear(isa::zero::IMM) {
        i.imm = 0;
    }
    let mut out = vec![i];
    if spec.op == Op::Lddw {
        out.push(Insn::new(0, 0, 0, 0, imm.rotate_left(7)));
    }
    out
}

/// Points every jump, call and function address at a real instruction of the program.
fn aim(slots: &mut [Insn]) {
    let len = slots.len() as i64;
    let decoded = isa::decode(slots).expect("generated slots decode");
    let tails = isa::lddw_tails(&decoded, slots.len());
    for (pos, d) in decoded {
        let pick = |seed: i64| {
            let mut t = seed.rem_euclid(len);
            if tails[t as usize] {
                t -= 1;
            }
            t - pos as i64 - 1
        };
        let i = &mut slots[pos];
        match d.spec.op {
            Op::Ja { long: false } | Op::Jmp { .. } => i.off = pick(i.off as i64 * 7 + 3) as i16,
            Op::Ja { long: true } => i.imm = pick(i.imm as i64) as i32,
            Op::Call if i.src == pseudo::CALL_LOCAL => i.imm = pick(i.imm as i64) as i32,
            Op::Lddw if i.src == pseudo::FUNC => i.imm = pick(i.imm as i64) as i32,
            _ => {}
        }
    }
}

pub fn program() -> impl Strategy<Value = Vec<Insn>> {
    let n = isa::table().len();
    proptest::collection::vec(
        (0..n, any::<u8>(), any::<u8>(), any::<i16>(), any::<i32>()),
        1..40,
    )
    .prop_map(|raw| {
        let mut slots: Vec<Insn> = raw
            .into_iter()
            .flat_map(|(form, dst, src, off, imm)| instance(form, dst, src, off, imm))
            .collect();
        slots.push(Insn::new(0x95, 0, 0, 0, 0));
        aim(&mut slots);
        slots
    })
}
