//! A built-in synthetic workload: a few plausible events for each hook the programs are
//! attached to, so that any example runs with one command and shows output.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::hooks::Hook;
use super::trace::{Event, TaskSpec, Trace, TraceConfig};

/// An Ethernet + IPv4 + TCP SYN packet (10.0.0.1:40000 -> 10.0.0.2:80).
pub const SAMPLE_PACKET: &str = "0200000000020200000000010800\
    450000280001000040060000 0a000001 0a000002\
    9c400050000000010000000050022000 00000000";

fn task(pid: u32, ppid: u32, uid: u32, comm: &str) -> TaskSpec {
    TaskSpec {
        pid,
        ppid: Some(ppid),
        uid,
        gid: uid,
        comm: comm.into(),
        cgroup: Some(1),
        ..TaskSpec::default()
    }
}

fn event(v: Value) -> Event {
    serde_json::from_value(v).expect("synthetic events follow the trace format")
}

/// Events for every hook in `hooks` (each with a section that attaches to it), three
/// rounds, one millisecond apart.
pub fn workload(hooks: &[(Hook, String)]) -> Trace {
    let tasks: BTreeMap<u32, TaskSpec> = [
        task(1, 0, 0, "systemd"),
        task(1000, 1, 1000, "bash"),
        task(1001, 1000, 1000, "cat"),
        task(1002, 1000, 1000, "ls"),
    ]
    .into_iter()
    .map(|t| (t.pid, t))
    .collect();
    let mut events = Vec::new();
    let mut time = 1_000_000u64;
    let workers = [1001u32, 1002, 1000];
    for round in 0..3 {
        let pid = workers[round % workers.len()];
        let comm = &tasks[&pid].comm;
        for (hook, section) in hooks {
            time += 1_000_000;
            let base = json!({"time_ns": time, "cpu": round % 2, "task": pid});
            let mut e = base.as_object().cloned().expect("object");
            let mut add = |k: &str, v: Value| {
                e.insert(k.into(), v);
            };
            match hook {
                Hook::Tracepoint { category, name } if category == "syscalls" => {
                    add("hook", json!(format!("tp/syscalls/{name}")));
                    if name.starts_with("sys_exit_") {
                        add("ret", json!(3));
                    } else {
                        let sys = name.trim_start_matches("sys_enter_");
                        let args = match sys {
                            "openat" | "openat2" => json!([-100, {"user": "/etc/passwd"}, 0, 0]),
                            "open" => json!([{"user": "/etc/passwd"}, 0, 0]),
                            "write" => json!([1, {"user": "hello\n"}, 6]),
                            "read" => json!([0, {"user": "\u{0}\u{0}\u{0}\u{0}"}, 4]),
                            "execve" => json!([{"user": format!("/usr/bin/{comm}")}, 0, 0]),
                            "unlinkat" => json!([-100, {"user": "/tmp/test"}, 0]),
                            "kill" => json!([1000, 15]),
                            _ => json!([0, 0, 0, 0, 0, 0]),
                        };
                        add("args", args);
                    }
                }
                Hook::Tracepoint { category, name } => {
                    add("hook", json!(format!("tp/{category}/{name}")));
                    if name == "sched_process_exec" {
                        add("ctx", json!({"filename": format!("/usr/bin/{comm}")}));
                    }
                }
                Hook::RawTracepoint { name } => {
                    add("hook", json!(format!("raw_tp/{name}")));
                    let args = match name.as_str() {
                        "sched_switch" => json!([0, {"task": 1000}, {"task": pid}]),
                        "sched_wakeup" | "sched_wakeup_new" => json!([{"task": pid}]),
                        "sched_process_exec" => json!([{"task": pid}, 0, 0]),
                        "sched_process_exit" => json!([{"task": pid}]),
                        _ => json!([0, 0, 0]),
                    };
                    add("args", args);
                }
                Hook::FuncEntry { function } | Hook::FuncExit { function } => {
                    let entry = matches!(hook, Hook::FuncEntry { .. });
                    let kw = if entry { "kprobe" } else { "kretprobe" };
                    add("hook", json!(format!("{kw}/{function}")));
                    // A `struct filename`-like argument: its first word points to a string.
                    let blob = 0xffff_8880_0010_0000u64 + round as u64 * 0x1000;
                    add(
                        "memory",
                        json!([{"space": "kernel", "addr": format!("{blob:#x}"),
                            "u64": [{"kernel": "/tmp/test"}, 0, 0, 0]}]),
                    );
                    add("args", json!([-100, format!("{blob:#x}"), 0]));
                    if !entry {
                        add("ret", json!(0));
                    }
                }
                Hook::ByType(t) => {
                    add("hook", json!(section));
                    match super::hooks::ctx_kind(*t) {
                        super::hooks::CtxKind::Xdp | super::hooks::CtxKind::SkBuff => {
                            add("packet", json!(SAMPLE_PACKET.replace(' ', "")));
                        }
                        // A zeroed context of a generous size for other program types.
                        _ => add("ctx_hex", json!("00".repeat(256))),
                    }
                }
                Hook::UprobeEntry { .. }
                | Hook::UprobeExit { .. }
                | Hook::Lsm { .. }
                | Hook::Section(_) => continue,
            }
            events.push(event(Value::Object(e)));
        }
    }
    Trace {
        config: TraceConfig::default(),
        tasks,
        events,
    }
}
