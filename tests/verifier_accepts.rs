//! Everything the kernel accepts, the verifier accepts: the testdata objects, the eunomia
//! packages and the conformance programs that are valid kernel programs.

use std::path::{Path, PathBuf};

use ebpf_sim::conformance::ConformanceTest;
use ebpf_sim::loader::{load_file, LoadOptions};
use ebpf_sim::verify::verify_program;
use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::isa::{slots_to_bytes, Insn};
use ebpf_sim::vm::verifier::{verify, VerifyOptions};
use ebpf_sim_kernel::{load_in_child, Judgement, LoadRequest};

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    v
}

/// Programs of the testdata that the kernel itself rejects (checked against the kernel
/// where root is available): `handle_exit` dereferences the plain number that
/// `bpf_get_current_task()` returns (`BPF_CORE_READ_BITFIELD` without `_PROBED`);
/// `rt_ringbuf` never submits or discards the record of its `bpf_ringbuf_reserve(&rb, 8,
/// 1)` ("BPF_EXIT instruction in main prog would lead to reference leak", confirmed by
/// loading the object with `bpftool prog loadall` on 6.18).
const KERNEL_REJECTS: &[&str] = &["tracing.bpf.o:handle_exit", "rt_output.bpf.o:rt_ringbuf"];

/// What the kernel says of one loaded program, or None when it cannot judge it here.
fn kernel_verdict(
    obj: &ebpf_sim::loader::Object,
    prog: &ebpf_sim::loader::Program,
) -> Option<Result<(), String>> {
    ebpf_sim_kernel::availability().ok()?;
    let t = prog.prog_type.number();
    // Types that need BTF attach targets, and programs with kernel symbols, cannot be
    // loaded on their own.
    if matches!(t, 26..=29)
        || !prog.externs.is_empty()
        || obj.maps.iter().any(|m| m.inner.is_some())
    {
        return None;
    }
    let req = LoadRequest {
        prog_type: t,
        insns: slots_to_bytes(&prog.insns),
        maps: obj
            .maps
            .iter()
            .map(|m| ebpf_sim_kernel::MapSpec {
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                flags: m.flags,
            })
            .collect(),
        log_level: 1,
        ..Default::default()
    };
    match load_in_child(&req) {
        Judgement::Accepted { .. } => Some(Ok(())),
        j @ Judgement::Rejected { .. } if !matches!(&j, Judgement::Rejected { log, .. } if log.is_empty()) => {
            Some(Err(j.error_line().unwrap_or("").to_string()))
        }
        _ => None,
    }
}

fn verify_all(paths: &[PathBuf]) -> (usize, Vec<String>) {
    let mut count = 0;
    let mut wrong = Vec::new();
    for path in paths {
        let loaded = load_file(path, &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let obj = loaded.object();
        for prog in &obj.programs {
            count += 1;
            let key = format!("{file}:{}", prog.name);
            let ours = verify_program(obj, prog, 0);
            let kernel = kernel_verdict(obj, prog);
            let kernel_text = match &kernel {
                Some(Ok(())) => "kernel accepts".to_string(),
                Some(Err(e)) => format!("kernel rejects: {e}"),
                None => "kernel cannot judge here".to_string(),
            };
            match (&ours, &kernel) {
                (Ok(v), _) => println!(
                    "  {key}: ok ({} insns processed; {kernel_text})",
                    v.processed
                ),
                (Err(r), Some(Err(_))) => println!("  {key}: rejected, as by the kernel: {r}"),
                (Err(r), None) if KERNEL_REJECTS.contains(&key.as_str()) => {
                    println!("  {key}: rejected (a recorded kernel rejection): {r}")
                }
                (Err(r), _) => {
                    wrong.push(format!("{key} ({}): {r} [{kernel_text}]", prog.prog_type))
                }
            }
            if let (Ok(_), Some(Err(e))) = (&ours, &kernel) {
                println!("  NOTE {key}: we accept, the kernel rejects: {e}");
            }
        }
    }
    (count, wrong)
}

#[test]
fn testdata_objects_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/obj");
    let (n, rejected) = verify_all(&files(&dir, ".bpf.o"));
    println!(
        "testdata objects: {n} programs; all but the {} the kernel rejects are accepted",
        KERNEL_REJECTS.len()
    );
    assert!(n > 0);
    assert!(rejected.is_empty(), "{}", rejected.join("\n"));
}

#[test]
fn eunomia_packages_verify() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/packages/eunomia");
    let paths = files(&dir, ".package.json");
    if paths.is_empty() {
        println!("SKIPPED: no eunomia packages at {}", dir.display());
        return;
    }
    let (n, rejected) = verify_all(&paths);
    println!(
        "eunomia packages: {}/{n} programs accepted",
        n - rejected.len()
    );
    assert!(rejected.is_empty(), "{}", rejected.join("\n"));
}

/// Conformance programs run bare (r1 = memory, r2 = its length), which kernels do not
/// offer; loaded as socket filters, the kernel accepts those that only compute. Callx and
/// other non-kernel features make the kernel refuse them, and they are excluded.
#[test]
fn conformance_programs_the_kernel_accepts_verify() {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/bpf_conformance/tests");
    let paths = files(&dir, ".data");
    if paths.is_empty() {
        println!("SKIPPED: conformance suite not found at {}", dir.display());
        return;
    }
    let kernel = ebpf_sim_kernel::availability();
    if let Err(e) = &kernel {
        println!("kernel comparison skipped: {e}");
    }
    let (mut total, mut k_accept, mut k_reject, mut unjudged, mut both_reject) = (0, 0, 0, 0, 0);
    let mut we_accept = 0;
    let mut false_rejects = Vec::new();
    let mut false_accepts = Vec::new();
    for path in &paths {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(path).unwrap();
        let Ok(t) = ConformanceTest::parse(&text) else {
            continue;
        };
        let insns: Vec<Insn> = match (&t.asm, &t.raw) {
            (_, Some(raw)) => raw.iter().map(|&v| Insn::from_u64(v)).collect(),
            (Some(asm), None) => match assemble(asm) {
                Ok(i) => i,
                Err(_) => continue,
            },
            _ => continue,
        };
        total += 1;
        let ours = verify(&insns, &VerifyOptions::new(1, &[]));
        if ours.is_ok() {
            we_accept += 1;
        }
        if kernel.is_err() {
            continue;
        }
        let req = LoadRequest {
            prog_type: 1,
            insns: slots_to_bytes(&insns),
            log_level: 1,
            ..Default::default()
        };
        match load_in_child(&req) {
            Judgement::Accepted { .. } => {
                k_accept += 1;
                if let Err(r) = ours {
                    false_rejects.push(format!("{name}: {r}"));
                }
            }
            j @ Judgement::Rejected { .. } => {
                k_reject += 1;
                match ours {
                    Err(_) => both_reject += 1,
                    Ok(_) => false_accepts
                        .push(format!("{name}: kernel: {}", j.error_line().unwrap_or(""))),
                }
            }
            Judgement::CouldNotJudge(_) => unjudged += 1,
        }
    }
    println!("conformance: {total} programs; verifier accepts {we_accept}");
    if kernel.is_ok() {
        println!(
            "conformance vs kernel (as socket filters): kernel accepts {k_accept}, all of which we accept: {}; kernel rejects {k_reject} (excluded; we reject {both_reject} of them too), {unjudged} not judged",
            false_rejects.is_empty()
        );
        for f in &false_accepts {
            println!("  we accept, kernel rejects: {f}");
        }
    }
    assert!(false_rejects.is_empty(), "{}", false_rejects.join("\n"));
}
