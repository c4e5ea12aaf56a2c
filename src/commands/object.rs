//! Commands on objects and packages: `inspect`, and `disasm` of a loaded program.

use std::path::Path;

use ebpf_sim::loader::{self, summary, LoadOptions, Loaded};
use ebpf_sim::vm::disasm::disassemble_listing;

use super::bare::CmdResult;

/// Whether a file is something the loader reads (an ELF object or a package), not bytecode.
pub fn is_loadable(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut head = [0u8; 64];
    let n = std::io::Read::read(&mut f, &mut head).unwrap_or(0);
    let head = &head[..n];
    head.starts_with(b"\x7fELF")
        || head
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|&b| b == b'{')
}

/// Loads a file with an optional target BTF for CO-RE.
pub fn load(path: &Path, btf: Option<&Path>) -> Result<Loaded, String> {
    let mut opts = LoadOptions::default();
    if let Some(b) = btf {
        let parsed = loader::load_btf_file(b).map_err(|e| e.to_string())?;
        opts.target_btf = Some((b.display().to_string(), parsed));
    }
    loader::load_file(path, &opts).map_err(|e| e.to_string())
}

pub fn inspect(path: &Path, json: bool, btf: Option<&Path>) -> CmdResult {
    let loaded = load(path, btf)?;
    if json {
        let v = summary::inspect_json(&loaded);
        println!(
            "{}",
            serde_json::to_string_pretty(&v).map_err(|e| e.to_string())?
        );
    } else {
        print!("{}", summary::inspect_text(&loaded));
    }
    Ok(())
}

/// Disassembles one program (or every program) of an object, with source lines.
pub fn disasm(path: &Path, prog: Option<&str>, btf: Option<&Path>) -> CmdResult {
    let loaded = load(path, btf)?;
    let obj = loaded.object();
    let programs: Vec<_> = match prog {
        Some(name) => vec![obj.program(name).ok_or_else(|| {
            let names: Vec<&str> = obj.programs.iter().map(|p| p.name.as_str()).collect();
            format!(
                "{}: no program named '{name}' (programs: {})",
                path.display(),
                names.join(", ")
            )
        })?],
        None => obj.programs.iter().collect(),
    };
    for (n, p) in programs.iter().enumerate() {
        if n > 0 {
            println!();
        }
        println!("{} ({}):", p.name, p.section);
        let listing = disassemble_listing(&p.insns)
            .map_err(|e| format!("{}: program {}: {e}", path.display(), p.name))?;
        let mut by_slot = vec![String::new(); p.insns.len()];
        for (i, text) in listing {
            by_slot[i] = text;
        }
        let text = summary::disasm_with_source(p, |_, i| by_slot[i].clone());
        print!("{text}");
    }
    Ok(())
}
