//! The trace format (docs/trace-format.md): a file of kernel events to replay.
//!
//! Accepted shapes: `{"config": {...}, "tasks": [...], "events": [...]}`, a bare array of
//! events, or JSON lines (one event object per line). Numbers may be JSON numbers or
//! strings (`"0x7ffd1000"`, `"-100"`). Every error names the event's index.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// A parsed trace.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    pub config: TraceConfig,
    /// Tasks events may name by pid alone.
    pub tasks: BTreeMap<u32, TaskSpec>,
    pub events: Vec<Event>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TraceConfig {
    #[serde(default = "default_ncpus")]
    pub ncpus: u32,
    #[serde(default)]
    pub seed: Option<u64>,
    #[serde(default)]
    pub hz: Option<u64>,
    /// Wall-clock time of monotonic 0, for the TIME column (seconds since the epoch).
    #[serde(default)]
    pub boot_wallclock: Option<u64>,
}

fn default_ncpus() -> u32 {
    4
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            ncpus: default_ncpus(),
            seed: None,
            hz: None,
            boot_wallclock: None,
        }
    }
}

/// A task as a trace describes it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub pid: u32,
    /// Defaults to `pid`.
    #[serde(default)]
    pub tgid: Option<u32>,
    /// Parent's tgid (the task_struct's real_parent).
    #[serde(default)]
    pub ppid: Option<u32>,
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub comm: String,
    /// Cgroup id, and its ancestors (outermost last).
    #[serde(default)]
    pub cgroup: Option<u64>,
    #[serde(default)]
    pub cgroup_ancestors: Vec<u64>,
    /// `task_struct.exit_code` (the kernel's encoding: status << 8 | signal).
    #[serde(default)]
    pub exit_code: i32,
    /// Other task_struct fields by name (scalars only), e.g. {"prio": 120}.
    #[serde(default)]
    pub fields: BTreeMap<String, Value>,
}

impl TaskSpec {
    pub fn tgid(&self) -> u32 {
        self.tgid.unwrap_or(self.pid)
    }
}

/// A task given inline or by pid.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TaskRef {
    Pid(u32),
    Spec(TaskSpec),
}

/// Simulated memory an event provides.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemorySpec {
    /// `user` (reached by probe_read_user*) or `kernel` (probe_read_kernel* and direct
    /// loads through kernel pointers).
    pub space: Space,
    pub addr: Value,
    #[serde(default)]
    pub string: Option<String>,
    #[serde(default)]
    pub hex: Option<String>,
    /// Little-endian 64-bit words (e.g. a struct of pointers).
    #[serde(default)]
    pub u64: Option<Vec<Value>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Space {
    User,
    Kernel,
}

/// One event.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// The hook, as in section names: `tp/syscalls/sys_enter_openat`, `raw_tp/sched_switch`,
    /// `kprobe/do_unlinkat`, `xdp`, ...
    pub hook: String,
    #[serde(default)]
    pub time_ns: Option<Value>,
    #[serde(default)]
    pub cpu: u32,
    #[serde(default)]
    pub task: Option<TaskRef>,
    /// Positional arguments: syscall arguments, raw tracepoint / fentry arguments, kprobe
    /// registers (PARM1..PARM6).
    #[serde(default)]
    pub args: Vec<Value>,
    /// Named context fields (syscall argument names, tracepoint fields).
    #[serde(default)]
    pub ctx: BTreeMap<String, Value>,
    /// Return value: syscall exit, kretprobe, fexit.
    #[serde(default)]
    pub ret: Option<Value>,
    /// Packet bytes for xdp, tc and socket programs, as hex.
    #[serde(default)]
    pub packet: Option<String>,
    /// The whole context as hex, for hooks the simulator has no layout for.
    #[serde(default)]
    pub ctx_hex: Option<String>,
    #[serde(default)]
    pub memory: Vec<MemorySpec>,
    #[serde(default)]
    pub kstack: Vec<Value>,
    #[serde(default)]
    pub ustack: Vec<Value>,
    #[serde(default)]
    pub cookie: Option<Value>,
    #[serde(default)]
    pub func_ip: Option<Value>,
    /// Network interface for xdp/tc (`ingress_ifindex`).
    #[serde(default)]
    pub ifindex: Option<u32>,
}

/// A trace that does not parse, with the event it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    #[error("{file}: not valid JSON: {message}")]
    Json { file: String, message: String },
    #[error("{file}: event {index}: {message}")]
    Event {
        file: String,
        index: usize,
        message: String,
    },
    #[error("{file}: {message}")]
    Other { file: String, message: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceFile {
    #[serde(default)]
    config: Option<TraceConfig>,
    #[serde(default)]
    tasks: Vec<TaskSpec>,
    events: Vec<Value>,
}

/// Parses an integer from a JSON number or a string (decimal, negative, `0x` hex).
pub fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from)),
        Value::Bool(b) => Some(*b as i128),
        Value::String(s) => {
            let t = s.trim();
            let (neg, t) = match t.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, t),
            };
            let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                Some(h) => u64::from_str_radix(h, 16).ok()? as i128,
                None => t.parse::<u64>().ok()? as i128,
            };
            Some(if neg { -v } else { v })
        }
        _ => None,
    }
}

