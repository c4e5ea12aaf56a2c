//! Formatting records at the edge: an ecli-like plain table, or JSON lines.
//!
//! Plain output: exported events (the package's export type, decoded with the object's
//! BTF) as a table with a TIME column; printk lines as the kernel's trace_pipe shows them;
//! sample maps as histograms (log2 like libbpf-tools) or key/value lists. JSON: one object
//! per record, every record (returns, faults, effects) included.

use std::fmt::Write as _;

use crate::loader::globals::{format_value, ValueKind};
use crate::loader::{ExportType, Object, Package, SampleMap};
use crate::vm::kernel::Effect;
use crate::vm::maps::map_type;
use serde_json::{json, Map as JsonMap, Value};

use super::run::Record;

/// What the output needs to know about the loaded file.
pub struct OutputInfo<'a> {
    pub object: &'a Object,
    pub package: Option<&'a Package>,
    /// The type ring buffer and perf records decode to: the package's export type, or
    /// for a bare object the one ecc would choose (see `infer_export_type`).
    pub export: Option<ExportType>,
    /// Seconds since the epoch at monotonic time 0 (the TIME column shows UTC).
    pub boot_wallclock: u64,
    /// Show program returns and tail information in plain output.
    pub verbose: bool,
}

impl<'a> OutputInfo<'a> {
    pub fn new(
        object: &'a Object,
        package: Option<&'a Package>,
        boot_wallclock: u64,
        verbose: bool,
    ) -> Self {
        let export = match package {
            Some(p) => p.export_types.first().cloned(),
            None => crate::loader::package::infer_export_type(object),
        };
        OutputInfo {
            object,
            package,
            export,
            boot_wallclock,
            verbose,
        }
    }

    /// The export type records of `map` decode to, if any.
    fn export_type(&self, map: usize) -> Option<&ExportType> {
        let t = self.object.maps.get(map)?.map_type;
        if t != map_type::RINGBUF && t != map_type::PERF_EVENT_ARRAY {
            return None;
        }
        self.export.as_ref()
    }

    fn sample_map(&self, map: usize) -> Option<&SampleMap> {
        self.package?.sample_maps.iter().find(|s| s.map == map)
    }

    fn map_name(&self, map: usize) -> &str {
        self.object.maps.get(map).map_or("?", |m| m.name.as_str())
    }
}

/// HH:MM:SS (UTC) of a simulated time.
pub fn clock(info: &OutputInfo, time_ns: u64) -> String {
    let secs = info.boot_wallclock + time_ns / 1_000_000_000;
    let day = secs % 86_400;
    format!("{:02}:{:02}:{:02}", day / 3600, day % 3600 / 60, day % 60)
}

fn member_value(info: &OutputInfo, kind: &ValueKind, bytes: &[u8]) -> String {
    let s = format_value(info.object.btf.as_ref(), kind, bytes);
    // Strings print bare in the table, as ecli does.
    match kind {
        ValueKind::CharArray { .. } => s.trim_matches('"').to_string(),
        _ => s,
    }
}

fn member_json(info: &OutputInfo, kind: &ValueKind, bytes: &[u8]) -> Value {
    let text = member_value(info, kind, bytes);
    match kind {
        ValueKind::Int { .. } | ValueKind::Enum { .. } => text
            .parse::<i128>()
            .ok()
            .and_then(|v| serde_json::Number::from_i128(v).map(Value::Number))
            .unwrap_or(Value::String(text)),
        ValueKind::Bool => Value::Bool(text == "true"),
        ValueKind::Float { .. } => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or(Value::String(text)),
        _ => Value::String(text),
    }
}

fn field_bytes(data: &[u8], off: u64, size: u64) -> &[u8] {
    let s = (off as usize).min(data.len());
    let e = (off.saturating_add(size) as usize).min(data.len());
    &data[s..e]
}

