//! Disassembler printing the syntax [`crate::asm`] reads, so that assembling the output
//! gives back the same bytes. Jump and call targets are printed as relative `+N`/`-N`.

use crate::isa::{self, pseudo, zero, DecodeError, Decoded, Insn, Syntax};

/// Names of the pseudo `lddw` sources (`src` 1..6), as written `name(IMM, IMM2)`.
pub(crate) const LDDW_PSEUDO: [(u8, &str); 6] = [
    (pseudo::MAP_FD, "map_fd"),
    (pseudo::MAP_VALUE, "map_value"),
    (pseudo::BTF_ID, "btf_id"),
    (pseudo::FUNC, "func"),
    (pseudo::MAP_IDX, "map_idx"),
    (pseudo::MAP_IDX_VALUE, "map_idx_value"),
];

fn mem(reg: u8, off: i16) -> String {
    if off == 0 {
        format!("[%r{reg}]")
    } else {
        format!("[%r{reg}{off:+}]")
    }
}

/// The source operand of forms with an immediate and a register variant.
fn src_or_imm(d: &Decoded) -> String {
    if d.spec.zero & zero::SRC == 0 {
        format!("%r{}", d.insn.src)
    } else {
        d.insn.imm.to_string()
    }
}

/// One instruction in assembler syntax.
pub fn format_insn(d: &Decoded) -> String {
    let m = d.spec.mnemonic;
    let Insn {
        dst, src, off, imm, ..
    } = d.insn;
    match d.spec.syntax {
        Syntax::DstSrc => format!("{m} %r{dst}, {}", src_or_imm(d)),
        Syntax::Dst => format!("{m} %r{dst}"),
        Syntax::Load => format!("{m} %r{dst}, {}", mem(src, off)),
        Syntax::StoreImm => format!("{m} {}, {imm}", mem(dst, off)),
        Syntax::StoreReg => format!("{m} {}, %r{src}", mem(dst, off)),
        Syntax::Abs => format!("{m} {imm}"),
        Syntax::Ind => format!("{m} %r{src}, {imm}"),
        Syntax::Lddw => match LDDW_PSEUDO.iter().find(|(s, _)| *s == src) {
            Some((_, name)) => format!("{m} %r{dst}, {name}({imm}, {})", d.imm_hi),
            None => format!("{m} %r{dst}, {:#x}", d.imm64()),
        },
        Syntax::Jump => {
            // `ja` has its target in off, `ja32` in imm: whichever the table leaves free.
            let target = if d.spec.zero & zero::OFF == 0 {
                off as i32
            } else {
                imm
            };
            format!("{m} {target:+}")
        }
        Syntax::CondJump => format!("{m} %r{dst}, {}, {off:+}", src_or_imm(d)),
        Syntax::Call => match src {
            pseudo::CALL_LOCAL => format!("{m} local {imm:+}"),
            pseudo::CALL_KFUNC => format!("{m} kfunc {imm}"),
            _ => format!("{m} {imm}"),
        },
        Syntax::Callx => format!("{m} %r{dst}"),
        Syntax::None => m.to_string(),
    }
}

/// Each instruction with the index of its first slot.
pub fn disassemble_listing(slots: &[Insn]) -> Result<Vec<(usize, String)>, DecodeError> {
    Ok(isa::decode(slots)?
        .iter()
        .map(|(i, d)| (*i, format_insn(d)))
        .collect())
}

