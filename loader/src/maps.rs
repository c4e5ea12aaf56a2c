//! Map definitions: BTF-defined maps in `.maps`, legacy `struct bpf_map_def`s in `maps`,
//! and global data sections as single-value array maps; plus the global variables in them.

use crate::btf::{Btf, Kind};
use crate::elf::{Elf, SecKind, SymKind};
use crate::error::{ErrorKind, LoadError, Result};
use crate::model::{map_flags, map_type, GlobalVar, MapDef, MapOrigin};

/// Where a map lives in the ELF, so relocations against its symbol can find it.
#[derive(Debug, Clone)]
pub(crate) struct MapPlace {
    pub section: usize,
    pub start: u64,
    pub end: u64,
    pub map: usize,
}

#[derive(Debug, Default)]
pub(crate) struct Maps {
    pub defs: Vec<MapDef>,
    pub places: Vec<MapPlace>,
    pub globals: Vec<GlobalVar>,
    /// `.values = { [slot] = &prog }` initialisers of prog arrays: (map index, slot,
    /// function name), resolved to program indexes once the programs are built.
    pub prog_slots: Vec<(usize, u32, String)>,
}

impl Maps {
    /// The map a symbol at (`section`, `value`) belongs to.
    pub fn find(&self, section: usize, value: u64) -> Option<&MapPlace> {
        self.places.iter().find(|p| {
            p.section == section && value >= p.start && value < p.end.max(p.start.saturating_add(1))
        })
    }
}

fn map_err(section: &str, offset: Option<u64>, msg: impl Into<String>) -> LoadError {
    LoadError::at(section, offset, ErrorKind::Map(msg.into()))
}

/// Whether a section holds global data that libbpf turns into a map.
pub(crate) fn is_data_section(name: &str) -> bool {
    let matches = |base: &str| name == base || name.starts_with(&format!("{base}."));
    matches(".data") || matches(".rodata") || matches(".bss")
}

/// libbpf's name for a global data map: up to 8 (or so) characters of the object name,
/// then the section name; sections with a second dot (`.rodata.str1.1`) keep their own name.
pub(crate) fn internal_map_name(obj_name: &str, section: &str) -> String {
    const OBJ_NAME_LEN: usize = 16;
    let sfx_len = section.len().max(7);
    let pfx_len = if section.get(1..).is_some_and(|s| s.contains('.')) {
        0
    } else {
        (OBJ_NAME_LEN - 1)
            .saturating_sub(sfx_len)
            .min(obj_name.len())
    };
    let mut name: String = obj_name.chars().take(pfx_len).collect();
    name.push_str(section);
    let name: String = name
        .chars()
        .take(OBJ_NAME_LEN - 1)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    name
}

pub(crate) fn collect(elf: &Elf, btf: Option<&Btf>, obj_name: &str) -> Result<Maps> {
    let mut maps = Maps::default();
    if let Some(sec) = elf.section_by_name("maps") {
        legacy_maps(elf, sec.index, &mut maps)?;
    }
    if let Some(sec) = elf.section_by_name(".maps") {
        let btf =
            btf.ok_or_else(|| map_err(".maps", None, "BTF-defined maps need a .BTF section"))?;
        btf_maps(elf, btf, sec.index, &mut maps)?;
    }
    for sec in &elf.sections {
        if !matches!(sec.kind, SecKind::Data | SecKind::Bss) || !is_data_section(&sec.name) {
            continue;
        }
        if sec.size == 0 {
            continue;
        }
        let size = u32::try_from(sec.size)
            .map_err(|_| map_err(&sec.name, None, "data section larger than 4 GiB"))?;
        let readonly = sec.name.starts_with(".rodata");
        let data = if sec.kind == SecKind::Bss {
            vec![0; size as usize]
        } else {
            sec.data.to_vec()
        };
        let idx = maps.defs.len();
        maps.defs.push(MapDef {
            name: internal_map_name(obj_name, &sec.name),
            section: sec.name.clone(),
            origin: MapOrigin::GlobalData { readonly },
            map_type: map_type::ARRAY,
            key_size: 4,
            value_size: size,
            max_entries: 1,
            flags: map_flags::MMAPABLE | if readonly { map_flags::RDONLY_PROG } else { 0 },
            key_type_id: None,
            value_type_id: btf.and_then(|b| b.datasec(&sec.name)).map(|(id, _)| id),
            inner: None,
            init_slots: Vec::new(),
            numa_node: 0,
            map_extra: 0,
            data,
        });
        maps.places.push(MapPlace {
            section: sec.index,
            start: 0,
            end: sec.size,
            map: idx,
        });
        globals_of(
            elf,
            btf,
            sec.index,
            &sec.name,
            sec.size,
            idx,
            &mut maps.globals,
        )?;
    }
    Ok(maps)
}

