//! Assembler for the bpf_conformance syntax (see `shared/conformance/README.md`).
//!
//! Mnemonics, opcodes, selectors and reserved fields all come from [`isa::table`]; this
//! module only knows how operands are written. Every assembled slot is checked with
//! [`isa::lookup`], so the output always decodes back to the form that was asked for.

use std::collections::HashMap;
use std::sync::LazyLock;

use crate::disasm::LDDW_PSEUDO;
use crate::isa::{self, pseudo, zero, Insn, Op, OpSpec, Selector, Size, Syntax};

/// Why a line does not assemble.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {kind}: `{text}`")]
pub struct AsmError {
    /// 1-based line number in the source.
    pub line: usize,
    /// The line, without its comment.
    pub text: String,
    pub kind: AsmErrorKind,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AsmErrorKind {
    #[error("unknown mnemonic `{0}`")]
    UnknownMnemonic(String),
    #[error("bad register `{0}` (expected %r0..%r10)")]
    BadRegister(String),
    #[error("bad number `{0}`")]
    BadNumber(String),
    #[error("immediate `{value}` out of range ({range})")]
    ImmOutOfRange { value: String, range: &'static str },
    #[error("offset `{0}` out of the i16 range")]
    OffsetOutOfRange(String),
    #[error("unknown label `{0}`")]
    UnknownLabel(String),
    #[error("label `{0}` defined twice")]
    DuplicateLabel(String),
    #[error("bad label name `{0}`")]
    BadLabel(String),
    #[error("`{mnemonic}` takes {expected} operand(s), found {found}")]
    OperandCount {
        mnemonic: String,
        expected: usize,
        found: usize,
    },
    #[error("bad operand `{operand}`, expected {expected}")]
    BadOperand {
        operand: String,
        expected: &'static str,
    },
    #[error("invalid instruction: {0}")]
    Invalid(isa::DecodeError),
}

type Forms = Vec<&'static OpSpec>;

/// Forms by mnemonic; several forms share one (imm/reg variants, lddw sources, call kinds).
static MNEMONICS: LazyLock<HashMap<&'static str, Forms>> = LazyLock::new(|| {
    let mut m: HashMap<&'static str, Forms> = HashMap::new();
    for spec in isa::table() {
        m.entry(spec.mnemonic).or_default().push(spec);
    }
    m
});

fn is_64bit(spec: &OpSpec) -> bool {
    matches!(
        spec.op,
        Op::Alu { is64: true, .. } | Op::Jmp { is64: true, .. } | Op::Atomic { size: Size::DW, .. }
    )
}

/// Finds the forms a mnemonic names, including the spellings the table does not list:
/// a `64` suffix on 64-bit ALU/jump/atomic forms (`add64`, `jeq64`) and `bswapNN`.
fn resolve(mnemonic: &str) -> Option<&'static [&'static OpSpec]> {
    if let Some(forms) = MNEMONICS.get(mnemonic) {
        return Some(forms);
    }
    if let Some(forms) = mnemonic.strip_suffix("64").and_then(|b| MNEMONICS.get(b)) {
        if forms.iter().all(|s| is_64bit(s)) {
            return Some(forms);
        }
    }
    if let Some(forms) = mnemonic.strip_prefix('b').and_then(|b| MNEMONICS.get(b)) {
        if forms.iter().all(|s| {
            matches!(
                s.op,
                Op::End {
                    kind: isa::Endian::Swap,
                    ..
                }
            )
        }) {
            return Some(forms);
        }
    }
    None
}

/// Which field a jump target goes into.
#[derive(Clone, Copy, Debug)]
enum Field {
    Off,
    Imm,
}

#[derive(Debug)]
enum Target {
    Rel(i128),
    Label(String),
}

/// One instruction after the first pass: encoded except for a label still to resolve.
struct Pending {
    line: usize,
    text: String,
    slot: usize,
    insn: Insn,
    imm_hi: Option<i32>,
    fixup: Option<Fixup>,
}

type Res<T> = Result<T, AsmErrorKind>;

