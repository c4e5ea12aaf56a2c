//! Verifier speed: the largest testdata program, every eunomia package, and a synthetic
//! straight-line program of 1,000 instructions (target: under 1 ms).
//!
//! Run: `cargo bench --bench verifier -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ebpf_sim::loader::{load_file, LoadOptions, Loaded};
use ebpf_sim::verify::verify_program;
use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::verifier::{verify, VerifyOptions};

fn load(path: &Path) -> Option<Loaded> {
    load_file(path, &LoadOptions::default()).ok()
}

fn files(dir: &Path, suffix: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.retain(|p: &std::path::PathBuf| p.to_string_lossy().ends_with(suffix));
    v.sort();
    v
}

/// 1,000 instructions: stack stores and loads, arithmetic and forward branches whose
/// two sides join with equal live state (what compiled code mostly looks like). Branches
/// that leave different constants in live registers on each side multiply states here
/// more than in the kernel, which drops the precision of scalars that no check needs.
fn synthetic() -> Vec<Insn> {
    let mut p = vec![Insn::new(0xb7, 0, 0, 0, 0), Insn::new(0x61, 6, 1, 0, 0)];
    while p.len() < 998 {
        let k = p.len() as i32;
        p.push(Insn::new(0x7b, 10, 6, -8 * (1 + (k % 16) as i16), 0));
        p.push(Insn::new(0x79, 2, 10, -8 * (1 + (k % 16) as i16), 0));
        p.push(Insn::new(0x0f, 0, 2, 0, 0));
        p.push(Insn::new(0x25, 2, 0, 1, k));
        p.push(Insn::new(0xb7, 3, 0, 0, k));
    }
    p.truncate(999);
    p.push(Insn::new(0x95, 0, 0, 0, 0));
    p
}

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The largest testdata program (by instructions processed).
    let objs: Vec<Loaded> = files(&root.join("testdata/obj"), ".bpf.o")
        .iter()
        .filter_map(|p| load(p))
        .collect();
    let mut largest = None;
    let mut most = 0;
    for l in &objs {
        for p in &l.object().programs {
            if let Ok(v) = verify_program(l.object(), p, 0) {
                if v.processed > most {
                    most = v.processed;
                    largest = Some((l, p));
                }
            }
        }
    }
    if let Some((l, p)) = largest {
        println!(
            "largest testdata program: {} ({} slots, {most} insns processed)",
            p.name,
            p.insns.len()
        );
        c.bench_function(&format!("verify testdata {}", p.name), |b| {
            b.iter(|| black_box(verify_program(l.object(), p, 0).is_ok()))
        });
    }
    let pkgs: Vec<Loaded> = files(&root.join("../shared/packages/eunomia"), ".package.json")
        .iter()
        .filter_map(|p| load(p))
        .collect();
    if !pkgs.is_empty() {
        let n: usize = pkgs.iter().map(|l| l.object().programs.len()).sum();
        c.bench_function(
            &format!("verify all eunomia packages ({n} programs)"),
            |b| {
                b.iter(|| {
                    for l in &pkgs {
                        for p in &l.object().programs {
                            black_box(verify_program(l.object(), p, 0).is_ok());
                        }
                    }
                })
            },
        );
    }
    let syn = synthetic();
    let opts = VerifyOptions::new(1, &[]);
    let v = verify(&syn, &opts).expect("the synthetic program verifies");
    println!("synthetic: {} insns, {} processed", syn.len(), v.processed);
    c.bench_function("verify synthetic 1000 insns", |b| {
        b.iter(|| black_box(verify(&syn, &opts).is_ok()))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
