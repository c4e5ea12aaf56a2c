//! `ebpf-sim verify FILE [--prog NAME] [--log]`: would the kernel load these programs?

use std::path::Path;

use ebpf_sim::loader::{load_btf_file, load_file, LoadOptions};
use ebpf_sim::verify::verify_program;

use super::bare::CmdResult;

/// Verifies each program of an object or package (or only `prog`); prints one line per
/// program, or the rejection with its instruction and source line. Fails if any is rejected.
pub fn verify(file: &Path, prog: Option<&str>, log: bool, btf: Option<&Path>) -> CmdResult {
    let mut opts = LoadOptions::default();
    if let Some(b) = btf {
        let t = load_btf_file(b).map_err(|e| e.to_string())?;
        opts.target_btf = Some((b.display().to_string(), t));
    }
    let loaded = load_file(file, &opts).map_err(|e| e.to_string())?;
    let obj = loaded.object();
    let progs: Vec<_> = obj
        .programs
        .iter()
        .filter(|p| prog.is_none_or(|n| p.name == n))
        .collect();
    if progs.is_empty() {
        return match prog {
            Some(n) => Err(format!("{}: no program named {n}", file.display())),
            // Nothing the kernel could refuse (a package of types only, say).
            None => {
                println!("{}: no programs to verify", file.display());
                Ok(())
            }
        };
    }
    let mut rejected = 0;
    for p in progs {
        match verify_program(obj, p, log as u32 * 2) {
            Ok(v) => {
                if log {
                    print!("{}", v.log);
                }
                println!("{}: ok ({} insns processed)", p.name, v.processed);
            }
            Err(r) => {
                rejected += 1;
                if log {
                    print!("{}", r.log);
                }
                println!("{}: rejected ({})", p.name, r.class);
                println!("  {r}");
            }
        }
    }
    if rejected > 0 {
        return Err(format!(
            "{rejected} program(s) would be rejected by the kernel"
        ));
    }
    Ok(())
}
