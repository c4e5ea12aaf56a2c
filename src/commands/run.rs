//! `ebpf-sim run`: replay a trace (or a synthetic workload) through an object or package.

use std::io::Write;
use std::path::{Path, PathBuf};

use ebpf_sim::engine::Engine;
use ebpf_sim::loader::{Loaded, Package};
use ebpf_sim::sim::hooks::Hook;
use ebpf_sim::sim::machine::Machine;
use ebpf_sim::sim::output::{json_record, OutputInfo, Plain};
use ebpf_sim::sim::run::{replay, SampleSpec};
use ebpf_sim::sim::synth;
use ebpf_sim::sim::trace::Trace;
use ebpf_sim::vm::kernel::KernelConfig;
use ebpf_sim::vm::maps::map_type;

use super::bare::CmdResult;
use super::object::load;

/// Options of `run`.
pub struct RunArgs {
    pub file: PathBuf,
    pub trace: Option<PathBuf>,
    pub json: bool,
    pub output: Option<PathBuf>,
    pub dump_maps: bool,
    pub engine: Engine,
    pub budget: u64,
    pub btf: Option<PathBuf>,
    pub maps: Vec<String>,
    pub verbose: bool,
    pub progs: Vec<String>,
    /// Verify every attached program before running.
    pub verify: bool,
    /// Run in the real kernel (BPF_PROG_TEST_RUN) instead of the simulator.
    pub kernel: bool,
    /// With `kernel`: run tracepoint, kprobe, tracing and lsm programs' instructions as
    /// raw tracepoints (`--kernel-as raw_tp`).
    pub as_raw_tp: bool,
    /// Options after the file: the package's global variables (`--pid 42`).
    pub package_args: Vec<String>,
}

/// An option that sets a global variable.
struct VarOption {
    name: String,
    long: String,
    short: Option<String>,
    type_name: String,
}

/// Applies `--NAME VALUE` / `--NAME=VALUE` / `-S VALUE` options to global variables, as
/// ecli does: a package's declared variables, or any global of a bare object (bool
/// variables are switches).
fn apply_package_args(loaded: &mut Loaded, args: &[String]) -> Result<(), String> {
    if args.is_empty() {
        return Ok(());
    }
    let vars: Vec<VarOption> = match loaded {
        Loaded::Package(Package { variables, .. }) => variables
            .iter()
            .map(|v| VarOption {
                name: v.name.clone(),
                long: v.long.clone(),
                short: v.short.clone(),
                type_name: v.type_name.clone(),
            })
            .collect(),
        Loaded::Object(o) => o
            .globals
            .iter()
            .filter(|g| !g.name.starts_with("__"))
            .map(|g| VarOption {
                name: g.name.clone(),
                long: g.name.clone(),
                short: None,
                type_name: g.type_name.clone(),
            })
            .collect(),
    };
    let obj = loaded.object_mut();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None => (arg.clone(), None),
        };
        let var = vars.iter().find(|v| {
            flag.strip_prefix("--") == Some(v.long.as_str())
                || v.short
                    .as_deref()
                    .is_some_and(|s| flag.strip_prefix('-') == Some(s))
        });
        let Some(var) = var else {
            let known: Vec<String> = vars.iter().map(|v| format!("--{}", v.long)).collect();
            return Err(format!(
                "unknown option {arg} (package options: {}; ebpf-sim options go before them)",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            ));
        };
        let is_bool = var.type_name == "bool" || var.type_name == "_Bool";
        let value = match inline {
            Some(v) => v,
            None if is_bool => "true".into(),
            None => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or(format!("{flag} needs a value"))?
            }
        };
        obj.set_global(&var.name, &value)
            .map_err(|e| format!("{flag}: {e}"))?;
        i += 1;
    }
    Ok(())
}

