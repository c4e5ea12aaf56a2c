//! Shared paths and helpers for the loader's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use ebpf_sim_loader::{load_object_file, LoadOptions, Object};

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata")
}

pub fn obj_path(name: &str) -> PathBuf {
    testdata().join("obj").join(name)
}

pub fn load(name: &str) -> Object {
    load_object_file(obj_path(name), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

pub const OBJECTS: [&str; 4] = [
    "tracing.bpf.o",
    "net_v1.bpf.o",
    "alu_v4.bpf.o",
    "kfunc.bpf.o",
];

pub const PACKAGE_DIR: &str = "/work/shared/packages/eunomia";

pub const PACKAGES: [&str; 10] = [
    "bootstrap",
    "fentry-link",
    "int128_test",
    "kprobe-link",
    "minimal",
    "opensnoop",
    "runqlat",
    "simple_prog_3",
    "tc",
    "xdp",
];

/// The package path, or None (with a printed reason) where the shared packages are absent.
pub fn package_path(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(PACKAGE_DIR).join(format!("{name}.package.json"));
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} not found", p.display());
        None
    }
}
