//! Every eunomia package of ../shared/packages/eunomia runs with a trace from
//! testdata/traces/eunomia and gives the output its program is written to give: the
//! plain output must equal testdata/expected/eunomia/NAME.txt, on both engines, and the
//! JSON records must be identical between engines. `EBPF_SIM_BLESS=1` rewrites the
//! expected files (review the diff before committing).

use std::path::{Path, PathBuf};
use std::process::Command;

/// (package, extra arguments after the ebpf-sim options).
const CASES: &[(&str, &[&str])] = &[
    ("minimal", &[]),
    ("bootstrap", &[]),
    ("opensnoop", &[]),
    ("runqlat", &[]),
    ("xdp", &[]),
    ("tc", &[]),
    ("kprobe-link", &[]),
    ("fentry-link", &[]),
    (
        "simple_prog_3",
        &[
            "--const_val_1",
            "42",
            "--const_val_2",
            "-7",
            "--const_val_3",
            "hello",
            "--bss_val_1",
            "5",
        ],
    ),
    ("int128_test", &[]),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run(
    package: &Path,
    trace: &Path,
    engine: &str,
    json: bool,
    extra: &[&str],
) -> (String, String, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ebpf-sim"));
    cmd.arg("run")
        .arg(package)
        .arg("--trace")
        .arg(trace)
        .args(["--engine", engine]);
    if json {
        cmd.arg("--json");
    }
    cmd.args(extra);
    let o = cmd.output().unwrap();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.success(),
    )
}

#[test]
fn eunomia_packages_give_their_golden_output() {
    let dir = root().join("../shared/packages/eunomia");
    if !dir.is_dir() {
        eprintln!(
            "SKIPPED: {} is not present beside the checkout",
            dir.display()
        );
        return;
    }
    let bless = std::env::var_os("EBPF_SIM_BLESS").is_some();
    let mut failures = Vec::new();
    for (name, extra) in CASES {
        let package = dir.join(format!("{name}.package.json"));
        let trace = root().join(format!("testdata/traces/eunomia/{name}.json"));
        let expected_path: PathBuf = root().join(format!("testdata/expected/eunomia/{name}.txt"));
        let (plain, err, ok) = run(&package, &trace, "interp", false, extra);
        if !ok {
            failures.push(format!("{name}: run failed: {err}"));
            continue;
        }
        let (plain_jit, err_jit, _) = run(&package, &trace, "jit", false, extra);
        if plain_jit != plain || err_jit != err {
            failures.push(format!(
                "{name}: the JIT's output differs:\n{plain_jit}{err_jit}\n---\n{plain}{err}"
            ));
        }
        let (json, _, _) = run(&package, &trace, "interp", true, extra);
        let (json_jit, _, _) = run(&package, &trace, "jit", true, extra);
        if json != json_jit {
            failures.push(format!("{name}: the JIT's JSON records differ"));
        }
        // Paths depend on where the checkout lives: name the package instead.
        let got = format!("{plain}{err}").replace(
            &package.display().to_string(),
            &format!("{name}.package.json"),
        );
        if bless {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        match std::fs::read_to_string(&expected_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{name}: output differs from {}:\n--- got\n{got}--- want\n{want}",
                expected_path.display()
            )),
            Err(e) => failures.push(format!("{name}: {}: {e}", expected_path.display())),
        }
    }
    println!(
        "eunomia golden outputs: {} passed, {} failed",
        CASES.len() - failures.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The same package and trace give the same output on every run (no host time, pid or
/// randomness leaks in).
#[test]
fn runs_are_deterministic() {
    let package = root().join("../shared/packages/eunomia/bootstrap.package.json");
    if !package.exists() {
        eprintln!(
            "SKIPPED: {} is not present beside the checkout",
            package.display()
        );
        return;
    }
    let trace = root().join("testdata/traces/eunomia/bootstrap.json");
    let a = run(&package, &trace, "jit", true, &[]);
    let b = run(&package, &trace, "jit", true, &[]);
    assert_eq!(a, b);
    assert!(a.0.lines().count() > 5);
}
