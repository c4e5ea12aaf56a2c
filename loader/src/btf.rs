//! BTF (BPF Type Format) types and strings: the `.BTF` section of an object or a raw BTF
//! file such as /sys/kernel/btf/vmlinux.
//!
//! Parsing checks everything later lookups rely on (type ids and string offsets in range,
//! no reference loops), so the accessors need not fail.

use std::collections::HashMap;

use crate::error::{ErrorKind, LoadError, Result};

pub const BTF_MAGIC: u16 = 0xeb9f;
const HEADER_MIN: usize = 24;
/// Longest chain of typedefs and modifiers we follow (ids are already loop-checked).
const MAX_CHAIN: usize = 64;

pub mod int_encoding {
    pub const SIGNED: u8 = 1;
    pub const CHAR: u8 = 2;
    pub const BOOL: u8 = 4;
}

/// A struct or union member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name_off: u32,
    pub type_id: u32,
    pub bit_offset: u32,
    /// Non-zero for a bitfield.
    pub bitfield_size: u32,
}

/// One `VAR` placed in a `DATASEC`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecVar {
    pub type_id: u32,
    pub offset: u32,
    pub size: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    pub name_off: u32,
    pub value: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name_off: u32,
    pub type_id: u32,
}

/// The kinds of BTF type, with their kind-specific data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Void,
    Int {
        size: u32,
        encoding: u8,
        offset: u8,
        bits: u8,
    },
    Ptr(u32),
    Array {
        elem: u32,
        index: u32,
        nelems: u32,
    },
    Struct {
        size: u32,
        members: Vec<Member>,
    },
    Union {
        size: u32,
        members: Vec<Member>,
    },
    Enum {
        size: u32,
        signed: bool,
        values: Vec<EnumValue>,
    },
    Fwd {
        union: bool,
    },
    Typedef(u32),
    Volatile(u32),
    Const(u32),
    Restrict(u32),
    Func {
        proto: u32,
        linkage: u16,
    },
    FuncProto {
        ret: u32,
        params: Vec<Param>,
    },
    Var {
        type_id: u32,
        linkage: u32,
    },
    Datasec {
        size: u32,
        vars: Vec<SecVar>,
    },
    Float {
        size: u32,
    },
    DeclTag {
        type_id: u32,
        component: i32,
    },
    TypeTag(u32),
    Enum64 {
        size: u32,
        signed: bool,
        values: Vec<EnumValue>,
    },
}

