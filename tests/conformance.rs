//! Runs the external bpf_conformance suite (../shared/conformance) on every engine, in
//! process and through the `ebpf-sim-plugin` binary the upstream runner uses.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use ebpf_sim::conformance::ConformanceTest;
use ebpf_sim::engine::{run_bare, Engine};
use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::isa::{slots_to_bytes, Insn};
use ebpf_sim::vm::{Config, Program};

fn suite_dir() -> Option<PathBuf> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/bpf_conformance/tests");
    dir.is_dir().then_some(dir)
}

fn load_suite() -> Option<Vec<(String, ConformanceTest, Vec<Insn>)>> {
    let Some(dir) = suite_dir() else {
        eprintln!("SKIPPED: ../shared/conformance/bpf_conformance/tests is not present beside the checkout");
        return None;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "data"))
        .collect();
    files.sort();
    let mut tests = Vec::new();
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let t = ConformanceTest::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let insns = match (&t.asm, &t.raw) {
            (_, Some(raw)) => raw.iter().map(|&v| Insn::from_u64(v)).collect(),
            (Some(asm), None) => assemble(asm).unwrap_or_else(|e| panic!("{name}: {e}")),
            (None, None) => panic!("{name}: no program"),
        };
        if let (Some(asm), Some(_)) = (&t.asm, &t.raw) {
            assert_eq!(
                assemble(asm).unwrap(),
                insns,
                "{name}: asm and raw sections differ"
            );
        }
        tests.push((name, t, insns));
    }
    Some(tests)
}

fn check(name: &str, t: &ConformanceTest, outcome: Result<u64, String>) -> Result<(), String> {
    match (outcome, t.result, &t.error) {
        (Ok(r0), Some(want), _) if r0 == want => Ok(()),
        (Err(_), _, Some(_)) => Ok(()),
        (Ok(r0), want, err) => Err(format!(
            "{name}: r0 = {r0:#x}, expected {want:x?} / error {err:?}"
        )),
        (Err(e), want, _) => Err(format!(
            "{name}: failed with '{e}', expected r0 = {want:x?}"
        )),
    }
}

#[test]
fn conformance_suite_in_process() {
    let Some(tests) = load_suite() else { return };
    for engine in Engine::available() {
        let mut failures = Vec::new();
        for (name, t, insns) in &tests {
            let outcome = Program::new(insns.clone())
                .map_err(|e| e.to_string())
                .and_then(|p| {
                    run_bare(&p, &t.mem, engine, Config::default()).map_err(|e| e.to_string())
                });
            if let Err(f) = check(name, t, outcome) {
                failures.push(f);
            }
        }
        println!(
            "conformance ({engine}): {} passed, {} failed of {} tests",
            tests.len() - failures.len(),
            failures.len(),
            tests.len()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        assert_eq!(tests.len(), 313, "the suite has 313 tests");
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}  ")).collect()
}

#[test]
fn conformance_suite_through_plugin() {
    let Some(tests) = load_suite() else { return };
    let plugin = env!("CARGO_BIN_EXE_ebpf-sim-plugin");
    for engine in Engine::available() {
        let mut failures = Vec::new();
        for (name, t, insns) in &tests {
            let mut cmd = Command::new(plugin);
            if !t.mem.is_empty() {
                cmd.arg(hex(&t.mem));
            }
            cmd.args(["--engine", &engine.to_string()]);
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            {
                use std::io::Write;
                let mut stdin = child.stdin.take().unwrap();
                writeln!(stdin, "{}", hex(&slots_to_bytes(insns))).unwrap();
            }
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
            let outcome = if out.status.success() {
                u64::from_str_radix(&stdout, 16)
                    .map_err(|_| format!("unparsable output '{stdout}'"))
            } else {
                Err(stdout)
            };
            if let Err(f) = check(name, t, outcome) {
                failures.push(f);
            }
        }
        println!(
            "conformance (plugin, {engine}): {} passed, {} failed of {} tests",
            tests.len() - failures.len(),
            failures.len(),
            tests.len()
        );
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
