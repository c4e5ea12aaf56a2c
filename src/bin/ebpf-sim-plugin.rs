//! A VM plugin for the bpf_conformance runner.
//!
//! Protocol: `ebpf-sim-plugin [MEM] [--engine interp|jit]`; MEM (only when the test has
//! memory) is hex bytes each followed by two spaces; the program comes on stdin in the
//! same hex encoding. Prints r0 in hex and exits 0, or prints the error and exits 1.

use std::io::Read;
use std::process::ExitCode;

use ebpf_sim::conformance::parse_hex_bytes;
use ebpf_sim::engine::{run_bare, Engine};
use ebpf_sim::vm::{Config, Program};

fn run() -> Result<u64, String> {
    let mut mem_hex = None;
    let mut engine = Engine::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--engine" => {
                let value = args
                    .next()
                    .ok_or("--engine needs a value (interp or jit)")?;
                engine = value.parse()?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: ebpf-sim-plugin [MEM] [--engine interp|jit] < program.hex".into(),
                )
            }
            a if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ if mem_hex.is_none() => mem_hex = Some(arg),
            _ => return Err(format!("unexpected argument '{arg}'")),
        }
    }
    let mem = match mem_hex {
        Some(h) => parse_hex_bytes(&h).map_err(|e| format!("memory argument: {e}"))?,
        None => Vec::new(),
    };
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(|e| format!("reading the program from stdin: {e}"))?;
    let code = parse_hex_bytes(&input).map_err(|e| format!("program on stdin: {e}"))?;
    let program = Program::from_bytes(&code).map_err(|e| e.to_string())?;
    run_bare(&program, &mem, engine, Config::default()).map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(r0) => {
            println!("{r0:x}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            println!("{e}");
            ExitCode::FAILURE
        }
    }
}
