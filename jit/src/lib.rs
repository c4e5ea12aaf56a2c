//! JIT compilers (x86_64, arm64). Not built yet: the x86_64 JIT is its own issue; until then
//! every engine choice falls back to the interpreter in `ebpf-sim-vm`.