/// Assembles a program written in the bpf_conformance syntax.
pub fn assemble(src: &str) -> Result<Vec<Insn>, AsmError> {
    let mut labels: HashMap<String, usize> = HashMap::new();
    let mut first_exit: Option<usize> = None;
    let mut pending: Vec<Pending> = Vec::new();
    let mut slot = 0usize;

    for (n, raw) in src.lines().enumerate() {
        let line = n + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        let err = |kind| AsmError {
            line,
            text: text.to_string(),
            kind,
        };
        if let Some(name) = text.strip_suffix(':') {
            let name = name.trim();
            if !is_ident(name) {
                return Err(err(AsmErrorKind::BadLabel(name.to_string())));
            }
            if labels.insert(name.to_string(), slot).is_some() {
                return Err(err(AsmErrorKind::DuplicateLabel(name.to_string())));
            }
            continue;
        }
        let (insn, imm_hi, fixup) = parse_insn(text).map_err(err)?;
        if first_exit.is_none() && is_exit(insn.code) {
            first_exit = Some(slot);
        }
        pending.push(Pending {
            line,
            text: text.to_string(),
            slot,
            insn,
            imm_hi,
            fixup,
        });
        slot += if imm_hi.is_some() { 2 } else { 1 };
    }
    if let Some(exit) = first_exit {
        labels.entry("exit".to_string()).or_insert(exit);
    }

    let mut out = Vec::with_capacity(slot);
    for p in pending {
        let Pending {
            line,
            text,
            slot,
            mut insn,
            imm_hi,
            fixup,
        } = p;
        let err = |kind| AsmError {
            line,
            text: text.clone(),
            kind,
        };
        if let Some((label, field)) = fixup {
            let target = *labels
                .get(&label)
                .ok_or_else(|| err(AsmErrorKind::UnknownLabel(label.clone())))?;
            let rel = target as i128 - (slot as i128 + 1);
            set_target(&mut insn, field, rel).map_err(err)?;
        }
        // The table is the judge: the slot must decode to a valid form.
        isa::lookup(&insn, slot).map_err(|e| err(AsmErrorKind::Invalid(e)))?;
        out.push(insn);
        if let Some(hi) = imm_hi {
            out.push(Insn::new(0, 0, 0, 0, hi));
        }
    }
    Ok(out)
}

fn is_exit(code: u8) -> bool {
    isa::forms_of(code).any(|s| s.op == Op::Exit)
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

fn split_word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, ""),
    }
}

/// Splits the mnemonic (`lock [fetch] op` is three words) from the operands.
fn split_mnemonic(text: &str) -> (String, &str) {
    let (first, rest) = split_word(text);
    if first != "lock" {
        return (first.to_string(), rest);
    }
    let (second, rest) = split_word(rest);
    if second != "fetch" {
        return (format!("lock {second}"), rest);
    }
    let (third, rest) = split_word(rest);
    (format!("lock fetch {third}"), rest)
}

