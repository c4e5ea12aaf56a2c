//! The real kernel as a backend (`run --backend kernel`) and `parity`: the simulator and
//! the kernel on the same trace, with a diff of return values, packets, ring buffer
//! records and final map contents.
//!
//! The kernel runs programs with `BPF_PROG_TEST_RUN` (ebpf_sim_kernel::object), so only
//! the types it can test-run take part: XDP, tc (sched_cls/act), socket filters,
//! cgroup_skb and raw tracepoints (u64 arguments); with `--kernel-as raw_tp`, tracepoint,
//! kprobe, tracing and lsm programs too, their instructions loaded as raw tracepoints
//! and given the context bytes the simulator builds (`sim::run::event_contexts`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ebpf_sim::engine::Engine;
use ebpf_sim::loader::{map_type_name, Object};
use ebpf_sim::sim::hooks::Hook;
use ebpf_sim::sim::machine::Machine;
use ebpf_sim::sim::run::{event_contexts, replay, EventContext, Record};
use ebpf_sim::sim::trace::{u64_of, TaskRef, Trace};
use ebpf_sim::vm::kernel::{Effect, KernelConfig};
use ebpf_sim_kernel::object::{prog_type, test_runnable, Entries};
use ebpf_sim_kernel::{KObject, KPreload, KResult, KRun, LoadOutcome};
use serde_json::{json, Value};

use super::bare::CmdResult;
use super::object::load;
use super::run::{parse_preload, preload, Preload};

/// What the kernel did with a trace.
pub struct KernelReplay {
    /// Records shaped like the simulator's: returns (r0 = the kernel's 32-bit retval),
    /// faults (a run that could not be made), ring buffer effects, unhandled events.
    pub records: Vec<Record>,
    pub result: KResult,
    /// Programs whose instructions were loaded as raw tracepoints (`--kernel-as raw_tp`).
    pub as_raw_tp: Vec<usize>,
    /// Per-event notes on what the kernel's run cannot reproduce (context words that
    /// point into the trace's memory, contexts cut to what a raw_tp test run takes).
    pub notes: Vec<String>,
}

/// Program types whose instructions `--kernel-as raw_tp` runs as a raw tracepoint: their
/// context is bytes the simulator builds (a tracepoint record, `pt_regs`, u64 arguments),
/// which a raw_tp test run can be given as they are.
pub fn runs_as_raw_tp(t: u32) -> bool {
    matches!(t, 2 | 5 | 26 | 29)
}

/// The most context bytes a raw_tp test run takes (`MAX_BPF_FUNC_ARGS` u64 arguments);
/// the verifier refuses raw_tp context reads past them.
pub const RAW_TP_CTX_MAX: usize = 8 * 12;

/// What `--kernel-as raw_tp` keeps and what it does not, for messages.
pub const RAW_TP_CAVEATS: &str = "the context bytes are the ones the simulator builds for \
     the event (the tracepoint record, pt_regs, arguments; at most 96 bytes), but helpers \
     that read the current task, the time or kernel memory see the test runner's world, \
     not the trace's, and the kernel verifies the instructions by raw_tp rules (context \
     reads only, within 96 bytes; raw_tp's helpers) and may refuse them";

