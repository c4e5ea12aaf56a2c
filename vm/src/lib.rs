//! The eBPF virtual machine: instruction set, assembler and disassembler, memory model,
//! interpreter and helper registry.

pub mod asm;
pub mod buffer;
pub mod disasm;
pub mod error;
pub mod helpers;
pub mod interp;
pub mod isa;
pub mod kernel;
pub mod maps;
pub mod memory;
pub mod program;
pub mod verifier;

pub use buffer::HostBuffer;
pub use error::VmError;
pub use helpers::{HelperError, HelperFn, Helpers};
pub use interp::{Config, Interpreter};
pub use isa::Insn;
pub use memory::Memory;
pub use program::{Program, ProgramError};
