//! eunomia-bpf `package.json`: a base64 zlib-compressed BPF object plus metadata (programs,
//! maps with their sample/print settings, export types, command-line variables).

use std::io::Read;

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::btf::Kind;
use crate::error::{ErrorKind, LoadError, Result};
use crate::globals::{value_kind, ValueKind};
use crate::model::Object;
use crate::{load_object, LoadOptions};

/// Largest decompressed object we accept (a guard against zip bombs).
const MAX_OBJECT_SIZE: u64 = 256 << 20;

#[derive(Debug, Deserialize)]
struct RawPackage {
    bpf_object: String,
    bpf_object_size: u64,
    meta: RawMeta,
}

#[derive(Debug, Deserialize)]
struct RawMeta {
    bpf_skel: RawSkel,
    #[serde(default)]
    export_types: Vec<RawExport>,
    #[serde(default)]
    enable_multiple_export_types: bool,
    #[serde(default)]
    eunomia_version: Option<String>,
    #[serde(default)]
    poll_timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct RawSkel {
    obj_name: String,
    #[serde(default)]
    progs: Option<Vec<RawProg>>,
    #[serde(default)]
    maps: Vec<RawMap>,
    #[serde(default)]
    data_sections: Vec<RawDataSection>,
    #[serde(default)]
    doc: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawProg {
    name: String,
    attach: String,
    #[serde(default)]
    link: bool,
}

#[derive(Debug, Deserialize)]
struct RawMap {
    name: String,
    ident: String,
    #[serde(default)]
    mmaped: bool,
    #[serde(default)]
    sample: Option<RawSample>,
}

#[derive(Debug, Deserialize)]
struct RawSample {
    #[serde(default)]
    interval: u64,
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    unit: Option<String>,
    #[serde(default)]
    clear_map: bool,
}

#[derive(Debug, Deserialize)]
struct RawDataSection {
    name: String,
    #[serde(default)]
    variables: Vec<RawVar>,
}

#[derive(Debug, Deserialize)]
struct RawVar {
    name: String,
    #[serde(rename = "type")]
    ty: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    cmdarg: Option<RawCmdArg>,
}

#[derive(Debug, Deserialize)]
struct RawCmdArg {
    #[serde(default)]
    default: Option<Value>,
    #[serde(default)]
    long: Option<String>,
    #[serde(default)]
    short: Option<String>,
    #[serde(default)]
    help: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawExport {
    name: String,
    size: u64,
    type_id: u32,
    #[serde(default)]
    members: Vec<RawMember>,
}

#[derive(Debug, Deserialize)]
struct RawMember {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

/// A loaded package: the object and what the runtime needs from the metadata.
#[derive(Debug, Clone)]
pub struct Package {
    pub object: Object,
    /// The skeleton's object name (e.g. `opensnoop_bpf`).
    pub obj_name: String,
    /// Programs the package asks to attach: (program name, attach section, link).
    pub progs: Vec<(String, String, bool)>,
    /// Export types, resolved through the object's BTF. Only the first is used unless
    /// [`Package::multiple_export_types`].
    pub export_types: Vec<ExportType>,
    pub multiple_export_types: bool,
    /// Maps printed periodically.
    pub sample_maps: Vec<SampleMap>,
    /// Global variables that become command-line options.
    pub variables: Vec<PackageVar>,
    pub eunomia_version: Option<String>,
    pub poll_timeout_ms: Option<u64>,
    /// The `doc` block, as given.
    pub doc: Option<Value>,
}

/// The layout of an event type the programs emit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportType {
    pub name: String,
    pub type_id: u32,
    pub size: u64,
    pub members: Vec<ExportMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExportMember {
    pub name: String,
    /// C type text from the package (e.g. `char[16]`).
    pub type_name: String,
    pub offset: u64,
    pub size: u64,
    /// The member's type id in the object's BTF.
    pub type_id: u32,
    /// The member's type as the BTF spells it (normally equal to `type_name`).
    pub btf_type_name: String,
    /// How to decode and print the member.
    pub value_kind: ValueKind,
    /// Non-zero for bitfields.
    pub bitfield_bits: u32,
    pub bit_offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SampleMap {
    /// Index into [`Object::maps`].
    pub map: usize,
    pub name: String,
    pub interval_ms: u64,
    /// `log2_hist`, `linear_hist` or `default_kv`.
    pub print_type: String,
    pub unit: Option<String>,
    pub clear_map: bool,
}

/// A global variable exposed as a command-line option.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PackageVar {
    pub name: String,
    /// `.rodata` or `.bss` (or another data section).
    pub section: String,
    pub type_name: String,
    pub description: Option<String>,
    /// `cmdarg.long`, else the variable name.
    pub long: String,
    pub short: Option<String>,
    pub help: Option<String>,
    pub default: Option<Value>,
    pub offset: u32,
    pub size: u32,
}

fn perr(msg: impl Into<String>) -> LoadError {
    LoadError::new(ErrorKind::Package(msg.into()))
}

/// Parses a package, decodes and loads its object, and checks the metadata against it.
pub fn load_package(data: &[u8], file: &str, opts: &LoadOptions) -> Result<Package> {
    load_inner(data, file, opts).map_err(|e| e.in_file(file))
}

/// Decodes `bpf_object` (base64 of a zlib stream) and checks it against `bpf_object_size`.
pub fn decode_object(b64: &str, expected: u64) -> Result<Vec<u8>> {
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| LoadError::at("bpf_object", None, ErrorKind::Base64(e.to_string())))?;
    let mut out = Vec::new();
    let limit = expected.min(MAX_OBJECT_SIZE) + 1;
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| LoadError::at("bpf_object", None, ErrorKind::Zlib(e.to_string())))?;
    if out.len() as u64 != expected {
        let actual = if out.len() as u64 >= limit {
            // We stopped reading; say "more than".
            limit
        } else {
            out.len() as u64
        };
        return Err(LoadError::at(
            "bpf_object",
            None,
            ErrorKind::SizeMismatch { expected, actual },
        ));
    }
    Ok(out)
}

fn load_inner(data: &[u8], file: &str, opts: &LoadOptions) -> Result<Package> {
    let raw: RawPackage =
        serde_json::from_slice(data).map_err(|e| LoadError::new(ErrorKind::Json(e.to_string())))?;
    let elf = decode_object(&raw.bpf_object, raw.bpf_object_size)?;
    let mut obj_opts = opts.clone();
    if obj_opts.object_name.is_none() {
        obj_opts.object_name = Some(raw.meta.bpf_skel.obj_name.clone());
    }
    let mut object = load_object(&elf, &format!("{file} (bpf_object)"), &obj_opts)?;
    let skel = &raw.meta.bpf_skel;

    let mut progs = Vec::new();
    for p in skel.progs.iter().flatten() {
        let prog = object
            .program(&p.name)
            .ok_or_else(|| perr(format!("program {} is not in the object", p.name)))?;
        if prog.section != p.attach {
            return Err(perr(format!(
                "program {} is in section {} but the package says {}",
                p.name, prog.section, p.attach
            )));
        }
        progs.push((p.name.clone(), p.attach.clone(), p.link));
    }

    let mut sample_maps = Vec::new();
    for m in &skel.maps {
        let idx = object
            .map_index(&m.name)
            .ok_or_else(|| perr(format!("map {} ({}) is not in the object", m.name, m.ident)))?;
        let _ = m.mmaped;
        if let Some(s) = &m.sample {
            sample_maps.push(SampleMap {
                map: idx,
                name: m.name.clone(),
                interval_ms: s.interval,
                print_type: s.kind.clone().unwrap_or_else(|| "default_kv".into()),
                unit: s.unit.clone(),
                clear_map: s.clear_map,
            });
        }
    }

    let export_types = raw
        .meta
        .export_types
        .iter()
        .map(|e| resolve_export(&object, e))
        .collect::<Result<Vec<_>>>()?;

    let mut variables = Vec::new();
    for sec in &skel.data_sections {
        for v in &sec.variables {
            let g = object
                .global(&v.name)
                .filter(|g| g.section == sec.name)
                .cloned()
                .ok_or_else(|| {
                    perr(format!(
                        "variable {} is not in section {} of the object",
                        v.name, sec.name
                    ))
                })?;
            if let Some(value) = &v.value {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                if !text.is_empty() {
                    object
                        .set_global(&v.name, &text)
                        .map_err(|e| perr(format!("default of {}: {}", v.name, e.kind)))?;
                }
            }
            // ecc's placeholders that keep export types alive are not options.
            if v.name.starts_with("__eunomia_dummy") {
                continue;
            }
            let cmd = v.cmdarg.as_ref();
            variables.push(PackageVar {
                name: v.name.clone(),
                section: sec.name.clone(),
                type_name: v.ty.clone(),
                description: v.description.clone(),
                long: cmd
                    .and_then(|c| c.long.clone())
                    .unwrap_or_else(|| v.name.clone()),
                short: cmd.and_then(|c| c.short.clone()),
                help: cmd.and_then(|c| c.help.clone()),
                default: cmd.and_then(|c| c.default.clone()),
                offset: g.offset,
                size: g.size,
            });
        }
    }

    Ok(Package {
        object,
        obj_name: skel.obj_name.clone(),
        progs,
        export_types,
        multiple_export_types: raw.meta.enable_multiple_export_types,
        sample_maps,
        variables,
        eunomia_version: raw.meta.eunomia_version.clone(),
        poll_timeout_ms: raw.meta.poll_timeout_ms,
        doc: skel.doc.clone(),
    })
}

/// Lays out an export type from the object's BTF and checks it against the package.
fn resolve_export(object: &Object, e: &RawExport) -> Result<ExportType> {
    let btf = object
        .btf
        .as_ref()
        .ok_or_else(|| perr(format!("export type {} needs BTF", e.name)))?;
    let id = btf.skip_mods_typedefs(e.type_id);
    let (size, members) = match btf.get(id).map(|t| &t.kind) {
        Some(Kind::Struct { size, members }) | Some(Kind::Union { size, members }) => {
            (*size, members)
        }
        _ => {
            return Err(perr(format!(
                "export type {}: BTF type {} is not a struct",
                e.name, e.type_id
            )))
        }
    };
    if btf.name(id) != e.name {
        return Err(perr(format!(
            "export type {}: BTF type {} is named {:?}",
            e.name,
            e.type_id,
            btf.name(id)
        )));
    }
    if size as u64 != e.size {
        return Err(perr(format!(
            "export type {}: size {} in the package, {} in BTF",
            e.name, e.size, size
        )));
    }
    let mut out = Vec::new();
    for (i, rm) in e.members.iter().enumerate() {
        let m = members
            .iter()
            .find(|m| btf.str_at(m.name_off) == rm.name)
            .ok_or_else(|| {
                perr(format!(
                    "export type {}: member {} (#{i}) not in BTF",
                    e.name, rm.name
                ))
            })?;
        out.push(ExportMember {
            name: rm.name.clone(),
            type_name: rm.ty.clone(),
            offset: m.bit_offset as u64 / 8,
            size: btf.size_of(m.type_id).unwrap_or(0),
            type_id: m.type_id,
            btf_type_name: btf.type_name(btf.skip_mods(m.type_id)),
            value_kind: value_kind(btf, m.type_id),
            bitfield_bits: m.bitfield_size,
            bit_offset: m.bit_offset as u64,
        });
    }
    Ok(ExportType {
        name: e.name.clone(),
        type_id: e.type_id,
        size: e.size,
        members: out,
    })
}

/// The layout of a struct from BTF, as an export type (all of its named members).
pub fn export_type_of_struct(btf: &crate::Btf, type_id: u32) -> Option<ExportType> {
    let id = btf.skip_mods_typedefs(type_id);
    let (size, members) = match btf.get(id).map(|t| &t.kind) {
        Some(Kind::Struct { size, members }) | Some(Kind::Union { size, members }) => {
            (*size, members)
        }
        _ => return None,
    };
    let members = members
        .iter()
        .filter(|m| !btf.str_at(m.name_off).is_empty())
        .map(|m| ExportMember {
            name: btf.str_at(m.name_off).to_string(),
            type_name: btf.type_name(btf.skip_mods(m.type_id)),
            offset: m.bit_offset as u64 / 8,
            size: btf.size_of(m.type_id).unwrap_or(0),
            type_id: m.type_id,
            btf_type_name: btf.type_name(btf.skip_mods(m.type_id)),
            value_kind: value_kind(btf, m.type_id),
            bitfield_bits: m.bitfield_size,
            bit_offset: m.bit_offset as u64,
        })
        .collect();
    Some(ExportType {
        name: btf.name(id).to_string(),
        type_id: id,
        size: size as u64,
        members,
    })
}

/// The event type of a bare object, found as ecc finds it: the struct a global
/// `__eunomia_dummy_NAME_ptr` points to, else a struct named `event`.
pub fn infer_export_type(object: &Object) -> Option<ExportType> {
    let btf = object.btf.as_ref()?;
    let from_dummy = object.globals.iter().find_map(|g| {
        if !(g.name.starts_with("__eunomia_dummy_") && g.name.ends_with("_ptr")) {
            return None;
        }
        match btf.get(btf.skip_mods_typedefs(g.type_id)).map(|t| &t.kind) {
            Some(Kind::Ptr(type_id)) => Some(*type_id),
            _ => None,
        }
    });
    let id = from_dummy.or_else(|| btf.find("event", 4))?;
    export_type_of_struct(btf, id)
}