/// The message for a program the kernel would not load as a raw tracepoint.
pub fn raw_tp_refusal(log: &str) -> String {
    format!(
        "the kernel refuses to run these instructions as raw_tp: {}",
        last_line(log)
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn type_name(t: u32) -> &'static str {
    match t {
        0 => "unspec",
        1 => "socket_filter",
        2 => "kprobe",
        3 => "sched_cls",
        4 => "sched_act",
        5 => "tracepoint",
        6 => "xdp",
        7 => "perf_event",
        8 => "cgroup_skb",
        17 => "raw_tracepoint",
        26 => "tracing",
        29 => "lsm",
        _ => "other",
    }
}

/// Runs every event of `trace` through the kernel: each attached program the event's
/// hook reaches is test-run once. An event that reaches a program of a type the kernel
/// cannot test-run is an error naming it, unless `as_raw_tp` (`--kernel-as raw_tp`) and
/// the type is one [`runs_as_raw_tp`] takes: then its instructions are loaded as a raw
/// tracepoint and test-run with the context bytes the simulator builds for the event.
/// `preloads` (`--map`) are written first, with the prog arrays' initial slots (their
/// programs are loaded even when not attached).
pub(crate) fn kernel_replay(
    machine: &Machine,
    kernel_object: &Object,
    trace: &Trace,
    attached: &[bool],
    preloads: &[Preload],
    as_raw_tp: bool,
) -> Result<KernelReplay, String> {
    let object = &machine.object;
    let hooks: Vec<Hook> = object
        .programs
        .iter()
        .map(|p| Hook::of_section(&p.section))
        .collect();
    let on = |i: usize| attached.get(i).copied().unwrap_or(true);
    // The programs run as raw tracepoints, and the simulator's contexts for them.
    let converted: Vec<usize> = (0..object.programs.len())
        .filter(|&i| {
            let t = object.programs[i].prog_type.number();
            as_raw_tp && on(i) && !test_runnable(t) && runs_as_raw_tp(t)
        })
        .collect();
    let contexts: BTreeMap<(usize, usize), EventContext> = if converted.is_empty() {
        BTreeMap::new()
    } else {
        event_contexts(machine, trace, attached)?
            .into_iter()
            .filter(|c| converted.contains(&c.program))
            .map(|c| ((c.event, c.program), c))
            .collect()
    };
    let mut notes = Vec::new();
    let mut cut: Vec<usize> = Vec::new();
    // (event index, program index, data_in given) of each run, in order.
    let mut runs = Vec::new();
    let mut plan: Vec<(usize, Option<usize>)> = Vec::new();
    for (index, ev) in trace.events.iter().enumerate() {
        let hook = Hook::of_section(&ev.hook);
        let targets: Vec<usize> = (0..object.programs.len())
            .filter(|&i| on(i) && hooks[i] == hook)
            .collect();
        if targets.is_empty() {
            plan.push((index, None));
        }
        for p in targets {
            let prog = &object.programs[p];
            let t = prog.prog_type.number();
            let err =
                |m: String| format!("event {index} ({}): program {}: {m}", ev.hook, prog.name);
            if converted.contains(&p) {
                let c = contexts
                    .get(&(index, p))
                    .ok_or_else(|| err("the simulator built no context for this run".into()))?;
                for (off, addr, what) in &c.sim_pointers {
                    notes.push(err(format!(
                        "context bytes {off}..{} hold {addr:#x}, an address in {what}: the \
                         kernel does not have this memory (reads through it see the test \
                         runner's), so this run may differ",
                        off + 8
                    )));
                }
                let mut ctx = c.bytes.clone();
                if ctx.len() > RAW_TP_CTX_MAX {
                    // Once per program: every event of a kprobe has a 168-byte pt_regs.
                    if ctx[RAW_TP_CTX_MAX..].iter().any(|&b| b != 0) && !cut.contains(&p) {
                        cut.push(p);
                        notes.push(err(format!(
                            "the context is {} bytes with data past byte {RAW_TP_CTX_MAX}; a \
                             raw_tp test run takes {RAW_TP_CTX_MAX}: the kernel gets the first \
                             {RAW_TP_CTX_MAX} (its verifier refuses context reads past them; \
                             noted once per program)",
                            ctx.len()
                        )));
                    }
                    ctx.truncate(RAW_TP_CTX_MAX);
                }
                runs.push(KRun {
                    program: p,
                    cpu: ev.cpu,
                    ctx_in: Some(ctx),
                    ..KRun::default()
                });
                plan.push((index, Some(p)));
                continue;
            }
            if !test_runnable(t) {
                return Err(err(cannot_test_run(t)));
            }
            let mut run = KRun {
                program: p,
                cpu: ev.cpu,
                ifindex: if t == prog_type::RAW_TRACEPOINT {
                    0
                } else {
                    ev.ifindex.unwrap_or(1)
                },
                ..KRun::default()
            };
            if t == prog_type::RAW_TRACEPOINT {
                let mut ctx = Vec::new();
                if let Some(h) = &ev.ctx_hex {
                    ctx = ebpf_sim::conformance::parse_hex_bytes(h)
                        .map_err(|e| err(format!("ctx_hex: {e}")))?;
                } else {
                    for a in &ev.args {
                        let v = u64_of(a).ok_or_else(|| {
                            err(format!(
                                "argument {a} is not an integer: the kernel backend cannot \
                                 place memory for a raw tracepoint"
                            ))
                        })?;
                        ctx.extend_from_slice(&v.to_le_bytes());
                    }
                    ctx.resize(ctx.len().max(8 * 12), 0);
                }
                run.ctx_in = Some(ctx);
            } else {
                let packet = ev
                    .packet
                    .as_deref()
                    .ok_or_else(|| err("a network program needs \"packet\" (hex bytes)".into()))?;
                let mut data = ebpf_sim::conformance::parse_hex_bytes(packet)
                    .map_err(|e| err(format!("packet: {e}")))?;
                if t == prog_type::SOCKET_FILTER {
                    // The kernel's test run pulls an Ethernet header off a socket
                    // filter's packet (an L3 view); a copy of the header in front makes
                    // the program see the whole packet from L2, as on an AF_PACKET
                    // socket and in the simulator. It is taken off data_out again.
                    let mut head = data.clone();
                    head.resize(14, 0);
                    head.truncate(14);
                    head.extend_from_slice(&data);
                    data = head;
                }
                run.data_in = Some(data);
            }
            runs.push(run);
            plan.push((index, Some(p)));
        }
    }
    let mut kobj = KObject::from_object(kernel_object, on);
    for &p in &converted {
        let kp = &mut kobj.programs[p];
        kp.prog_type = prog_type::RAW_TRACEPOINT;
        kp.expected_attach_type = 0;
        kp.load = true;
    }
    for p in preloads {
        kobj.preload(KPreload {
            map: p.map,
            key: p.key.clone(),
            value: p.value.clone(),
        });
    }
    let result = ebpf_sim_kernel::run_object(&kobj, &runs).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let mut k = 0;
    let mut last_time = 0u64;
    let mut i = 0;
    while i < plan.len() {
        let (index, _) = plan[i];
        let ev = &trace.events[index];
        let time_ns = ev.time_ns.as_ref().and_then(u64_of).unwrap_or(last_time);
        last_time = time_ns;
        let (pid, comm): (u32, Rc<str>) = match &ev.task {
            Some(TaskRef::Pid(p)) => (
                *p,
                trace
                    .tasks
                    .get(p)
                    .map_or("".into(), |t| t.comm.as_str().into()),
            ),
            Some(TaskRef::Spec(s)) => (s.pid, s.comm.as_str().into()),
            None => (0, "swapper/0".into()),
        };
        let mut ring = Vec::new();
        while i < plan.len() && plan[i].0 == index {
            match plan[i].1 {
                None => records.push(Record::Unhandled {
                    event: index,
                    hook: ev.hook.clone(),
                }),
                Some(p) => {
                    let program: Rc<str> = object.programs[p].name.as_str().into();
                    let r = result.runs.get(k).cloned().unwrap_or_default();
                    k += 1;
                    ring.extend(r.ringbuf.iter().cloned());
                    // The run's printk lines, before its return (as the simulator's).
                    for text in &r.printk {
                        records.push(Record::Effect {
                            event: index,
                            time_ns,
                            cpu: ev.cpu,
                            pid,
                            comm: comm.clone(),
                            program: Some(program.clone()),
                            effect: Effect::Printk { text: text.clone() },
                        });
                    }
                    let mut packet = r.data_out.clone();
                    if object.programs[p].prog_type.number() == prog_type::SOCKET_FILTER {
                        if let Some(d) = &mut packet {
                            d.drain(..14.min(d.len()));
                        }
                    }
                    match (&r.error, &result.programs[p]) {
                        (None, _) => records.push(Record::Return {
                            event: index,
                            time_ns,
                            program,
                            r0: r.retval as u64,
                            packet,
                        }),
                        (Some(e), outcome) => records.push(Record::Fault {
                            event: index,
                            time_ns,
                            program,
                            message: match outcome {
                                LoadOutcome::Rejected { log, .. } if converted.contains(&p) => {
                                    raw_tp_refusal(log)
                                }
                                LoadOutcome::Rejected { errno, log } => format!(
                                    "the kernel rejected the program ({}): {}",
                                    std::io::Error::from_raw_os_error(*errno),
                                    last_line(log)
                                ),
                                LoadOutcome::CouldNotJudge(why) => why.clone(),
                                _ if converted.contains(&p) && e.contains("Invalid argument") => {
                                    format!(
                                        "{e} (a raw_tp test run needs the context to cover \
                                         every context read the program makes)"
                                    )
                                }
                                _ => e.clone(),
                            },
                        }),
                    }
                }
            }
            i += 1;
        }
        for (map, data) in ring {
            records.push(Record::Effect {
                event: index,
                time_ns,
                cpu: ev.cpu,
                pid,
                comm: comm.clone(),
                program: None,
                effect: Effect::Ringbuf { map, data },
            });
        }
    }
    Ok(KernelReplay {
        records,
        result,
        as_raw_tp: converted,
        notes,
    })
}

/// Why an event cannot reach a program of type `t` in the kernel, and what
/// `--kernel-as raw_tp` would do about it.
fn cannot_test_run(t: u32) -> String {
    let base = format!(
        "the kernel cannot test-run programs of type {} ({t}); BPF_PROG_TEST_RUN runs xdp, \
         sched_cls, sched_act, socket_filter, cgroup_skb and raw_tracepoint",
        type_name(t)
    );
    if runs_as_raw_tp(t) {
        format!(
            "{base}. --kernel-as raw_tp loads this program's instructions as a raw tracepoint \
             and test-runs them instead: {RAW_TP_CAVEATS}"
        )
    } else {
        format!(
            "{base} (--kernel-as raw_tp takes tracepoint, kprobe, tracing and lsm programs only)"
        )
    }
}

/// The programs the kernel did not load (rejected, or could not judge), as one message.
pub fn load_failures(object: &Object, k: &KernelReplay) -> Option<String> {
    let lines: Vec<String> = object
        .programs
        .iter()
        .zip(&k.result.programs)
        .enumerate()
        .filter_map(|(i, (p, o))| match o {
            LoadOutcome::Rejected { log, .. } if k.as_raw_tp.contains(&i) => {
                Some(format!("program {}: {}", p.name, raw_tp_refusal(log)))
            }
            LoadOutcome::Rejected { errno, log } => Some(format!(
                "program {}: the kernel rejected it ({}): {}",
                p.name,
                std::io::Error::from_raw_os_error(*errno),
                last_line(log)
            )),
            LoadOutcome::CouldNotJudge(why) => Some(format!("program {}: {why}", p.name)),
            _ => None,
        })
        .collect();
    (!lines.is_empty()).then(|| lines.join("; "))
}

/// The verifier's message: the last meaningful line of its log.
pub fn last_line(log: &str) -> &str {
    ebpf_sim_kernel::prog::error_line(log).unwrap_or("")
}

/// The kernel's maps at the end, as `run --dump-maps` prints the simulator's.
pub fn dump_kernel_maps(object: &Object, result: &KResult, json: bool) -> String {
    let mut out = String::new();
    for (i, def) in object.maps.iter().enumerate() {
        let Some(entries) = result.maps.get(i).and_then(|m| m.as_ref()) else {
            if !json {
                out.push_str(&format!(
                    "map {} ({}): not read back from the kernel\n",
                    def.name,
                    map_type_name(def.map_type)
                ));
            }
            continue;
        };
        if json {
            let list: Vec<Value> = entries
                .iter()
                .map(|(k, vs)| json!({"key": hex(k), "values": vs.iter().map(|v| hex(v)).collect::<Vec<_>>()}))
                .collect();
            out.push_str(&json!({"type": "map", "map": def.name, "entries": list}).to_string());
            out.push('\n');
        } else {
            out.push_str(&format!(
                "map {} ({}, {} entries):\n",
                def.name,
                map_type_name(def.map_type),
                entries.len()
            ));
            for (k, vs) in entries {
                let vals: Vec<String> = vs.iter().map(|v| hex(v)).collect();
                out.push_str(&format!("  {} => {}\n", hex(k), vals.join(" | ")));
            }
        }
    }
    out
}

/// Options of `parity`.
pub struct ParityArgs {
    pub file: PathBuf,
    pub trace: PathBuf,
    pub json: bool,
    pub engine: Engine,
    pub budget: u64,
    pub btf: Option<PathBuf>,
    pub progs: Vec<String>,
    /// `--map NAME:KEY=VALUE` entries written into both sides' maps first.
    pub maps: Vec<String>,
    /// `--kernel-as raw_tp`: run tracepoint, kprobe, tracing and lsm programs' instructions
    /// as raw tracepoints in the kernel.
    pub as_raw_tp: bool,
}

/// One difference.
struct Diff {
    kind: &'static str,
    event: Option<usize>,
    subject: String,
    sim: String,
    kernel: String,
}

/// What a run produced, for comparison: r0 (low 32 bits) and packet, or a fault.
type Outcome = Result<(u32, Option<Vec<u8>>), String>;

fn outcomes(records: &[Record]) -> BTreeMap<(usize, String), Outcome> {
    let mut m = BTreeMap::new();
    for r in records {
        match r {
            Record::Return {
                event,
                program,
                r0,
                packet,
                ..
            } => {
                m.insert(
                    (*event, program.to_string()),
                    Ok((*r0 as u32, packet.clone())),
                );
            }
            Record::Fault {
                event,
                program,
                message,
                ..
            } => {
                m.insert((*event, program.to_string()), Err(message.clone()));
            }
            _ => {}
        }
    }
    m
}

fn ringbufs(records: &[Record]) -> BTreeMap<usize, Vec<(usize, Vec<u8>)>> {
    let mut m: BTreeMap<usize, Vec<(usize, Vec<u8>)>> = BTreeMap::new();
    for r in records {
        if let Record::Effect {
            event,
            effect: Effect::Ringbuf { map, data },
            ..
        } = r
        {
            m.entry(*event).or_default().push((*map, data.clone()));
        }
    }
    m
}

/// Each event's printk messages, in order (without trailing newlines: the kernel's trace
/// output ends every message with one).
fn printks(records: &[Record]) -> BTreeMap<usize, Vec<String>> {
    let mut m: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for r in records {
        if let Record::Effect {
            event,
            effect: Effect::Printk { text },
            ..
        } = r
        {
            m.entry(*event)
                .or_default()
                .push(text.trim_end_matches('\n').to_string());
        }
    }
    m
}

fn show(o: &Outcome) -> String {
    match o {
        Ok((r0, Some(p))) => format!("r0={r0} packet={}", hex(p)),
        Ok((r0, None)) => format!("r0={r0}"),
        Err(e) => format!("fault: {e}"),
    }
}

fn show_entries(e: &Entries) -> String {
    e.iter()
        .map(|(k, vs)| {
            let v: Vec<String> = vs.iter().map(|v| hex(v)).collect();
            format!("{}={}", hex(k), v.join("|"))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The object the kernel loads. Without `--btf`, its CO-RE relocations are resolved
/// against the running kernel's BTF (/sys/kernel/btf/vmlinux, when there is one), as
/// libbpf does; the simulator keeps the object relocated against its own BTF, from which
/// it lays out the kernel memory it simulates. With `--btf`, both use that file.
pub(crate) fn kernel_object(
    file: &Path,
    btf: Option<&Path>,
    sim: &Object,
) -> Result<Object, String> {
    let vmlinux = Path::new("/sys/kernel/btf/vmlinux");
    if btf.is_some() || !vmlinux.exists() {
        return Ok(sim.clone());
    }
    let object = load(file, Some(vmlinux))?.object().clone();
    // The same file: the same programs and maps, in the same order.
    let same = object.programs.len() == sim.programs.len()
        && object.maps.len() == sim.maps.len()
        && object
            .programs
            .iter()
            .zip(&sim.programs)
            .all(|(a, b)| a.name == b.name && a.insns.len() == b.insns.len());
    if !same {
        return Err(format!(
            "{}: relocated against {} it has other programs or maps",
            file.display(),
            vmlinux.display()
        ));
    }
    Ok(object)
}

/// `parity`: the simulator and the kernel on the same trace.
pub fn parity(args: ParityArgs) -> CmdResult {
    let loaded = load(&args.file, args.btf.as_deref())?;
    let file = args.file.display().to_string();
    let text = std::fs::read_to_string(&args.trace)
        .map_err(|e| format!("{}: {e}", args.trace.display()))?;
    let mut trace =
        Trace::parse(&text, &args.trace.display().to_string()).map_err(|e| e.to_string())?;
    ebpf_sim_kernel::availability().map_err(|e| e.to_string())?;
    let kernel_cpus = ebpf_sim_kernel::object::possible_cpus();
    // Events on CPUs this machine lacks run on CPU (cpu % count) in both.
    let mut folded = 0;
    for ev in &mut trace.events {
        if ev.cpu >= kernel_cpus {
            ev.cpu %= kernel_cpus;
            folded += 1;
        }
    }
    trace.config.ncpus = kernel_cpus;
    // The simulator gets the kernel's CPU count, so per-CPU values line up.
    let mut config = KernelConfig {
        ncpus: kernel_cpus,
        ..KernelConfig::default()
    };
    if let Some(s) = trace.config.seed {
        config.seed = s;
    }
    if let Some(hz) = trace.config.hz {
        config.hz = hz;
    }
    let object = loaded.object().clone();
    for name in &args.progs {
        if object.program(name).is_none() {
            return Err(format!("{file}: no program named {name}"));
        }
    }
    let attached: Vec<bool> = object
        .programs
        .iter()
        .map(|p| {
            if !args.progs.is_empty() {
                args.progs.contains(&p.name)
            } else if let ebpf_sim::loader::Loaded::Package(pkg) = &loaded {
                pkg.progs.is_empty() || pkg.progs.iter().any(|(n, _, _)| **n == *p.name)
            } else {
                true
            }
        })
        .collect();
    let mut machine = Machine::new(object.clone(), config, args.engine, args.budget)
        .map_err(|e| format!("{file}: {e}"))?;
    let preloads = args
        .maps
        .iter()
        .map(|spec| parse_preload(&machine, spec))
        .collect::<Result<Vec<_>, String>>()?;
    for spec in &args.maps {
        preload(&mut machine, spec)?;
    }
    let kobject = kernel_object(&args.file, args.btf.as_deref(), &machine.object)?;
    let kernel = kernel_replay(
        &machine,
        &kobject,
        &trace,
        &attached,
        &preloads,
        args.as_raw_tp,
    )
    .map_err(|e| format!("{file}: {e}"))?;
    let sim = replay(&mut machine, &trace, &attached, &[]);
    if let Some(e) = &sim.error {
        return Err(format!("{file}: simulator: {e}"));
    }

    let mut diffs = Vec::new();
    for e in &kernel.result.preload_errors {
        diffs.push(Diff {
            kind: "map_write",
            event: None,
            subject: "an entry written before the runs".into(),
            sim: "written".into(),
            kernel: format!("refused: {e}"),
        });
    }
    let mut warnings: Vec<String> = kernel.result.printk_unavailable.iter().cloned().collect();
    let mut not_judged = Vec::new();
    let mut verdicts_agree = 0;
    for (i, p) in object.programs.iter().enumerate() {
        if kernel.as_raw_tp.contains(&i) {
            // Loaded as another type: the verdicts are not comparable, and a refusal
            // leaves nothing to compare.
            match &kernel.result.programs[i] {
                LoadOutcome::Rejected { log, .. } => diffs.push(Diff {
                    kind: "load",
                    event: None,
                    subject: p.name.clone(),
                    sim: format!("runs it as {}", type_name(p.prog_type.number())),
                    kernel: format!("{}{}", raw_tp_refusal(log), full_log(log)),
                }),
                LoadOutcome::CouldNotJudge(why) => not_judged.push(format!("{}: {why}", p.name)),
                _ => {}
            }
            continue;
        }
        // The simulator's verifier against the kernel's, on every program loaded.
        let sim_verdict = match &kernel.result.programs[i] {
            LoadOutcome::Loaded | LoadOutcome::Rejected { .. } => {
                Some(ebpf_sim::verify::verify_program(&object, p, 0).map_err(|r| r.message))
            }
            _ => None,
        };
        match (&kernel.result.programs[i], &sim_verdict) {
            (LoadOutcome::Loaded, Some(Err(m))) => diffs.push(Diff {
                kind: "load",
                event: None,
                subject: p.name.clone(),
                sim: format!("the verifier rejects it: {m}"),
                kernel: "loaded".into(),
            }),
            (LoadOutcome::Rejected { .. }, Some(Err(_))) | (LoadOutcome::Loaded, Some(Ok(_))) => {
                verdicts_agree += 1
            }
            _ => {}
        }
        match &kernel.result.programs[i] {
            LoadOutcome::Rejected { .. } if matches!(sim_verdict, Some(Err(_))) => {}
            LoadOutcome::Rejected { errno, log } => diffs.push(Diff {
                kind: "load",
                event: None,
                subject: p.name.clone(),
                sim: "the verifier accepts it".into(),
                kernel: format!(
                    "rejected ({}): {}{}",
                    std::io::Error::from_raw_os_error(*errno),
                    last_line(log),
                    full_log(log)
                ),
            }),
            LoadOutcome::CouldNotJudge(why) => not_judged.push(format!("{}: {why}", p.name)),
            _ => {}
        }
    }
    let so = outcomes(&sim.records);
    let ko = outcomes(&kernel.records);
    let mut runs = 0;
    let mut agree = 0;
    for (key, k) in &ko {
        let judged = object
            .programs
            .iter()
            .position(|p| p.name == key.1)
            .is_some_and(|i| {
                !matches!(
                    kernel.result.programs[i],
                    LoadOutcome::CouldNotJudge(_) | LoadOutcome::Rejected { .. }
                )
            });
        if !judged {
            continue;
        }
        runs += 1;
        let s = so.get(key);
        if s == Some(k) {
            agree += 1;
            continue;
        }
        diffs.push(Diff {
            kind: "return",
            event: Some(key.0),
            subject: key.1.clone(),
            sim: s.map_or("no run".into(), show),
            kernel: show(k),
        });
    }
    let sr = ringbufs(&sim.records);
    let kr = ringbufs(&kernel.records);
    // Events where a program did not run in the kernel (rejected, not judged): their
    // ring buffer records cannot be compared.
    let unrun: std::collections::BTreeSet<usize> = kernel
        .records
        .iter()
        .filter_map(|r| match r {
            Record::Fault { event, .. } => Some(*event),
            _ => None,
        })
        .collect();
    for ev in sr
        .keys()
        .chain(kr.keys())
        .filter(|e| !unrun.contains(e))
        .collect::<std::collections::BTreeSet<_>>()
    {
        let a = sr.get(ev).cloned().unwrap_or_default();
        let b = kr.get(ev).cloned().unwrap_or_default();
        if a != b {
            let f = |v: &[(usize, Vec<u8>)]| {
                v.iter()
                    .map(|(m, d)| format!("{}:{}", object.maps[*m].name, hex(d)))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            diffs.push(Diff {
                kind: "ringbuf",
                event: Some(*ev),
                subject: "ring buffer records".into(),
                sim: f(&a),
                kernel: f(&b),
            });
        }
    }
    // printk messages, per event, where the kernel's could be read.
    let mut printk_compared = 0;
    if kernel.result.printk_unavailable.is_none() {
        let sp = printks(&sim.records);
        let kp = printks(&kernel.records);
        for ev in sp
            .keys()
            .chain(kp.keys())
            .filter(|e| !unrun.contains(e))
            .collect::<std::collections::BTreeSet<_>>()
        {
            let a = sp.get(ev).cloned().unwrap_or_default();
            let b = kp.get(ev).cloned().unwrap_or_default();
            printk_compared += a.len().max(b.len());
            if a != b {
                diffs.push(Diff {
                    kind: "printk",
                    event: Some(*ev),
                    subject: "printk lines".into(),
                    sim: format!("{a:?}"),
                    kernel: format!("{b:?}"),
                });
            }
        }
    } else {
        warnings.push("printk lines were not compared".into());
    }
    let mut maps_compared = 0;
    for (i, def) in object.maps.iter().enumerate() {
        let Some(k) = kernel.result.maps.get(i).and_then(|m| m.as_ref()) else {
            continue;
        };
        maps_compared += 1;
        let mut s = machine.kernel.maps[i].entries();
        s.sort();
        if &s != k {
            // Entry by entry, so that a large map's diff stays readable.
            let sm: BTreeMap<_, _> = s.iter().cloned().collect();
            let km: BTreeMap<_, _> = k.iter().cloned().collect();
            let mut ds = Vec::new();
            for key in sm
                .keys()
                .chain(km.keys())
                .collect::<std::collections::BTreeSet<_>>()
            {
                let a = sm.get(key);
                let b = km.get(key);
                if a != b {
                    let f = |v: Option<&Vec<Vec<u8>>>| {
                        v.map_or("(none)".into(), |v| {
                            v.iter().map(|x| hex(x)).collect::<Vec<_>>().join("|")
                        })
                    };
                    ds.push((hex(key), f(a), f(b)));
                }
            }
            for (key, a, b) in ds.into_iter().take(16) {
                diffs.push(Diff {
                    kind: "map",
                    event: None,
                    subject: format!("{}[{key}]", def.name),
                    sim: a,
                    kernel: b,
                });
            }
            let _ = show_entries;
        }
    }

    let run_as: Vec<&str> = kernel
        .as_raw_tp
        .iter()
        .map(|&i| object.programs[i].name.as_str())
        .collect();
    if args.json {
        let d: Vec<Value> = diffs
            .iter()
            .map(|d| {
                json!({"kind": d.kind, "event": d.event, "subject": d.subject,
                       "sim": d.sim, "kernel": d.kernel})
            })
            .collect();
        let programs: serde_json::Map<String, Value> = object
            .programs
            .iter()
            .zip(&kernel.result.programs)
            .map(|(p, o)| {
                let v = match o {
                    LoadOutcome::NotLoaded => json!("not loaded"),
                    LoadOutcome::Loaded => json!("loaded"),
                    LoadOutcome::Rejected { errno, log } => {
                        json!({"rejected": last_line(log), "errno": errno})
                    }
                    LoadOutcome::CouldNotJudge(w) => json!({"could_not_judge": w}),
                };
                (p.name.clone(), v)
            })
            .collect();
        println!(
            "{}",
            json!({
                "file": file,
                "runs": runs,
                "agree": agree,
                "maps_compared": maps_compared,
                "printk_compared": printk_compared,
                "warnings": warnings,
                "verdicts_agree": verdicts_agree,
                "kernel_cpus": kernel_cpus,
                "events_cpu_folded": folded,
                "programs": programs,
                "not_judged": not_judged,
                "run_as": run_as.iter().map(|n| (n.to_string(), json!("raw_tp"))).collect::<serde_json::Map<_, _>>(),
                "label": if run_as.is_empty() { Value::Null } else { json!("run as raw_tp") },
                "notes": kernel.notes,
                "differences": d,
            })
        );
    } else {
        let label = if run_as.is_empty() {
            String::new()
        } else {
            format!(" (run as raw_tp: {})", run_as.join(", "))
        };
        println!(
            "parity {file}{label}: {runs} program runs, {agree} agree; {verdicts_agree} verifier \
             verdicts agree; {maps_compared} maps compared; {printk_compared} printk lines \
             compared; {} difference(s)",
            diffs.len()
        );
        if !run_as.is_empty() {
            println!(
                "  run as raw_tp: return values, maps, ring buffer records and printk lines \
                 are compared; {RAW_TP_CAVEATS}"
            );
        }
        for n in &kernel.notes {
            println!("  note: {n}");
        }
        for w in &warnings {
            println!("  warning: {w}");
        }
        if folded > 0 {
            println!(
                "  note: {folded} event(s) named a CPU this machine lacks: run on cpu % {kernel_cpus}"
            );
        }
        for n in &not_judged {
            println!("  not judged: {n}");
        }
        for d in &diffs {
            let at = d.event.map_or(String::new(), |e| format!("event {e}: "));
            println!("  {}{} {}:", at, d.kind, d.subject);
            println!("    sim:    {}", d.sim);
            println!("    kernel: {}", d.kernel);
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{file}: the simulator and the kernel differ ({} difference(s))",
            diffs.len()
        ))
    }
}

/// The whole verifier log after a newline, when EBPF_SIM_KERNEL_LOG is set (else nothing).
fn full_log(log: &str) -> String {
    if std::env::var_os("EBPF_SIM_KERNEL_LOG").is_some() {
        format!("\n{log}")
    } else {
        String::new()
    }
}
