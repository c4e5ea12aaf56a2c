//! Compiles progs.c twice at -O2, with clang when there is one (`$CC` if set, else
//! `clang-22`, else `clang`, else what `cc` finds): once as plain `-O2` (symbols `vec_*`),
//! once with auto-vectorisation and the loop-to-memcpy rewrite turned off (symbols
//! `sca_*`), the scalar code the eBPF programs are compared with.

use std::process::Command;

fn version_line(path: &std::path::Path) -> Option<String> {
    let out = Command::new(path).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .next()
        .map(str::to_string)
}

fn build() -> cc::Build {
    let mut b = cc::Build::new();
    if std::env::var_os("CC").is_none() {
        if let Some(clang) = ["clang-22", "clang"]
            .into_iter()
            .find(|c| version_line(c.as_ref()).is_some())
        {
            b.compiler(clang);
        }
    }
    // Every function on a 64-byte boundary: where the linker puts the object otherwise
    // changes with the size of the Rust code around it, and the loops' speed with it
    // (`sort` took 1.26x to 1.95x our JIT's time in different builds).
    b.file("progs.c")
        .opt_level(2)
        .flag_if_supported("-falign-functions=64");
    b
}

fn main() {
    println!("cargo:rerun-if-changed=progs.c");
    println!("cargo:rerun-if-env-changed=CC");
    build()
        .define("PREFIX", "vec_")
        .compile("ebpf_sim_bench_native_vec");
    build()
        .define("PREFIX", "sca_")
        // gcc
        .flag_if_supported("-fno-tree-vectorize")
        .flag_if_supported("-fno-tree-loop-distribute-patterns")
        // clang (memcpy: no loop-idiom rewrite; the loads use __builtin_memcpy)
        .flag_if_supported("-fno-vectorize")
        .flag_if_supported("-fno-slp-vectorize")
        .flag_if_supported("-fno-builtin-memcpy")
        .compile("ebpf_sim_bench_native_scalar");
    let compiler = build().get_compiler();
    let version =
        version_line(compiler.path()).unwrap_or_else(|| compiler.path().display().to_string());
    println!("cargo:rustc-env=NATIVE_CC_VERSION={version}");
}