/// trace_pipe's line for a printk.
fn printk_line(time_ns: u64, cpu: u32, pid: u32, comm: &str, text: &str) -> String {
    let comm = if comm.is_empty() { "<idle>" } else { comm };
    format!(
        "{:>16}-{:<7} [{:03}] d..31 {:>5}.{:06}: bpf_trace_printk: {}",
        comm,
        pid,
        cpu,
        time_ns / 1_000_000_000,
        time_ns % 1_000_000_000 / 1000,
        text.trim_end_matches('\n')
    )
}

fn hex(data: &[u8]) -> String {
    data.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// libbpf-tools' print_log2_hist.
pub fn log2_hist(vals: &[u64], unit: &str) -> String {
    let mut out = String::new();
    let idx_max = match vals.iter().rposition(|&v| v > 0) {
        Some(i) => i,
        None => return out,
    };
    let val_max = vals.iter().copied().max().unwrap_or(0).max(1);
    let (pad, name_w, width, stars_max) = if idx_max <= 32 {
        (5, 19, 10, 40)
    } else {
        (15, 29, 20, 20)
    };
    let _ = writeln!(out, "{:pad$}{:<name_w$} : count    distribution", "", unit);
    for (i, &val) in vals.iter().enumerate().take(idx_max + 1) {
        let high = (1u128 << (i + 1)) - 1;
        let mut low = (1u128 << (i + 1)) >> 1;
        if low == high {
            low -= 1;
        }
        let stars = (val.min(val_max) as u128 * stars_max as u128 / val_max as u128) as usize;
        let plus = if val > val_max { "+" } else { "" };
        let _ = writeln!(
            out,
            "{low:>width$} -> {high:<width$} : {val:<8} |{}{}{plus}|",
            "*".repeat(stars),
            " ".repeat(stars_max - stars)
        );
    }
    out
}

/// Plain-text rendering of the records.
pub struct Plain<'a> {
    info: OutputInfo<'a>,
    header_done: bool,
}

impl<'a> Plain<'a> {
    pub fn new(info: OutputInfo<'a>) -> Self {
        Plain {
            info,
            header_done: false,
        }
    }

    /// One table row (and the header before the first); the export type is the info's.
    fn event_row(&mut self, out: &mut String, map: usize, time_ns: u64, data: &[u8]) -> bool {
        let Some(t) = self.info.export_type(map) else {
            return false;
        };
        // Column widths depend on the types only, so rows line up whatever the values.
        let width = |m: &crate::loader::ExportMember| {
            let by_type = match &m.value_kind {
                ValueKind::CharArray { len } => (*len).min(16),
                ValueKind::Int { size, .. } if *size >= 8 => 11,
                _ => 6,
            };
            m.name.len().max(by_type)
        };
        if !self.header_done {
            let mut h = String::from("TIME     ");
            for m in &t.members {
                let _ = write!(h, "{:<w$} ", m.name.to_uppercase(), w = width(m));
            }
            let _ = writeln!(out, "{}", h.trim_end());
            self.header_done = true;
        }
        let mut row = format!("{} ", clock(&self.info, time_ns));
        for m in &t.members {
            let v = member_value(
                &self.info,
                &m.value_kind,
                field_bytes(data, m.offset, m.size),
            );
            let _ = write!(row, "{v:<w$} ", w = width(m));
        }
        let _ = writeln!(out, "{}", row.trim_end());
        true
    }

