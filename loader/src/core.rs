//! CO-RE (compile once, run everywhere) relocations, resolved as libbpf does: the local
//! access path is matched against candidate types of the target BTF that share its
//! essential name (`foo___v2` matches `foo`), and the instruction is patched with the
//! target's offset, size, existence, shift, type id or enum value.

use std::collections::HashMap;

use ebpf_sim_vm::isa::{class, Insn};

use crate::btf::{essential_name, int_encoding, Btf, Kind};
use crate::btf_ext::CoreRelocRec;
use crate::error::{ErrorKind, LoadError, Result};
use crate::model::CoreReloc;

/// libbpf's poison: a call to a helper that does not exist, so a program that reaches an
/// unresolved relocation fails verification (or, here, at run time) with a clear mark.
pub const POISON_HELPER: i32 = 0xbad2310;
const MAX_DEPTH: usize = 32;
/// Work limit for recursive type comparisons (hostile BTF could make them exponential).
const MAX_STEPS: u32 = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RelKind {
    FieldByteOffset,
    FieldByteSize,
    FieldExists,
    FieldSigned,
    FieldLshift,
    FieldRshift,
    TypeIdLocal,
    TypeIdTarget,
    TypeExists,
    TypeSize,
    EnumvalExists,
    EnumvalValue,
    TypeMatches,
}

impl RelKind {
    fn from_u32(k: u32) -> Option<RelKind> {
        use RelKind::*;
        Some(match k {
            0 => FieldByteOffset,
            1 => FieldByteSize,
            2 => FieldExists,
            3 => FieldSigned,
            4 => FieldLshift,
            5 => FieldRshift,
            6 => TypeIdLocal,
            7 => TypeIdTarget,
            8 => TypeExists,
            9 => TypeSize,
            10 => EnumvalExists,
            11 => EnumvalValue,
            12 => TypeMatches,
            _ => return None,
        })
    }

    /// The names llvm-objdump prints.
    fn name(self) -> &'static str {
        use RelKind::*;
        match self {
            FieldByteOffset => "byte_off",
            FieldByteSize => "byte_sz",
            FieldExists => "field_exists",
            FieldSigned => "signed",
            FieldLshift => "lshift_u64",
            FieldRshift => "rshift_u64",
            TypeIdLocal => "local_type_id",
            TypeIdTarget => "target_type_id",
            TypeExists => "type_exists",
            TypeSize => "type_size",
            EnumvalExists => "enumval_exists",
            EnumvalValue => "enumval_value",
            TypeMatches => "type_matches",
        }
    }

    fn is_field(self) -> bool {
        (self as u32) <= 5
    }

    fn is_enumval(self) -> bool {
        matches!(self, RelKind::EnumvalExists | RelKind::EnumvalValue)
    }
}

/// One step of an access path.
#[derive(Debug, Clone)]
struct Accessor {
    /// The struct/union (for named members) or the array element type.
    type_id: u32,
    idx: u32,
    /// Member or enumerator name; None for an array index.
    name: Option<String>,
}

/// A resolved access path in one BTF.
#[derive(Debug, Clone)]
struct Spec {
    root: u32,
    accessors: Vec<Accessor>,
    bit_offset: u64,
}

/// The BTF relocations are resolved against.
pub(crate) enum Target<'a> {
    /// The object's own BTF: values stay as compiled.
    Local,
    External {
        btf: &'a Btf,
        by_name: HashMap<&'a str, Vec<u32>>,
    },
}

impl<'a> Target<'a> {
    pub fn external(btf: &'a Btf) -> Self {
        Target::External {
            by_name: btf.essential_name_index(),
            btf,
        }
    }
}

fn core_err(section: &str, insn_off: u32, msg: impl Into<String>) -> LoadError {
    LoadError::at(section, Some(insn_off as u64), ErrorKind::Core(msg.into()))
}

