//! Commands on bare programs: `asm`, `disasm`, `exec`.

use std::io::{Read, Write};
use std::path::Path;

use ebpf_sim::conformance::parse_hex_bytes;
use ebpf_sim::engine::{run_bare, Engine};
use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::disasm::disassemble_listing;
use ebpf_sim::vm::isa::{slots_from_bytes, slots_to_bytes, Insn};
use ebpf_sim::vm::{Config, Program};

use crate::Format;

pub type CmdResult = Result<(), String>;

fn read_input(path: &Path) -> Result<Vec<u8>, String> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading standard input: {e}"))?;
        Ok(buf)
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.contains(&0) && std::str::from_utf8(bytes).is_ok()
}

/// Reads a program written in `format`, naming the file in every error.
fn read_program(path: &Path, format: Format) -> Result<Vec<Insn>, String> {
    let bytes = read_input(path)?;
    let name = path.display();
    let format = match format {
        Format::Auto if looks_like_text(&bytes) => Format::Asm,
        Format::Auto => Format::Raw,
        f => f,
    };
    let text = || std::str::from_utf8(&bytes).map_err(|e| format!("{name}: not UTF-8 text: {e}"));
    match format {
        Format::Asm => assemble(text()?).map_err(|e| format!("{name}: {e}")),
        Format::Hex => {
            let raw = parse_hex_bytes(text()?).map_err(|e| format!("{name}: {e}"))?;
            slots_from_bytes(&raw).map_err(|e| format!("{name}: {e}"))
        }
        Format::Raw | Format::Auto => slots_from_bytes(&bytes).map_err(|e| format!("{name}: {e}")),
    }
}

pub fn asm(input: &Path, output: Option<&Path>, hex: bool) -> CmdResult {
    let insns = read_program(input, Format::Asm)?;
    let bytes = if hex {
        insns
            .iter()
            .map(|i| {
                let line: Vec<String> = i.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
                line.join(" ") + "\n"
            })
            .collect::<String>()
            .into_bytes()
    } else {
        slots_to_bytes(&insns)
    };
    match output {
        Some(path) => std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display())),
        None => std::io::stdout()
            .write_all(&bytes)
            .map_err(|e| format!("writing standard output: {e}")),
    }
}

pub fn disasm(input: &Path, format: Format, numbered: bool) -> CmdResult {
    let insns = read_program(input, format)?;
    let listing = disassemble_listing(&insns).map_err(|e| format!("{}: {e}", input.display()))?;
    let mut out = String::new();
    for (index, text) in listing {
        if numbered {
            out.push_str(&format!("{index:>5}: "));
        }
        out.push_str(&text);
        out.push('\n');
    }
    print!("{out}");
    Ok(())
}

/// Bare-program commands do not take objects: point to the commands that do.
fn refuse_objects(path: &Path, instead: &str) -> CmdResult {
    if super::is_loadable(path) {
        return Err(format!(
            "{}: this is a BPF object or package, not a bare program: use `ebpf-sim {instead}`",
            path.display()
        ));
    }
    Ok(())
}

pub fn exec(
    program: &Path,
    mem: Option<&str>,
    mem_file: Option<&Path>,
    format: Format,
    engine: Engine,
    budget: u64,
) -> CmdResult {
    if format == Format::Auto {
        refuse_objects(program, "run FILE --trace T")?;
    }
    let insns = read_program(program, format)?;
    let name = program.display();
    let prog = Program::new(insns).map_err(|e| format!("{name}: {e}"))?;
    let data = match (mem, mem_file) {
        (Some(hex), _) => parse_hex_bytes(hex).map_err(|e| format!("--mem: {e}"))?,
        (None, Some(path)) => read_input(path)?,
        (None, None) => Vec::new(),
    };
    let r0 =
        run_bare(&prog, &data, engine, Config { budget }).map_err(|e| format!("{name}: {e}"))?;
    println!("{r0:#x}");
    Ok(())
}
