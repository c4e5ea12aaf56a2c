//! `.BTF.ext`: per-section function info, line info and CO-RE relocation records.
//! Offsets inside records are byte offsets of instructions within their ELF section.

use std::collections::HashMap;

use crate::btf::{Btf, Reader};
use crate::error::{ErrorKind, LoadError, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FuncInfoRec {
    pub insn_off: u32,
    pub type_id: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInfoRec {
    pub insn_off: u32,
    pub file_name_off: u32,
    pub line_off: u32,
    pub line: u32,
    pub column: u32,
}

/// One CO-RE relocation as recorded by clang.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRelocRec {
    pub insn_off: u32,
    pub type_id: u32,
    pub access_str_off: u32,
    pub kind: u32,
}

/// Records grouped by the ELF section they apply to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BtfExt {
    pub func_info: HashMap<String, Vec<FuncInfoRec>>,
    pub line_info: HashMap<String, Vec<LineInfoRec>>,
    pub core_relocs: HashMap<String, Vec<CoreRelocRec>>,
}

fn ext_err(offset: usize, msg: impl Into<String>) -> LoadError {
    LoadError::at(
        ".BTF.ext",
        Some(offset as u64),
        ErrorKind::BtfExt(msg.into()),
    )
}

impl BtfExt {
    /// Parses `.BTF.ext`; section names and strings are looked up in `btf`.
    pub fn parse(data: &[u8], btf: &Btf) -> Result<BtfExt> {
        let mut r = Reader::new(data, 0);
        let trunc = || ext_err(0, "truncated header");
        let magic = r.u16().ok_or_else(trunc)?;
        if magic != crate::btf::BTF_MAGIC {
            return Err(ext_err(0, format!("bad magic {magic:#06x}")));
        }
        let _version = r.u8().ok_or_else(trunc)?;
        let _flags = r.u8().ok_or_else(trunc)?;
        let hdr_len = r.u32().ok_or_else(trunc)? as usize;
        if hdr_len < 24 || hdr_len > data.len() {
            return Err(ext_err(4, format!("bad header length {hdr_len}")));
        }
        let func = (r.u32().ok_or_else(trunc)?, r.u32().ok_or_else(trunc)?);
        let line = (r.u32().ok_or_else(trunc)?, r.u32().ok_or_else(trunc)?);
        let core = if hdr_len >= 32 {
            (r.u32().ok_or_else(trunc)?, r.u32().ok_or_else(trunc)?)
        } else {
            (0, 0)
        };
        let mut ext = BtfExt::default();
        for_each_record(data, hdr_len, func, 8, btf, |sec, rec| {
            ext.func_info
                .entry(sec.to_string())
                .or_default()
                .push(FuncInfoRec {
                    insn_off: rec[0],
                    type_id: rec[1],
                });
        })?;
        for_each_record(data, hdr_len, line, 16, btf, |sec, rec| {
            ext.line_info
                .entry(sec.to_string())
                .or_default()
                .push(LineInfoRec {
                    insn_off: rec[0],
                    file_name_off: rec[1],
                    line_off: rec[2],
                    line: rec[3] >> 10,
                    column: rec[3] & 0x3ff,
                });
        })?;
        for_each_record(data, hdr_len, core, 16, btf, |sec, rec| {
            ext.core_relocs
                .entry(sec.to_string())
                .or_default()
                .push(CoreRelocRec {
                    insn_off: rec[0],
                    type_id: rec[1],
                    access_str_off: rec[2],
                    kind: rec[3],
                });
        })?;
        Ok(ext)
    }
}

/// Walks one info block: `rec_size`, then per section `{sec_name_off, num_info, records}`.
/// Hands each record's first `min_size / 4` words to `f`; longer records (a newer format)
/// are allowed and their extra words skipped, as libbpf does.
fn for_each_record(
    data: &[u8],
    hdr_len: usize,
    (off, len): (u32, u32),
    min_size: usize,
    btf: &Btf,
    mut f: impl FnMut(&str, &[u32]),
) -> Result<()> {
    if len == 0 {
        return Ok(());
    }
    let start = hdr_len
        .checked_add(off as usize)
        .filter(|s| s.checked_add(len as usize).is_some_and(|e| e <= data.len()))
        .ok_or_else(|| ext_err(hdr_len, format!("block at {off} + {len} runs past the end")))?;
    let block = &data[start..start + len as usize];
    let mut r = Reader::new(block, 0);
    let rec_size = r
        .u32()
        .ok_or_else(|| ext_err(start, "truncated record size"))? as usize;
    if rec_size < min_size || !rec_size.is_multiple_of(4) {
        return Err(ext_err(start, format!("bad record size {rec_size}")));
    }
    let mut words = vec![0u32; min_size / 4];
    while r.pos < block.len() {
        let at = start + r.pos;
        let name_off = r
            .u32()
            .ok_or_else(|| ext_err(at, "truncated section header"))?;
        let count = r
            .u32()
            .ok_or_else(|| ext_err(at, "truncated section header"))?;
        let sec = btf
            .try_str_at(name_off)
            .ok_or_else(|| ext_err(at, format!("section name offset {name_off} out of range")))?;
        for _ in 0..count {
            let at = start + r.pos;
            let rec_end = r.pos.checked_add(rec_size).filter(|&e| e <= block.len());
            let Some(rec_end) = rec_end else {
                return Err(ext_err(at, format!("truncated record for section {sec}")));
            };
            for w in words.iter_mut() {
                *w = r.u32().ok_or_else(|| ext_err(at, "truncated record"))?;
            }
            r.pos = rec_end;
            f(sec, &words);
        }
    }
    Ok(())
}