/// Applies the CO-RE relocations of one code section to its instructions; returns each
/// relocation with the slot it patched.
pub(crate) fn relocate_section(
    local: &Btf,
    target: &Target,
    section: &str,
    insns: &mut [Insn],
    recs: &[CoreRelocRec],
) -> Result<Vec<(usize, CoreReloc)>> {
    let mut out = Vec::with_capacity(recs.len());
    for rec in recs {
        let err = |msg: String| core_err(section, rec.insn_off, msg);
        if rec.insn_off % 8 != 0 || rec.insn_off as usize / 8 >= insns.len() {
            return Err(err(format!(
                "instruction offset {} is outside the section",
                rec.insn_off
            )));
        }
        let slot = rec.insn_off as usize / 8;
        let kind = RelKind::from_u32(rec.kind)
            .ok_or_else(|| err(format!("unknown relocation kind {}", rec.kind)))?;
        let access = local
            .try_str_at(rec.access_str_off)
            .ok_or_else(|| err("access string offset out of range".into()))?;
        if local.get(rec.type_id).is_none() || rec.type_id == 0 {
            return Err(err(format!("bad root type id {}", rec.type_id)));
        }
        let local_spec = parse_spec(local, rec.type_id, access, kind).map_err(err)?;
        let spec_text = describe(local, &local_spec, rec.type_id, access);
        let local_res = calc(local, Some(&local_spec), kind, rec.type_id).map_err(err)?;
        let local_value = local_res.map(|r| r.value).unwrap_or(0);
        let target_res = match target {
            Target::Local => local_res,
            Target::External { btf, by_name } => {
                if kind == RelKind::TypeIdLocal {
                    local_res
                } else {
                    resolve_external(local, &local_spec, kind, btf, by_name).map_err(err)?
                }
            }
        };
        match target_res {
            Some(res) => {
                if !matches!(target, Target::Local) {
                    patch(insns, slot, &res, local_res.map(|r| r.size)).map_err(err)?;
                }
            }
            None => poison(insns, slot),
        }
        out.push((
            slot,
            CoreReloc {
                insn: slot,
                kind: kind.name().to_string(),
                spec: spec_text,
                local_value,
                target_value: target_res.map(|r| r.value),
            },
        ));
    }
    Ok(out)
}

fn describe(btf: &Btf, spec: &Spec, root: u32, access: &str) -> String {
    let mut s = btf.type_name(root);
    for a in spec.accessors.iter().skip(1) {
        match &a.name {
            Some(n) => {
                s.push_str("::");
                s.push_str(n);
            }
            None => s.push_str(&format!("[{}]", a.idx)),
        }
    }
    if let (Some(a), Kind::Enum { .. } | Kind::Enum64 { .. }) = (
        spec.accessors.first(),
        btf.kind(btf.skip_mods_typedefs(root)),
    ) {
        if let Some(n) = &a.name {
            s.push_str("::");
            s.push_str(n);
        }
    }
    format!("{s} ({access})")
}