    fn sample(
        &self,
        out: &mut String,
        time_ns: u64,
        map: usize,
        entries: &[(Vec<u8>, Vec<Vec<u8>>)],
    ) {
        let spec = self.info.sample_map(map);
        let unit = spec
            .and_then(|s| s.unit.clone())
            .unwrap_or_else(|| "value".into());
        let _ = writeln!(out, "{}", clock(&self.info, time_ns));
        let print_type = spec.map_or("default_kv", |s| s.print_type.as_str());
        let export = self.info.export.as_ref();
        for (key, values) in entries {
            let value = values.first().map(Vec::as_slice).unwrap_or(&[]);
            let _ = writeln!(out, "key = {}", hex(key));
            match (print_type, export) {
                ("log2_hist", Some(t)) => {
                    // The histogram is the export type's `slots` array; other members
                    // (e.g. comm) print as a line first.
                    for m in t.members.iter().filter(|m| m.name != "slots") {
                        let v = member_value(
                            &self.info,
                            &m.value_kind,
                            field_bytes(value, m.offset, m.size),
                        );
                        let _ = writeln!(out, "{} = {v}", m.name);
                    }
                    if let Some(slots) = t.members.iter().find(|m| m.name == "slots") {
                        let bytes = field_bytes(value, slots.offset, slots.size);
                        let elem = match &slots.value_kind {
                            ValueKind::Array { elem_size, .. } => (*elem_size).max(1),
                            _ => 4,
                        };
                        let vals: Vec<u64> = bytes
                            .chunks(elem)
                            .map(|c| {
                                let mut b = [0u8; 8];
                                b[..c.len().min(8)].copy_from_slice(&c[..c.len().min(8)]);
                                u64::from_le_bytes(b)
                            })
                            .collect();
                        out.push_str(&log2_hist(&vals, &unit));
                    }
                }
                _ => {
                    let _ = writeln!(out, "value = {}", hex(value));
                }
            }
        }
        out.push('\n');
    }

    /// Renders one record (possibly nothing).
    pub fn record(&mut self, r: &Record) -> String {
        let mut out = String::new();
        match r {
            Record::Effect {
                time_ns,
                cpu,
                pid,
                comm,
                effect,
                event,
                program,
            } => match effect {
                Effect::Printk { text } => {
                    let _ = writeln!(out, "{}", printk_line(*time_ns, *cpu, *pid, comm, text));
                }
                Effect::Ringbuf { map, data } | Effect::Perf { map, data, .. } => {
                    match self.event_row(&mut out, *map, *time_ns, data) {
                        true => {}
                        false => {
                            let _ = writeln!(
                                out,
                                "{}  {} record ({} bytes): {}",
                                clock(&self.info, *time_ns),
                                self.info.map_name(*map),
                                data.len(),
                                hex(data)
                            );
                        }
                    }
                }
                Effect::Warning { message } => {
                    let p = program.as_deref().unwrap_or("-");
                    let _ = writeln!(out, "warning: event {event}: {p}: {message}");
                }
                other if self.info.verbose => {
                    let p = program.as_deref().unwrap_or("-");
                    let _ = writeln!(out, "event {event}: {p}: {other:?}");
                }
                _ => {}
            },
            Record::Return {
                event, program, r0, ..
            } if self.info.verbose => {
                let _ = writeln!(out, "event {event}: {program} returned {}", *r0 as i64);
            }
            Record::Fault {
                event,
                program,
                message,
                ..
            } => {
                let _ = writeln!(out, "error: event {event}: program {program}: {message}");
            }
            Record::Unhandled { event, hook } if self.info.verbose => {
                let _ = writeln!(out, "event {event}: no program is attached to {hook}");
            }
            Record::Sample {
                time_ns,
                map,
                entries,
            } => self.sample(&mut out, *time_ns, *map, entries),
            _ => {}
        }
        out
    }
}

