//! Reads a BPF ELF object into plain section, symbol and relocation lists (with the
//! `object` crate), checking the header and every table it uses.

use std::collections::HashMap;

use object::elf;
use object::read::elf::{ElfFile64, FileHeader, Rel, SectionHeader};
use object::{Endianness, Object as _, ObjectSection, ObjectSymbol, SectionIndex};

use crate::error::{ErrorKind, LoadError, Result};

/// What a section holds, as far as the loader cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SecKind {
    /// Executable code (`SHF_EXECINSTR`).
    Code,
    /// Initialised data (`SHT_PROGBITS`, allocated).
    Data,
    /// Zero-initialised data (`SHT_NOBITS`).
    Bss,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Section<'a> {
    pub index: usize,
    pub name: String,
    pub kind: SecKind,
    pub data: &'a [u8],
    pub size: u64,
    /// File offset, for error messages.
    pub file_offset: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SymKind {
    Func,
    Object,
    Section,
    NoType,
    Other,
}

#[derive(Debug, Clone)]
pub(crate) struct Symbol {
    pub name: String,
    pub value: u64,
    pub size: u64,
    /// Section index, None if undefined (an `extern`) or absolute.
    pub section: Option<usize>,
    pub kind: SymKind,
}

#[derive(Debug, Clone)]
pub(crate) struct Reloc {
    /// Byte offset inside the relocated section.
    pub offset: u64,
    /// Index into [`Elf::symbols`].
    pub symbol: usize,
    pub r_type: u32,
}

/// BPF relocation types used in code: `lddw` immediates and call targets.
pub(crate) mod r_bpf {
    pub const R_BPF_64_64: u32 = 1;
    pub const R_BPF_64_32: u32 = 10;
}

/// The parts of an ELF file the loader uses.
#[derive(Debug, Clone)]
pub(crate) struct Elf<'a> {
    pub sections: Vec<Section<'a>>,
    /// Symbols by ELF symbol index (index 0 is the null symbol).
    pub symbols: Vec<Option<Symbol>>,
    /// Relocations by the index of the section they apply to.
    pub relocs: HashMap<usize, Vec<Reloc>>,
}

fn elf_err(section: Option<&str>, offset: Option<u64>, msg: impl std::fmt::Display) -> LoadError {
    let mut e = LoadError::new(ErrorKind::Elf(msg.to_string()));
    e.section = section.map(str::to_string);
    e.offset = offset;
    e
}

impl<'a> Elf<'a> {
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>> {
        if data.len() < 4 || &data[..4] != b"\x7fELF" {
            return Err(LoadError::new(ErrorKind::NotElf(
                "missing \\x7fELF magic".into(),
            )));
        }
        if data.get(4) != Some(&elf::ELFCLASS64) {
            return Err(LoadError::new(ErrorKind::NotElf(
                "not a 64-bit ELF (BPF objects are ELFCLASS64)".into(),
            )));
        }
        if data.get(5) == Some(&elf::ELFDATA2MSB) {
            return Err(LoadError::new(ErrorKind::BigEndian));
        }
        let file = ElfFile64::<Endianness>::parse(data)
            .map_err(|e| LoadError::at("ELF header", Some(0), ErrorKind::Elf(e.to_string())))?;
        let endian = file.endian();
        let machine = file.elf_header().e_machine(endian);
        if machine != elf::EM_BPF {
            return Err(LoadError::at(
                "ELF header",
                Some(0x12),
                ErrorKind::NotBpf(machine),
            ));
        }

        let mut sections = Vec::new();
        let mut relocs = HashMap::new();
        for s in file.sections() {
            let name = s
                .name()
                .map_err(|e| elf_err(None, None, format!("section {}: {e}", s.index().0)))?
                .to_string();
            let hdr = s.elf_section_header();
            let sh_type = hdr.sh_type(endian);
            let sh_flags = hdr.sh_flags(endian);
            let file_offset = hdr.sh_offset(endian);
            let kind = if sh_type == elf::SHT_NOBITS {
                SecKind::Bss
            } else if sh_type == elf::SHT_PROGBITS && sh_flags & elf::SHF_EXECINSTR as u64 != 0 {
                SecKind::Code
            } else if sh_type == elf::SHT_PROGBITS && sh_flags & elf::SHF_ALLOC as u64 != 0 {
                SecKind::Data
            } else {
                SecKind::Other
            };
            let data = if kind == SecKind::Bss {
                &[][..]
            } else {
                s.data().map_err(|_| {
                    LoadError::at(
                        &name,
                        Some(file_offset),
                        ErrorKind::Truncated {
                            need: file_offset.saturating_add(hdr.sh_size(endian)),
                            have: data.len() as u64,
                        },
                    )
                })?
            };
            if matches!(kind, SecKind::Code | SecKind::Data | SecKind::Bss) {
                let rels = s.elf_linked_rel().map_err(|e| {
                    elf_err(Some(&name), Some(file_offset), format!("relocations: {e}"))
                })?;
                if !rels.is_empty() {
                    let list = rels
                        .iter()
                        .map(|r| Reloc {
                            offset: r.r_offset(endian),
                            symbol: r.r_sym(endian) as usize,
                            r_type: r.r_type(endian),
                        })
                        .collect();
                    relocs.insert(s.index().0, list);
                }
            }
            sections.push(Section {
                index: s.index().0,
                size: s.size(),
                name,
                kind,
                data,
                file_offset,
            });
        }

        let mut symbols: Vec<Option<Symbol>> = Vec::new();
        for sym in file.symbols() {
            let i = sym.index().0;
            if symbols.len() <= i {
                symbols.resize(i + 1, None);
            }
            let name = sym
                .name()
                .map_err(|e| elf_err(Some(".symtab"), None, format!("symbol {i}: {e}")))?
                .to_string();
            let st_type = sym.elf_symbol().st_type();
            let kind = match st_type {
                elf::STT_FUNC => SymKind::Func,
                elf::STT_OBJECT => SymKind::Object,
                elf::STT_SECTION => SymKind::Section,
                elf::STT_NOTYPE => SymKind::NoType,
                _ => SymKind::Other,
            };
            let section = match sym.section() {
                object::SymbolSection::Section(SectionIndex(idx)) => Some(idx),
                _ => None,
            };
            symbols[i] = Some(Symbol {
                name,
                value: sym.address(),
                size: sym.size(),
                section,
                kind,
            });
        }
        // Keep the symbol table's length so that every valid index has a slot.
        let table_len = file.elf_symbol_table().symbols().len();
        if symbols.len() < table_len {
            symbols.resize(table_len, None);
        }
        Ok(Elf {
            sections,
            symbols,
            relocs,
        })
    }

    pub fn section(&self, index: usize) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.index == index)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section<'a>> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The symbol a relocation names; a missing one is an error at the relocation.
    pub fn reloc_symbol(&self, sec: &Section, r: &Reloc) -> Result<&Symbol> {
        self.symbols
            .get(r.symbol)
            .and_then(|s| s.as_ref())
            .filter(|_| r.symbol != 0)
            .ok_or_else(|| {
                LoadError::at(
                    &sec.name,
                    Some(r.offset),
                    ErrorKind::MissingSymbol(r.symbol as u64),
                )
            })
    }

    /// Symbols defined in a section, sorted by value.
    pub fn symbols_in(&self, section: usize) -> Vec<&Symbol> {
        let mut v: Vec<&Symbol> = self
            .symbols
            .iter()
            .flatten()
            .filter(|s| s.section == Some(section))
            .collect();
        v.sort_by_key(|s| s.value);
        v
    }
}