fn parse_spec(btf: &Btf, root: u32, access: &str, kind: RelKind) -> Result<Spec, String> {
    let raw: Vec<u32> = access
        .split(':')
        .map(|p| p.parse::<u32>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("bad access string {access:?}"))?;
    let first = *raw.first().ok_or("empty access string")?;
    let mut spec = Spec {
        root,
        accessors: Vec::new(),
        bit_offset: 0,
    };
    if kind.is_enumval() {
        let t = btf.skip_mods_typedefs(root);
        let values = match btf.kind(t) {
            Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => values,
            k => return Err(format!("enum value relocation on a {}", k.kind_name())),
        };
        let v = values
            .get(first as usize)
            .ok_or_else(|| format!("enumerator {first} out of range"))?;
        spec.accessors.push(Accessor {
            type_id: t,
            idx: first,
            name: Some(btf.str_at(v.name_off).to_string()),
        });
        return Ok(spec);
    }
    if !kind.is_field() {
        if raw.len() != 1 || first != 0 {
            return Err(format!("type relocation with access string {access:?}"));
        }
        spec.accessors.push(Accessor {
            type_id: root,
            idx: 0,
            name: None,
        });
        return Ok(spec);
    }
    let mut id = btf.skip_mods_typedefs(root);
    let size = btf.size_of(id).ok_or("root type has no size")?;
    spec.accessors.push(Accessor {
        type_id: id,
        idx: first,
        name: None,
    });
    spec.bit_offset = (first as u64)
        .checked_mul(size)
        .and_then(|v| v.checked_mul(8))
        .ok_or("offset overflow")?;
    for &idx in raw.iter().skip(1) {
        id = btf.skip_mods_typedefs(id);
        match btf.kind(id) {
            Kind::Struct { members, .. } | Kind::Union { members, .. } => {
                let m = members
                    .get(idx as usize)
                    .ok_or_else(|| format!("member {idx} out of range"))?;
                spec.bit_offset = spec.bit_offset.saturating_add(m.bit_offset as u64);
                let name = btf.str_at(m.name_off);
                if !name.is_empty() {
                    spec.accessors.push(Accessor {
                        type_id: id,
                        idx,
                        name: Some(name.to_string()),
                    });
                }
                id = m.type_id;
            }
            Kind::Array { elem, nelems, .. } => {
                let elem = btf.skip_mods_typedefs(*elem);
                if idx >= *nelems && !is_flex(btf, &spec, *nelems) {
                    return Err(format!("array index {idx} out of range"));
                }
                let sz = btf.size_of(elem).ok_or("array element has no size")?;
                spec.accessors.push(Accessor {
                    type_id: elem,
                    idx,
                    name: None,
                });
                spec.bit_offset = (idx as u64)
                    .checked_mul(sz)
                    .and_then(|v| v.checked_mul(8))
                    .and_then(|v| v.checked_add(spec.bit_offset))
                    .ok_or("offset overflow")?;
                id = elem;
            }
            k => return Err(format!("access through a {}", k.kind_name())),
        }
        if spec.accessors.len() > MAX_DEPTH {
            return Err("access path too deep".into());
        }
    }
    Ok(spec)
}

/// A zero-length array that is the last member of its struct may be indexed past its end.
fn is_flex(btf: &Btf, spec: &Spec, nelems: u32) -> bool {
    if nelems != 0 {
        return false;
    }
    match spec.accessors.last() {
        Some(Accessor {
            type_id,
            idx,
            name: Some(_),
        }) => btf.members(*type_id).len() == *idx as usize + 1,
        _ => false,
    }
}

/// A computed value, with the field size for memory-access size adjustment.
#[derive(Debug, Clone, Copy)]
struct Res {
    value: u64,
    /// Byte size of the accessed field (byte_off relocations on plain fields), else 0.
    size: u64,
}

/// The relocation's value for a spec (None: target missing and the insn is poisoned).
fn calc(
    btf: &Btf,
    spec: Option<&Spec>,
    kind: RelKind,
    local_root: u32,
) -> Result<Option<Res>, String> {
    let val = |value: u64| Ok(Some(Res { value, size: 0 }));
    use RelKind::*;
    match kind {
        FieldExists => val(spec.is_some() as u64),
        TypeIdLocal => val(local_root as u64),
        TypeIdTarget => val(spec.map(|s| s.root as u64).unwrap_or(0)),
        TypeExists | TypeMatches => val(spec.is_some() as u64),
        TypeSize => match spec {
            Some(s) => val(btf.size_of(s.root).ok_or("type has no size")?),
            None => val(0),
        },
        EnumvalExists => val(spec.is_some() as u64),
        EnumvalValue => {
            let Some(spec) = spec else { return Ok(None) };
            let a = spec.accessors.first().ok_or("empty enum spec")?;
            match btf.kind(a.type_id) {
                Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => {
                    let v = values
                        .get(a.idx as usize)
                        .ok_or("enumerator out of range")?;
                    val(v.value as u64)
                }
                _ => Err("enum spec on a non-enum".into()),
            }
        }
        _ => {
            let Some(spec) = spec else { return Ok(None) };
            field_value(btf, spec, kind).map(Some)
        }
    }
}