/// Splits operands at commas outside brackets and parentheses (`map_fd(1, 2)` is one).
fn split_operands(s: &str) -> Vec<&str> {
    let s = s.trim();
    if s.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut depth = 0i64;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                out.push(s[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(s[start..].trim());
    out
}

/// An instruction with its selector applied and every other field zero.
fn base(spec: &OpSpec) -> Insn {
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
    insn
}

fn uses_src(spec: &OpSpec) -> bool {
    spec.zero & zero::SRC == 0
}

/// A label to resolve in the second pass, and the field its offset goes into.
type Fixup = (String, Field);

/// Parses one instruction line: the first slot, the second slot's imm for `lddw`, and a
/// label still to resolve.
fn parse_insn(text: &str) -> Res<(Insn, Option<i32>, Option<Fixup>)> {
    let (mnemonic, rest) = split_mnemonic(text);
    let forms =
        resolve(&mnemonic).ok_or_else(|| AsmErrorKind::UnknownMnemonic(mnemonic.clone()))?;
    let first = *forms
        .first()
        .ok_or_else(|| AsmErrorKind::UnknownMnemonic(mnemonic.clone()))?;
    let ops = split_operands(rest);
    let count = |expected: usize| {
        if ops.len() == expected {
            Ok(())
        } else {
            Err(AsmErrorKind::OperandCount {
                mnemonic: mnemonic.clone(),
                expected,
                found: ops.len(),
            })
        }
    };
    // Picks the form whose operand kind (register or immediate source) matches.
    let by_src = |operand: &str| -> Res<&'static OpSpec> {
        let is_reg = operand.starts_with('%');
        forms
            .iter()
            .copied()
            .find(|s| uses_src(s) == is_reg)
            .ok_or_else(|| AsmErrorKind::BadOperand {
                operand: operand.to_string(),
                expected: if is_reg { "an immediate" } else { "a register" },
            })
    };
    let mut imm_hi = None;
    let mut fixup = None;
    let insn = match first.syntax {
        Syntax::DstSrc => {
            count(2)?;
            let spec = by_src(ops[1])?;
            let mut insn = base(spec);
            insn.dst = reg(ops[0])?;
            if uses_src(spec) {
                insn.src = reg(ops[1])?;
            } else {
                insn.imm = imm32(ops[1])?;
            }
            insn
        }
        Syntax::Dst => {
            count(1)?;
            let mut insn = base(first);
            insn.dst = reg(ops[0])?;
            insn
        }
        Syntax::Load => {
            count(2)?;
            let mut insn = base(first);
            insn.dst = reg(ops[0])?;
            (insn.src, insn.off) = mem(ops[1])?;
            insn
        }
        Syntax::StoreImm => {
            count(2)?;
            let mut insn = base(first);
            (insn.dst, insn.off) = mem(ops[0])?;
            insn.imm = imm32(ops[1])?;
            insn
        }
        Syntax::StoreReg => {
            count(2)?;
            let mut insn = base(first);
            (insn.dst, insn.off) = mem(ops[0])?;
            insn.src = reg(ops[1])?;
            insn
        }
        Syntax::Abs => {
            count(1)?;
            let mut insn = base(first);
            insn.imm = imm32(ops[0])?;
            insn
        }
        Syntax::Ind => {
            count(2)?;
            let mut insn = base(first);
            insn.src = reg(ops[0])?;
            insn.imm = imm32(ops[1])?;
            insn
        }
        Syntax::Lddw => {
            count(2)?;
            let dst = reg(ops[0])?;
            let (src, lo, hi) = lddw_value(ops[1])?;
            let spec = forms
                .iter()
                .copied()
                .find(|s| s.selector == Selector::Src(src))
                .ok_or_else(|| AsmErrorKind::BadOperand {
                    operand: ops[1].to_string(),
                    expected: "a known lddw source",
                })?;
            let mut insn = base(spec);
            insn.dst = dst;
            insn.imm = lo;
            imm_hi = Some(hi);
            insn
        }
        Syntax::Jump => {
            count(1)?;
            let mut insn = base(first);
            // `ja` keeps its target in off, `ja32` in imm: whichever the table leaves free.
            let field = if first.zero & zero::OFF == 0 {
                Field::Off
            } else {
                Field::Imm
            };
            fixup = place_target(&mut insn, field, ops[0])?;
            insn
        }
        Syntax::CondJump => {
            count(3)?;
            let spec = by_src(ops[1])?;
            let mut insn = base(spec);
            insn.dst = reg(ops[0])?;
            if uses_src(spec) {
                insn.src = reg(ops[1])?;
            } else {
                insn.imm = imm32(ops[1])?;
            }
            fixup = place_target(&mut insn, Field::Off, ops[2])?;
            insn
        }
        Syntax::Call | Syntax::Callx => {
            count(1)?;
            let op = ops[0];
            let find =
                |pred: &dyn Fn(&OpSpec) -> bool| {
                    forms.iter().copied().find(|s| pred(s)).ok_or_else(|| {
                        AsmErrorKind::BadOperand {
                            operand: op.to_string(),
                            expected: "a call target",
                        }
                    })
                };
            let call = |src: u8| find(&|s: &OpSpec| s.selector == Selector::Src(src));
            let (kw, arg) = split_word(op);
            if op.starts_with('%') {
                let mut insn = base(find(&|s: &OpSpec| s.syntax == Syntax::Callx)?);
                insn.dst = reg(op)?;
                insn
            } else if kw == "local" {
                let mut insn = base(call(pseudo::CALL_LOCAL)?);
                fixup = place_target(&mut insn, Field::Imm, arg.trim())?;
                insn
            } else if kw == "kfunc" {
                let mut insn = base(call(pseudo::CALL_KFUNC)?);
                insn.imm = imm32(arg.trim())?;
                insn
            } else {
                let mut insn = base(call(pseudo::CALL_HELPER)?);
                insn.imm = imm32(op)?;
                insn
            }
        }
        Syntax::None => {
            count(0)?;
            base(first)
        }
    };
    Ok((insn, imm_hi, fixup))
}

/// Stores a numeric target now, or returns the label to resolve in the second pass.
fn place_target(insn: &mut Insn, field: Field, op: &str) -> Res<Option<Fixup>> {
    match target(op)? {
        Target::Rel(rel) => {
            set_target(insn, field, rel)?;
            Ok(None)
        }
        Target::Label(l) => Ok(Some((l, field))),
    }
}

fn set_target(insn: &mut Insn, field: Field, rel: i128) -> Res<()> {
    match field {
        Field::Off => {
            insn.off =
                i16::try_from(rel).map_err(|_| AsmErrorKind::OffsetOutOfRange(rel.to_string()))?
        }
        Field::Imm => {
            insn.imm = i32::try_from(rel).map_err(|_| AsmErrorKind::ImmOutOfRange {
                value: rel.to_string(),
                range: "a 32-bit jump offset",
            })?
        }
    }
    Ok(())
}

fn target(op: &str) -> Res<Target> {
    if op.starts_with(['+', '-']) || op.starts_with(|c: char| c.is_ascii_digit()) {
        let (_, v) = int(op)?;
        Ok(Target::Rel(v))
    } else if is_ident(op) {
        Ok(Target::Label(op.to_string()))
    } else {
        Err(AsmErrorKind::BadOperand {
            operand: op.to_string(),
            expected: "a label or a relative offset +N/-N",
        })
    }
}

fn reg(op: &str) -> Res<u8> {
    let bad = || AsmErrorKind::BadRegister(op.to_string());
    let digits = op.strip_prefix("%r").ok_or_else(bad)?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match digits.parse::<u8>() {
        Ok(r) if (r as usize) < isa::NUM_REGS => Ok(r),
        _ => Err(bad()),
    }
}

/// Parses `[+-]digits` or `[+-]0xhex`; returns whether it was hex, and the value.
fn int(s: &str) -> Res<(bool, i128)> {
    let bad = || AsmErrorKind::BadNumber(s.to_string());
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let (hex, digits) = match body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        Some(d) => (true, d),
        None => (false, body),
    };
    let radix = if hex { 16 } else { 10 };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    // Too many digits for u128 is certainly out of every range below.
    let mag = u128::from_str_radix(digits, radix).unwrap_or(u128::MAX);
    let mag = i128::try_from(mag).unwrap_or(i128::MAX);
    Ok((hex, if neg { -mag } else { mag }))
}