/// The whole program, one instruction per line.
pub fn disassemble(slots: &[Insn]) -> Result<String, DecodeError> {
    let mut out = String::new();
    for (_, line) in disassemble_listing(slots)? {
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::asm::{assemble, suite};
    use crate::isa::{OpSpec, Selector};
    use proptest::prelude::*;

    fn text(slots: &[Insn]) -> String {
        disassemble(slots).unwrap()
    }

    #[test]
    fn prints_the_conformance_syntax() {
        let cases: &[(&[Insn], &str)] = &[
            (&[Insn::new(0xb7, 1, 0, 0, -1)], "mov %r1, -1"),
            (&[Insn::new(0xbc, 1, 2, 0, 0)], "mov32 %r1, %r2"),
            (&[Insn::new(0xbf, 1, 2, 16, 0)], "movsx1664 %r1, %r2"),
            (&[Insn::new(0x3f, 1, 2, 1, 0)], "sdiv %r1, %r2"),
            (&[Insn::new(0x87, 3, 0, 0, 0)], "neg %r3"),
            (&[Insn::new(0xd7, 3, 0, 0, 32)], "swap32 %r3"),
            (&[Insn::new(0x79, 0, 10, -8, 0)], "ldxdw %r0, [%r10-8]"),
            (&[Insn::new(0x91, 0, 1, 4, 0)], "ldxsb %r0, [%r1+4]"),
            (&[Insn::new(0x62, 1, 0, 0, 7)], "stw [%r1], 7"),
            (&[Insn::new(0x73, 1, 2, 2, 0)], "stxb [%r1+2], %r2"),
            (
                &[Insn::new(0xc3, 10, 1, -4, 0xa1)],
                "lock fetch xor32 [%r10-4], %r1",
            ),
            (
                &[Insn::new(0xdb, 10, 1, -8, 0xe1)],
                "lock xchg [%r10-8], %r1",
            ),
            (&[Insn::new(0x30, 0, 0, 0, 12)], "ldabsb 12"),
            (&[Insn::new(0x48, 0, 2, 0, -1)], "ldindh %r2, -1"),
            (
                &[
                    Insn::new(0x18, 0, 0, 0, 0x55667788),
                    Insn::new(0, 0, 0, 0, 0x11223344),
                ],
                "lddw %r0, 0x1122334455667788",
            ),
            (
                &[Insn::new(0x18, 2, 2, 0, 3), Insn::new(0, 0, 0, 0, -8)],
                "lddw %r2, map_value(3, -8)",
            ),
            (&[Insn::new(0x05, 0, 0, -2, 0)], "ja -2"),
            (&[Insn::new(0x06, 0, 0, 0, 0)], "ja32 +0"),
            (&[Insn::new(0x1d, 1, 2, 3, 0)], "jeq %r1, %r2, +3"),
            (&[Insn::new(0xa6, 1, 0, -1, -5)], "jlt32 %r1, -5, -1"),
            (&[Insn::new(0x85, 0, 0, 0, 5)], "call 5"),
            (&[Insn::new(0x85, 0, 1, 0, -7)], "call local -7"),
            (&[Insn::new(0x85, 0, 2, 0, 99)], "call kfunc 99"),
            (&[Insn::new(0x8d, 4, 0, 0, 0)], "call %r4"),
            (&[Insn::new(0x95, 0, 0, 0, 0)], "exit"),
        ];
        for (slots, want) in cases {
            assert_eq!(text(slots), format!("{want}\n"));
            assert_eq!(assemble(want).unwrap(), *slots, "{want}");
        }
    }

    #[test]
    fn listing_gives_slot_indices() {
        let p = assemble("mov %r0, 1\nlddw %r1, 2\nexit").unwrap();
        let l = disassemble_listing(&p).unwrap();
        let idx: Vec<usize> = l.iter().map(|(i, _)| *i).collect();
        assert_eq!(idx, [0, 1, 3]);
        assert_eq!(l[2].1, "exit");
        assert!(disassemble(&[Insn::new(0xff, 0, 0, 0, 0)]).is_err());
    }

    /// A valid instance of `spec` from arbitrary field values: reserved fields cleared,
    /// the selector applied, registers in range, and `lddw`'s second slot.
    fn instance(spec: &OpSpec, dst: u8, src: u8, off: i16, imm: i32, hi: i32) -> Vec<Insn> {
        let field = |bit: u8, v: i64| if spec.zero & bit != 0 { 0 } else { v };
        let mut insn = Insn::new(
            spec.code,
            field(zero::DST, dst as i64) as u8,
            field(zero::SRC, src as i64) as u8,
            field(zero::OFF, off as i64) as i16,
            field(zero::IMM, imm as i64) as i32,
        );
        match spec.selector {
            Selector::None => {}
            Selector::Off(v) => insn.off = v,
            Selector::Imm(v) => insn.imm = v,
            Selector::Src(v) => insn.src = v,
        }
        let found = isa::lookup(&insn, 0).expect("generated instance is valid");
        assert!(std::ptr::eq(found, spec), "{}", spec.mnemonic);
        let mut out = vec![insn];
        if spec.op == isa::Op::Lddw {
            out.push(Insn::new(0, 0, 0, 0, hi));
        }
        out
    }

    fn round_trips(slots: &[Insn]) {
        let t = text(slots);
        let back = assemble(&t).unwrap_or_else(|e| panic!("{e}\n{t}"));
        assert_eq!(back, slots, "{t}");
    }

    #[test]
    fn every_form_round_trips_at_the_edges() {
        let edges: [(u8, u8, i16, i32, i32); 5] = [
            (0, 0, 0, 0, 0),
            (10, 10, i16::MAX, i32::MAX, i32::MAX),
            (1, 9, i16::MIN, i32::MIN, i32::MIN),
            (5, 3, -1, -1, -1),
            (2, 7, 1, 1, 1),
        ];
        for spec in isa::table() {
            for &(dst, src, off, imm, hi) in &edges {
                round_trips(&instance(spec, dst, src, off, imm, hi));
            }
        }
    }

    #[test]
    fn conformance_suite_round_trips() {
        let Some(files) = suite::files() else { return };
        for (name, sections) in &files {
            let prog = assemble(&sections["asm"]).unwrap_or_else(|e| panic!("{name}: {e}"));
            let t = disassemble(&prog).unwrap_or_else(|e| panic!("{name}: {e}"));
            let back = assemble(&t).unwrap_or_else(|e| panic!("{name}: {e}\n{t}"));
            assert_eq!(back, prog, "{name}\n{t}");
        }
    }

    fn any_insn() -> impl Strategy<Value = Vec<Insn>> {
        (
            0..isa::table().len(),
            0u8..=10,
            0u8..=10,
            any::<i16>(),
            any::<i32>(),
            any::<i32>(),
        )
            .prop_map(|(i, dst, src, off, imm, hi)| {
                instance(&isa::table()[i], dst, src, off, imm, hi)
            })
    }

    proptest! {
        #[test]
        fn random_valid_programs_round_trip(
            insns in proptest::collection::vec(any_insn(), 1..24)
        ) {
            let slots: Vec<Insn> = insns.concat();
            let t = text(&slots);
            let back = assemble(&t);
            prop_assert_eq!(back, Ok(slots), "{}", t);
        }
    }
}
