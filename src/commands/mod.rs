//! Implementations of the subcommands; `main.rs` only parses arguments.

mod bare;

pub use bare::{asm, disasm, exec};