fn globals_of(
    elf: &Elf,
    btf: Option<&Btf>,
    section: usize,
    name: &str,
    size: u64,
    map: usize,
    out: &mut Vec<GlobalVar>,
) -> Result<()> {
    if let Some((btf, vars)) = btf.and_then(|b| Some((b, b.datasec(name)?.1))) {
        for v in vars {
            let var_name = btf.name(v.type_id).to_string();
            let type_id = match btf.kind(v.type_id) {
                Kind::Var { type_id, .. } => *type_id,
                _ => continue,
            };
            if v.offset as u64 + v.size as u64 > size {
                return Err(map_err(
                    name,
                    Some(v.offset as u64),
                    format!(
                        "variable {var_name} ({} bytes) runs past the section's {size} bytes",
                        v.size
                    ),
                ));
            }
            out.push(GlobalVar {
                name: var_name,
                section: name.to_string(),
                map,
                offset: v.offset,
                size: v.size,
                type_id,
                type_name: btf.type_name(btf.skip_mods(type_id)),
            });
        }
        return Ok(());
    }
    // Without BTF, symbols give names, offsets and sizes but no types.
    for sym in elf.symbols_in(section) {
        if sym.kind != SymKind::Object || sym.value.saturating_add(sym.size) > size {
            continue;
        }
        out.push(GlobalVar {
            name: sym.name.clone(),
            section: name.to_string(),
            map,
            offset: sym.value as u32,
            size: sym.size as u32,
            type_id: 0,
            type_name: format!("u8[{}]", sym.size),
        });
    }
    Ok(())
}

fn legacy_maps(elf: &Elf, section: usize, maps: &mut Maps) -> Result<()> {
    let Some(sec) = elf.section(section) else {
        return Ok(());
    };
    let syms: Vec<_> = elf
        .symbols_in(section)
        .into_iter()
        .filter(|s| matches!(s.kind, SymKind::Object | SymKind::NoType) && !s.name.is_empty())
        .collect();
    if syms.is_empty() {
        return Ok(());
    }
    let def_size = sec.data.len() / syms.len();
    if def_size < 16 || def_size % 4 != 0 || def_size * syms.len() != sec.data.len() {
        return Err(map_err(
            "maps",
            Some(0),
            format!(
                "{} bytes do not divide into {} map definitions of at least 16 bytes",
                sec.data.len(),
                syms.len()
            ),
        ));
    }
    for sym in syms {
        let start = sym.value;
        let field = |i: u64| -> Result<u32> {
            let at = start.saturating_add(i * 4);
            if i * 4 >= def_size as u64 {
                return Ok(0);
            }
            let b = usize::try_from(at)
                .ok()
                .and_then(|a| sec.data.get(a..a.checked_add(4)?))
                .ok_or_else(|| map_err("maps", Some(at), format!("map {} truncated", sym.name)))?;
            Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        };
        let idx = maps.defs.len();
        maps.defs.push(MapDef {
            name: sym.name.clone(),
            section: "maps".into(),
            origin: MapOrigin::Legacy,
            map_type: field(0)?,
            key_size: field(1)?,
            value_size: field(2)?,
            max_entries: field(3)?,
            flags: field(4)?,
            key_type_id: None,
            value_type_id: None,
            inner: None,
            init_slots: Vec::new(),
            numa_node: 0,
            map_extra: 0,
            data: Vec::new(),
        });
        maps.places.push(MapPlace {
            section,
            start,
            end: start.saturating_add(def_size as u64),
            map: idx,
        });
    }
    Ok(())
}

