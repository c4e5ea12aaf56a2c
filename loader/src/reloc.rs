//! Builds programs from code sections, as libbpf does before BPF_PROG_LOAD: each entry
//! function gets the subprograms it reaches appended after it, calls and callback
//! addresses are re-pointed, and map and global data references are rewritten as
//! `lddw` with a map index (see [`crate::model::Program::insns`]).

use std::collections::HashMap;

use ebpf_sim_vm::isa::{pseudo, Insn};

use crate::btf::Btf;
use crate::btf_ext::BtfExt;
use crate::elf::{r_bpf, Elf, SecKind, SymKind};
use crate::error::{ErrorKind, LoadError, Result};
use crate::maps::Maps;
use crate::model::{CoreReloc, ExternRef, FuncSpan, LineInfo, MapOrigin, Program};
use crate::sections;

const LDDW: u8 = 0x18;
const CALL: u8 = 0x85;

/// A function symbol inside a code section.
#[derive(Debug, Clone)]
pub(crate) struct Func {
    pub section: usize,
    pub name: String,
    /// First slot within the section.
    pub start: usize,
    pub len: usize,
}

/// A code section's instructions (after CO-RE patching) and functions.
pub(crate) struct CodeSection {
    pub index: usize,
    pub name: String,
    pub insns: Vec<Insn>,
    pub funcs: Vec<Func>,
    pub core: Vec<(usize, CoreReloc)>,
}

/// Splits a code section into its functions by their symbols.
pub(crate) fn functions(elf: &Elf, index: usize, name: &str, slots: usize) -> Result<Vec<Func>> {
    let syms: Vec<_> = elf
        .symbols_in(index)
        .into_iter()
        .filter(|s| s.kind == SymKind::Func)
        .collect();
    let mut funcs: Vec<Func> = Vec::with_capacity(syms.len());
    for (i, s) in syms.iter().enumerate() {
        if s.value % 8 != 0 || s.value / 8 >= slots as u64 {
            return Err(LoadError::at(
                name,
                Some(s.value),
                ErrorKind::Elf(format!("function {} starts outside its section", s.name)),
            ));
        }
        let start = (s.value / 8) as usize;
        let next = syms
            .get(i + 1)
            .map(|n| (n.value / 8) as usize)
            .unwrap_or(slots);
        let len = if s.size > 0 {
            ((s.size / 8) as usize).min(slots - start)
        } else {
            next.saturating_sub(start)
        };
        funcs.push(Func {
            section: index,
            name: s.name.clone(),
            start,
            len,
        });
    }
    Ok(funcs)
}

struct Linker<'e, 'a> {
    elf: &'e Elf<'a>,
    maps: &'e Maps,
    code: &'e HashMap<usize, CodeSection>,
    /// Relocations of each code section by byte offset.
    relocs: HashMap<usize, HashMap<u64, usize>>,
}

/// Builds every program of the object.
pub(crate) fn link_programs(
    elf: &Elf,
    maps: &Maps,
    code: &HashMap<usize, CodeSection>,
    btf: Option<&Btf>,
    ext: Option<&BtfExt>,
) -> Result<Vec<Program>> {
    let mut relocs = HashMap::new();
    for (&sec, list) in &elf.relocs {
        if code.contains_key(&sec) {
            let by_off: HashMap<u64, usize> = list
                .iter()
                .enumerate()
                .map(|(i, r)| (r.offset, i))
                .collect();
            relocs.insert(sec, by_off);
        }
    }
    let linker = Linker {
        elf,
        maps,
        code,
        relocs,
    };
    let mut order: Vec<&CodeSection> = code.values().filter(|c| c.name != ".text").collect();
    order.sort_by_key(|c| c.index);
    let mut programs = Vec::new();
    for sec in order {
        for f in &sec.funcs {
            programs.push(linker.link(sec, f, btf, ext)?);
        }
    }
    Ok(programs)
}

impl Linker<'_, '_> {
    fn err(&self, section: &str, offset: u64, kind: ErrorKind) -> LoadError {
        LoadError::at(section, Some(offset), kind)
    }

