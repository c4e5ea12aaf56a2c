//! Loader for libbpf-style BPF ELF objects and eunomia-bpf packages.
//!
//! The loader turns a clang-compiled object (`clang -O2 -g -target bpf`) or an eunomia-bpf
//! `package.json` into an [`Object`]: plain data that the runtime turns into running state.
//! It knows nothing of the runtime.
//!
//! # Public API (for the CLI and the runtime)
//!
//! Loading:
//! - [`load_object_file`]`(path, &LoadOptions)` / [`load_object`]`(bytes, name, &LoadOptions)`:
//!   an ELF object → [`Object`].
//! - [`load_package_file`]`(path, &LoadOptions)` / [`package::load_package`]`(bytes, name, &LoadOptions)`:
//!   an eunomia package → [`Package`] (its [`Package::object`] plus metadata: export types,
//!   sample maps, command-line variables).
//! - [`load_file`]`(path, &LoadOptions)`: either of the two, by content → [`Loaded`].
//! - [`load_btf_file`]`(path)`: a raw BTF file (e.g. `/sys/kernel/btf/vmlinux`) or an ELF's
//!   `.BTF`, to pass as [`LoadOptions::target_btf`] for CO-RE relocations. Without it, CO-RE
//!   relocations resolve against the object's own BTF (values stay as compiled).
//!
//! Globals: [`Object::set_global`]`(name, "value")` parses by the variable's BTF type and
//! writes it into the initial data of its `.rodata`/`.data`/`.bss` map;
//! [`Object::global_value`]`(name)` renders the current value. [`globals::value_kind`] and
//! [`globals::format_value`] classify and print any BTF-typed bytes (event fields: each
//! [`ExportMember`] carries its [`globals::ValueKind`]).
//!
//! Printing (`ebpf-sim inspect FILE [--json]`, `ebpf-sim disasm FILE --prog NAME`):
//! - [`summary::inspect_text`]`(&Loaded)` / [`summary::inspect_json`]`(&Loaded)`;
//! - [`summary::disasm_with_source`]`(&Program, format_insn)` interleaves source lines with
//!   instructions formatted by the caller (`ebpf_sim_vm::disasm::format_insn` once merged).
//!
//! Instruction conventions (map references as `lddw` with `src = pseudo::MAP_IDX` or
//! `MAP_IDX_VALUE`, calls and callbacks as relative slot offsets) are described on
//! [`Program::insns`]. Every error is a [`LoadError`] naming file, section and offset.

pub mod btf;
pub mod btf_ext;
mod core;
mod elf;
pub mod error;
pub mod globals;
mod maps;
pub mod model;
pub mod package;
mod reloc;
pub mod sections;
pub mod summary;

use std::collections::HashMap;
use std::path::Path;

use ebpf_sim_vm::isa::slots_from_bytes;

pub use crate::btf::Btf;
pub use crate::core::POISON_HELPER;
pub use crate::error::{ErrorKind, LoadError, Result};
pub use crate::model::*;
pub use crate::package::{ExportMember, ExportType, Package, PackageVar, SampleMap};
pub use crate::sections::{classify, AttachPoint, ProgramType};

use crate::btf_ext::BtfExt;
use crate::elf::{Elf, SecKind};
use crate::reloc::CodeSection;

/// How to load an object.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// BTF to resolve CO-RE relocations against, with a name for messages; None: the
    /// object's own BTF.
    pub target_btf: Option<(String, Btf)>,
    /// Overrides the object name (which prefixes global data map names).
    pub object_name: Option<String>,
}

/// A loaded file: a bare object or an eunomia package.
#[derive(Debug, Clone)]
pub enum Loaded {
    Object(Object),
    Package(Package),
}

impl Loaded {
    pub fn object(&self) -> &Object {
        match self {
            Loaded::Object(o) => o,
            Loaded::Package(p) => &p.object,
        }
    }