/// A 32-bit immediate: decimal in i32 range, or hex up to 0xffffffff taken as its bits.
fn imm32(op: &str) -> Res<i32> {
    if op.starts_with('%') {
        return Err(AsmErrorKind::BadOperand {
            operand: op.to_string(),
            expected: "an immediate",
        });
    }
    let (hex, v) = int(op)?;
    let out = || AsmErrorKind::ImmOutOfRange {
        value: op.to_string(),
        range: "decimal i32, or hex up to 0xffffffff",
    };
    if hex && v >= 0 {
        u32::try_from(v).map(|u| u as i32).map_err(|_| out())
    } else {
        i32::try_from(v).map_err(|_| out())
    }
}

/// `lddw`'s second operand: `(src, imm, imm_hi)`.
fn lddw_value(op: &str) -> Res<(u8, i32, i32)> {
    if let Some((name, args)) = op.strip_suffix(')').and_then(|o| o.split_once('(')) {
        let name = name.trim();
        let src = LDDW_PSEUDO
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(s, _)| *s)
            .ok_or_else(|| AsmErrorKind::BadOperand {
                operand: op.to_string(),
                expected: "map_fd, map_value, btf_id, func, map_idx or map_idx_value",
            })?;
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let [lo, hi] = args[..] else {
            return Err(AsmErrorKind::BadOperand {
                operand: op.to_string(),
                expected: "two immediates `name(IMM, IMM2)`",
            });
        };
        return Ok((src, imm32(lo)?, imm32(hi)?));
    }
    let (_, v) = int(op)?;
    if v < i64::MIN as i128 || v > u64::MAX as i128 {
        return Err(AsmErrorKind::ImmOutOfRange {
            value: op.to_string(),
            range: "a 64-bit value",
        });
    }
    let v = v as u64; // two's complement for negative values
    Ok((pseudo::IMM, v as u32 as i32, (v >> 32) as u32 as i32))
}

