//! Shared by the `runtime_*` tests: runs a committed testdata object against its trace
//! through `ebpf-sim run --json --dump-maps` on every engine this build has, checks that
//! the engines print exactly the same thing, and gives the records and the final map
//! contents for assertions.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::process::Command;

use ebpf_sim::engine::Engine;
use serde_json::Value;

/// What one run printed: its records (JSON lines) and every map's entries at the end.
pub struct Run {
    pub records: Vec<Value>,
    /// Map name -> entries (key hex, one value hex per CPU).
    pub maps: BTreeMap<String, Vec<(String, Vec<String>)>>,
    pub stderr: String,
    pub success: bool,
}

fn engine_name(e: Engine) -> &'static str {
    match e {
        Engine::Interp => "interp",
        Engine::Jit => "jit",
    }
}

/// `ebpf-sim run OBJ --trace TRACE --json --dump-maps --engine E EXTRA...` on one engine.
pub fn run_on(engine: Engine, obj: &str, trace: &str, extra: &[&str]) -> (String, Run) {
    let out = Command::new(env!("CARGO_BIN_EXE_ebpf-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        // These tests are about runtime semantics; some programs deliberately do what the
        // kernel's verifier refuses (a leaked ring buffer reservation), so the verifier,
        // tested on its own, is off here.
        .args([
            "run",
            obj,
            "--trace",
            trace,
            "--json",
            "--dump-maps",
            "--no-verify",
        ])
        .args(["--engine", engine_name(engine)])
        .args(extra)
        .output()
        .expect("running ebpf-sim");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8 output");
    let mut records = Vec::new();
    let mut maps = BTreeMap::new();
    for line in stdout.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        if v["type"] == "map" {
            let entries = v["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .map(|e| {
                    let vals = e["values"]
                        .as_array()
                        .expect("values")
                        .iter()
                        .map(|x| x.as_str().expect("hex").to_string())
                        .collect();
                    (e["key"].as_str().expect("key").to_string(), vals)
                })
                .collect();
            maps.insert(v["map"].as_str().expect("map name").to_string(), entries);
        } else {
            records.push(v);
        }
    }
    let run = Run {
        records,
        maps,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        success: out.status.success(),
    };
    (stdout, run)
}

/// Runs on every engine, asserts identical output, and returns the interpreter's run.
pub fn run(obj: &str, trace: &str, extra: &[&str]) -> Run {
    let mut first: Option<(Engine, String, Run)> = None;
    for engine in Engine::available() {
        let (stdout, run) = run_on(engine, obj, trace, extra);
        assert!(
            run.success,
            "{obj} on {}: ebpf-sim failed: {}",
            engine_name(engine),
            run.stderr
        );
        match &first {
            None => first = Some((engine, stdout, run)),
            Some((e0, out0, _)) => assert_eq!(
                out0,
                &stdout,
                "{obj}: {} and {} print different output",
                engine_name(*e0),
                engine_name(engine)
            ),
        }
    }
    let (_, _, run) = first.expect("at least one engine");
    run
}

/// Little-endian hex bytes as an unsigned integer (up to 8 bytes).
pub fn le(hex: &str) -> u64 {
    let bytes = bytes(hex);
    assert!(bytes.len() <= 8, "{hex} is longer than 8 bytes");
    let mut b = [0u8; 8];
    b[..bytes.len()].copy_from_slice(&bytes);
    u64::from_le_bytes(b)
}

pub fn bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

impl Run {
    /// Records of one type (`printk`, `return`, `ringbuf`, `perf`, `signal`...).
    pub fn of_type(&self, t: &str) -> Vec<&Value> {
        self.records.iter().filter(|r| r["type"] == t).collect()
    }

    /// Every printk line, in order.
    pub fn printk(&self) -> Vec<String> {
        self.of_type("printk")
            .iter()
            .map(|r| r["text"].as_str().expect("text").to_string())
            .collect()
    }

    /// The printk lines of event `event`.
    pub fn printk_of_event(&self, event: u64) -> Vec<String> {
        self.of_type("printk")
            .iter()
            .filter(|r| r["event"] == event)
            .map(|r| r["text"].as_str().expect("text").to_string())
            .collect()
    }

    /// `(event, program, r0)` of every program that ran to its exit.
    pub fn returns(&self) -> Vec<(u64, String, i64)> {
        self.of_type("return")
            .iter()
            .map(|r| {
                (
                    r["event"].as_u64().expect("event"),
                    r["program"].as_str().expect("program").to_string(),
                    r["r0"].as_i64().expect("r0"),
                )
            })
            .collect()
    }

    /// r0 of the programs of event `event`.
    pub fn r0(&self, event: u64) -> Vec<i64> {
        self.returns()
            .into_iter()
            .filter(|(e, _, _)| *e == event)
            .map(|(_, _, r0)| r0)
            .collect()
    }

    /// Asserts that no program faulted and no helper warned (a map found full, which the
    /// programs provoke on purpose, is only reported).
    pub fn assert_clean(&self) {
        let bad: Vec<&Value> = self
            .records
            .iter()
            .filter(|r| r["type"] == "fault" || r["type"] == "warning")
            .filter(|r| {
                !r["message"]
                    .as_str()
                    .is_some_and(|m| m.contains(" is full ("))
            })
            .collect();
        assert!(bad.is_empty(), "faults or warnings: {bad:#?}");
    }

    /// A map's entries: key hex -> values hex (one per CPU for per-CPU maps).
    pub fn map(&self, name: &str) -> &[(String, Vec<String>)] {
        self.maps
            .get(name)
            .unwrap_or_else(|| panic!("no map {name} in the dump (maps: {:?})", self.maps.keys()))
    }

    /// The values of `key` (u32 little-endian) in map `name`, as integers.
    pub fn values_u32_key(&self, name: &str, key: u32) -> Option<Vec<u64>> {
        let k: String = key
            .to_le_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        self.map(name)
            .iter()
            .find(|(kk, _)| *kk == k)
            .map(|(_, vs)| vs.iter().map(|v| le(v)).collect())
    }
}
