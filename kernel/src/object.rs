//! A whole loader [`Object`] in the real kernel: every map created (global data with its
//! initial contents, `.rodata` frozen), the test-runnable programs loaded with their map
//! references rewritten to the kernel's form, runs made with `BPF_PROG_TEST_RUN`, ring
//! buffer records drained after each run, and every map read back at the end.
//!
//! All of it happens in a forked child ([`run_object`]): this kernel's verifier can kill
//! the loading process, and a dead child means "the kernel could not judge", never a
//! verdict. The child reports each step as a JSON line through a pipe; when it dies while
//! loading a program, that program is marked [`LoadOutcome::CouldNotJudge`] and the
//! object is run again without it.

use serde::{Deserialize, Serialize};

use crate::KernelError;
use ebpf_sim_loader::{MapOrigin, Object};
use ebpf_sim_vm::isa::pseudo;

/// `BPF_PROG_TYPE_*` numbers that `BPF_PROG_TEST_RUN` can run here.
pub mod prog_type {
    pub const SOCKET_FILTER: u32 = 1;
    pub const SCHED_CLS: u32 = 3;
    pub const SCHED_ACT: u32 = 4;
    pub const XDP: u32 = 6;
    pub const CGROUP_SKB: u32 = 8;
    pub const RAW_TRACEPOINT: u32 = 17;
}

/// Whether the kernel can test-run programs of this type (with a packet, or u64
/// arguments for raw tracepoints).
pub fn test_runnable(t: u32) -> bool {
    use prog_type::*;
    matches!(
        t,
        SOCKET_FILTER | SCHED_CLS | SCHED_ACT | XDP | CGROUP_SKB | RAW_TRACEPOINT
    )
}

/// A map to create.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KMap {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub map_extra: u64,
    /// Initial value of key 0 (global data).
    pub data: Vec<u8>,
    /// Freeze after writing `data` (read-only global data, as libbpf does).
    pub freeze: bool,
    /// The inner map template of a map-in-map.
    pub inner: Option<Box<KMap>>,
    /// Initial slots of a map-in-map: (slot, map index); of a prog array: (slot, program
    /// index), filled once the programs are loaded.
    pub init_slots: Vec<(u32, usize)>,
}

/// A map entry to write before the runs (`--map NAME:KEY=VALUE`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KPreload {
    /// Map index in [`KObject::maps`].
    pub map: usize,
    pub key: Vec<u8>,
    /// The value (one CPU's for per-CPU maps: written to every CPU); for a prog array,
    /// the program index as a u32, replaced by the program's fd.
    pub value: Vec<u8>,
}

/// A program to load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KProgram {
    pub name: String,
    pub prog_type: u32,
    pub expected_attach_type: u32,
    /// Instruction bytes with the loader's `lddw` forms (src 5/6 with map indexes, or
    /// 1/2 with map indexes): rewritten to fds in the child.
    pub insns: Vec<u8>,
    /// Load it (only test-runnable programs should be).
    pub load: bool,
    /// The functions laid out in `insns` (first slot, name), entry first: with more
    /// than one, the load gets a small BTF with one static FUNC each and their
    /// func_info (callbacks need it).
    pub functions: Vec<(u32, String)>,
}

/// An object for the kernel.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KObject {
    pub maps: Vec<KMap>,
    pub programs: Vec<KProgram>,
    pub license: String,
    /// Entries written after the programs are loaded, before the runs.
    pub preloads: Vec<KPreload>,
    /// Collect `bpf_trace_printk` lines of each run (through a tracefs instance).
    pub printk: bool,
}

fn kmap(def: &ebpf_sim_loader::MapDef, ncpus: u32) -> KMap {
    let mut m = KMap {
        name: def.name.clone(),
        map_type: def.map_type,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        flags: def.flags,
        map_extra: def.map_extra,
        data: def.data.clone(),
        freeze: matches!(def.origin, MapOrigin::GlobalData { readonly: true }),
        inner: def.inner.as_deref().map(|i| Box::new(kmap(i, ncpus))),
        init_slots: def.init_slots.clone(),
    };
    if m.map_type == ebpf_sim_loader::map_type::PERF_EVENT_ARRAY {
        if m.key_size == 0 {
            m.key_size = 4;
        }
        if m.value_size == 0 {
            m.value_size = 4;
        }
        if m.max_entries == 0 {
            m.max_entries = ncpus;
        }
    }
    m
}

