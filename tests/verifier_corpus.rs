//! The verifier corpus (`testdata/verifier/*.s`): small programs, each with the kernel's
//! recorded decision. Checks our verifier against the record and, where root can load
//! programs, the kernel against the record (so the corpus cannot drift from the kernel).
//!
//! Header lines (comments at the top of each file):
//! ```text
//! # prog: xdp                         program type (name or number)
//! # map: hash key=4 value=8 entries=16 [readonly]   one per map, index = order
//! # expect: reject null-deref         or `accept`; the class is an ErrorClass name
//! # kernel: invalid mem access        optional: text the kernel's error line contains
//! ```

use std::path::{Path, PathBuf};

use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::isa::{slots_to_bytes, Insn};
use ebpf_sim::vm::verifier::{verify, ErrorClass, MapInfo, VerifyOptions};
use ebpf_sim_kernel::{load_in_child, Judgement, LoadRequest, MapSpec};

struct Case {
    name: String,
    prog_type: u32,
    maps: Vec<(MapInfo, u32)>,
    expect: Option<ErrorClass>,
    kernel_text: Option<String>,
    asm: String,
    raw: Option<Vec<u64>>,
    privileged: bool,
}

fn prog_type(s: &str) -> u32 {
    match s {
        "socket_filter" | "socket" => 1,
        "kprobe" => 2,
        "sched_cls" | "tc" => 3,
        "sched_act" => 4,
        "tracepoint" => 5,
        "xdp" => 6,
        "perf_event" => 7,
        "cgroup_skb" => 8,
        "cgroup_sock" => 9,
        "raw_tracepoint" => 17,
        "cgroup_sysctl" => 23,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("unknown program type {other}")),
    }
}

fn map_type(s: &str) -> u32 {
    match s {
        "hash" => 1,
        "array" => 2,
        "prog_array" => 3,
        "perf_event_array" => 4,
        "ringbuf" => 27,
        other => other
            .parse()
            .unwrap_or_else(|_| panic!("unknown map type {other}")),
    }
}

fn parse(path: &Path) -> Case {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    let mut case = Case {
        name: name.clone(),
        prog_type: 1,
        maps: Vec::new(),
        expect: None,
        kernel_text: None,
        asm: text.clone(),
        raw: None,
        privileged: true,
    };
    let mut expect_seen = false;
    for line in text.lines() {
        let Some(h) = line.trim().strip_prefix('#') else {
            continue;
        };
        let Some((key, val)) = h.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key.trim() {
            "prog" => case.prog_type = prog_type(val),
            "map" => {
                let mut words = val.split_whitespace();
                let mut m = MapInfo {
                    map_type: map_type(words.next().unwrap()),
                    ..Default::default()
                };
                let mut flags = 0;
                for w in words {
                    let (k, v) = w.split_once('=').unwrap_or((w, ""));
                    let n = || v.parse::<u32>().unwrap();
                    match k {
                        "key" => m.key_size = n(),
                        "value" => m.value_size = n(),
                        "entries" => m.max_entries = n(),
                        "readonly" => {
                            m.readonly = true;
                            flags |= 1 << 7;
                        }
                        _ => panic!("{name}: bad map field {w}"),
                    }
                }
                case.maps.push((m, flags));
            }
            "expect" => {
                expect_seen = true;
                let mut w = val.split_whitespace();
                match w.next() {
                    Some("accept") => case.expect = None,
                    Some("reject") => {
                        let c = w
                            .next()
                            .unwrap_or_else(|| panic!("{name}: reject needs a class"));
                        case.expect = Some(
                            ErrorClass::from_name(c)
                                .unwrap_or_else(|| panic!("{name}: unknown class {c}")),
                        )
                    }
                    _ => panic!("{name}: bad expect line"),
                }
            }
            "kernel" => case.kernel_text = Some(val.to_string()),
            "privileged" => case.privileged = val != "no",
            "raw" => {
                case.raw = Some(
                    val.split_whitespace()
                        .map(|w| u64::from_str_radix(w.trim_start_matches("0x"), 16).unwrap())
                        .collect(),
                )
            }
            _ => {}
        }
    }
    assert!(expect_seen, "{name}: no `# expect:` line");
    case
}

fn corpus() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/verifier");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "s"))
        .collect();
    files.sort();
    files.iter().map(|p| parse(p)).collect()
}