fn field_value(btf: &Btf, spec: &Spec, kind: RelKind) -> Result<Res, String> {
    let acc = spec.accessors.last().ok_or("empty field spec")?;
    let Some(_) = &acc.name else {
        // An array element (or the root itself).
        let sz = btf.size_of(acc.type_id).ok_or("element has no size")?;
        return match kind {
            RelKind::FieldByteOffset => Ok(Res {
                value: spec.bit_offset / 8,
                size: sz,
            }),
            RelKind::FieldByteSize => Ok(Res { value: sz, size: 0 }),
            _ => Err(format!("{} relocation on an array element", kind.name())),
        };
    };
    let m = btf
        .members(acc.type_id)
        .get(acc.idx as usize)
        .ok_or("member out of range")?;
    let field_type = btf.skip_mods_typedefs(m.type_id);
    let bit_off = spec.bit_offset;
    let bitfield = m.bitfield_size > 0;
    let (byte_off, byte_sz, bit_sz) = if bitfield {
        let bit_sz = m.bitfield_size as u64;
        let mut byte_sz = btf.size_of(field_type).ok_or("bitfield type has no size")?;
        if byte_sz == 0 {
            return Err("zero-sized bitfield type".into());
        }
        let mut byte_off = bit_off / 8 / byte_sz * byte_sz;
        while bit_off.saturating_add(bit_sz) - byte_off * 8 > byte_sz * 8 {
            if byte_sz >= 8 {
                return Err("bitfield cannot be read with a 64-bit load".into());
            }
            byte_sz *= 2;
            byte_off = bit_off / 8 / byte_sz * byte_sz;
        }
        (byte_off, byte_sz, bit_sz)
    } else {
        let sz = btf.size_of(m.type_id).ok_or("field has no size")?;
        (bit_off / 8, sz, sz.saturating_mul(8))
    };
    let value = match kind {
        RelKind::FieldByteOffset => {
            return Ok(Res {
                value: byte_off,
                size: if bitfield { 0 } else { byte_sz },
            })
        }
        RelKind::FieldByteSize => byte_sz,
        RelKind::FieldSigned => match btf.kind(field_type) {
            Kind::Enum { signed, .. } | Kind::Enum64 { signed, .. } => *signed as u64,
            Kind::Int { encoding, .. } => (encoding & int_encoding::SIGNED != 0) as u64,
            _ => 0,
        },
        RelKind::FieldLshift => 64u64
            .checked_sub(bit_off.saturating_add(bit_sz) - byte_off * 8)
            .ok_or("field wider than 64 bits")?,
        RelKind::FieldRshift => 64u64
            .checked_sub(bit_sz)
            .ok_or("field wider than 64 bits")?,
        _ => return Err("not a field relocation".into()),
    };
    Ok(Res { value, size: 0 })
}

/// Resolves against an external BTF: tries every candidate with the same essential name
/// and kind; all matching candidates must agree.
fn resolve_external(
    local: &Btf,
    local_spec: &Spec,
    kind: RelKind,
    target: &Btf,
    by_name: &HashMap<&str, Vec<u32>>,
) -> Result<Option<Res>, String> {
    let root = local_spec.root;
    let local_name = local.name(root);
    if local_name.is_empty() {
        return Err("relocation against an anonymous type".into());
    }
    let local_kind = local.kind(root).number();
    let same_kind = |k: u8| k == local_kind || (is_enum_kind(k) && is_enum_kind(local_kind));
    let cands = by_name
        .get(essential_name(local_name))
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut result: Option<Option<Res>> = None;
    let mut found_any = false;
    for &cand in cands {
        if !same_kind(target.kind(cand).number()) {
            continue;
        }
        let Some(targ_spec) = match_spec(local, local_spec, kind, target, cand)? else {
            continue;
        };
        found_any = true;
        let res = calc(target, Some(&targ_spec), kind, root)?;
        match result {
            None => result = Some(res),
            Some(prev) => {
                if prev.map(|r| r.value) != res.map(|r| r.value) {
                    return Err(format!(
                        "ambiguous: candidates for {local_name} give different values"
                    ));
                }
            }
        }
    }
    if found_any {
        Ok(result.flatten())
    } else {
        calc(target, None, kind, root)
    }
}

fn is_enum_kind(k: u8) -> bool {
    k == 6 || k == 19
}