impl KObject {
    /// The kernel's view of a loaded object; programs of test-runnable types are marked
    /// for loading when `load` says so (by program index), and so are the programs a prog
    /// array's initial slots hold (tail calls reach them).
    pub fn from_object(obj: &Object, load: impl Fn(usize) -> bool) -> KObject {
        let ncpus = possible_cpus();
        let mut k = KObject {
            maps: obj.maps.iter().map(|d| kmap(d, ncpus)).collect(),
            programs: obj
                .programs
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let t = p.prog_type.number();
                    KProgram {
                        name: p.name.clone(),
                        prog_type: t,
                        expected_attach_type: expected_attach_type(&p.attach),
                        insns: ebpf_sim_vm::isa::slots_to_bytes(&p.insns),
                        load: test_runnable(t) && load(i),
                        functions: p
                            .functions
                            .iter()
                            .map(|f| (f.start as u32, f.name.clone()))
                            .collect(),
                    }
                })
                .collect(),
            license: obj.license.clone().unwrap_or_else(|| "GPL".into()),
            preloads: Vec::new(),
            printk: true,
        };
        let targets: Vec<usize> = k
            .maps
            .iter()
            .filter(|m| m.map_type == PROG_ARRAY)
            .flat_map(|m| m.init_slots.iter().map(|&(_, p)| p))
            .collect();
        for p in targets {
            k.load_tail_target(p);
        }
        k
    }

    /// Marks program `p` for loading when the kernel can run it (a prog array slot holds
    /// it).
    fn load_tail_target(&mut self, p: usize) {
        if let Some(prog) = self.programs.get_mut(p) {
            if test_runnable(prog.prog_type) {
                prog.load = true;
            }
        }
    }

    /// Adds an entry to write before the runs; a prog array's program is loaded.
    pub fn preload(&mut self, pre: KPreload) {
        if self.maps.get(pre.map).map(|m| m.map_type) == Some(PROG_ARRAY) {
            if let Ok(b) = <[u8; 4]>::try_from(&pre.value[..]) {
                self.load_tail_target(u32::from_le_bytes(b) as usize);
            }
        }
        self.preloads.push(pre);
    }
}

const PROG_ARRAY: u32 = 3;

fn expected_attach_type(a: &ebpf_sim_loader::AttachPoint) -> u32 {
    match a {
        ebpf_sim_loader::AttachPoint::Hook { attach_type } => match attach_type.as_str() {
            "BPF_CGROUP_INET_INGRESS" => 0,
            "BPF_CGROUP_INET_EGRESS" => 1,
            _ => 0,
        },
        _ => 0,
    }
}

/// The number of possible CPUs (per-CPU map values hold one value for each).
pub fn possible_cpus() -> u32 {
    std::fs::read_to_string("/sys/devices/system/cpu/possible")
        .ok()
        .and_then(|s| {
            s.trim()
                .split(',')
                .map(|r| match r.split_once('-') {
                    Some((a, b)) => Some(b.parse::<u32>().ok()? - a.parse::<u32>().ok()? + 1),
                    None => r.parse::<u32>().ok().map(|_| 1),
                })
                .sum::<Option<u32>>()
        })
        .unwrap_or(1)
}

/// A minimal raw BTF for `functions` (sorted by first slot): `long` (type 1), a
/// `long (void)` prototype (type 2), then one static FUNC per function (types 3..), and
/// the func_info records (insn_off, type_id) that go with it.
pub fn func_btf(functions: &[(u32, String)]) -> (Vec<u8>, Vec<u8>) {
    let mut strings = b"\0long\0".to_vec();
    let mut types = Vec::new();
    let mut word = |v: u32| types.extend_from_slice(&v.to_le_bytes());
    // 1: INT long, 8 bytes, signed, 64 bits
    word(1);
    word(1 << 24);
    word(8);
    word((1 << 24) | 64);
    // 2: FUNC_PROTO returning long, no parameters
    word(0);
    word(13 << 24);
    word(1);
    let mut info = Vec::new();
    for (k, (start, name)) in functions.iter().enumerate() {
        let name_off = strings.len() as u32;
        let clean: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let clean = if clean.is_empty() || clean.starts_with(|c: char| c.is_ascii_digit()) {
            format!("f{k}_{clean}")
        } else {
            clean
        };
        strings.extend_from_slice(clean.as_bytes());
        strings.push(0);
        // FUNC, linkage static, prototype 2
        word(name_off);
        word(12 << 24);
        word(2);
        info.extend_from_slice(&start.to_le_bytes());
        info.extend_from_slice(&(3 + k as u32).to_le_bytes());
    }
    let mut btf = Vec::new();
    btf.extend_from_slice(&0xeb9fu16.to_le_bytes());
    btf.push(1); // version
    btf.push(0); // flags
    btf.extend_from_slice(&24u32.to_le_bytes()); // hdr_len
    btf.extend_from_slice(&0u32.to_le_bytes()); // type_off
    btf.extend_from_slice(&(types.len() as u32).to_le_bytes());
    btf.extend_from_slice(&(types.len() as u32).to_le_bytes()); // str_off
    btf.extend_from_slice(&(strings.len() as u32).to_le_bytes());
    btf.extend_from_slice(&types);
    btf.extend_from_slice(&strings);
    (btf, info)
}