/// The JSON object of one record.
pub fn json_record(info: &OutputInfo, r: &Record) -> Value {
    match r {
        Record::Return {
            event,
            time_ns,
            program,
            r0,
            packet,
        } => {
            let mut v = json!({"type": "return", "event": event, "time_ns": time_ns,
                "program": &**program, "r0": *r0 as i64});
            if let Some(p) = packet {
                v["packet"] = Value::String(hex(p).replace(' ', ""));
            }
            v
        }
        Record::Fault {
            event,
            time_ns,
            program,
            message,
        } => json!({"type": "fault", "event": event, "time_ns": time_ns,
            "program": &**program, "error": message}),
        Record::Unhandled { event, hook } => {
            json!({"type": "unhandled", "event": event, "hook": hook})
        }
        Record::Sample {
            time_ns,
            map,
            entries,
        } => {
            let list: Vec<Value> = entries
                .iter()
                .map(|(k, vs)| {
                    json!({"key": hex(k).replace(' ', ""),
                        "values": vs.iter().map(|v| hex(v).replace(' ', "")).collect::<Vec<_>>()})
                })
                .collect();
            json!({"type": "sample", "time_ns": time_ns, "map": info.map_name(*map), "entries": list})
        }
        Record::Effect {
            event,
            time_ns,
            cpu,
            pid,
            comm,
            program,
            effect,
        } => {
            let mut v = json!({"event": event, "time_ns": time_ns, "cpu": cpu, "pid": pid,
                "comm": &**comm, "program": program.as_deref()});
            let obj = v.as_object_mut().expect("object");
            match effect {
                Effect::Printk { text } => {
                    obj.insert("type".into(), "printk".into());
                    obj.insert("text".into(), text.trim_end_matches('\n').into());
                }
                Effect::Ringbuf { map, data } | Effect::Perf { map, data, .. } => {
                    let kind = if matches!(effect, Effect::Ringbuf { .. }) {
                        "ringbuf"
                    } else {
                        "perf"
                    };
                    obj.insert("type".into(), kind.into());
                    obj.insert("map".into(), info.map_name(*map).into());
                    if let Effect::Perf { cpu, .. } = effect {
                        obj.insert("perf_cpu".into(), (*cpu).into());
                    }
                    match info.export_type(*map) {
                        Some(t) => {
                            let mut fields = JsonMap::new();
                            for m in &t.members {
                                fields.insert(
                                    m.name.clone(),
                                    member_json(
                                        info,
                                        &m.value_kind,
                                        field_bytes(data, m.offset, m.size),
                                    ),
                                );
                            }
                            obj.insert("data".into(), Value::Object(fields));
                        }
                        None => {
                            obj.insert("data".into(), hex(data).replace(' ', "").into());
                        }
                    }
                }
                Effect::Signal { signal, thread } => {
                    obj.insert("type".into(), "signal".into());
                    obj.insert("signal".into(), (*signal).into());
                    obj.insert("thread".into(), (*thread).into());
                }
                Effect::OverrideReturn { value } => {
                    obj.insert("type".into(), "override_return".into());
                    obj.insert("value".into(), (*value as i64).into());
                }
                Effect::Redirect { ifindex, flags } => {
                    obj.insert("type".into(), "redirect".into());
                    obj.insert("ifindex".into(), (*ifindex).into());
                    obj.insert("flags".into(), (*flags).into());
                }
                Effect::Warning { message } => {
                    obj.insert("type".into(), "warning".into());
                    obj.insert("message".into(), message.clone().into());
                }
                Effect::TailCall {
                    map,
                    index,
                    program,
                    taken,
                } => {
                    obj.insert("type".into(), "tail_call".into());
                    obj.insert("map".into(), info.map_name(*map).into());
                    obj.insert("index".into(), (*index).into());
                    let target = program.and_then(|p| info.object.programs.get(p as usize));
                    obj.insert("target".into(), target.map(|p| p.name.clone()).into());
                    obj.insert("taken".into(), (*taken).into());
                }
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_hist_matches_libbpf_tools() {
        let h = log2_hist(&[0, 1, 4, 0, 2], "usecs");
        let want = "     usecs               : count    distribution\n\
                    \x20        0 -> 1          : 0        |                                        |\n\
                    \x20        2 -> 3          : 1        |**********                              |\n\
                    \x20        4 -> 7          : 4        |****************************************|\n\
                    \x20        8 -> 15         : 0        |                                        |\n\
                    \x20       16 -> 31         : 2        |********************                    |\n";
        assert_eq!(h, want);
        assert_eq!(log2_hist(&[0, 0], "x"), "");
    }
}