/// `[%rN]`, `[%rN+off]` or `[%rN-off]`.
fn mem(op: &str) -> Res<(u8, i16)> {
    let bad = || AsmErrorKind::BadOperand {
        operand: op.to_string(),
        expected: "a memory operand [%rN+off]",
    };
    let inner: String = op
        .strip_prefix('[')
        .and_then(|o| o.strip_suffix(']'))
        .ok_or_else(bad)?
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let (r, off) = match inner.find(['+', '-']) {
        Some(i) => (&inner[..i], &inner[i..]),
        None => (&inner[..], ""),
    };
    let r = reg(r)?;
    if off.is_empty() {
        return Ok((r, 0));
    }
    let (_, v) = int(off)?;
    let off = i16::try_from(v).map_err(|_| AsmErrorKind::OffsetOutOfRange(off.to_string()))?;
    Ok((r, off))
}

#[cfg(test)]
pub(crate) mod suite {
    //! Reading the bpf_conformance `.data` files, for the tests here and in `disasm`.

    use std::collections::HashMap;
    use std::path::Path;

    pub const DIR: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/conformance/bpf_conformance/tests"
    );

    /// Every `.data` file as (file name, sections by directive name), or `None` (with the
    /// reason printed) when the suite is not checked out.
    pub fn files() -> Option<Vec<(String, HashMap<String, String>)>> {
        let dir = Path::new(DIR);
        let Ok(entries) = std::fs::read_dir(dir) else {
            eprintln!("skipping: conformance suite not found at {}", dir.display());
            return None;
        };
        let mut out = Vec::new();
        for e in entries {
            let path = e.expect("readable dir entry").path();
            if path.extension().is_some_and(|x| x == "data") {
                let text = std::fs::read_to_string(&path).expect("readable .data file");
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                out.push((name, sections(&text)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Some(out)
    }

    fn sections(text: &str) -> HashMap<String, String> {
        let mut out: HashMap<String, String> = HashMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(d) = line.trim_start().strip_prefix("--") {
                current = Some(d.trim().to_string());
                out.entry(d.trim().to_string()).or_default();
            } else if let Some(c) = &current {
                let s = out.get_mut(c).unwrap();
                s.push_str(line);
                s.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn one(src: &str) -> Insn {
        let p = assemble(src).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(p.len(), 1, "{src}");
        p[0]
    }

    fn kind(src: &str) -> AsmErrorKind {
        assemble(src).expect_err(src).kind
    }

    #[test]
    fn immediates() {
        assert_eq!(one("mov %r1, 0xffffffff"), Insn::new(0xb7, 1, 0, 0, -1));
        assert_eq!(one("mov %r1, -2147483648").imm, i32::MIN);
        assert_eq!(one("mov32 %r1, 2147483647").imm, i32::MAX);
        assert_eq!(one("mov %r1, 0x80000000").imm, i32::MIN);
        assert_eq!(one("add %r1, -0x10").imm, -16);
        for bad in [
            "mov %r1, 0x100000000",
            "mov %r1, 2147483648",
            "mov %r1, -2147483649",
        ] {
            assert!(
                matches!(kind(bad), AsmErrorKind::ImmOutOfRange { .. }),
                "{bad}"
            );
        }
        assert!(matches!(kind("mov %r1, 12z"), AsmErrorKind::BadNumber(_)));
        assert!(matches!(kind("mov %r1, 0x"), AsmErrorKind::BadNumber(_)));
        assert!(matches!(kind("mov %r1, -"), AsmErrorKind::BadNumber(_)));
        assert!(matches!(
            kind("mov %r1, 99999999999999999999999999999999999999999999"),
            AsmErrorKind::ImmOutOfRange { .. }
        ));
    }

    #[test]
    fn lddw_values() {
        let p = assemble("lddw %r0, 0x1122334455667788").unwrap();
        assert_eq!(
            p,
            [
                Insn::new(0x18, 0, 0, 0, 0x55667788),
                Insn::new(0, 0, 0, 0, 0x11223344)
            ]
        );
        let p = assemble("lddw %r2, -1").unwrap();
        assert_eq!((p[0].imm, p[1].imm), (-1, -1));
        let p = assemble("lddw %r2, -9223372036854775808").unwrap();
        assert_eq!((p[0].imm, p[1].imm), (0, i32::MIN));
        let p = assemble("lddw %r2, 18446744073709551615").unwrap();
        assert_eq!((p[0].imm, p[1].imm), (-1, -1));
        let p = assemble("lddw %r2, 0xFFFFFFFF80000000").unwrap();
        assert_eq!((p[0].imm, p[1].imm), (i32::MIN, -1));
        assert!(matches!(
            kind("lddw %r2, 0x10000000000000000"),
            AsmErrorKind::ImmOutOfRange { .. }
        ));
        assert!(matches!(
            kind("lddw %r2, -9223372036854775809"),
            AsmErrorKind::ImmOutOfRange { .. }
        ));
    }

    #[test]
    fn lddw_pseudo_sources() {
        for (src, name) in LDDW_PSEUDO {
            let p = assemble(&format!("lddw %r3, {name}(7, -2)")).unwrap();
            assert_eq!(
                p,
                [Insn::new(0x18, 3, src, 0, 7), Insn::new(0, 0, 0, 0, -2)]
            );
        }
        assert!(matches!(
            kind("lddw %r3, map_bogus(1, 2)"),
            AsmErrorKind::BadOperand { .. }
        ));
        assert!(matches!(
            kind("lddw %r3, map_fd(1)"),
            AsmErrorKind::BadOperand { .. }
        ));
        assert!(matches!(
            kind("lddw %r3, map_fd(1, 2, 3)"),
            AsmErrorKind::BadOperand { .. }
        ));
    }

    #[test]
    fn memory_operands() {
        assert_eq!(one("ldxw %r0, [%r1+4]"), Insn::new(0x61, 0, 1, 4, 0));
        assert_eq!(one("ldxdw %r0, [%r10-8]"), Insn::new(0x79, 0, 10, -8, 0));
        assert_eq!(one("ldxb %r0, [%r1]"), Insn::new(0x71, 0, 1, 0, 0));
        assert_eq!(one("ldxsh %r0, [%r1+2]"), Insn::new(0x89, 0, 1, 2, 0));
        assert_eq!(one("stw [%r1+2], -3"), Insn::new(0x62, 1, 0, 2, -3));
        assert_eq!(
            one("stxdw [%r10-32768], %r3"),
            Insn::new(0x7b, 10, 3, i16::MIN, 0)
        );
        assert_eq!(one("stxh [ %r1 + 6 ], %r2"), Insn::new(0x6b, 1, 2, 6, 0));
        assert!(matches!(
            kind("ldxw %r0, [%r1+32768]"),
            AsmErrorKind::OffsetOutOfRange(_)
        ));
        assert!(matches!(
            kind("ldxw %r0, %r1"),
            AsmErrorKind::BadOperand { .. }
        ));
        assert!(matches!(
            kind("ldxw %r0, [%r11]"),
            AsmErrorKind::BadRegister(_)
        ));
    }

    #[test]
    fn mnemonic_spellings() {
        assert_eq!(one("add %r1, 1"), one("add64 %r1, 1"));
        assert_eq!(one("mov %r1, %r2"), one("mov64 %r1, %r2"));
        assert_eq!(one("neg %r1"), one("neg64 %r1"));
        assert_eq!(one("neg32 %r1"), Insn::new(0x84, 1, 0, 0, 0));
        assert_eq!(one("jeq %r1, 1, +2"), one("jeq64 %r1, 1, +2"));
        assert_eq!(one("bswap32 %r1"), one("swap32 %r1"));
        assert_eq!(one("swap16 %r1"), Insn::new(0xd7, 1, 0, 0, 16));
        assert_eq!(one("be64 %r1"), Insn::new(0xdc, 1, 0, 0, 64));
        assert_eq!(one("le32 %r1"), Insn::new(0xd4, 1, 0, 0, 32));
        assert_eq!(one("sdiv %r1, %r2"), Insn::new(0x3f, 1, 2, 1, 0));
        assert_eq!(one("smod32 %r1, 3"), Insn::new(0x94, 1, 0, 1, 3));
        assert_eq!(one("movsx864 %r1, %r2"), Insn::new(0xbf, 1, 2, 8, 0));
        assert_eq!(one("movsx1632 %r1, %r2"), Insn::new(0xbc, 1, 2, 16, 0));
        assert_eq!(one("movsx3264 %r1, %r2"), Insn::new(0xbf, 1, 2, 32, 0));
        assert_eq!(one("lock add64 [%r1+8], %r2"), one("lock add [%r1+8], %r2"));
        assert_eq!(
            one("lock fetch add32 [%r1+8], %r2"),
            Insn::new(0xc3, 1, 2, 8, 1)
        );
        assert_eq!(
            one("lock  cmpxchg\t[%r1], %r2"),
            Insn::new(0xdb, 1, 2, 0, 0xf1)
        );
        assert_eq!(one("ldabsh 12"), Insn::new(0x28, 0, 0, 0, 12));
        assert_eq!(one("ldindw %r3, 4"), Insn::new(0x40, 0, 3, 0, 4));
        // Not real spellings: the 64 alias is only for 64-bit forms, bswap only for swap.
        for bad in [
            "movsx8 %r1, %r2",
            "ja64 +1",
            "bbe16 %r1",
            "be1664 %r1",
            "lock",
            "lock fetch",
        ] {
            assert!(
                matches!(kind(bad), AsmErrorKind::UnknownMnemonic(_)),
                "{bad}"
            );
        }
        // movsx has no immediate form.
        assert!(matches!(
            kind("movsx864 %r1, 5"),
            AsmErrorKind::BadOperand { .. }
        ));
    }

    #[test]
    fn calls() {
        assert_eq!(one("call 5"), Insn::new(0x85, 0, 0, 0, 5));
        assert_eq!(one("call kfunc 0x10"), Insn::new(0x85, 0, 2, 0, 16));
        assert_eq!(one("call %r2"), Insn::new(0x8d, 2, 0, 0, 0));
        assert_eq!(one("call local -3"), Insn::new(0x85, 0, 1, 0, -3));
        let p = assemble("call local f\nexit\nf:\nmov %r0, 1\nexit").unwrap();
        assert_eq!(p[0], Insn::new(0x85, 0, 1, 0, 1));
        assert!(matches!(kind("call"), AsmErrorKind::OperandCount { .. }));
        assert!(matches!(
            kind("call local"),
            AsmErrorKind::BadOperand { .. }
        ));
        assert!(matches!(kind("call %r11"), AsmErrorKind::BadRegister(_)));
        assert!(matches!(
            kind("stw [%r1], %r2"),
            AsmErrorKind::BadOperand { .. }
        ));
    }

    #[test]
    fn labels_and_offsets() {
        let src = "\
            # comment line\n\
            mov %r0, 0 # trailing comment\n\
            ja +1\n\
            start:\n\
            lddw %r1, 5\n\
            jeq %r1, %r0, start\n\
            ja32 exit\n\
            jne32 %r1, 3, done\n\
            exit\n\
            done:\n\
            exit\n";
        let p = assemble(src).unwrap();
        // slots: 0 mov, 1 ja, 2-3 lddw, 4 jeq, 5 ja32, 6 jne32, 7 exit, 8 exit
        assert_eq!(p.len(), 9);
        assert_eq!(p[1].off, 1);
        assert_eq!(p[4].off, -3);
        assert_eq!((p[5].off, p[5].imm), (0, 1));
        assert_eq!(p[6], Insn::new(0x56, 1, 0, 1, 3));
    }

    #[test]
    fn explicit_exit_label_wins() {
        let p = assemble("ja exit\nexit\nexit:\nexit").unwrap();
        assert_eq!(p[0].off, 1);
        let p = assemble("ja exit\nexit\nexit").unwrap();
        assert_eq!(p[0].off, 0);
    }

    #[test]
    fn errors_name_line_and_problem() {
        let e = assemble("mov %r0, 1\n\nfoo %r1, 2 # x").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.text, "foo %r1, 2");
        assert_eq!(e.kind, AsmErrorKind::UnknownMnemonic("foo".into()));
        assert!(e.to_string().contains("line 3"), "{e}");
        assert!(matches!(kind("mov %r11, 1"), AsmErrorKind::BadRegister(_)));
        assert!(matches!(kind("mov r1, 1"), AsmErrorKind::BadRegister(_)));
        assert!(matches!(kind("mov %r1"), AsmErrorKind::OperandCount { .. }));
        assert!(matches!(
            kind("exit %r0"),
            AsmErrorKind::OperandCount { .. }
        ));
        assert!(matches!(
            kind("mov %r1,, 2"),
            AsmErrorKind::OperandCount { .. }
        ));
        assert!(matches!(kind("ja nowhere"), AsmErrorKind::UnknownLabel(_)));
        assert!(matches!(
            kind("a:\na:\nexit"),
            AsmErrorKind::DuplicateLabel(_)
        ));
        assert!(matches!(kind("1a:\nexit"), AsmErrorKind::BadLabel(_)));
        assert!(matches!(
            kind("ja +32768"),
            AsmErrorKind::OffsetOutOfRange(_)
        ));
        assert!(matches!(
            kind("ja32 +2147483648"),
            AsmErrorKind::ImmOutOfRange { .. }
        ));
        assert!(matches!(
            kind("jeq %r1, 1, @"),
            AsmErrorKind::BadOperand { .. }
        ));
        assert_eq!(one("ja -32768").off, i16::MIN);
        // A label 40000 slots back does not fit in off, but does in ja32's imm.
        let far = format!("top:\n{}ja top\n", "mov %r0, 0\n".repeat(40000));
        assert!(matches!(
            assemble(&far).unwrap_err().kind,
            AsmErrorKind::OffsetOutOfRange(_)
        ));
        let far = far.replace("ja top", "ja32 top");
        assert_eq!(assemble(&far).unwrap()[40000].imm, -40001);
    }

    #[test]
    fn assembles_the_whole_conformance_suite() {
        let Some(files) = suite::files() else { return };
        assert_eq!(files.len(), 313);
        for (name, sections) in &files {
            let asm = sections
                .get("asm")
                .unwrap_or_else(|| panic!("{name} has no asm"));
            let prog = assemble(asm).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!prog.is_empty(), "{name}");
            if let Some(raw) = sections.get("raw") {
                let want: Vec<u64> = raw
                    .split_whitespace()
                    .map(|t| u64::from_str_radix(t.trim_start_matches("0x"), 16).unwrap())
                    .collect();
                let got: Vec<u64> = prog.iter().map(|i| i.to_u64()).collect();
                assert_eq!(got, want, "{name}");
            }
        }
        assert!(files
            .iter()
            .any(|(n, s)| n == "lddw.data" && s.contains_key("raw")));
    }

    /// Lines covering every operand shape, to mutate.
    const SAMPLES: &[&str] = &[
        "mov %r0, 0x1",
        "add32 %r1, %r2",
        "movsx1664 %r8, %r7",
        "neg %r1",
        "be16 %r0",
        "bswap64 %r0",
        "ldxdw %r0, [%r10-8]",
        "ldxsb %r0, [%r1+3]",
        "stw [%r1+2], -3",
        "stxb [%r1], %r2",
        "lock fetch xor32 [%r10-4], %r3",
        "lock cmpxchg [%r10-8], %r1 # comment",
        "lddw %r1, 0xFFFFFFFF80000000",
        "lddw %r1, map_idx_value(3, -4)",
        "ja +1",
        "ja32 L1",
        "jne %r0, 0xa5, exit",
        "jsle32 %r1, %r2, -3",
        "call local func1",
        "call kfunc 7",
        "call %r2",
        "ldabsw 4",
        "ldindh %r1, 2",
        "L1:",
        "exit",
    ];

    proptest! {
        #[test]
        fn never_panics_on_random_text(s in "\\PC{0,60}") {
            let _ = assemble(&s);
        }

        #[test]
        fn never_panics_on_mutated_lines(
            picks in proptest::collection::vec(0..SAMPLES.len(), 1..6),
            edits in proptest::collection::vec((any::<usize>(), any::<char>(), 0u8..4), 0..6),
        ) {
            let mut lines: Vec<Vec<char>> =
                picks.iter().map(|&i| SAMPLES[i].chars().collect()).collect();
            for (k, (pos, c, how)) in edits.iter().enumerate() {
                let line = &mut lines[k % picks.len()];
                let at = pos % (line.len() + 1);
                match how {
                    0 => line.insert(at, *c),
                    1 if at < line.len() => { line.remove(at); }
                    2 if at < line.len() => line[at] = *c,
                    _ => line.truncate(at),
                }
            }
            let text: Vec<String> = lines.into_iter().map(String::from_iter).collect();
            let _ = assemble(&text.join("\n"));
        }
    }
}