/// One test run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KRun {
    /// Program index in [`KObject::programs`].
    pub program: usize,
    /// Packet bytes (`data_in`).
    pub data_in: Option<Vec<u8>>,
    /// Context bytes (`ctx_in`): u64 arguments for raw tracepoints.
    pub ctx_in: Option<Vec<u8>>,
    /// The CPU to run on (the child pins itself there; raw tracepoints ask the kernel).
    pub cpu: u32,
    /// XDP's `ingress_ifindex`, an skb program's `ifindex` (0, 1: none / loopback;
    /// another device must exist).
    pub ifindex: u32,
}

/// What became of a program.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LoadOutcome {
    /// Not asked for (or not test-runnable).
    NotLoaded,
    Loaded,
    Rejected {
        errno: i32,
        log: String,
    },
    /// The child died loading it (the verifier killed it), or the load could not be tried.
    CouldNotJudge(String),
}

/// The result of one test run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// `retval` (the kernel keeps 32 bits of r0).
    pub retval: u32,
    pub duration_ns: u32,
    /// The packet after the program.
    pub data_out: Option<Vec<u8>>,
    /// Ring buffer records submitted during the run: (map index, bytes).
    pub ringbuf: Vec<(usize, Vec<u8>)>,
    /// `bpf_trace_printk` messages of the run, in order (when collected).
    pub printk: Vec<String>,
    /// Why the run did not happen (the program is not loaded, the test run failed).
    pub error: Option<String>,
}

/// A map's contents: (key, values), one value per possible CPU for per-CPU maps.
pub type Entries = Vec<(Vec<u8>, Vec<Vec<u8>>)>;

/// Everything the kernel did with an object.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct KResult {
    pub ncpus: u32,
    /// Per map: None when it was created and read, else why not.
    pub map_errors: Vec<Option<String>>,
    pub programs: Vec<LoadOutcome>,
    pub runs: Vec<RunOutcome>,
    /// Per map: its entries at the end (None when it cannot be read: ring buffers, perf
    /// arrays, maps that were not created).
    pub maps: Vec<Option<Entries>>,
    /// Entries that could not be written (prog array slots, `--map` preloads): why.
    pub preload_errors: Vec<String>,
    /// Why printk lines were not collected (`None`: collected, or not asked for).
    pub printk_unavailable: Option<String>,
}

/// One line the child reports.
#[derive(Serialize, Deserialize)]
enum Step {
    Map(usize, Option<String>),
    Loading(usize),
    Load(usize, LoadOutcome),
    Run(usize, RunOutcome),
    Dump(usize, Option<Entries>),
    Preload(String),
    /// Printk lines cannot be read: why.
    NoPrintk(String),
    Done,
}

/// Map types that hold per-CPU values.
pub fn is_percpu(t: u32) -> bool {
    matches!(t, 5 | 6 | 10 | 21)
}

/// Map types whose contents are not (key, value) data to read back.
fn unreadable(t: u32) -> bool {
    // prog array, perf event array, stack trace, cgroup array, map-in-maps, dev/sock/cpu/xsk
    // maps, struct_ops, ringbufs, storages, user ringbuf, arena.
    matches!(
        t,
        3 | 4
            | 7
            | 8
            | 12
            | 13
            | 14
            | 15
            | 16
            | 17
            | 18
            | 20
            | 22
            | 23
            | 24
            | 25
            | 26
            | 27
            | 28
            | 29
            | 30
            | 31
            | 32
            | 33
    )
}