/// `__uint(name, N)` is `int (*name)[N]`: N is the array's length.
fn uint_member(btf: &Btf, type_id: u32) -> Option<u64> {
    let t = btf.skip_mods_typedefs(type_id);
    match btf.kind(t) {
        Kind::Ptr(arr) => match btf.kind(btf.skip_mods_typedefs(*arr)) {
            Kind::Array { nelems, .. } => Some(*nelems as u64),
            _ => None,
        },
        // `__ulong(name, N)` is an enum with the single value N.
        Kind::Enum { values, .. } | Kind::Enum64 { values, .. } => {
            values.first().map(|v| v.value as u64)
        }
        _ => None,
    }
}

/// Parses one BTF map definition struct.
fn btf_map_def(btf: &Btf, name: &str, def_type: u32, depth: u32) -> Result<(MapDef, u64)> {
    let sid = btf.skip_mods_typedefs(def_type);
    if !matches!(btf.kind(sid), Kind::Struct { .. }) {
        return Err(map_err(
            ".maps",
            None,
            format!(
                "map {name}: definition is a {}, not a struct",
                btf.kind(sid).kind_name()
            ),
        ));
    }
    let mut def = MapDef {
        name: name.to_string(),
        section: ".maps".into(),
        origin: MapOrigin::Btf,
        map_type: 0,
        key_size: 0,
        value_size: 0,
        max_entries: 0,
        flags: 0,
        key_type_id: None,
        value_type_id: None,
        inner: None,
        init_slots: Vec::new(),
        numa_node: 0,
        map_extra: 0,
        data: Vec::new(),
    };
    let mut values_bit_offset = 0u64;
    let uint = |m: &crate::btf::Member, what: &str| -> Result<u32> {
        uint_member(btf, m.type_id)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                map_err(
                    ".maps",
                    None,
                    format!("map {name}: `{what}` is not __uint()"),
                )
            })
    };
    for m in btf.members(sid) {
        let mname = btf.str_at(m.name_off);
        match mname {
            "type" => def.map_type = uint(m, mname)?,
            "max_entries" => def.max_entries = uint(m, mname)?,
            "map_flags" => def.flags = uint(m, mname)?,
            "numa_node" => def.numa_node = uint(m, mname)?,
            "key_size" => def.key_size = uint(m, mname)?,
            "value_size" => def.value_size = uint(m, mname)?,
            "map_extra" => def.map_extra = uint_member(btf, m.type_id).unwrap_or(0),
            "pinning" => {} // pinning only matters to a real kernel's bpffs
            "key" | "value" => {
                let Kind::Ptr(t) = btf.kind(btf.skip_mods_typedefs(m.type_id)) else {
                    return Err(map_err(
                        ".maps",
                        None,
                        format!("map {name}: `{mname}` is not __type()"),
                    ));
                };
                let size = btf
                    .size_of(*t)
                    .and_then(|s| u32::try_from(s).ok())
                    .ok_or_else(|| {
                        map_err(
                            ".maps",
                            None,
                            format!("map {name}: `{mname}` type has no size"),
                        )
                    })?;
                if mname == "key" {
                    def.key_size = size;
                    def.key_type_id = Some(*t);
                } else {
                    def.value_size = size;
                    def.value_type_id = Some(*t);
                }
            }
            "values" => {
                values_bit_offset = m.bit_offset as u64;
                // `__array(values, struct inner)`: an array of pointers to the inner definition.
                let Kind::Array { elem, .. } = btf.kind(btf.skip_mods_typedefs(m.type_id)) else {
                    return Err(map_err(
                        ".maps",
                        None,
                        format!("map {name}: `values` is not __array()"),
                    ));
                };
                let Kind::Ptr(inner) = btf.kind(btf.skip_mods_typedefs(*elem)) else {
                    return Err(map_err(
                        ".maps",
                        None,
                        format!("map {name}: `values` elements are not pointers"),
                    ));
                };
                def.value_size = 4;
                if def.key_size == 0 {
                    def.key_size = 4;
                }
                let inner = btf.skip_mods_typedefs(*inner);
                if matches!(btf.kind(inner), Kind::Struct { .. }) {
                    if depth > 0 {
                        return Err(map_err(
                            ".maps",
                            None,
                            format!("map {name}: nested map-in-map"),
                        ));
                    }
                    let (d, _) = btf_map_def(btf, &format!("{name}.inner"), inner, depth + 1)?;
                    def.inner = Some(Box::new(d));
                }
            }
            _ => {} // libbpf ignores unknown fields only with a warning; so do we
        }
    }
    if def.map_type == map_type::PERF_EVENT_ARRAY {
        // libbpf's defaults: an array of perf event fds indexed by CPU.
        if def.key_size == 0 {
            def.key_size = 4;
        }
        if def.value_size == 0 {
            def.value_size = 4;
        }
    }
    Ok((def, values_bit_offset / 8))
}