/// Matches the local access path in a target candidate, as libbpf's bpf_core_spec_match.
fn match_spec(
    local: &Btf,
    ls: &Spec,
    kind: RelKind,
    target: &Btf,
    cand: u32,
) -> Result<Option<Spec>, String> {
    let mut ts = Spec {
        root: cand,
        accessors: Vec::new(),
        bit_offset: 0,
    };
    if kind.is_enumval() {
        let Some(Accessor {
            name: Some(lname), ..
        }) = ls.accessors.first()
        else {
            return Ok(None);
        };
        let t = target.skip_mods_typedefs(cand);
        let values = match target.kind(t) {
            Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => values,
            _ => return Ok(None),
        };
        for (i, v) in values.iter().enumerate() {
            let tname = target.str_at(v.name_off);
            if !tname.is_empty() && essential_name(tname) == essential_name(lname) {
                ts.accessors.push(Accessor {
                    type_id: t,
                    idx: i as u32,
                    name: Some(tname.to_string()),
                });
                return Ok(Some(ts));
            }
        }
        return Ok(None);
    }
    if !kind.is_field() {
        let ok = if kind == RelKind::TypeMatches {
            types_match(local, ls.root, target, cand, false, 0, &mut 0)
        } else {
            types_compat(local, ls.root, target, cand, 0, &mut 0)
        };
        return Ok(ok.then_some(ts));
    }
    let mut targ_id = cand;
    for (i, la) in ls.accessors.iter().enumerate() {
        targ_id = target.skip_mods_typedefs(targ_id);
        if la.name.is_some() {
            let lm = local
                .members(la.type_id)
                .get(la.idx as usize)
                .ok_or("local member out of range")?;
            let lname = local.str_at(lm.name_off);
            match match_member(
                local, lm.type_id, lname, target, targ_id, &mut ts, 0, &mut 0,
            ) {
                Some(next) => targ_id = next,
                None => return Ok(None),
            }
        } else {
            if i > 0 {
                let Kind::Array { elem, nelems, .. } = target.kind(targ_id) else {
                    return Ok(None);
                };
                if la.idx >= *nelems && !is_flex(target, &ts, *nelems) {
                    return Ok(None);
                }
                targ_id = target.skip_mods_typedefs(*elem);
            }
            let sz = target.size_of(targ_id).ok_or("target type has no size")?;
            ts.accessors.push(Accessor {
                type_id: targ_id,
                idx: la.idx,
                name: None,
            });
            ts.bit_offset = ts
                .bit_offset
                .saturating_add((la.idx as u64).saturating_mul(sz).saturating_mul(8));
        }
    }
    Ok(Some(ts))
}

/// Finds a member by name in a target struct/union, descending into anonymous members.
/// Pushes the accessor and adds the offset; returns the member's type.
#[allow(clippy::too_many_arguments)]
fn match_member(
    local: &Btf,
    local_member_type: u32,
    name: &str,
    target: &Btf,
    targ_id: u32,
    ts: &mut Spec,
    depth: usize,
    steps: &mut u32,
) -> Option<u32> {
    *steps += 1;
    if depth > MAX_DEPTH || *steps > MAX_STEPS {
        return None;
    }
    let targ_id = target.skip_mods_typedefs(targ_id);
    for (i, m) in target.members(targ_id).iter().enumerate() {
        let tname = target.str_at(m.name_off);
        ts.bit_offset = ts.bit_offset.saturating_add(m.bit_offset as u64);
        if tname.is_empty() {
            if let Some(found) = match_member(
                local,
                local_member_type,
                name,
                target,
                m.type_id,
                ts,
                depth + 1,
                steps,
            ) {
                return Some(found);
            }
        } else if tname == name {
            if !fields_compat(local, local_member_type, target, m.type_id, 0) {
                ts.bit_offset = ts.bit_offset.saturating_sub(m.bit_offset as u64);
                return None;
            }
            ts.accessors.push(Accessor {
                type_id: targ_id,
                idx: i as u32,
                name: Some(tname.to_string()),
            });
            return Some(m.type_id);
        }
        ts.bit_offset = ts.bit_offset.saturating_sub(m.bit_offset as u64);
    }
    None
}