/// Loads `obj` into the kernel in forked children and makes `runs`. A program whose load
/// kills the child is marked [`LoadOutcome::CouldNotJudge`] and left out of another try.
pub fn run_object(obj: &KObject, runs: &[KRun]) -> Result<KResult, KernelError> {
    crate::availability()?;
    #[cfg(target_os = "linux")]
    {
        let mut obj = obj.clone();
        let mut killed: Vec<(usize, String)> = Vec::new();
        // The tracefs instance lives in the parent, so that it is removed even when a
        // child dies.
        // EBPF_SIM_KERNEL_PRINTK=0 leaves tracefs alone.
        let off = std::env::var("EBPF_SIM_KERNEL_PRINTK").is_ok_and(|v| v == "0");
        let (instance, mut printk_unavailable) = match obj.printk {
            false => (None, None),
            true if off => (
                None,
                Some("printk lines not collected: EBPF_SIM_KERNEL_PRINTK=0".into()),
            ),
            true => match crate::tracefs::PrintkInstance::create() {
                Ok(i) => (Some(i), None),
                Err(e) => (None, Some(format!("printk lines not collected: {e}"))),
            },
        };
        let trace_dir = instance.as_ref().map(|i| i.dir().to_path_buf());
        for _ in 0..=obj.programs.len() {
            let (steps, status) = imp::child(&obj, runs, trace_dir.as_deref())?;
            let mut res = KResult {
                ncpus: possible_cpus(),
                map_errors: vec![None; obj.maps.len()],
                programs: vec![LoadOutcome::NotLoaded; obj.programs.len()],
                runs: Vec::new(),
                maps: vec![None; obj.maps.len()],
                preload_errors: Vec::new(),
                printk_unavailable: printk_unavailable.clone(),
            };
            let mut loading = None;
            let mut done = false;
            for s in steps {
                match s {
                    Step::Map(i, e) => res.map_errors[i] = e,
                    Step::Loading(i) => loading = Some(i),
                    Step::Load(i, o) => {
                        loading = None;
                        res.programs[i] = o;
                    }
                    Step::Run(_, r) => res.runs.push(r),
                    Step::Dump(i, e) => res.maps[i] = e,
                    Step::Preload(e) => res.preload_errors.push(e),
                    Step::NoPrintk(e) => {
                        printk_unavailable = Some(format!("printk lines not collected: {e}"));
                        res.printk_unavailable = printk_unavailable.clone();
                    }
                    Step::Done => done = true,
                }
            }
            for (i, why) in &killed {
                res.programs[*i] = LoadOutcome::CouldNotJudge(why.clone());
            }
            if done {
                return Ok(res);
            }
            match loading {
                Some(i) => {
                    let why = format!(
                        "kernel could not judge: the loading process died (wait status {status:#x})"
                    );
                    obj.programs[i].load = false;
                    killed.push((i, why));
                }
                None => {
                    return Err(KernelError::Unavailable(format!(
                        "the kernel backend's process died outside a program load (wait status {status:#x})"
                    )))
                }
            }
        }
        Err(KernelError::Invalid("too many retries".into()))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (obj, runs);
        Err(KernelError::Unavailable("not Linux".into()))
    }
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use crate::syscall::*;

    fn os(op: &str, e: i32) -> String {
        format!("{op}: {}", std::io::Error::from_raw_os_error(e))
    }

    /// Forks; the child does everything and reports steps as JSON lines. Returns the
    /// steps and the child's wait status.
    pub(super) fn child(
        obj: &KObject,
        runs: &[KRun],
        trace_dir: Option<&std::path::Path>,
    ) -> Result<(Vec<Step>, i32), KernelError> {
        let mut pipe = [0i32; 2];
        // SAFETY: pipe writes two descriptors into the array.
        if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
            return Err(KernelError::Os {
                op: "pipe",
                errno: errno(),
            });
        }
        // SAFETY: the child runs only this module's code (system calls and allocation;
        // glibc's fork resets the allocator's locks in the child), writes to the pipe
        // and _exits without unwinding or running destructors.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            close(pipe[0]);
            close(pipe[1]);
            return Err(KernelError::Os {
                op: "fork",
                errno: errno(),
            });
        }
        if pid == 0 {
            close(pipe[0]);
            let out = pipe[1];
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                in_child(obj, runs, trace_dir, &mut |s: Step| {
                    let mut line = serde_json::to_vec(&s).unwrap_or_default();
                    line.push(b'\n');
                    write_all(out, &line);
                })
            }));
            // SAFETY: leaves the child without running destructors or atexit handlers.
            unsafe { libc::_exit(if r.is_ok() { 0 } else { 3 }) };
        }
        close(pipe[1]);
        let (out, status) = collect_child(pipe[0], pid);
        let steps = out
            .split(|&b| b == b'\n')
            .filter_map(|l| serde_json::from_slice::<Step>(l).ok())
            .collect();
        Ok((steps, status))
    }

    fn create_map(m: &KMap, fds: &[i32]) -> Result<i32, String> {
        use crate::syscall::map_create::*;
        use crate::syscall::map_create_ext::*;
        let inner_fd = match &m.inner {
            Some(inner) => create_map(inner, fds)?,
            None => -1,
        };
        let mut a = Attr::default();
        a.u32(MAP_TYPE, m.map_type)
            .u32(KEY_SIZE, m.key_size)
            .u32(VALUE_SIZE, m.value_size)
            .u32(MAX_ENTRIES, m.max_entries)
            .u32(MAP_FLAGS, m.flags)
            .u64(MAP_EXTRA, m.map_extra);
        if inner_fd >= 0 {
            a.u32(INNER_MAP_FD, inner_fd as u32);
        }
        let name: Vec<u8> = m
            .name
            .bytes()
            .filter(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
            .take(15)
            .collect();
        a.0[MAP_NAME..MAP_NAME + name.len()].copy_from_slice(&name);
        let _ = NUMA_NODE;
        let r = bpf(BPF_MAP_CREATE, &mut a);
        close(inner_fd);
        let fd = r.map_err(|e| os("BPF_MAP_CREATE", e))?;
        if !m.data.is_empty() {
            let key = 0u32.to_ne_bytes();
            update(fd, &key, &m.data).map_err(|e| os("initial data", e))?;
        }
        // (A prog array's slots are filled once the programs are loaded.)
        let slots: &[(u32, usize)] = if m.map_type == PROG_ARRAY {
            &[]
        } else {
            &m.init_slots
        };
        for &(slot, inner) in slots {
            let v = fds.get(inner).copied().unwrap_or(-1);
            update(fd, &slot.to_ne_bytes(), &v.to_ne_bytes()).map_err(|e| os("initial slot", e))?;
        }
        if m.freeze {
            let mut a = Attr::default();
            a.u32(map_elem::MAP_FD, fd as u32);
            bpf(BPF_MAP_FREEZE, &mut a).map_err(|e| os("BPF_MAP_FREEZE", e))?;
        }
        Ok(fd)
    }

    fn update(fd: i32, key: &[u8], value: &[u8]) -> Result<i32, i32> {
        let mut a = Attr::default();
        a.u32(map_elem::MAP_FD, fd as u32)
            .u64(map_elem::KEY, key.as_ptr() as u64)
            .u64(map_elem::VALUE, value.as_ptr() as u64)
            .u64(map_elem::FLAGS, 0);
        bpf(BPF_MAP_UPDATE_ELEM, &mut a)
    }

    fn dump(m: &KMap, fd: i32, ncpus: usize) -> Result<Entries, String> {
        let ks = m.key_size as usize;
        let percpu = is_percpu(m.map_type);
        let stride = if percpu {
            (m.value_size as usize).next_multiple_of(8)
        } else {
            m.value_size as usize
        };
        let vlen = if percpu { stride * ncpus } else { stride };
        let mut out = Vec::new();
        let mut key: Option<Vec<u8>> = None;
        let mut next = vec![0u8; ks.max(1)];
        let mut value = vec![0u8; vlen.max(1)];
        loop {
            let mut a = Attr::default();
            a.u32(map_elem::MAP_FD, fd as u32)
                .u64(map_elem::KEY, key.as_ref().map_or(0, |k| k.as_ptr() as u64))
                .u64(map_elem::VALUE, next.as_mut_ptr() as u64);
            match bpf(BPF_MAP_GET_NEXT_KEY, &mut a) {
                Ok(_) => {}
                Err(e) if e == libc::ENOENT => break,
                Err(e) => return Err(os("BPF_MAP_GET_NEXT_KEY", e)),
            }
            let k = next[..ks].to_vec();
            let mut a = Attr::default();
            a.u32(map_elem::MAP_FD, fd as u32)
                .u64(map_elem::KEY, k.as_ptr() as u64)
                .u64(map_elem::VALUE, value.as_mut_ptr() as u64);
            match bpf(BPF_MAP_LOOKUP_ELEM, &mut a) {
                Ok(_) => {
                    let vals = if percpu {
                        (0..ncpus)
                            .map(|c| value[c * stride..c * stride + m.value_size as usize].to_vec())
                            .collect()
                    } else {
                        vec![value[..vlen].to_vec()]
                    };
                    out.push((k.clone(), vals));
                }
                Err(e) if e == libc::ENOENT => {}
                Err(e) => return Err(os("BPF_MAP_LOOKUP_ELEM", e)),
            }
            key = Some(k);
            if out.len() > m.max_entries as usize + 1 {
                break;
            }
        }
        out.sort();
        Ok(out)
    }

    /// A ring buffer mapped for reading: the consumer page and the producer page + data.
    struct Ring {
        map: usize,
        cons: *mut u64,
        prod: *const u64,
        data: *const u8,
        mask: u64,
    }

    fn map_ring(map: usize, fd: i32, size: u32) -> Option<Ring> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        // SAFETY: mapping a ring buffer map's pages as the kernel documents (consumer page
        // read-write at 0; producer page and data, twice, read-only after it).
        unsafe {
            let cons = libc::mmap(
                std::ptr::null_mut(),
                page,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            );
            if cons == libc::MAP_FAILED {
                return None;
            }
            let prod = libc::mmap(
                std::ptr::null_mut(),
                page + 2 * size as usize,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd,
                page as i64,
            );
            if prod == libc::MAP_FAILED {
                return None;
            }
            Some(Ring {
                map,
                cons: cons.cast(),
                prod: prod.cast(),
                data: (prod as *const u8).add(page),
                mask: size as u64 - 1,
            })
        }
    }

    fn drain(r: &Ring, out: &mut Vec<(usize, Vec<u8>)>) {
        use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
        const BUSY: u32 = 1 << 31;
        const DISCARD: u32 = 1 << 30;
        // SAFETY: the pointers come from map_ring's mappings, which live until the child
        // exits; the positions and headers are read atomically as libbpf does.
        unsafe {
            let cons = &*(r.cons as *const AtomicU64);
            let prod = &*(r.prod as *const AtomicU64);
            let mut c = cons.load(Ordering::Acquire);
            let p = prod.load(Ordering::Acquire);
            while c < p {
                let hdr = r.data.add((c & r.mask) as usize);
                let len = (*(hdr as *const AtomicU32)).load(Ordering::Acquire);
                if len & BUSY != 0 {
                    break;
                }
                let n = (len & !(BUSY | DISCARD)) as usize;
                if len & DISCARD == 0 {
                    out.push((r.map, std::slice::from_raw_parts(hdr.add(8), n).to_vec()));
                }
                c += (n as u64 + 8).next_multiple_of(8);
            }
            cons.store(c, Ordering::Release);
        }
    }

    fn pin(cpu: u32) {
        // SAFETY: a zeroed cpu_set_t with one bit set, for this process.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu as usize, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }

    /// Writes the prog arrays' initial slots and the preloads, once the programs are
    /// loaded; returns why each one that failed did.
    fn preload(obj: &KObject, fds: &[i32], prog_fds: &[i32], ncpus: usize) -> Vec<String> {
        let mut errors = Vec::new();
        let mut entries: Vec<(usize, Vec<u8>, Vec<u8>)> = Vec::new();
        for (i, m) in obj.maps.iter().enumerate() {
            if m.map_type == PROG_ARRAY {
                for &(slot, p) in &m.init_slots {
                    entries.push((
                        i,
                        slot.to_le_bytes().to_vec(),
                        (p as u32).to_le_bytes().into(),
                    ));
                }
            }
        }
        entries.extend(
            obj.preloads
                .iter()
                .map(|p| (p.map, p.key.clone(), p.value.clone())),
        );
        for (map, key, mut value) in entries {
            let Some(m) = obj.maps.get(map) else {
                errors.push(format!("map {map} does not exist"));
                continue;
            };
            let fd = fds[map];
            if fd < 0 {
                errors.push(format!("map {}: not created", m.name));
                continue;
            }
            let what = format!("map {} key {}", m.name, hexs(&key));
            if m.map_type == PROG_ARRAY {
                let p = <[u8; 4]>::try_from(&value[..])
                    .map(|b| u32::from_le_bytes(b) as usize)
                    .unwrap_or(usize::MAX);
                let name = obj.programs.get(p).map_or("?", |p| p.name.as_str());
                match prog_fds.get(p) {
                    Some(&pfd) if pfd >= 0 => value = pfd.to_ne_bytes().to_vec(),
                    _ => {
                        errors.push(format!(
                            "{what}: program {name} is not loaded in the kernel"
                        ));
                        continue;
                    }
                }
                if let Err(e) = update(fd, &key, &value) {
                    errors.push(os(&format!("{what} = program {name}"), e));
                }
                continue;
            }
            if is_percpu(m.map_type) {
                let stride = (m.value_size as usize).next_multiple_of(8);
                value.resize(stride, 0);
                value = value.repeat(ncpus);
            }
            if let Err(e) = update(fd, &key, &value) {
                errors.push(os(&what, e));
            }
        }
        errors
    }

    fn hexs(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn in_child(
        obj: &KObject,
        runs: &[KRun],
        trace_dir: Option<&std::path::Path>,
        emit: &mut dyn FnMut(Step),
    ) {
        let ncpus = possible_cpus() as usize;
        let mut fds = vec![-1i32; obj.maps.len()];
        let mut rings = Vec::new();
        for (i, m) in obj.maps.iter().enumerate() {
            match create_map(m, &fds) {
                Ok(fd) => {
                    fds[i] = fd;
                    if m.map_type == 27 {
                        rings.extend(map_ring(i, fd, m.max_entries));
                    }
                    emit(Step::Map(i, None));
                }
                Err(e) => emit(Step::Map(i, Some(e))),
            }
        }
        let mut prog_fds = vec![-1i32; obj.programs.len()];
        for (i, p) in obj.programs.iter().enumerate() {
            if !p.load {
                continue;
            }
            emit(Step::Loading(i));
            let outcome = load(obj, p, &fds, &mut prog_fds[i]);
            emit(Step::Load(i, outcome));
        }
        for e in preload(obj, &fds, &prog_fds, ncpus) {
            emit(Step::Preload(e));
        }
        // The test runs happen in this task: its printk lines are the runs'.
        let me = std::process::id();
        let mut trace_dir = trace_dir;
        if let Some(d) = trace_dir {
            crate::tracefs::set_event_pid(d, me);
            // Lines from before (another task's, before the pid filter) go.
            if let Err(e) = crate::tracefs::take(d, me) {
                emit(Step::NoPrintk(e));
                trace_dir = None;
            }
        }
        for (k, r) in runs.iter().enumerate() {
            let mut o = RunOutcome::default();
            let fd = prog_fds.get(r.program).copied().unwrap_or(-1);
            if fd < 0 {
                o.error = Some("the program is not loaded".into());
                emit(Step::Run(k, o));
                continue;
            }
            pin(r.cpu % ncpus as u32);
            use crate::syscall::test_run::*;
            let mut a = Attr::default();
            let raw_tp = obj.programs[r.program].prog_type == prog_type::RAW_TRACEPOINT;
            a.u32(PROG_FD, fd as u32);
            if !raw_tp {
                // (raw tracepoints take no repeat count)
                a.u32(REPEAT, 1);
            }
            let mut data_out = Vec::new();
            if let Some(d) = &r.data_in {
                data_out = vec![0u8; d.len() + 4096];
                a.u32(DATA_SIZE_IN, d.len() as u32)
                    .u64(DATA_IN, d.as_ptr() as u64)
                    .u32(DATA_SIZE_OUT, data_out.len() as u32)
                    .u64(DATA_OUT, data_out.as_mut_ptr() as u64);
            }
            let xdp = obj.programs[r.program].prog_type == prog_type::XDP;
            // XDP: an xdp_md in and out, to learn how much metadata the program put in
            // front of the packet (data_out starts at data_meta).
            let mut xdp_ctx = [0u8; 24];
            let mut xdp_out = [0u8; 24];
            if let (true, Some(d)) = (xdp, &r.data_in) {
                xdp_ctx[4..8].copy_from_slice(&(d.len() as u32).to_ne_bytes());
                xdp_ctx[12..16].copy_from_slice(&r.ifindex.to_ne_bytes());
                a.u32(CTX_SIZE_IN, 24)
                    .u64(CTX_IN, xdp_ctx.as_ptr() as u64)
                    .u32(CTX_SIZE_OUT, 24)
                    .u64(CTX_OUT, xdp_out.as_mut_ptr() as u64);
            } else if let Some(c) = &r.ctx_in {
                a.u32(CTX_SIZE_IN, c.len() as u32)
                    .u64(CTX_IN, c.as_ptr() as u64);
            }
            // skb programs: a `__sk_buff` up to `ifindex` (offset 40) picks the device
            // (the loopback device otherwise); the fields before it must be zero.
            let mut skb_ctx = [0u8; 44];
            if !xdp && !raw_tp && r.ctx_in.is_none() && r.ifindex > 1 {
                skb_ctx[40..44].copy_from_slice(&r.ifindex.to_ne_bytes());
                a.u32(CTX_SIZE_IN, 44).u64(CTX_IN, skb_ctx.as_ptr() as u64);
            }
            if raw_tp {
                a.u32(FLAGS, F_RUN_ON_CPU).u32(CPU, r.cpu % ncpus as u32);
            }
            match bpf(BPF_PROG_TEST_RUN, &mut a) {
                Ok(_) => {
                    o.retval = a.get_u32(RETVAL);
                    o.duration_ns = a.get_u32(DURATION);
                    if r.data_in.is_some() {
                        let n = (a.get_u32(DATA_SIZE_OUT) as usize).min(data_out.len());
                        data_out.truncate(n);
                        if xdp {
                            let meta = u32::from_ne_bytes(xdp_out[0..4].try_into().unwrap());
                            data_out.drain(..(meta as usize).min(n));
                        }
                        o.data_out = Some(data_out);
                    }
                }
                Err(e) => o.error = Some(os("BPF_PROG_TEST_RUN", e)),
            }
            for ring in &rings {
                drain(ring, &mut o.ringbuf);
            }
            if let Some(d) = trace_dir {
                match crate::tracefs::take(d, me) {
                    Ok(lines) => o.printk = lines,
                    Err(e) => {
                        emit(Step::NoPrintk(e));
                        trace_dir = None;
                    }
                }
            }
            emit(Step::Run(k, o));
        }
        for (i, m) in obj.maps.iter().enumerate() {
            if fds[i] < 0 || unreadable(m.map_type) {
                emit(Step::Dump(i, None));
                continue;
            }
            emit(Step::Dump(i, dump(m, fds[i], ncpus).ok()));
        }
        emit(Step::Done);
    }

    fn load(obj: &KObject, p: &KProgram, fds: &[i32], out_fd: &mut i32) -> LoadOutcome {
        use crate::syscall::prog_load::*;
        let mut insns = p.insns.clone();
        let mut i = 0;
        while i + 16 <= insns.len() {
            if insns[i] == 0x18 {
                let src = insns[i + 1] >> 4;
                let map_ref = match src {
                    pseudo::MAP_IDX | pseudo::MAP_FD => Some(pseudo::MAP_FD),
                    pseudo::MAP_IDX_VALUE | pseudo::MAP_VALUE => Some(pseudo::MAP_VALUE),
                    _ => None,
                };
                if let Some(new_src) = map_ref {
                    let idx = i32::from_le_bytes(insns[i + 4..i + 8].try_into().unwrap());
                    let fd = match usize::try_from(idx).ok().and_then(|x| fds.get(x)) {
                        Some(&fd) if fd >= 0 => fd,
                        _ => {
                            return LoadOutcome::CouldNotJudge(format!(
                                "map {idx} the program uses was not created"
                            ))
                        }
                    };
                    insns[i + 1] = (insns[i + 1] & 0x0f) | (new_src << 4);
                    insns[i + 4..i + 8].copy_from_slice(&fd.to_le_bytes());
                }
                i += 16;
            } else {
                i += 8;
            }
        }
        let mut license = obj.license.clone().into_bytes();
        license.push(0);
        let mut log = vec![0u8; 1 << 20];
        let mut name = [0u8; 16];
        for (d, s) in name.iter_mut().zip(
            p.name
                .bytes()
                .filter(|c| c.is_ascii_alphanumeric() || *c == b'_')
                .take(15),
        ) {
            *d = s;
        }
        let mut a = Attr::default();
        a.u32(PROG_TYPE, p.prog_type)
            .u32(INSN_CNT, (insns.len() / 8) as u32)
            .u64(INSNS, insns.as_ptr() as u64)
            .u64(LICENSE, license.as_ptr() as u64)
            .u32(EXPECTED_ATTACH_TYPE, p.expected_attach_type);
        let mut functions = p.functions.clone();
        functions.sort();
        let (btf, func_info) = func_btf(&functions);
        if functions.len() > 1 {
            let mut b = Attr::default();
            b.u64(0, btf.as_ptr() as u64).u32(16, btf.len() as u32);
            match bpf(BPF_BTF_LOAD, &mut b) {
                Ok(btf_fd) => {
                    a.u32(PROG_BTF_FD, btf_fd as u32)
                        .u32(FUNC_INFO_REC_SIZE, 8)
                        .u64(FUNC_INFO, func_info.as_ptr() as u64)
                        .u32(FUNC_INFO_CNT, functions.len() as u32);
                }
                Err(e) => return LoadOutcome::CouldNotJudge(os("BPF_BTF_LOAD", e)),
            }
        }
        a.0[48..64].copy_from_slice(&name); // prog_name
                                            // Without a log first (a log that overflows fails the load), then again with
                                            // the log to say why.
        let mut retry = Attr(a.0);
        match bpf(BPF_PROG_LOAD, &mut a) {
            Ok(fd) => {
                *out_fd = fd;
                LoadOutcome::Loaded
            }
            Err(e) => {
                retry
                    .u32(LOG_LEVEL, 1)
                    .u32(crate::syscall::prog_load::LOG_SIZE, log.len() as u32)
                    .u64(LOG_BUF, log.as_mut_ptr() as u64);
                let _ = bpf(BPF_PROG_LOAD, &mut retry);
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                LoadOutcome::Rejected {
                    errno: e,
                    log: String::from_utf8_lossy(&log[..end]).into_owned(),
                }
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::test_insns as insns;

    #[test]
    fn global_data_map_values_and_test_runs() {
        if let Err(e) = crate::availability() {
            eprintln!("SKIPPED: {e}");
            return;
        }
        let obj = KObject {
            maps: vec![KMap {
                name: "t.rodata".into(),
                map_type: 2,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                data: vec![1, 0, 0, 0, 42, 0, 0, 0],
                freeze: true,
                ..KMap::default()
            }],
            programs: vec![KProgram {
                name: "read_global".into(),
                prog_type: prog_type::XDP,
                // r1 = &rodata + 4; r0 = *(u32 *)r1; exit
                insns: insns(&[
                    (0x18, 0x61, 0, 0),
                    (0, 0, 0, 4),
                    (0x61, 0x10, 0, 0),
                    (0x95, 0, 0, 0),
                ]),
                load: true,
                ..KProgram::default()
            }],
            license: "GPL".into(),
            ..KObject::default()
        };
        let run = KRun {
            program: 0,
            data_in: Some(vec![0xab; 20]),
            ..KRun::default()
        };
        let res = run_object(&obj, &[run]).unwrap();
        assert_eq!(res.programs[0], LoadOutcome::Loaded);
        assert_eq!(res.runs[0].retval, 42, "{:?}", res.runs[0]);
        assert_eq!(res.runs[0].data_out.as_deref(), Some(&[0xab; 20][..]));
        assert_eq!(
            res.maps[0],
            Some(vec![(
                vec![0, 0, 0, 0],
                vec![vec![1, 0, 0, 0, 42, 0, 0, 0]]
            )])
        );
    }

    #[test]
    fn func_btf_layout() {
        let (btf, info) = func_btf(&[(0, "main".into()), (5, "cb".into())]);
        assert_eq!(&btf[..2], &0xeb9fu16.to_le_bytes());
        assert_eq!(info, [0, 0, 0, 0, 3, 0, 0, 0, 5, 0, 0, 0, 4, 0, 0, 0]);
    }
}