    fn link(
        &self,
        sec: &CodeSection,
        entry: &Func,
        btf: Option<&Btf>,
        ext: Option<&BtfExt>,
    ) -> Result<Program> {
        let mut insns: Vec<Insn> = Vec::new();
        // (section, function start) -> start in `insns`
        let mut placed: HashMap<(usize, usize), usize> = HashMap::new();
        let mut spans: Vec<(Func, usize)> = Vec::new();
        let mut externs = Vec::new();
        place(&mut insns, &mut placed, &mut spans, sec, entry);
        let mut next_span = 0;
        while let Some((f, base)) = spans.get(next_span).cloned() {
            next_span += 1;
            let Some(fsec) = self.code.get(&f.section) else {
                continue;
            };
            let mut j = 0;
            while j < f.len {
                let pos = base + j;
                let slot = f.start + j;
                let off = slot as u64 * 8;
                let Some(&insn) = insns.get(pos) else { break };
                let is_lddw = insn.code == LDDW;
                if is_lddw && j + 1 >= f.len {
                    return Err(self.err(
                        &fsec.name,
                        off,
                        ErrorKind::Elf("lddw is missing its second slot".into()),
                    ));
                }
                let reloc = self
                    .relocs
                    .get(&f.section)
                    .and_then(|m| m.get(&off))
                    .and_then(|&i| self.elf.relocs.get(&f.section)?.get(i));
                if let Some(r) = reloc {
                    let esec = self.elf.section(f.section).ok_or_else(|| {
                        self.err(&fsec.name, off, ErrorKind::Elf("no section".into()))
                    })?;
                    let sym = self.elf.reloc_symbol(esec, r)?;
                    let bad = |why: &str| {
                        self.err(
                            &fsec.name,
                            off,
                            ErrorKind::BadRelocation {
                                symbol: sym.name.clone(),
                                why: why.into(),
                            },
                        )
                    };
                    if r.r_type != r_bpf::R_BPF_64_64 && r.r_type != r_bpf::R_BPF_64_32 {
                        return Err(bad(&format!("relocation type {} in code", r.r_type)));
                    }
                    let sym_sec = sym.section.and_then(|s| self.elf.section(s));
                    match (insn.code, sym_sec) {
                        (CALL, None) => {
                            // An extern function: a kfunc the runtime must provide.
                            insns[pos].src = pseudo::CALL_KFUNC;
                            insns[pos].imm = 0;
                            externs.push(ExternRef {
                                insn: pos,
                                name: sym.name.clone(),
                                is_call: true,
                            });
                        }
                        (CALL, Some(ts)) if ts.kind == SecKind::Code => {
                            let target = (sym.value as i64 / 8)
                                .checked_add(insn.imm as i64 + 1)
                                .ok_or_else(|| bad("call target overflows"))?;
                            let to = self.place_target(
                                &mut insns,
                                &mut placed,
                                &mut spans,
                                ts.index,
                                target,
                                &fsec.name,
                                off,
                            )?;
                            insns[pos].src = pseudo::CALL_LOCAL;
                            insns[pos].imm = rel(to, pos).ok_or_else(|| bad("call too far"))?;
                        }
                        (CALL, Some(_)) => return Err(bad("call to a symbol outside code")),
                        (LDDW, None) => {
                            // An extern variable (`__ksym`): resolved by the runtime.
                            insns[pos].src = pseudo::BTF_ID;
                            insns[pos].imm = 0;
                            insns[pos + 1].imm = 0;
                            externs.push(ExternRef {
                                insn: pos,
                                name: sym.name.clone(),
                                is_call: false,
                            });
                        }
                        (LDDW, Some(ts)) if ts.kind == SecKind::Code => {
                            // The address of a function: a callback (BPF_PSEUDO_FUNC).
                            let byte = (sym.value as i64).checked_add(insn.imm as i64);
                            let target = byte
                                .filter(|b| b % 8 == 0)
                                .map(|b| b / 8)
                                .ok_or_else(|| bad("callback address not on an instruction"))?;
                            let to = self.place_target(
                                &mut insns,
                                &mut placed,
                                &mut spans,
                                ts.index,
                                target,
                                &fsec.name,
                                off,
                            )?;
                            insns[pos].src = pseudo::FUNC;
                            insns[pos].imm = rel(to, pos).ok_or_else(|| bad("callback too far"))?;
                            insns[pos + 1].imm = 0;
                        }
                        (LDDW, Some(ts)) => {
                            let place = self.maps.find(ts.index, sym.value).ok_or_else(|| {
                                bad(&format!("section {} is not a map or global data", ts.name))
                            })?;
                            let def = self
                                .maps
                                .defs
                                .get(place.map)
                                .ok_or_else(|| bad("map index"))?;
                            let map_idx =
                                i32::try_from(place.map).map_err(|_| bad("too many maps"))?;
                            if let MapOrigin::GlobalData { .. } = def.origin {
                                let offset = (sym.value as i64)
                                    .checked_sub(place.start as i64)
                                    .and_then(|o| o.checked_add(insn.imm as i64))
                                    .and_then(|o| i32::try_from(o).ok())
                                    .filter(|&o| o >= 0 && (o as u64) <= def.data.len() as u64)
                                    .ok_or_else(|| bad("offset outside the data section"))?;
                                insns[pos].src = pseudo::MAP_IDX_VALUE;
                                insns[pos].imm = map_idx;
                                insns[pos + 1].imm = offset;
                            } else {
                                insns[pos].src = pseudo::MAP_IDX;
                                insns[pos].imm = map_idx;
                                insns[pos + 1].imm = 0;
                            }
                        }
                        _ => {
                            return Err(bad(
                                "relocation on an instruction that is neither lddw nor call",
                            ))
                        }
                    }
                } else if insn.code == CALL && insn.src == pseudo::CALL_LOCAL
                    || insn.code == LDDW && insn.src == pseudo::FUNC
                {
                    // A call inside the same section that the compiler resolved itself.
                    let target = slot as i64 + insn.imm as i64 + 1;
                    let to = self.place_target(
                        &mut insns,
                        &mut placed,
                        &mut spans,
                        f.section,
                        target,
                        &fsec.name,
                        off,
                    )?;
                    insns[pos].imm = rel(to, pos).ok_or_else(|| {
                        self.err(&fsec.name, off, ErrorKind::BadCallTarget(target))
                    })?;
                }
                j += if is_lddw { 2 } else { 1 };
            }
        }

        let (prog_type, attach) = sections::classify(&sec.name);
        let mut functions = Vec::new();
        let mut line_info = Vec::new();
        let mut core_relocs = Vec::new();
        for (f, base) in &spans {
            let Some(fsec) = self.code.get(&f.section) else {
                continue;
            };
            let in_span = |off: u32| {
                let s = off as usize / 8;
                off.is_multiple_of(8) && s >= f.start && s < f.start + f.len
            };
            let btf_type_id = ext
                .and_then(|e| e.func_info.get(&fsec.name))
                .and_then(|v| v.iter().find(|fi| fi.insn_off as usize == f.start * 8))
                .map(|fi| fi.type_id)
                .unwrap_or(0);
            functions.push(FuncSpan {
                name: f.name.clone(),
                start: *base,
                len: f.len,
                btf_type_id,
            });
            if let (Some(ext), Some(btf)) = (ext, btf) {
                for l in ext
                    .line_info
                    .get(&fsec.name)
                    .map(Vec::as_slice)
                    .unwrap_or(&[])
                {
                    if in_span(l.insn_off) {
                        line_info.push(LineInfo {
                            insn: base + l.insn_off as usize / 8 - f.start,
                            file: btf.str_at(l.file_name_off).to_string(),
                            line: l.line,
                            column: l.column,
                            text: btf.str_at(l.line_off).to_string(),
                        });
                    }
                }
            }
            for (slot, c) in &fsec.core {
                if *slot >= f.start && *slot < f.start + f.len {
                    let mut c = c.clone();
                    c.insn = base + slot - f.start;
                    core_relocs.push(c);
                }
            }
        }
        line_info.sort_by_key(|l| l.insn);
        core_relocs.sort_by_key(|c| c.insn);
        Ok(Program {
            name: entry.name.clone(),
            section: sec.name.clone(),
            prog_type,
            attach,
            insns,
            functions,
            line_info,
            core_relocs,
            externs,
        })
    }

