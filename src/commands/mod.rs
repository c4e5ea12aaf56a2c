//! Implementations of the subcommands; `main.rs` only parses arguments.

mod bare;
mod verify;

pub use bare::{asm, disasm, exec};
pub use verify::verify;