fn fields_compat(local: &Btf, lid: u32, target: &Btf, tid: u32, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    let lid = local.skip_mods_typedefs(lid);
    let tid = target.skip_mods_typedefs(tid);
    let (lk, tk) = (local.kind(lid), target.kind(tid));
    let composite = |k: &Kind| matches!(k, Kind::Struct { .. } | Kind::Union { .. });
    if composite(lk) && composite(tk) {
        return true;
    }
    if is_enum_kind(lk.number()) && is_enum_kind(tk.number()) {
        return names_match(local.name(lid), target.name(tid));
    }
    if lk.number() != tk.number() {
        return false;
    }
    match (lk, tk) {
        (Kind::Ptr(_), _) | (Kind::Float { .. }, _) => true,
        (Kind::Fwd { .. }, _) => names_match(local.name(lid), target.name(tid)),
        (Kind::Int { offset: a, .. }, Kind::Int { offset: b, .. }) => *a == 0 && *b == 0,
        (Kind::Array { elem: a, .. }, Kind::Array { elem: b, .. }) => {
            fields_compat(local, *a, target, *b, depth + 1)
        }
        _ => false,
    }
}

fn names_match(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || essential_name(a) == essential_name(b)
}

/// libbpf's bpf_core_types_are_compat: same kind, recursively for pointers, arrays and
/// function prototypes; names were already matched by the candidate search.
fn types_compat(
    local: &Btf,
    lid: u32,
    target: &Btf,
    tid: u32,
    depth: usize,
    steps: &mut u32,
) -> bool {
    *steps += 1;
    if depth > MAX_DEPTH || *steps > MAX_STEPS {
        return false;
    }
    let lid = local.skip_mods_typedefs(lid);
    let tid = target.skip_mods_typedefs(tid);
    let (lk, tk) = (local.kind(lid), target.kind(tid));
    if is_enum_kind(lk.number()) && is_enum_kind(tk.number()) {
        return true;
    }
    if lk.number() != tk.number() {
        return false;
    }
    match (lk, tk) {
        (Kind::Ptr(a), Kind::Ptr(b)) => types_compat(local, *a, target, *b, depth + 1, steps),
        (Kind::Array { elem: a, .. }, Kind::Array { elem: b, .. }) => {
            types_compat(local, *a, target, *b, depth + 1, steps)
        }
        (
            Kind::FuncProto {
                ret: lr,
                params: lp,
            },
            Kind::FuncProto {
                ret: tr,
                params: tp,
            },
        ) => {
            lp.len() == tp.len()
                && types_compat(local, *lr, target, *tr, depth + 1, steps)
                && lp.iter().zip(tp).all(|(a, b)| {
                    types_compat(local, a.type_id, target, b.type_id, depth + 1, steps)
                })
        }
        _ => true,
    }
}