/// An integer as the 64-bit value a register would hold.
pub fn u64_of(v: &Value) -> Option<u64> {
    let i = int(v)?;
    (i >= i64::MIN as i128 && i <= u64::MAX as i128).then_some(i as u64)
}

fn parse_event(file: &str, index: usize, v: Value) -> Result<Event, TraceError> {
    let err = |message: String| TraceError::Event {
        file: file.to_string(),
        index,
        message,
    };
    let e: Event = serde_json::from_value(v).map_err(|e| err(e.to_string()))?;
    if e.hook.trim().is_empty() {
        return Err(err("the hook is empty".into()));
    }
    if let Some(t) = &e.time_ns {
        u64_of(t).ok_or_else(|| err(format!("time_ns {t} is not a non-negative integer")))?;
    }
    Ok(e)
}

impl Trace {
    /// Parses a trace file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Trace, TraceError> {
        let trimmed = text.trim_start();
        let (config, tasks, raw_events): (Option<TraceConfig>, Vec<TaskSpec>, Vec<Value>) =
            if trimmed.starts_with('[') {
                let events: Vec<Value> =
                    serde_json::from_str(text).map_err(|e| TraceError::Json {
                        file: file.into(),
                        message: e.to_string(),
                    })?;
                (None, Vec::new(), events)
            } else {
                match serde_json::from_str::<Value>(text) {
                    Ok(v) if v.get("events").is_some() => {
                        let f: TraceFile =
                            serde_json::from_value(v).map_err(|e| TraceError::Other {
                                file: file.into(),
                                message: e.to_string(),
                            })?;
                        (f.config, f.tasks, f.events)
                    }
                    Ok(v) if v.get("hook").is_some() => (None, Vec::new(), vec![v]),
                    Ok(_) => return Err(TraceError::Other {
                        file: file.into(),
                        message:
                            "expected an object with \"events\", an array of events, or JSON lines"
                                .into(),
                    }),
                    Err(_) => {
                        // JSON lines
                        let mut events = Vec::new();
                        for (n, line) in text.lines().enumerate() {
                            if line.trim().is_empty() {
                                continue;
                            }
                            let v = serde_json::from_str(line).map_err(|e| TraceError::Json {
                                file: file.into(),
                                message: format!("line {}: {e}", n + 1),
                            })?;
                            events.push(v);
                        }
                        (None, Vec::new(), events)
                    }
                }
            };
        let mut trace = Trace {
            config: config.unwrap_or_default(),
            ..Trace::default()
        };
        if trace.config.ncpus == 0 || trace.config.ncpus > 1024 {
            return Err(TraceError::Other {
                file: file.into(),
                message: format!("config.ncpus must be 1..=1024, not {}", trace.config.ncpus),
            });
        }
        for t in tasks {
            if trace.tasks.insert(t.pid, t.clone()).is_some() {
                return Err(TraceError::Other {
                    file: file.into(),
                    message: format!("task {} is listed twice", t.pid),
                });
            }
        }
        for (i, v) in raw_events.into_iter().enumerate() {
            let e = parse_event(file, i, v)?;
            if e.cpu >= trace.config.ncpus {
                return Err(TraceError::Event {
                    file: file.into(),
                    index: i,
                    message: format!(
                        "cpu {} is not below config.ncpus ({})",
                        e.cpu, trace.config.ncpus
                    ),
                });
            }
            trace.events.push(e);
        }
        Ok(trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_shapes_parse() {
        let one = r#"{"hook": "xdp", "time_ns": 5, "packet": "00"}"#;
        assert_eq!(Trace::parse(one, "t").unwrap().events.len(), 1);
        let arr = format!("[{one}, {one}]");
        assert_eq!(Trace::parse(&arr, "t").unwrap().events.len(), 2);
        let lines = format!("{one}\n\n{one}\n");
        assert_eq!(Trace::parse(&lines, "t").unwrap().events.len(), 2);
        let full = format!(
            r#"{{"config": {{"ncpus": 2}}, "tasks": [{{"pid": 7, "comm": "x"}}], "events": [{one}]}}"#
        );
        let t = Trace::parse(&full, "t").unwrap();
        assert_eq!(t.tasks[&7].comm, "x");
    }

    #[test]
    fn errors_name_the_event() {
        let e = Trace::parse(
            r#"[{"hook": "xdp"}, {"hook": "xdp", "bogus": 1}]"#,
            "t.json",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.json: event 1: unknown field `bogus`"),
            "{e}"
        );
        let e = Trace::parse(r#"[{"hook": "xdp", "cpu": 9}]"#, "t.json").unwrap_err();
        assert!(e.to_string().contains("event 0: cpu 9"), "{e}");
        let e = Trace::parse("{nope", "t.json").unwrap_err();
        assert!(e.to_string().contains("not valid JSON"), "{e}");
        let e = Trace::parse(r#"[{"hook": "xdp", "time_ns": "soon"}]"#, "t.json").unwrap_err();
        assert!(e.to_string().contains("event 0: time_ns"), "{e}");
    }

    #[test]
    fn integers_in_every_spelling() {
        assert_eq!(int(&serde_json::json!("0x10")), Some(16));
        assert_eq!(int(&serde_json::json!("-100")), Some(-100));
        assert_eq!(u64_of(&serde_json::json!(-1)), Some(u64::MAX));
        assert_eq!(int(&serde_json::json!("x")), None);
    }
}