fn insns(case: &Case) -> Vec<Insn> {
    match &case.raw {
        Some(raw) => raw.iter().map(|&v| Insn::from_u64(v)).collect(),
        None => assemble(&case.asm).unwrap_or_else(|e| panic!("{}: {e}", case.name)),
    }
}

fn ours(case: &Case) -> (Result<(), ErrorClass>, String) {
    let insns = insns(case);
    let maps: Vec<MapInfo> = case.maps.iter().map(|(m, _)| *m).collect();
    let mut opts = VerifyOptions::new(case.prog_type, &maps);
    opts.privileged = case.privileged;
    match verify(&insns, &opts) {
        Ok(_) => (Ok(()), String::new()),
        Err(r) => (Err(r.class), r.message),
    }
}

fn kernel(case: &Case) -> Judgement {
    let insns = insns(case);
    let req = LoadRequest {
        prog_type: case.prog_type,
        insns: slots_to_bytes(&insns),
        maps: case
            .maps
            .iter()
            .map(|(m, flags)| MapSpec {
                map_type: m.map_type,
                key_size: m.key_size,
                value_size: m.value_size,
                max_entries: m.max_entries,
                flags: *flags,
            })
            .collect(),
        log_level: 1,
        expected_attach_type: 0,
        without_perfmon: !case.privileged,
    };
    load_in_child(&req)
}

#[test]
fn corpus_agrees_with_recorded_kernel_decisions() {
    let cases = corpus();
    assert!(
        cases.len() >= 40,
        "the corpus has only {} programs",
        cases.len()
    );
    let mut agree = 0;
    let mut mismatches = Vec::new();
    let mut text_mismatches = Vec::new();
    for c in &cases {
        let (got, msg) = ours(c);
        let want = c.expect.map_or(Ok(()), Err);
        if got == want {
            agree += 1;
        } else {
            mismatches.push(format!(
                "{}: expected {want:?}, verifier says {got:?} ({msg})",
                c.name
            ));
        }
        if let (Some(t), Err(_)) = (&c.kernel_text, &got) {
            if !msg.contains(t.as_str()) {
                text_mismatches.push(format!("{}: kernel says `{t}`, we say `{msg}`", c.name));
            }
        }
    }
    let rejects = cases.iter().filter(|c| c.expect.is_some()).count();
    let classes: std::collections::BTreeSet<_> = cases.iter().filter_map(|c| c.expect).collect();
    println!(
        "verifier corpus: {agree}/{} agree with recorded expectations ({rejects} rejections over {} error classes)",
        cases.len(),
        classes.len()
    );
    for t in &text_mismatches {
        println!("  message differs: {t}");
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn kernel_agrees_with_the_corpus() {
    if let Err(e) = ebpf_sim_kernel::availability() {
        println!("SKIPPED: kernel check of the verifier corpus: {e}");
        return;
    }
    let cases = corpus();
    let mut agree = 0;
    let mut unjudged = 0;
    let mut bad = Vec::new();
    for c in &cases {
        let j = kernel(c);
        let ok = match (&j, c.expect) {
            (Judgement::Accepted { .. }, None) => true,
            (Judgement::Rejected { .. }, Some(_)) => c
                .kernel_text
                .as_ref()
                .is_none_or(|t| j.error_line().is_some_and(|l| l.contains(t.as_str()))),
            (Judgement::CouldNotJudge(_), _) => {
                unjudged += 1;
                continue;
            }
            _ => false,
        };
        if std::env::var_os("VERIFIER_CORPUS_SHOW").is_some() {
            let (o, m) = ours(c);
            println!(
                "{:40} kernel: {:?} | ours: {o:?} {m}",
                c.name,
                j.error_line()
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{j:?}").chars().take(60).collect())
            );
        }
        if ok {
            agree += 1;
        } else {
            let detail = match &j {
                Judgement::Rejected { .. } => j.error_line().unwrap_or("").to_string(),
                other => format!("{other:?}"),
            };
            bad.push(format!(
                "{}: expected {:?}, kernel: {detail}",
                c.name, c.expect
            ));
        }
    }
    println!(
        "verifier corpus: kernel agrees on {agree}/{} ({unjudged} could not be judged)",
        cases.len() - unjudged
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
