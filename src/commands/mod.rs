//! Implementations of the subcommands; `main.rs` only parses arguments.

mod bare;
mod object;
#[cfg(feature = "kernel-backend")]
mod parity;
mod run;
mod verify;

pub use bare::{asm, disasm, exec};
pub use object::{inspect, is_loadable};
#[cfg(feature = "kernel-backend")]
pub use parity::{parity, ParityArgs};
pub use run::{run, RunArgs};

/// `disasm`: a program of an object or package (with source lines), or bare bytecode.
pub fn disasm_any(
    input: &std::path::Path,
    format: crate::Format,
    numbered: bool,
    prog: Option<&str>,
    btf: Option<&std::path::Path>,
) -> bare::CmdResult {
    if format == crate::Format::Auto && is_loadable(input) {
        object::disasm(input, prog, btf)
    } else {
        disasm(input, format, numbered)
    }
}
pub use verify::verify;