impl Kind {
    /// The kernel's BTF_KIND_* number.
    pub fn number(&self) -> u8 {
        match self {
            Kind::Void => 0,
            Kind::Int { .. } => 1,
            Kind::Ptr(_) => 2,
            Kind::Array { .. } => 3,
            Kind::Struct { .. } => 4,
            Kind::Union { .. } => 5,
            Kind::Enum { .. } => 6,
            Kind::Fwd { .. } => 7,
            Kind::Typedef(_) => 8,
            Kind::Volatile(_) => 9,
            Kind::Const(_) => 10,
            Kind::Restrict(_) => 11,
            Kind::Func { .. } => 12,
            Kind::FuncProto { .. } => 13,
            Kind::Var { .. } => 14,
            Kind::Datasec { .. } => 15,
            Kind::Float { .. } => 16,
            Kind::DeclTag { .. } => 17,
            Kind::TypeTag(_) => 18,
            Kind::Enum64 { .. } => 19,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self {
            Kind::Void => "void",
            Kind::Int { .. } => "int",
            Kind::Ptr(_) => "ptr",
            Kind::Array { .. } => "array",
            Kind::Struct { .. } => "struct",
            Kind::Union { .. } => "union",
            Kind::Enum { .. } => "enum",
            Kind::Fwd { .. } => "fwd",
            Kind::Typedef(_) => "typedef",
            Kind::Volatile(_) => "volatile",
            Kind::Const(_) => "const",
            Kind::Restrict(_) => "restrict",
            Kind::Func { .. } => "func",
            Kind::FuncProto { .. } => "func_proto",
            Kind::Var { .. } => "var",
            Kind::Datasec { .. } => "datasec",
            Kind::Float { .. } => "float",
            Kind::DeclTag { .. } => "decl_tag",
            Kind::TypeTag(_) => "type_tag",
            Kind::Enum64 { .. } => "enum64",
        }
    }

    /// The single type this one refers to, for kinds that refer to exactly one.
    fn next(&self) -> Option<u32> {
        match self {
            Kind::Ptr(t)
            | Kind::Typedef(t)
            | Kind::Volatile(t)
            | Kind::Const(t)
            | Kind::Restrict(t)
            | Kind::TypeTag(t) => Some(*t),
            Kind::Array { elem, .. } => Some(*elem),
            Kind::Var { type_id, .. } | Kind::DeclTag { type_id, .. } => Some(*type_id),
            Kind::Func { proto, .. } => Some(*proto),
            _ => None,
        }
    }

    fn is_modifier_or_typedef(&self) -> bool {
        matches!(
            self,
            Kind::Typedef(_)
                | Kind::Volatile(_)
                | Kind::Const(_)
                | Kind::Restrict(_)
                | Kind::TypeTag(_)
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Type {
    pub name_off: u32,
    pub kind: Kind,
}

/// A parsed, validated BTF blob. Type id `n` is `types[n]`; id 0 is `void`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

fn btf_err(offset: usize, msg: impl Into<String>) -> LoadError {
    LoadError::at(".BTF", Some(offset as u64), ErrorKind::Btf(msg.into()))
}

/// Bounds-checked little-endian reader over a byte slice.
pub(crate) struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8], pos: usize) -> Self {
        Reader { data, pos }
    }

    pub fn u32(&mut self) -> Option<u32> {
        let end = self.pos.checked_add(4)?;
        let b = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u16(&mut self) -> Option<u16> {
        let end = self.pos.checked_add(2)?;
        let b = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    pub fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
}

impl Btf {
    /// Parses a BTF blob (the `.BTF` section, or a raw file like /sys/kernel/btf/vmlinux).
    pub fn parse(data: &[u8]) -> Result<Btf> {
        let mut r = Reader::new(data, 0);
        let trunc = |need: usize| {
            LoadError::at(
                ".BTF",
                Some(0),
                ErrorKind::Truncated {
                    need: need as u64,
                    have: data.len() as u64,
                },
            )
        };
        let magic = r.u16().ok_or_else(|| trunc(HEADER_MIN))?;
        if magic == BTF_MAGIC.swap_bytes() {
            return Err(btf_err(0, "big-endian BTF is not supported"));
        }
        if magic != BTF_MAGIC {
            return Err(btf_err(0, format!("bad magic {magic:#06x}")));
        }
        let version = r.u8().ok_or_else(|| trunc(HEADER_MIN))?;
        if version != 1 {
            return Err(btf_err(2, format!("unsupported version {version}")));
        }
        let _flags = r.u8().ok_or_else(|| trunc(HEADER_MIN))?;
        let mut hdr = [0u32; 5];
        for h in &mut hdr {
            *h = r.u32().ok_or_else(|| trunc(HEADER_MIN))?;
        }
        let [hdr_len, type_off, type_len, str_off, str_len] = hdr;
        let hdr_len = hdr_len as usize;
        if hdr_len < HEADER_MIN || hdr_len > data.len() {
            return Err(btf_err(4, format!("bad header length {hdr_len}")));
        }
        let section = |off: u32, len: u32, what: &str| -> Result<&[u8]> {
            let start = hdr_len.checked_add(off as usize);
            let end = start.and_then(|s| s.checked_add(len as usize));
            match (start, end) {
                (Some(s), Some(e)) if e <= data.len() => Ok(&data[s..e]),
                _ => Err(LoadError::at(
                    ".BTF",
                    Some(hdr_len as u64 + off as u64),
                    ErrorKind::Truncated {
                        need: hdr_len as u64 + off as u64 + len as u64,
                        have: data.len() as u64,
                    },
                )
                .in_section(what)),
            }
        };
        let strings = section(str_off, str_len, ".BTF")?.to_vec();
        if !strings.is_empty() && strings[0] != 0 {
            return Err(btf_err(
                hdr_len + str_off as usize,
                "string section must start with a NUL",
            ));
        }
        let type_data = section(type_off, type_len, ".BTF")?;
        let base = hdr_len + type_off as usize;
        let mut types = vec![Type {
            name_off: 0,
            kind: Kind::Void,
        }];
        let mut r = Reader::new(type_data, 0);
        while r.pos < type_data.len() {
            let at = base + r.pos;
            let t = parse_type(&mut r).ok_or_else(|| btf_err(at, "truncated type record"))??;
            types.push(t);
        }
        let btf = Btf { types, strings };
        btf.validate(base)?;
        Ok(btf)
    }

    fn validate(&self, base: usize) -> Result<()> {
        let n = self.types.len() as u64;
        let check_id = |id: u32, at: u32, what: &str| {
            if (id as u64) < n {
                Ok(())
            } else {
                Err(btf_err(
                    base,
                    format!(
                        "type [{at}] {what} refers to type id {id}, but there are only {n} types"
                    ),
                ))
            }
        };
        let check_str = |off: u32, at: u32| {
            if (off as usize) < self.strings.len() || off == 0 {
                Ok(())
            } else {
                Err(btf_err(
                    base,
                    format!("type [{at}] has name offset {off} past the string section"),
                ))
            }
        };
        for (i, t) in self.types.iter().enumerate() {
            let id = i as u32;
            check_str(t.name_off, id)?;
            if let Some(next) = t.kind.next() {
                check_id(next, id, t.kind.kind_name())?;
            }
            match &t.kind {
                Kind::Array { index, .. } => check_id(*index, id, "array index")?,
                Kind::Struct { members, .. } | Kind::Union { members, .. } => {
                    for m in members {
                        check_id(m.type_id, id, "member")?;
                        check_str(m.name_off, id)?;
                    }
                }
                Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => {
                    for v in values {
                        check_str(v.name_off, id)?;
                    }
                }
                Kind::FuncProto { ret, params } => {
                    check_id(*ret, id, "return")?;
                    for p in params {
                        check_id(p.type_id, id, "parameter")?;
                        check_str(p.name_off, id)?;
                    }
                }
                Kind::Datasec { vars, .. } => {
                    for v in vars {
                        check_id(v.type_id, id, "datasec variable")?;
                    }
                }
                _ => {}
            }
        }
        self.check_loops(base)
    }

    /// Rejects reference cycles (`typedef A -> const -> A`, `ptr -> ptr -> ...`), which would
    /// make size and name computations loop. Struct members may legitimately refer back to
    /// the struct (through a pointer), so only single-successor chains are followed.
    fn check_loops(&self, base: usize) -> Result<()> {
        // 0 = unseen, 1 = on the current path, 2 = known to end.
        let mut state = vec![0u8; self.types.len()];
        let mut path = Vec::new();
        for start in 0..self.types.len() {
            let mut id = start;
            path.clear();
            loop {
                match state[id] {
                    2 => break,
                    1 => return Err(btf_err(base, format!("reference loop through type [{id}]"))),
                    _ => {}
                }
                state[id] = 1;
                path.push(id);
                match self.types[id].kind.next() {
                    // Ptr chains end at the first struct, so a struct's own pointer is fine.
                    Some(next) => id = next as usize,
                    None => break,
                }
            }
            for &p in &path {
                state[p] = 2;
            }
        }
        Ok(())
    }

    /// Number of type ids, counting `void` (0).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    pub fn is_empty(&self) -> bool {
        self.types.len() <= 1
    }

    pub fn types(&self) -> impl Iterator<Item = (u32, &Type)> {
        self.types.iter().enumerate().map(|(i, t)| (i as u32, t))
    }

    pub fn get(&self, id: u32) -> Option<&Type> {
        self.types.get(id as usize)
    }

    pub fn kind(&self, id: u32) -> &Kind {
        self.types
            .get(id as usize)
            .map(|t| &t.kind)
            .unwrap_or(&Kind::Void)
    }

    /// The string at `off` in the string section ("" if absent or not UTF-8).
    pub fn str_at(&self, off: u32) -> &str {
        let Some(rest) = self.strings.get(off as usize..) else {
            return "";
        };
        let end = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        std::str::from_utf8(&rest[..end]).unwrap_or("")
    }

    /// The string at `off`, or None if the offset is out of range.
    pub fn try_str_at(&self, off: u32) -> Option<&str> {
        if (off as usize) < self.strings.len() {
            Some(self.str_at(off))
        } else {
            None
        }
    }

    pub fn name(&self, id: u32) -> &str {
        self.get(id).map(|t| self.str_at(t.name_off)).unwrap_or("")
    }

    /// Skips typedefs and modifiers (const, volatile, restrict, type tags).
    pub fn skip_mods_typedefs(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.kind(id) {
                k if k.is_modifier_or_typedef() => id = k.next().unwrap_or(0),
                _ => return id,
            }
        }
        id
    }

    /// Skips modifiers but keeps typedefs (for naming types as C source does).
    pub fn skip_mods(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_CHAIN {
            match self.kind(id) {
                Kind::Volatile(t) | Kind::Const(t) | Kind::Restrict(t) | Kind::TypeTag(t) => {
                    id = *t
                }
                _ => return id,
            }
        }
        id
    }

    /// Byte size of a type, as `sizeof` would give it. None for void, functions and
    /// incomplete types, or on overflow.
    pub fn size_of(&self, id: u32) -> Option<u64> {
        let mut id = id;
        let mut mult: u64 = 1;
        for _ in 0..MAX_CHAIN {
            let size = match self.kind(id) {
                Kind::Int { size, .. }
                | Kind::Struct { size, .. }
                | Kind::Union { size, .. }
                | Kind::Enum { size, .. }
                | Kind::Enum64 { size, .. }
                | Kind::Datasec { size, .. }
                | Kind::Float { size } => *size as u64,
                Kind::Ptr(_) => 8,
                Kind::Array { elem, nelems, .. } => {
                    mult = mult.checked_mul(*nelems as u64)?;
                    id = *elem;
                    continue;
                }
                Kind::Typedef(t)
                | Kind::Volatile(t)
                | Kind::Const(t)
                | Kind::Restrict(t)
                | Kind::TypeTag(t)
                | Kind::Var { type_id: t, .. } => {
                    id = *t;
                    continue;
                }
                _ => return None,
            };
            return size.checked_mul(mult);
        }
        None
    }

    /// Alignment of a type in bytes (what the C compiler would use for it on BPF).
    pub fn align_of(&self, id: u32) -> u64 {
        let id = self.skip_mods_typedefs(id);
        match self.kind(id) {
            Kind::Int { size, .. }
            | Kind::Enum { size, .. }
            | Kind::Enum64 { size, .. }
            | Kind::Float { size } => (*size as u64).clamp(1, 8),
            Kind::Ptr(_) => 8,
            Kind::Array { elem, .. } => self.align_of(self.skip_mods_typedefs(*elem)),
            Kind::Struct { members, .. } | Kind::Union { members, .. } => members
                .iter()
                .map(|m| self.align_of_shallow(m.type_id))
                .max()
                .unwrap_or(1),
            _ => 1,
        }
    }

    // Member alignment without recursing into nested structs (bounded work on hostile input).
    fn align_of_shallow(&self, id: u32) -> u64 {
        let id = self.skip_mods_typedefs(id);
        match self.kind(id) {
            Kind::Struct { size, .. } | Kind::Union { size, .. } => {
                (*size as u64).clamp(1, 8).next_power_of_two().min(8)
            }
            Kind::Array { elem, .. } => match self.kind(self.skip_mods_typedefs(*elem)) {
                Kind::Struct { .. } | Kind::Union { .. } => 8,
                _ => self.align_of(*elem),
            },
            _ => self.align_of(id),
        }
    }

    /// The type's C spelling, e.g. `unsigned int`, `char[16]`, `struct event *`.
    /// Modifiers are left out, as ecc does for variable and member types.
    pub fn type_name(&self, id: u32) -> String {
        let mut suffix = String::new();
        let mut id = id;
        for _ in 0..MAX_CHAIN {
            let t = match self.get(id) {
                Some(t) => t,
                None => return format!("<bad type {id}>{suffix}"),
            };
            let name = self.str_at(t.name_off);
            match &t.kind {
                Kind::Void => return format!("void{suffix}"),
                Kind::Int { .. } | Kind::Float { .. } | Kind::Typedef(_) => {
                    return format!("{name}{suffix}")
                }
                Kind::Struct { .. } => return format!("struct {}{suffix}", or_anon(name)),
                Kind::Union { .. } => return format!("union {}{suffix}", or_anon(name)),
                Kind::Enum { .. } | Kind::Enum64 { .. } => {
                    return format!("enum {}{suffix}", or_anon(name))
                }
                Kind::Fwd { union } => {
                    let kw = if *union { "union" } else { "struct" };
                    return format!("{kw} {name}{suffix}");
                }
                Kind::Ptr(t) => {
                    suffix = format!(" *{suffix}");
                    id = *t;
                }
                Kind::Array { elem, nelems, .. } => {
                    suffix = format!("{suffix}[{nelems}]");
                    id = *elem;
                }
                Kind::Volatile(t) | Kind::Const(t) | Kind::Restrict(t) | Kind::TypeTag(t) => {
                    id = *t
                }
                Kind::Var { type_id, .. } => id = *type_id,
                Kind::FuncProto { .. } => return format!("func{suffix}"),
                Kind::Func { .. } | Kind::Datasec { .. } | Kind::DeclTag { .. } => {
                    return format!("{name}{suffix}")
                }
            }
        }
        format!("<deep type>{suffix}")
    }

    /// Finds a type by exact name and kind number.
    pub fn find(&self, name: &str, kind: u8) -> Option<u32> {
        self.types()
            .find(|(_, t)| t.kind.number() == kind && self.str_at(t.name_off) == name)
            .map(|(id, _)| id)
    }

    /// Finds the `DATASEC` named `name` (e.g. `.rodata`).
    pub fn datasec(&self, name: &str) -> Option<(u32, &[SecVar])> {
        self.types().find_map(|(id, t)| match &t.kind {
            Kind::Datasec { vars, .. } if self.str_at(t.name_off) == name => {
                Some((id, vars.as_slice()))
            }
            _ => None,
        })
    }

    /// Type ids by essential name (`foo___v2` -> `foo`), for CO-RE candidate search.
    pub fn essential_name_index(&self) -> HashMap<&str, Vec<u32>> {
        let mut map: HashMap<&str, Vec<u32>> = HashMap::new();
        for (id, t) in self.types() {
            let name = self.str_at(t.name_off);
            if !name.is_empty() {
                map.entry(essential_name(name)).or_default().push(id);
            }
        }
        map
    }

    /// Fills in what clang leaves for the linker in an object's `DATASEC`s, as libbpf
    /// does: the section size, and variable offsets from the ELF symbols of the same name.
    pub(crate) fn fixup_datasec(
        &mut self,
        section: &str,
        size: u64,
        symbol_offset: impl Fn(&str) -> Option<u64>,
    ) {
        let Some(id) = self.datasec(section).map(|(id, _)| id as usize) else {
            return;
        };
        // Resolve names first: the borrow of `self.types` must end before mutating it.
        let names: Vec<Option<u64>> = match &self.types[id].kind {
            Kind::Datasec { vars, .. } => vars
                .iter()
                .map(|v| symbol_offset(self.name(v.type_id)))
                .collect(),
            _ => return,
        };
        if let Kind::Datasec { size: s, vars } = &mut self.types[id].kind {
            if *s == 0 {
                *s = u32::try_from(size).unwrap_or(u32::MAX);
            }
            for (v, off) in vars.iter_mut().zip(names) {
                if let Some(off) = off.and_then(|o| u32::try_from(o).ok()) {
                    v.offset = off;
                }
            }
        }
    }

    /// Members of a struct or union (empty for other kinds).
    pub fn members(&self, id: u32) -> &[Member] {
        match self.kind(id) {
            Kind::Struct { members, .. } | Kind::Union { members, .. } => members,
            _ => &[],
        }
    }
}

fn or_anon(name: &str) -> &str {
    if name.is_empty() {
        "(anon)"
    } else {
        name
    }
}

/// libbpf's "essential" name: everything before a `___` flavour suffix.
pub fn essential_name(name: &str) -> &str {
    match name.find("___") {
        Some(i) if i > 0 => &name[..i],
        _ => name,
    }
}

// Outer Option: the record ran past the end; inner Result: a bad field.
fn parse_type(r: &mut Reader) -> Option<Result<Type>> {
    let at = r.pos;
    let name_off = r.u32()?;
    let info = r.u32()?;
    let size_or_type = r.u32()?;
    let vlen = (info & 0xffff) as usize;
    let kind_no = ((info >> 24) & 0x1f) as u8;
    let kflag = info >> 31 != 0;
    let kind = match kind_no {
        1 => {
            let v = r.u32()?;
            Kind::Int {
                size: size_or_type,
                encoding: ((v >> 24) & 0x0f) as u8,
                offset: ((v >> 16) & 0xff) as u8,
                bits: (v & 0xff) as u8,
            }
        }
        2 => Kind::Ptr(size_or_type),
        3 => Kind::Array {
            elem: r.u32()?,
            index: r.u32()?,
            nelems: r.u32()?,
        },
        4 | 5 => {
            let mut members = Vec::with_capacity(vlen.min(r.data.len() / 12));
            for _ in 0..vlen {
                let name_off = r.u32()?;
                let type_id = r.u32()?;
                let off = r.u32()?;
                let (bit_offset, bitfield_size) = if kflag {
                    (off & 0x00ff_ffff, off >> 24)
                } else {
                    (off, 0)
                };
                members.push(Member {
                    name_off,
                    type_id,
                    bit_offset,
                    bitfield_size,
                });
            }
            if kind_no == 4 {
                Kind::Struct {
                    size: size_or_type,
                    members,
                }
            } else {
                Kind::Union {
                    size: size_or_type,
                    members,
                }
            }
        }
        6 => {
            let mut values = Vec::with_capacity(vlen.min(r.data.len() / 8));
            for _ in 0..vlen {
                let name_off = r.u32()?;
                let v = r.u32()?;
                let value = if kflag { v as i32 as i64 } else { v as i64 };
                values.push(EnumValue { name_off, value });
            }
            Kind::Enum {
                size: size_or_type,
                signed: kflag,
                values,
            }
        }
        7 => Kind::Fwd { union: kflag },
        8 => Kind::Typedef(size_or_type),
        9 => Kind::Volatile(size_or_type),
        10 => Kind::Const(size_or_type),
        11 => Kind::Restrict(size_or_type),
        12 => Kind::Func {
            proto: size_or_type,
            linkage: vlen as u16,
        },
        13 => {
            let mut params = Vec::with_capacity(vlen.min(r.data.len() / 8));
            for _ in 0..vlen {
                params.push(Param {
                    name_off: r.u32()?,
                    type_id: r.u32()?,
                });
            }
            Kind::FuncProto {
                ret: size_or_type,
                params,
            }
        }
        14 => Kind::Var {
            type_id: size_or_type,
            linkage: r.u32()?,
        },
        15 => {
            let mut vars = Vec::with_capacity(vlen.min(r.data.len() / 12));
            for _ in 0..vlen {
                vars.push(SecVar {
                    type_id: r.u32()?,
                    offset: r.u32()?,
                    size: r.u32()?,
                });
            }
            Kind::Datasec {
                size: size_or_type,
                vars,
            }
        }
        16 => Kind::Float { size: size_or_type },
        17 => Kind::DeclTag {
            type_id: size_or_type,
            component: r.u32()? as i32,
        },
        18 => Kind::TypeTag(size_or_type),
        19 => {
            let mut values = Vec::with_capacity(vlen.min(r.data.len() / 12));
            for _ in 0..vlen {
                let name_off = r.u32()?;
                let lo = r.u32()? as u64;
                let hi = r.u32()? as u64;
                values.push(EnumValue {
                    name_off,
                    value: ((hi << 32) | lo) as i64,
                });
            }
            Kind::Enum64 {
                size: size_or_type,
                signed: kflag,
                values,
            }
        }
        k => {
            return Some(Err(btf_err(
                at,
                format!("unknown type kind {k} in type record"),
            )))
        }
    };
    Some(Ok(Type { name_off, kind }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob from raw type words and a string table.
    pub(crate) fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let type_len = (types.len() * 4) as u32;
        let mut v = Vec::new();
        v.extend_from_slice(&BTF_MAGIC.to_le_bytes());
        v.push(1);
        v.push(0);
        for w in [24u32, 0, type_len, type_len, strings.len() as u32] {
            v.extend_from_slice(&w.to_le_bytes());
        }
        for w in types {
            v.extend_from_slice(&w.to_le_bytes());
        }
        v.extend_from_slice(strings);
        v
    }

    const INT: u32 = 1 << 24;
    const PTR: u32 = 2 << 24;
    const TYPEDEF: u32 = 8 << 24;
    const CONST: u32 = 10 << 24;

    #[test]
    fn parses_int_ptr_typedef() {
        // [1] int "int" size 4 signed 32 bits; [2] ptr -> 1; [3] typedef "t" -> 2
        let b = blob(
            &[1, INT, 4, (1 << 24) | 32, 0, PTR, 1, 5, TYPEDEF, 2],
            b"\0int\0t\0",
        );
        let btf = Btf::parse(&b).unwrap();
        assert_eq!(btf.len(), 4);
        assert_eq!(btf.type_name(3), "t");
        assert_eq!(btf.type_name(2), "int *");
        assert_eq!(btf.size_of(3), Some(8));
        assert_eq!(btf.skip_mods_typedefs(3), 2);
    }

    #[test]
    fn rejects_out_of_range_ids() {
        let b = blob(&[0, PTR, 9], b"\0");
        let e = Btf::parse(&b).unwrap_err();
        assert!(e.to_string().contains("type id 9"), "{e}");
    }

    #[test]
    fn rejects_loops() {
        // [1] typedef -> 2; [2] const -> 1
        let b = blob(&[1, TYPEDEF, 2, 0, CONST, 1], b"\0a\0");
        let e = Btf::parse(&b).unwrap_err();
        assert!(e.to_string().contains("loop"), "{e}");
        // a pointer to itself
        let b = blob(&[0, PTR, 1], b"\0");
        assert!(Btf::parse(&b).is_err());
    }

    #[test]
    fn rejects_truncation_and_bad_magic() {
        let b = blob(&[1, INT, 4, 32], b"\0int\0");
        for cut in 0..b.len() {
            assert!(Btf::parse(&b[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = b.clone();
        bad[0] = 0;
        assert!(Btf::parse(&bad).unwrap_err().to_string().contains("magic"));
    }

    #[test]
    fn essential_names() {
        assert_eq!(essential_name("task_struct___old"), "task_struct");
        assert_eq!(essential_name("task_struct"), "task_struct");
        assert_eq!(essential_name("___x"), "___x");
    }
}