    pub fn object_mut(&mut self) -> &mut Object {
        match self {
            Loaded::Object(o) => o,
            Loaded::Package(p) => &mut p.object,
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| {
        LoadError::new(ErrorKind::Io(e.to_string())).in_file(&path.display().to_string())
    })
}

/// libbpf's object name: the file name up to its first dot.
pub fn object_name_from_path(path: &str) -> String {
    let base = path.rsplit('/').next().unwrap_or(path);
    base.split('.').next().unwrap_or(base).to_string()
}

/// Loads an ELF object file.
pub fn load_object_file(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Object> {
    let path = path.as_ref();
    let data = read(path)?;
    load_object(&data, &path.display().to_string(), opts)
}

/// Loads an eunomia-bpf package file.
pub fn load_package_file(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Package> {
    let path = path.as_ref();
    let data = read(path)?;
    package::load_package(&data, &path.display().to_string(), opts)
}

/// Loads either an ELF object or a package, telling them apart by content.
pub fn load_file(path: impl AsRef<Path>, opts: &LoadOptions) -> Result<Loaded> {
    let path = path.as_ref();
    let data = read(path)?;
    let name = path.display().to_string();
    if data.starts_with(b"\x7fELF") {
        load_object(&data, &name, opts).map(Loaded::Object)
    } else {
        package::load_package(&data, &name, opts).map(Loaded::Package)
    }
}

/// Loads a BTF file: raw BTF (such as /sys/kernel/btf/vmlinux) or an ELF's `.BTF`.
pub fn load_btf_file(path: impl AsRef<Path>) -> Result<Btf> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let data = read(path)?;
    load_btf(&data).map_err(|e| e.in_file(&name))
}

/// Parses raw BTF, or the `.BTF` section of an ELF object.
pub fn load_btf(data: &[u8]) -> Result<Btf> {
    if data.starts_with(b"\x7fELF") {
        let elf = Elf::parse(data)?;
        let sec = elf
            .section_by_name(".BTF")
            .ok_or_else(|| LoadError::new(ErrorKind::Btf("no .BTF section".into())))?;
        Btf::parse(sec.data)
    } else {
        Btf::parse(data)
    }
}

/// Loads an ELF object from memory; `file` names it in errors and gives the object name.
pub fn load_object(data: &[u8], file: &str, opts: &LoadOptions) -> Result<Object> {
    load_object_inner(data, opts, file).map_err(|e| e.in_file(file))
}

fn load_object_inner(data: &[u8], opts: &LoadOptions, file: &str) -> Result<Object> {
    let name = opts
        .object_name
        .clone()
        .unwrap_or_else(|| object_name_from_path(file));
    let elf = Elf::parse(data)?;

    let mut btf = match elf.section_by_name(".BTF") {
        Some(sec) => Some(Btf::parse(sec.data)?),
        None => None,
    };
    if let Some(btf) = btf.as_mut() {
        for sec in &elf.sections {
            if matches!(sec.kind, SecKind::Data | SecKind::Bss) {
                let syms = elf.symbols_in(sec.index);
                btf.fixup_datasec(&sec.name, sec.size, |var| {
                    syms.iter().find(|s| s.name == var).map(|s| s.value)
                });
            }
        }
    }
    let ext = match (elf.section_by_name(".BTF.ext"), btf.as_ref()) {
        (Some(sec), Some(btf)) => Some(BtfExt::parse(sec.data, btf)?),
        _ => None,
    };

    let maps = maps::collect(&elf, btf.as_ref(), &name)?;

    let target = match (&opts.target_btf, btf.as_ref()) {
        (Some((_, t)), Some(_)) => Some(core::Target::external(t)),
        (None, Some(_)) => Some(core::Target::Local),
        _ => None,
    };
    let mut code = HashMap::new();
    for sec in &elf.sections {
        if sec.kind != SecKind::Code || sec.data.is_empty() {
            continue;
        }
        let mut insns = slots_from_bytes(sec.data).map_err(|e| {
            LoadError::at(
                &sec.name,
                Some(sec.file_offset),
                ErrorKind::Elf(e.to_string()),
            )
        })?;
        let funcs = reloc::functions(&elf, sec.index, &sec.name, insns.len())?;
        let core_recs = ext.as_ref().and_then(|e| e.core_relocs.get(&sec.name));
        let core = match (core_recs, btf.as_ref(), target.as_ref()) {
            (Some(recs), Some(btf), Some(target)) => {
                core::relocate_section(btf, target, &sec.name, &mut insns, recs)?
            }
            _ => Vec::new(),
        };
        code.insert(
            sec.index,
            CodeSection {
                index: sec.index,
                name: sec.name.clone(),
                insns,
                funcs,
                core,
            },
        );
    }
    let programs = reloc::link_programs(&elf, &maps, &code, btf.as_ref(), ext.as_ref())?;
    let mut maps = maps;
    for (map, slot, func) in std::mem::take(&mut maps.prog_slots) {
        let p = programs
            .iter()
            .position(|p| p.name == func)
            .ok_or_else(|| {
                LoadError::at(
                    ".maps",
                    None,
                    ErrorKind::Map(format!(
                        "prog array initialiser: `{func}` is not a program of the object"
                    )),
                )
            })?;
        if let Some(def) = maps.defs.get_mut(map) {
            def.init_slots.push((slot, p));
        }
    }

    let license = elf.section_by_name("license").map(|s| {
        let end = s.data.iter().position(|&b| b == 0).unwrap_or(s.data.len());
        String::from_utf8_lossy(&s.data[..end]).into_owned()
    });
    let mut source_files: Vec<String> = Vec::new();
    for p in &programs {
        for l in &p.line_info {
            if !l.file.is_empty() && !source_files.contains(&l.file) {
                source_files.push(l.file.clone());
            }
        }
    }
    let core_target = match (&opts.target_btf, &btf) {
        (_, None) => CoreTarget::None,
        (Some((n, _)), Some(_)) => CoreTarget::External(n.clone()),
        (None, Some(_)) => CoreTarget::Local,
    };
    Ok(Object {
        name,
        license,
        programs,
        maps: maps.defs,
        globals: maps.globals,
        btf,
        source_files,
        core_target,
    })
}