fn btf_maps(elf: &Elf, btf: &Btf, section: usize, maps: &mut Maps) -> Result<()> {
    let Some((_, vars)) = btf.datasec(".maps") else {
        return Err(map_err(".maps", None, "no DATASEC .maps in BTF"));
    };
    let mut values_offsets = Vec::new();
    let first = maps.defs.len();
    for v in vars {
        let name = btf.name(v.type_id).to_string();
        let Kind::Var { type_id, .. } = btf.kind(v.type_id) else {
            return Err(map_err(
                ".maps",
                None,
                format!("DATASEC entry {} is not a VAR", v.type_id),
            ));
        };
        let (def, values_off) = btf_map_def(btf, &name, *type_id, 0)?;
        let idx = maps.defs.len();
        maps.defs.push(def);
        maps.places.push(MapPlace {
            section,
            start: v.offset as u64,
            end: v.offset as u64 + v.size as u64,
            map: idx,
        });
        values_offsets.push(values_off);
    }
    // `.values = { &inner }` initialisers of map-in-maps, and `.values = { &prog }` of prog
    // arrays, come as relocations in `.maps`.
    let sec = elf.section(section);
    for r in elf.relocs.get(&section).map(Vec::as_slice).unwrap_or(&[]) {
        let Some(sec) = sec else { break };
        let sym = elf.reloc_symbol(sec, r)?;
        let Some(outer) = maps.find(section, r.offset).map(|p| (p.map, p.start)) else {
            return Err(map_err(
                ".maps",
                Some(r.offset),
                "relocation outside every map",
            ));
        };
        let is_prog_array = maps
            .defs
            .get(outer.0)
            .is_some_and(|d| d.map_type == map_type::PROG_ARRAY);
        let target = if is_prog_array {
            if sym.kind != SymKind::Func {
                return Err(map_err(
                    ".maps",
                    Some(r.offset),
                    format!("`{}` is not a program (prog array initialiser)", sym.name),
                ));
            }
            None
        } else {
            Some(
                sym.section
                    .and_then(|s| maps.find(s, sym.value))
                    .map(|p| p.map)
                    .ok_or_else(|| {
                        map_err(
                            ".maps",
                            Some(r.offset),
                            format!("`{}` is not a map", sym.name),
                        )
                    })?,
            )
        };
        let values_off = outer
            .0
            .checked_sub(first)
            .and_then(|i| values_offsets.get(i))
            .copied()
            .unwrap_or(0);
        let slot = r
            .offset
            .checked_sub(outer.1 + values_off)
            .map(|d| d / 8)
            .ok_or_else(|| map_err(".maps", Some(r.offset), "relocation before `values`"))?;
        match target {
            Some(target) => {
                if let Some(def) = maps.defs.get_mut(outer.0) {
                    def.init_slots.push((slot as u32, target));
                }
            }
            None => maps
                .prog_slots
                .push((outer.0, slot as u32, sym.name.clone())),
        }
    }
    Ok(())
}