/// Parses an integer or `hex:...` bytes into exactly `size` bytes.
fn bytes_of(text: &str, size: usize, what: &str) -> Result<Vec<u8>, String> {
    if let Some(h) = text.strip_prefix("hex:") {
        let b = ebpf_sim::conformance::parse_hex_bytes(h).map_err(|e| format!("{what}: {e}"))?;
        if b.len() != size {
            return Err(format!(
                "{what}: {} bytes given, the map wants {size}",
                b.len()
            ));
        }
        return Ok(b);
    }
    let v = ebpf_sim::conformance::parse_u64(text)
        .ok_or_else(|| format!("{what}: '{text}' is neither an integer nor hex:BYTES"))?;
    let mut b = v.to_le_bytes().to_vec();
    if size > 8 && v != 0 {
        return Err(format!(
            "{what}: an integer fills at most 8 of the {size} bytes: use hex:BYTES"
        ));
    }
    b.resize(size, 0);
    if size < 8 && v >> (size * 8) != 0 && v >> (size * 8) != u64::MAX >> (size * 8) {
        return Err(format!("{what}: {text} does not fit in {size} bytes"));
    }
    Ok(b)
}

/// A `--map NAME:KEY=VALUE` option, resolved against the machine's object: the map index,
/// the key and one value (a prog array's value is the program index as a u32).
pub(crate) struct Preload {
    pub map: usize,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

/// Parses `--map NAME:KEY=VALUE` (a program name as the value of a prog array).
pub(crate) fn parse_preload(machine: &Machine, spec: &str) -> Result<Preload, String> {
    let (name, rest) = spec
        .split_once(':')
        .ok_or_else(|| format!("--map {spec}: expected NAME:KEY=VALUE"))?;
    let (key, value) = rest
        .split_once('=')
        .ok_or_else(|| format!("--map {spec}: expected NAME:KEY=VALUE"))?;
    let index = machine
        .object
        .map_index(name)
        .ok_or_else(|| format!("--map {spec}: no map named {name}"))?;
    let m = &machine.kernel.maps[index];
    let ks = m.spec().key_size as usize;
    let vs = m.spec().value_size as usize;
    let k = bytes_of(key, ks, &format!("--map {spec}: key"))?;
    let v = if m.spec().map_type == map_type::PROG_ARRAY {
        match machine.programs.iter().position(|p| &*p.name == value) {
            Some(p) => {
                ebpf_sim::sim::machine::prog_array_accepts(&machine.object, index, p)
                    .map_err(|e| format!("--map {spec}: {e}"))?;
                (p as u32).to_le_bytes().to_vec()
            }
            None => bytes_of(value, vs, &format!("--map {spec}: value"))?,
        }
    } else {
        bytes_of(value, vs, &format!("--map {spec}: value"))?
    };
    Ok(Preload {
        map: index,
        key: k,
        value: v,
    })
}

/// `--map NAME:KEY=VALUE`: preloads a map of the simulator.
pub(crate) fn preload(machine: &mut Machine, spec: &str) -> Result<(), String> {
    let Preload {
        map: index,
        key: k,
        value: v,
    } = parse_preload(machine, spec)?;
    let vs = machine.kernel.maps[index].spec().value_size as usize;
    let m = &mut machine.kernel.maps[index];
    if m.is_percpu() {
        let mut all = Vec::new();
        let stride = vs.next_multiple_of(8);
        for _ in 0..m.ncpus() {
            let mut one = v.clone();
            one.resize(stride, 0);
            all.extend(one);
        }
        m.update_all_cpus(&k, &all, 0)
    } else {
        m.update(&k, &v, 0, 0)
    }
    .map_err(|e| format!("--map {spec}: {e}"))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub fn run(args: RunArgs) -> CmdResult {
    if args.as_raw_tp && !args.kernel {
        return Err("--kernel-as runs programs in the kernel: it needs --backend kernel".into());
    }
    let mut loaded = load(&args.file, args.btf.as_deref())?;
    apply_package_args(&mut loaded, &args.package_args)?;
    let file = args.file.display().to_string();
    let trace = match &args.trace {
        Some(path) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            Some(Trace::parse(&text, &path.display().to_string()).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let mut config = KernelConfig::default();
    if let Some(t) = &trace {
        config.ncpus = t.config.ncpus;
        if let Some(s) = t.config.seed {
            config.seed = s;
        }
        if let Some(hz) = t.config.hz {
            config.hz = hz;
        }
    }
    let object = loaded.object().clone();
    let mut machine = Machine::new(object, config, args.engine, args.budget)
        .map_err(|e| format!("{file}: {e}"))?;
    for spec in &args.maps {
        preload(&mut machine, spec)?;
    }
    // Which programs are attached: --prog, else the package's list, else all.
    let attached: Vec<bool> = machine
        .programs
        .iter()
        .map(|p| {
            if !args.progs.is_empty() {
                args.progs.iter().any(|n| **n == *p.name)
            } else if let Loaded::Package(pkg) = &loaded {
                pkg.progs.is_empty() || pkg.progs.iter().any(|(n, _, _)| **n == *p.name)
            } else {
                true
            }
        })
        .collect();
    for name in &args.progs {
        if machine.program_index(name).is_none() {
            return Err(format!("{file}: no program named {name}"));
        }
    }
    if args.verify {
        // The kernel would refuse to load such a program: say why, as `verify` does. What
        // the verifier proves lets the JIT drop checks.
        for (i, on) in attached.iter().enumerate() {
            if *on {
                let p = &machine.object.programs[i];
                let verdict =
                    ebpf_sim::verify::verify_program(&machine.object, p, 0).map_err(|r| {
                        format!(
                            "{file}: program {} would not load (the kernel's verifier rejects it; \
                         --no-verify runs it anyway):\n{r}",
                            p.name
                        )
                    })?;
                machine.use_proofs(i, &verdict.facts)?;
            }
        }
    }
    let trace = match trace {
        Some(t) => t,
        None => {
            let mut hooks: Vec<(Hook, String)> = Vec::new();
            for (p, on) in machine.programs.iter().zip(&attached) {
                if *on && !hooks.iter().any(|(h, _)| *h == p.hook) {
                    hooks.push((p.hook.clone(), p.section.clone()));
                }
            }
            synth::workload(&hooks)
        }
    };
    let package = match &loaded {
        Loaded::Package(p) => Some(p),
        Loaded::Object(_) => None,
    };
    let samples: Vec<SampleSpec> = package
        .map(|p| {
            p.sample_maps
                .iter()
                .map(|s| SampleSpec {
                    map: s.map,
                    interval_ns: s.interval_ms.max(1) * 1_000_000,
                    clear: s.clear_map,
                })
                .collect()
        })
        .unwrap_or_default();
    // The kernel backend writes the same entries into the kernel's maps (a prog array's
    // program as its fd).
    let preloads = args
        .maps
        .iter()
        .map(|spec| parse_preload(&machine, spec))
        .collect::<Result<Vec<_>, String>>()?;
    if machine.programs.is_empty() {
        eprintln!("{file}: no programs to run (it only defines types and data)");
    }
    // With the kernel backend, the map dump is the kernel's, made alongside the records.
    let (replayed, kernel_maps) = if args.kernel {
        let (r, maps) = kernel_run(
            &machine,
            (&args.file, args.btf.as_deref()),
            &trace,
            &attached,
            &preloads,
            args.json,
            args.as_raw_tp,
        )
        .map_err(|e| format!("{file}: {e}"))?;
        (r, Some(maps))
    } else {
        (replay(&mut machine, &trace, &attached, &samples), None)
    };
    let records = replayed.records;
    let boot = trace.config.boot_wallclock.unwrap_or(0);
    let info = OutputInfo::new(&machine.object, package, boot, args.verbose);
    let json_lines: String = records
        .iter()
        .map(|r| json_record(&info, r).to_string() + "\n")
        .collect();
    if let Some(path) = &args.output {
        std::fs::write(path, &json_lines).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let mut out = String::new();
    if args.json {
        out.push_str(&json_lines);
    } else {
        let mut plain = Plain::new(OutputInfo::new(
            &machine.object,
            package,
            boot,
            args.verbose,
        ));
        for r in &records {
            out.push_str(&plain.record(r));
        }
        // Events no program is attached to are easy to miss (a typo in a hook): say so.
        let mut unhandled: Vec<&str> = Vec::new();
        let mut count = 0;
        for r in &records {
            if let ebpf_sim::sim::run::Record::Unhandled { hook, .. } = r {
                count += 1;
                if !unhandled.contains(&hook.as_str()) {
                    unhandled.push(hook);
                }
            }
        }
        if count > 0 && !args.verbose {
            eprintln!(
                "warning: {count} event(s) reached no attached program (hooks: {}); -v lists them",
                unhandled.join(", ")
            );
        }
    }
    if args.dump_maps {
        match &kernel_maps {
            Some(dump) => out.push_str(dump),
            None => out.push_str(&dump_maps(&machine, args.json)),
        }
    }
    std::io::stdout()
        .write_all(out.as_bytes())
        .map_err(|e| format!("writing standard output: {e}"))?;
    match replayed.error {
        Some(e) => Err(format!("{file}: {e}")),
        None => Ok(()),
    }
}

/// Runs the trace in the real kernel: the records, and the kernel's maps as `--dump-maps`
/// prints them.
#[cfg(feature = "kernel-backend")]
fn kernel_run(
    machine: &Machine,
    (path, btf): (&Path, Option<&Path>),
    trace: &Trace,
    attached: &[bool],
    preloads: &[Preload],
    json: bool,
    as_raw_tp: bool,
) -> Result<(ebpf_sim::sim::run::Replay, String), String> {
    // CO-RE against the running kernel's BTF unless --btf says otherwise.
    let kernel_object = super::parity::kernel_object(path, btf, &machine.object)?;
    let k = super::parity::kernel_replay(
        machine,
        &kernel_object,
        trace,
        attached,
        preloads,
        as_raw_tp,
    )?;
    if !k.as_raw_tp.is_empty() {
        let names: Vec<&str> = k
            .as_raw_tp
            .iter()
            .map(|&i| machine.object.programs[i].name.as_str())
            .collect();
        eprintln!(
            "note: run as raw_tp: {}: {}",
            names.join(", "),
            super::parity::RAW_TP_CAVEATS
        );
    }
    for n in &k.notes {
        eprintln!("warning: {n}");
    }
    if let Some(w) = &k.result.printk_unavailable {
        eprintln!("warning: {w}");
    }
    for e in &k.result.preload_errors {
        eprintln!("warning: the kernel refused an entry: {e}");
    }
    let maps = super::parity::dump_kernel_maps(&machine.object, &k.result, json);
    let error = super::parity::load_failures(&machine.object, &k);
    let r = ebpf_sim::sim::run::Replay {
        records: k.records,
        error,
    };
    Ok((r, maps))
}

#[cfg(not(feature = "kernel-backend"))]
fn kernel_run(
    _: &Machine,
    _: (&Path, Option<&Path>),
    _: &Trace,
    _: &[bool],
    _: &[Preload],
    _: bool,
    _: bool,
) -> Result<(ebpf_sim::sim::run::Replay, String), String> {
    Err("this ebpf-sim was built without the kernel backend (cargo feature kernel-backend)".into())
}

/// Every map's entries at the end of the run.
fn dump_maps(machine: &Machine, json: bool) -> String {
    let mut out = String::new();
    for (def, m) in machine.object.maps.iter().zip(&machine.kernel.maps) {
        let entries = m.entries();
        if json {
            let list: Vec<serde_json::Value> = entries
                .iter()
                .map(|(k, vs)| serde_json::json!({"key": hex(k), "values": vs.iter().map(|v| hex(v)).collect::<Vec<_>>()}))
                .collect();
            out.push_str(
                &serde_json::json!({"type": "map", "map": def.name, "entries": list}).to_string(),
            );
            out.push('\n');
        } else {
            out.push_str(&format!(
                "map {} ({}, {} entries):\n",
                def.name,
                ebpf_sim::loader::map_type_name(def.map_type),
                entries.len()
            ));
            for (k, vs) in entries {
                let vals: Vec<String> = vs.iter().map(|v| hex(v)).collect();
                out.push_str(&format!("  {} => {}\n", hex(&k), vals.join(" | ")));
            }
        }
    }
    out
}
