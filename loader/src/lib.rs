//! Loader for BPF ELF objects and eunomia-bpf packages.