/// libbpf's bpf_core_types_match (for `bpf_core_type_matches`): a stricter, structural
/// comparison. Every local member must exist by name with a matching type; integers must
/// agree in size and signedness; enumerators must exist.
fn types_match(
    local: &Btf,
    lid: u32,
    target: &Btf,
    tid: u32,
    behind_ptr: bool,
    depth: usize,
    steps: &mut u32,
) -> bool {
    *steps += 1;
    if depth > MAX_DEPTH || *steps > MAX_STEPS {
        return false;
    }
    let lid = local.skip_mods_typedefs(lid);
    let tid = target.skip_mods_typedefs(tid);
    let (lk, tk) = (local.kind(lid), target.kind(tid));
    if !names_match(local.name(lid), target.name(tid)) {
        return false;
    }
    match (lk, tk) {
        (Kind::Void, Kind::Void) => true,
        (
            Kind::Int {
                size: a,
                encoding: ea,
                ..
            },
            Kind::Int {
                size: b,
                encoding: eb,
                ..
            },
        ) => a == b && (ea & int_encoding::SIGNED) == (eb & int_encoding::SIGNED),
        (Kind::Float { size: a }, Kind::Float { size: b }) => a == b,
        (Kind::Ptr(a), Kind::Ptr(b)) => types_match(local, *a, target, *b, true, depth + 1, steps),
        (
            Kind::Array {
                elem: a,
                nelems: na,
                ..
            },
            Kind::Array {
                elem: b,
                nelems: nb,
                ..
            },
        ) => na == nb && types_match(local, *a, target, *b, behind_ptr, depth + 1, steps),
        (Kind::Fwd { .. }, Kind::Fwd { .. } | Kind::Struct { .. } | Kind::Union { .. }) => true,
        // Behind a pointer only the name and kind of a struct matter (as in libbpf).
        (Kind::Struct { .. }, Kind::Struct { .. }) | (Kind::Union { .. }, Kind::Union { .. })
            if behind_ptr =>
        {
            true
        }
        (Kind::Struct { members: lm, .. }, Kind::Struct { members: tm, .. })
        | (Kind::Union { members: lm, .. }, Kind::Union { members: tm, .. }) => {
            lm.iter().all(|l| {
                let ln = local.str_at(l.name_off);
                tm.iter().any(|t| {
                    target.str_at(t.name_off) == ln
                        && l.bitfield_size == t.bitfield_size
                        && types_match(local, l.type_id, target, t.type_id, false, depth + 1, steps)
                })
            })
        }
        (
            Kind::Enum { values: lv, .. } | Kind::Enum64 { values: lv, .. },
            Kind::Enum { values: tv, .. } | Kind::Enum64 { values: tv, .. },
        ) => lv.iter().all(|l| {
            let ln = local.str_at(l.name_off);
            tv.iter()
                .any(|t| essential_name(target.str_at(t.name_off)) == essential_name(ln))
        }),
        (Kind::FuncProto { .. }, Kind::FuncProto { .. }) => {
            types_compat(local, lid, target, tid, depth, steps)
        }
        _ => false,
    }
}

fn size_bits(bytes: u64) -> Option<u8> {
    Some(match bytes {
        1 => 0x10,
        2 => 0x08,
        4 => 0x00,
        8 => 0x18,
        _ => return None,
    })
}

/// Writes a value into the instruction as libbpf's bpf_core_patch_insn does.
fn patch(insns: &mut [Insn], slot: usize, res: &Res, orig_size: Option<u64>) -> Result<(), String> {
    let insn = insns.get_mut(slot).ok_or("instruction out of range")?;
    match insn.class() {
        class::ALU | class::ALU64 => {
            if insn.code & 0x08 != 0 {
                return Err("CO-RE relocation on a register-source ALU instruction".into());
            }
            insn.imm = i32::try_from(res.value as i64)
                .map_err(|_| format!("value {} does not fit in imm", res.value))?;
        }
        class::LDX | class::ST | class::STX => {
            insn.off = i16::try_from(res.value)
                .map_err(|_| format!("offset {} does not fit in off", res.value))?;
            // A field that changed size: change the load/store width with it.
            if let (Some(orig), true) = (orig_size, res.size != 0) {
                if orig != 0 && orig != res.size {
                    let cur = match insn.code & 0x18 {
                        0x10 => 1,
                        0x08 => 2,
                        0x00 => 4,
                        _ => 8,
                    };
                    let bits = size_bits(res.size).ok_or("field size is not 1, 2, 4 or 8")?;
                    if cur == orig {
                        insn.code = (insn.code & !0x18) | bits;
                    }
                }
            }
        }
        class::LD if insn.code == 0x18 => {
            let lo = res.value as u32 as i32;
            let hi = (res.value >> 32) as u32 as i32;
            insn.imm = lo;
            let next = insns
                .get_mut(slot + 1)
                .ok_or("lddw missing its second slot")?;
            next.imm = hi;
        }
        _ => return Err(format!("cannot patch opcode {:#04x}", insn.code)),
    }
    Ok(())
}

fn poison(insns: &mut [Insn], slot: usize) {
    let is_lddw = insns.get(slot).is_some_and(|i| i.code == 0x18);
    let call = Insn::new(class::JMP | 0x80, 0, 0, 0, POISON_HELPER);
    if is_lddw {
        if let Some(next) = insns.get_mut(slot + 1) {
            *next = call;
        }
    }
    if let Some(i) = insns.get_mut(slot) {
        *i = call;
    }
}
