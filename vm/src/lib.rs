//! The eBPF virtual machine: instruction set, assembler and disassembler, memory model,
//! interpreter and helper registry.

pub mod asm;
pub mod disasm;
pub mod isa;