    /// Ensures the function holding `slot` of `section` is in the program; returns the
    /// slot's position in the program.
    #[allow(clippy::too_many_arguments)]
    fn place_target(
        &self,
        insns: &mut Vec<Insn>,
        placed: &mut HashMap<(usize, usize), usize>,
        spans: &mut Vec<(Func, usize)>,
        section: usize,
        slot: i64,
        from_section: &str,
        from_off: u64,
    ) -> Result<usize> {
        let bad = || self.err(from_section, from_off, ErrorKind::BadCallTarget(slot));
        let slot = usize::try_from(slot).map_err(|_| bad())?;
        let code = self.code.get(&section).ok_or_else(bad)?;
        let func = code
            .funcs
            .iter()
            .find(|f| slot >= f.start && slot < f.start + f.len)
            .ok_or_else(bad)?;
        let base = match placed.get(&(section, func.start)) {
            Some(&b) => b,
            None => place(insns, placed, spans, code, func),
        };
        Ok(base + (slot - func.start))
    }
}

fn place(
    insns: &mut Vec<Insn>,
    placed: &mut HashMap<(usize, usize), usize>,
    spans: &mut Vec<(Func, usize)>,
    code: &CodeSection,
    f: &Func,
) -> usize {
    let base = insns.len();
    let end = (f.start + f.len).min(code.insns.len());
    insns.extend_from_slice(code.insns.get(f.start..end).unwrap_or(&[]));
    placed.insert((f.section, f.start), base);
    spans.push((f.clone(), base));
    base
}

/// Slot offset from the instruction after `from` to `to`.
fn rel(to: usize, from: usize) -> Option<i32> {
    i32::try_from(to as i64 - from as i64 - 1).ok()
}
