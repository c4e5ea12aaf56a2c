//! ebpf-sim: a userspace eBPF virtual machine and simulator.
//!
//! This crate is the facade over the workspace: [`vm`] (instruction set, memory model,
//! interpreter), [`loader`] (ELF objects and eunomia packages), plus the pieces the
//! command line shares with tests: engine choice and bare runs ([`engine`]) and the
//! bpf_conformance file format ([`conformance`]).

pub use ebpf_sim_jit as jit;
pub use ebpf_sim_loader as loader;
pub use ebpf_sim_vm as vm;

pub mod conformance;
pub mod engine;
pub mod sim;
pub mod verify;
