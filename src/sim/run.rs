//! Replaying a trace: for each event, set the simulated kernel's task, time, CPU and
//! memory, build each attached program's context, run it, and collect what it did.

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::vm::kernel::{Effect, Task, UserBlob};
use crate::vm::HostBuffer;
use serde_json::Value;

use super::hooks::{
    self, netctx, pt_regs, CtxKind, Hook, PACKET_BASE, PACKET_HEADROOM, PACKET_TAILROOM,
};
use super::kmem::{self, SimTask, KERNEL_AUTO_BASE, USER_AUTO_BASE};
use super::machine::Machine;
use super::trace::{u64_of, Event, Space, TaskRef, TaskSpec, Trace};

/// What happened, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A program ran to `exit`.
    Return {
        event: usize,
        time_ns: u64,
        program: Rc<str>,
        r0: u64,
        /// Packet data after the program, for network programs.
        packet: Option<Vec<u8>>,
    },
    /// A program stopped with an error (a fault, the budget...): the user's bug, reported;
    /// other programs and events go on.
    Fault {
        event: usize,
        time_ns: u64,
        program: Rc<str>,
        message: String,
    },
    /// An effect of a helper (printk, ring buffer and perf records, signals...).
    Effect {
        event: usize,
        time_ns: u64,
        cpu: u32,
        pid: u32,
        comm: Rc<str>,
        program: Option<Rc<str>>,
        effect: Effect,
    },
    /// An event that reached no program.
    Unhandled { event: usize, hook: String },
    /// A snapshot of a sample map (printed periodically in simulated time).
    Sample {
        time_ns: u64,
        map: usize,
        entries: Vec<(Vec<u8>, Vec<Vec<u8>>)>,
    },
}

/// A map to print every `interval_ns` of simulated time (and at the end).
#[derive(Clone, Debug)]
pub struct SampleSpec {
    pub map: usize,
    pub interval_ns: u64,
    pub clear: bool,
}

fn sample(machine: &mut Machine, s: &SampleSpec, time_ns: u64) -> Record {
    let m = &mut machine.kernel.maps[s.map];
    let entries = m.entries();
    if s.clear {
        for (k, _) in &entries {
            let _ = m.delete(k);
        }
    }
    Record::Sample {
        time_ns,
        map: s.map,
        entries,
    }
}

/// The simulated memory of a whole replay: tasks (with their task_structs), user and
/// kernel blobs, and the values allocated on the fly. It persists across events, as a
/// process's memory does (a syscall's exit may read what its entry pointed to); new and
/// changed parts are mapped at each event.
struct SimMemory<'t> {
    trace: &'t Trace,
    tasks: Vec<SimTask>,
    /// task_struct buffers, by task index, once built.
    task_bufs: Vec<HostBuffer>,
    dirty_tasks: std::collections::BTreeSet<usize>,
    user: Vec<UserBlob>,
    user_synced: usize,
    kernel: Vec<(u64, Vec<u8>)>,
    kernel_synced: usize,
    next_user: u64,
    next_kernel: u64,
    /// Whether the object's BTF can lay out `struct task_struct`.
    task_structs: bool,
}

impl<'t> SimMemory<'t> {
    fn new(trace: &'t Trace, task_structs: bool) -> Self {
        let mut m = SimMemory {
            trace,
            task_structs,
            tasks: Vec::new(),
            task_bufs: Vec::new(),
            dirty_tasks: Default::default(),
            user: Vec::new(),
            user_synced: 0,
            kernel: Vec::new(),
            kernel_synced: 0,
            next_user: USER_AUTO_BASE,
            next_kernel: KERNEL_AUTO_BASE,
        };
        for t in trace.tasks.values() {
            m.add_task(t);
        }
        m
    }

    /// Adds a task, or updates it when the event describes it differently.
    fn add_task(&mut self, t: &TaskSpec) -> usize {
        let mut fields = BTreeMap::new();
        for (k, v) in &t.fields {
            if let Some(v) = u64_of(v) {
                fields.insert(k.clone(), v);
            }
        }
        let task = SimTask {
            pid: t.pid,
            tgid: t.tgid(),
            ppid: t.ppid.unwrap_or(0),
            comm: t.comm.clone(),
            exit_code: t.exit_code,
            fields,
        };
        if let Some(i) = self.tasks.iter().position(|x| x.pid == t.pid) {
            if self.tasks[i] != task {
                self.tasks[i] = task;
                self.dirty_tasks.insert(i);
            }
            return i;
        }
        self.tasks.push(task);
        self.dirty_tasks.insert(self.tasks.len() - 1);
        self.tasks.len() - 1
    }

    /// Maps what is new or changed since the last event into the machine.
    fn sync(&mut self, machine: &mut Machine) -> Result<(), String> {
        if !self.dirty_tasks.is_empty() {
            let Machine { object, mem, .. } = &mut *machine;
            let btf = object.btf.as_ref();
            for i in std::mem::take(&mut self.dirty_tasks) {
                let Some(btf) = btf else { break };
                let addr = kmem::TASK_BASE + i as u64 * kmem::TASK_STRIDE;
                if let Some(buf) = self.task_bufs.get(i) {
                    kmem::write_task(btf, &self.tasks, i, buf);
                } else if let Some(buf) = kmem::new_task(btf, &self.tasks, i) {
                    mem.map_far(
                        format!("task_struct of pid {}", self.tasks[i].pid),
                        addr,
                        &buf,
                        false,
                    )?;
                    self.task_bufs.push(buf);
                }
            }
        }
        for (addr, bytes) in &self.kernel[self.kernel_synced..] {
            // A later blob at the same address replaces the earlier one.
            machine.mem.unmap_far(*addr);
            let buf = HostBuffer::from_bytes(bytes);
            machine
                .mem
                .map_far(format!("kernel memory at {addr:#x}"), *addr, &buf, false)?;
        }
        self.kernel_synced = self.kernel.len();
        machine
            .kernel
            .user_memory
            .extend(self.user[self.user_synced..].iter().cloned());
        self.user_synced = self.user.len();
        Ok(())
    }

    fn task_spec(&self, r: &TaskRef) -> Result<TaskSpec, String> {
        match r {
            TaskRef::Spec(s) => Ok(s.clone()),
            TaskRef::Pid(pid) => self
                .trace
                .tasks
                .get(pid)
                .cloned()
                .ok_or_else(|| format!("task {pid} is not in the trace's \"tasks\"")),
        }
    }

    /// The address of a task's task_struct (0 when the BTF has none).
    fn task_addr(&self, pid: u32) -> u64 {
        self.tasks
            .iter()
            .position(|t| t.pid == pid)
            .filter(|_| self.task_structs)
            .map_or(0, |i| kmem::TASK_BASE + i as u64 * kmem::TASK_STRIDE)
    }

    /// What simulated memory `addr` falls in (a task_struct, a user or kernel blob), if
    /// any: memory only the simulator has.
    fn describe(&self, addr: u64) -> Option<String> {
        let tasks_end = kmem::TASK_BASE + self.tasks.len() as u64 * kmem::TASK_STRIDE;
        if self.task_structs && (kmem::TASK_BASE..tasks_end).contains(&addr) {
            let i = ((addr - kmem::TASK_BASE) / kmem::TASK_STRIDE) as usize;
            return Some(format!("the task_struct of pid {}", self.tasks[i].pid));
        }
        let within = |start: u64, len: usize| addr >= start && addr - start < (len as u64).max(1);
        if let Some(b) = self
            .user
            .iter()
            .rev()
            .find(|b| within(b.start, b.data.len()))
        {
            return Some(format!("the trace's user memory at {:#x}", b.start));
        }
        if let Some((a, _)) = self.kernel.iter().rev().find(|(a, d)| within(*a, d.len())) {
            return Some(format!("the trace's kernel memory at {a:#x}"));
        }
        None
    }

    fn alloc(&mut self, space: Space, bytes: Vec<u8>) -> u64 {
        let len = (bytes.len() as u64).max(1).next_multiple_of(16);
        match space {
            Space::User => {
                let a = self.next_user;
                self.next_user += len + 16;
                self.user.push(UserBlob {
                    start: a,
                    data: bytes,
                });
                a
            }
            Space::Kernel => {
                let a = self.next_kernel;
                self.next_kernel += len + 16;
                self.kernel.push((a, bytes));
                a
            }
        }
    }

    /// A value as a register holds it: an integer, a task (`{"task": pid}`), or a string or
    /// bytes placed in user or kernel memory (`{"user": "..."}`, `{"kernel_hex": "..."}`).
    fn value(&mut self, v: &Value, default_space: Space) -> Result<u64, String> {
        if let Some(x) = u64_of(v) {
            return Ok(x);
        }
        match v {
            Value::String(s) => Ok(self.alloc(default_space, nul_terminated(s))),
            Value::Object(o) if o.len() == 1 => {
                let (k, inner) = o.iter().next().expect("one entry");
                match k.as_str() {
                    "task" => {
                        let spec = match inner {
                            Value::Number(_) => self.task_spec(&TaskRef::Pid(
                                u64_of(inner).ok_or("bad pid")? as u32,
                            ))?,
                            other => serde_json::from_value(other.clone()).map_err(|e| e.to_string())?,
                        };
                        self.add_task(&spec);
                        Ok(self.task_addr(spec.pid))
                    }
                    "user" | "kernel" => {
                        let s = inner.as_str().ok_or(format!("\"{k}\" needs a string"))?;
                        let space = if k == "user" { Space::User } else { Space::Kernel };
                        Ok(self.alloc(space, nul_terminated(s)))
                    }
                    "user_hex" | "kernel_hex" => {
                        let s = inner.as_str().ok_or(format!("\"{k}\" needs hex"))?;
                        let bytes = crate::conformance::parse_hex_bytes(s)?;
                        let space = if k == "user_hex" { Space::User } else { Space::Kernel };
                        Ok(self.alloc(space, bytes))
                    }
                    _ => Err(format!("unknown value form {{\"{k}\": ...}}")),
                }
            }
            other => Err(format!("{other} is not a number, a string or a {{\"task\"|\"user\"|\"kernel\": ...}} value")),
        }
    }
}

fn nul_terminated(s: &str) -> Vec<u8> {
    let mut b = s.as_bytes().to_vec();
    b.push(0);
    b
}

/// The context bytes and packet of one program for one event.
struct Ctx {
    bytes: Vec<u8>,
    /// Packet buffer with headroom, and where the data starts and ends in it.
    packet: Option<(HostBuffer, usize, usize)>,
}

/// Writes an integer into `size` bytes at `off` (little-endian; fields wider than 8 bytes,
/// such as a comm given as a number, get it in their first 8).
fn put(bytes: &mut [u8], off: usize, size: usize, v: u64) {
    let size = size.min(8);
    if off + size <= bytes.len() {
        bytes[off..off + size].copy_from_slice(&v.to_le_bytes()[..size]);
    }
}

/// What the simulator knows of a hook, worked out once per distinct hook of a trace.
struct HookInfo {
    hook: Hook,
    /// The programs it reaches.
    targets: Vec<usize>,
    /// A tracepoint's record layout.
    layout: Option<hooks::Layout>,
    /// A syscall tracepoint's syscall number and argument names.
    syscall: Option<(u64, &'static [&'static str])>,
}

impl HookInfo {
    /// The hook of `section`, looked up once per replay.
    fn cached<'r, 's>(
        reach: &'r mut Vec<(&'s str, HookInfo)>,
        section: &'s str,
        machine: &Machine,
        attached: &[bool],
    ) -> &'r HookInfo {
        let slot = match reach.iter().position(|(h, _)| *h == section) {
            Some(i) => i,
            None => {
                reach.push((section, HookInfo::new(section, machine, attached)));
                reach.len() - 1
            }
        };
        &reach[slot].1
    }

    fn new(section: &str, machine: &Machine, attached: &[bool]) -> HookInfo {
        let hook = Hook::of_section(section);
        let targets = machine
            .programs
            .iter()
            .enumerate()
            .filter(|(i, p)| attached.get(*i).copied().unwrap_or(true) && p.hook == hook)
            .map(|(i, _)| i)
            .collect();
        let (layout, syscall) = match &hook {
            Hook::Tracepoint { category, name } => {
                let sys = name
                    .strip_prefix("sys_enter_")
                    .or_else(|| name.strip_prefix("sys_exit_"));
                (
                    hooks::tracepoint_layout(category, name),
                    sys.filter(|_| category == "syscalls")
                        .and_then(hooks::syscall),
                )
            }
            _ => (None, None),
        };
        HookInfo {
            hook,
            targets,
            layout,
            syscall,
        }
    }
}

fn build_ctx(
    ev: &Event,
    info: &HookInfo,
    kind: CtxKind,
    l3_only: bool,
    task: &TaskSpec,
    em: &mut SimMemory,
) -> Result<Ctx, String> {
    let hook = &info.hook;
    if let Some(hex) = &ev.ctx_hex {
        let bytes =
            crate::conformance::parse_hex_bytes(hex).map_err(|e| format!("ctx_hex: {e}"))?;
        return Ok(Ctx {
            bytes,
            packet: None,
        });
    }
    let user_or_kernel = match hook {
        Hook::Tracepoint { category, .. } if category == "syscalls" => Space::User,
        _ => Space::Kernel,
    };
    let ret = match &ev.ret {
        Some(v) => Some(em.value(v, Space::Kernel)?),
        None => None,
    };
    let mut args = Vec::new();
    for v in &ev.args {
        args.push(em.value(v, user_or_kernel)?);
    }
    match kind {
        CtxKind::TracepointRecord => {
            let Hook::Tracepoint { category, name } = hook else {
                return Err("a tracepoint program needs a tp/CATEGORY/NAME event".into());
            };
            let layout = info.layout.as_ref().ok_or_else(|| {
                format!("no built-in layout for tracepoint {category}/{name}: give the record with \"ctx_hex\"")
            })?;
            let mut bytes = vec![0u8; layout.size];
            put(&mut bytes, 4, 4, task.pid as u64); // common_pid
            let mut strings = Vec::new();
            if category == "syscalls" {
                let (nr, names) = info.syscall.unwrap_or((u64::MAX, &[]));
                put(&mut bytes, 8, 8, nr);
                if name.starts_with("sys_enter_") {
                    for (i, a) in args.iter().enumerate().take(6) {
                        put(&mut bytes, 16 + 8 * i, 8, *a);
                    }
                    for (k, v) in &ev.ctx {
                        let i = names
                            .iter()
                            .position(|n| n == k)
                            .or_else(|| hooks::ARG_NAMES.iter().position(|n| n == k))
                            .ok_or_else(|| {
                                format!(
                                    "{name} has no argument named {k} (known: {})",
                                    names.join(", ")
                                )
                            })?;
                        let x = em.value(v, Space::User)?;
                        put(&mut bytes, 16 + 8 * i, 8, x);
                    }
                } else {
                    put(&mut bytes, 16, 8, ret.unwrap_or(0));
                }
                return Ok(Ctx {
                    bytes,
                    packet: None,
                });
            }
            for (k, v) in &ev.ctx {
                let field = layout.fields.iter().find(|f| f.name == k).ok_or_else(|| {
                    let known: Vec<&str> = layout.fields.iter().map(|f| f.name).collect();
                    format!(
                        "tracepoint {category}/{name} has no field {k} (fields: {})",
                        known.join(", ")
                    )
                })?;
                if field.data_loc {
                    let s = v.as_str().ok_or(format!("{k} is a string field"))?;
                    strings.push((field.offset, nul_terminated(s)));
                } else if let Some(s) = v.as_str().filter(|_| field.size == 16) {
                    let mut b = s.as_bytes().to_vec();
                    b.truncate(15);
                    b.resize(16, 0);
                    bytes[field.offset..field.offset + 16].copy_from_slice(&b);
                } else {
                    let x = em.value(v, Space::Kernel)?;
                    put(&mut bytes, field.offset, field.size, x);
                }
            }
            // Defaults that follow the event's task.
            for f in &layout.fields {
                if ev.ctx.contains_key(f.name) {
                    continue;
                }
                match f.name {
                    "pid" | "old_pid" | "prev_pid" => put(&mut bytes, f.offset, 4, task.pid as u64),
                    "comm" | "prev_comm" => {
                        let c = crate::vm::kernel::Task {
                            comm: task.comm.as_str().into(),
                            ..Task::default()
                        }
                        .comm_bytes();
                        bytes[f.offset..f.offset + 16].copy_from_slice(&c);
                    }
                    "prio" | "prev_prio" | "next_prio" => put(&mut bytes, f.offset, 4, 120),
                    _ => {}
                }
            }
            for (off, s) in strings {
                let at = bytes.len();
                bytes.extend_from_slice(&s);
                put(&mut bytes, off, 4, ((s.len() as u64) << 16) | at as u64);
            }
            Ok(Ctx {
                bytes,
                packet: None,
            })
        }
        CtxKind::Args => {
            let mut bytes: Vec<u8> = args.iter().flat_map(|a| a.to_le_bytes()).collect();
            if let Some(r) = ret {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            // Reads past the given arguments see zeros, up to the kernel's 12 arguments.
            bytes.resize(bytes.len().max(8 * 12), 0);
            Ok(Ctx {
                bytes,
                packet: None,
            })
        }
        CtxKind::PtRegs => {
            let mut bytes = vec![0u8; pt_regs::SIZE];
            for (i, a) in args.iter().enumerate().take(6) {
                put(&mut bytes, pt_regs::ARGS[i], 8, *a);
            }
            if let Some(r) = ret {
                put(&mut bytes, pt_regs::AX, 8, r);
            }
            let ip = ev.func_ip.as_ref().and_then(u64_of).unwrap_or(0);
            put(&mut bytes, pt_regs::IP, 8, ip);
            Ok(Ctx {
                bytes,
                packet: None,
            })
        }
        CtxKind::Xdp | CtxKind::SkBuff => {
            let data = ev
                .packet
                .as_deref()
                .map(crate::conformance::parse_hex_bytes)
                .transpose()
                .map_err(|e| format!("packet: {e}"))?
                .ok_or("a network program needs \"packet\" (hex bytes)")?;
            let buf = HostBuffer::zeroed(PACKET_HEADROOM + data.len() + PACKET_TAILROOM);
            buf.write(PACKET_HEADROOM, &data)
                .map_err(|_| "packet too large")?;
            // cgroup_skb programs see the packet from its network header, as in the kernel.
            let l2 = if l3_only { 14.min(data.len()) } else { 0 };
            let start = PACKET_BASE + (PACKET_HEADROOM + l2) as u64;
            let end = PACKET_BASE + (PACKET_HEADROOM + data.len()) as u64;
            let ifindex = ev.ifindex.unwrap_or(1) as u64;
            let bytes = if kind == CtxKind::Xdp {
                let mut b = vec![0u8; netctx::XDP_SIZE];
                put(&mut b, netctx::XDP_DATA, 4, start);
                put(&mut b, netctx::XDP_DATA_END, 4, end);
                put(&mut b, netctx::XDP_DATA_META, 4, start);
                put(&mut b, netctx::XDP_INGRESS_IFINDEX, 4, ifindex);
                b
            } else {
                let mut b = vec![0u8; netctx::SKB_SIZE];
                put(&mut b, netctx::SKB_LEN, 4, (data.len() - l2) as u64);
                // protocol: the EtherType, in network order as the kernel stores it
                if data.len() >= 14 {
                    put(
                        &mut b,
                        netctx::SKB_PROTOCOL,
                        4,
                        u16::from_le_bytes([data[12], data[13]]) as u64,
                    );
                }
                put(&mut b, netctx::SKB_INGRESS_IFINDEX, 4, ifindex);
                put(&mut b, netctx::SKB_IFINDEX, 4, ifindex);
                put(&mut b, netctx::SKB_DATA, 4, start);
                put(&mut b, netctx::SKB_DATA_END, 4, end);
                put(&mut b, netctx::SKB_DATA_META, 4, start);
                b
            };
            Ok(Ctx {
                bytes,
                packet: Some((buf, PACKET_HEADROOM + l2, PACKET_HEADROOM + data.len())),
            })
        }
        CtxKind::Raw => Err("this program type needs its context as \"ctx_hex\"".into()),
    }
}

/// The per-event part of a replay that does not run anything: the current task (the
/// simulator's view and the helpers' view), the event's memory blobs, and the context of
/// each program the event reaches (in `info.targets` order). Contexts come first: building
/// them may add tasks and blobs.
fn prepare_event(
    ev: &Event,
    info: &HookInfo,
    programs: &[super::machine::SimProgram],
    em: &mut SimMemory,
    known: &mut BTreeMap<u32, (TaskSpec, Task)>,
) -> Result<(TaskSpec, Task, Vec<Ctx>), String> {
    let make = |task: &TaskSpec, em: &mut SimMemory| {
        em.add_task(task);
        let mut cgroups = Vec::new();
        if let Some(c) = task.cgroup {
            cgroups.push(c);
        }
        cgroups.extend(task.cgroup_ancestors.iter().copied());
        Task {
            pid: task.pid,
            tgid: task.tgid(),
            uid: task.uid,
            gid: task.gid,
            comm: task.comm.as_str().into(),
            cgroups: cgroups.into(),
            task_struct: em.task_addr(task.pid),
        }
    };
    let (task, ktask) = match &ev.task {
        Some(TaskRef::Pid(pid)) => match known.get(pid) {
            Some((spec, k)) => (spec.clone(), k.clone()),
            None => {
                let spec = em.task_spec(&TaskRef::Pid(*pid))?;
                let k = make(&spec, em);
                known.insert(*pid, (spec.clone(), k.clone()));
                (spec, k)
            }
        },
        Some(t @ TaskRef::Spec(_)) => {
            let spec = em.task_spec(t)?;
            let k = make(&spec, em);
            known.remove(&spec.pid);
            (spec, k)
        }
        None => {
            let spec = TaskSpec {
                pid: 0,
                comm: "swapper/0".into(),
                ..TaskSpec::default()
            };
            let k = make(&spec, em);
            (spec, k)
        }
    };
    for m in &ev.memory {
        let addr =
            u64_of(&m.addr).ok_or_else(|| format!("memory address {} is not a number", m.addr))?;
        let mut bytes = Vec::new();
        if let Some(s) = &m.string {
            bytes = nul_terminated(s);
        }
        if let Some(h) = &m.hex {
            bytes =
                crate::conformance::parse_hex_bytes(h).map_err(|e| format!("memory hex: {e}"))?;
        }
        if let Some(words) = &m.u64 {
            for w in words {
                let v = em.value(w, m.space)?;
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        match m.space {
            Space::User => em.user.push(UserBlob {
                start: addr,
                data: bytes,
            }),
            Space::Kernel => em.kernel.push((addr, bytes)),
        }
    }
    // Contexts first: building them may add tasks and blobs.
    let mut ctxs = Vec::new();
    for &p in &info.targets {
        let prog = &programs[p];
        ctxs.push(
            build_ctx(
                ev,
                info,
                prog.ctx,
                prog.prog_type == crate::loader::ProgramType::CgroupSkb,
                &task,
                em,
            )
            .map_err(|m| format!("program {}: {m}", prog.name))?,
        );
    }
    Ok((task, ktask, ctxs))
}

/// The context one program sees for one event, as the simulator builds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventContext {
    pub event: usize,
    /// Program index in the machine.
    pub program: usize,
    pub bytes: Vec<u8>,
    /// Words of the context that hold addresses of memory only the simulator has (the
    /// trace's user and kernel memory, task_structs): (offset, address, what).
    pub sim_pointers: Vec<(usize, u64, String)>,
}

/// Whether the object's BTF can lay out `struct task_struct` (tasks then get one).
fn has_task_structs(machine: &Machine) -> bool {
    machine
        .object
        .btf
        .as_ref()
        .is_some_and(|b| kmem::struct_type(b, "task_struct").is_some())
}

/// The context bytes of every run a replay of `trace` would make (each event, each
/// attached program it reaches, in replay order), built exactly as [`replay`] builds them
/// (the same tasks, memory and addresses), without running anything. Packet programs' get
/// their `xdp_md`/`__sk_buff` bytes. Each names the context words that point into memory
/// only the simulator has.
pub fn event_contexts(
    machine: &Machine,
    trace: &Trace,
    attached: &[bool],
) -> Result<Vec<EventContext>, String> {
    let mut em = SimMemory::new(trace, has_task_structs(machine));
    let mut reach: Vec<(&str, HookInfo)> = Vec::new();
    let mut known: BTreeMap<u32, (TaskSpec, Task)> = BTreeMap::new();
    let mut out = Vec::new();
    for (index, ev) in trace.events.iter().enumerate() {
        let err = |m: String| format!("event {index} ({}): {m}", ev.hook);
        let info = HookInfo::cached(&mut reach, &ev.hook, machine, attached);
        if info.targets.is_empty() {
            continue;
        }
        let (_, _, ctxs) =
            prepare_event(ev, info, &machine.programs, &mut em, &mut known).map_err(err)?;
        for (&p, ctx) in info.targets.iter().zip(ctxs) {
            let sim_pointers = ctx
                .bytes
                .chunks_exact(8)
                .enumerate()
                .filter_map(|(i, w)| {
                    let a = u64::from_le_bytes(w.try_into().ok()?);
                    em.describe(a).map(|what| (8 * i, a, what))
                })
                .collect();
            out.push(EventContext {
                event: index,
                program: p,
                bytes: ctx.bytes,
                sim_pointers,
            });
        }
    }
    Ok(out)
}

/// The records of a replay, and the error that stopped it early, if one did (a trace
/// that does not fit its hook): the records before it are kept.
pub struct Replay {
    pub records: Vec<Record>,
    pub error: Option<String>,
}

/// Replays `trace` through `machine`; `attached` selects which programs run (all by
/// default); `samples` are printed whenever simulated time crosses their interval, and
/// once at the end. Program faults are records; only a trace error stops the replay.
pub fn replay(
    machine: &mut Machine,
    trace: &Trace,
    attached: &[bool],
    samples: &[SampleSpec],
) -> Replay {
    let mut records = Vec::new();
    let error = replay_into(machine, trace, attached, samples, &mut records).err();
    Replay { records, error }
}

fn replay_into(
    machine: &mut Machine,
    trace: &Trace,
    attached: &[bool],
    samples: &[SampleSpec],
    records: &mut Vec<Record>,
) -> Result<(), String> {
    let mut last_time = 0u64;
    let first_time = trace
        .events
        .first()
        .and_then(|e| e.time_ns.as_ref())
        .and_then(u64_of)
        .unwrap_or(0);
    let mut next_sample: Vec<u64> = samples
        .iter()
        .map(|s| first_time.saturating_add(s.interval_ns.max(1)))
        .collect();
    let mut em = SimMemory::new(trace, has_task_structs(machine));
    // Which programs each distinct hook reaches, worked out once (few distinct hooks: a
    // linear search beats hashing the string of every event).
    let mut reach: Vec<(&str, HookInfo)> = Vec::new();
    // The kernel's view of each task named by pid, built once.
    let mut known: BTreeMap<u32, (TaskSpec, Task)> = BTreeMap::new();
    for (index, ev) in trace.events.iter().enumerate() {
        let err = |m: String| format!("event {index} ({}): {m}", ev.hook);
        let time_ns = ev.time_ns.as_ref().and_then(u64_of).unwrap_or(last_time);
        if time_ns < last_time {
            return Err(err(format!(
                "time_ns {time_ns} goes back in time (the previous event was at {last_time})"
            )));
        }
        last_time = time_ns;
        for (s, next) in samples.iter().zip(next_sample.iter_mut()) {
            while time_ns >= *next {
                records.push(sample(machine, s, *next));
                *next = next.saturating_add(s.interval_ns.max(1));
            }
        }
        let info = HookInfo::cached(&mut reach, &ev.hook, machine, attached);
        let targets = &info.targets;
        if targets.is_empty() {
            records.push(Record::Unhandled {
                event: index,
                hook: ev.hook.clone(),
            });
            continue;
        }
        machine.reset_event_memory();
        let (task, ktask, ctxs) =
            prepare_event(ev, info, &machine.programs, &mut em, &mut known).map_err(err)?;
        let cpu = ev.cpu;
        em.sync(machine).map_err(err)?;
        let comm = ktask.comm.clone();
        machine.kernel.event = crate::vm::kernel::EventContext {
            time_ns,
            cpu,
            task: ktask,
            kernel_stack: ev.kstack.iter().filter_map(u64_of).collect(),
            user_stack: ev.ustack.iter().filter_map(u64_of).collect(),
            func_ip: ev.func_ip.as_ref().and_then(u64_of).unwrap_or(0),
            attach_cookie: ev.cookie.as_ref().and_then(u64_of).unwrap_or(0),
        };
        for (&p, ctx) in targets.iter().zip(ctxs) {
            let name = machine.programs[p].name.clone();
            let ctx_buf = machine.programs[p].ctx_buffer(ctx.bytes.len());
            let _ = ctx_buf.write(0, &ctx.bytes);
            let ctx_addr = machine.mem.set_ctx_buffer(&ctx_buf, true);
            machine.kernel.packet = None;
            if let Some((buf, start, end)) = &ctx.packet {
                let xdp = machine.programs[p].ctx == CtxKind::Xdp;
                machine.kernel.packet = Some(crate::vm::kernel::Packet {
                    buf: buf.clone(),
                    base: PACKET_BASE,
                    ctx: ctx_buf.clone(),
                    data_field: if xdp {
                        netctx::XDP_DATA
                    } else {
                        netctx::SKB_DATA
                    },
                    end_field: if xdp {
                        netctx::XDP_DATA_END
                    } else {
                        netctx::SKB_DATA_END
                    },
                    meta_field: if xdp {
                        netctx::XDP_DATA_META
                    } else {
                        netctx::SKB_DATA_META
                    },
                });
                machine.mem.unmap_far(PACKET_BASE);
                machine
                    .mem
                    .map_far("packet", PACKET_BASE, buf, true)
                    .map_err(err)?;
                // LD_ABS/LD_IND read the packet data itself.
                let data =
                    HostBuffer::from_bytes(&buf.to_vec(*start, end - start).unwrap_or_default());
                machine.mem.set_packet_buffer(&data);
            }
            let result = machine.run(p, ctx_addr);
            for effect in machine.kernel.effects.drain(..) {
                records.push(Record::Effect {
                    event: index,
                    time_ns,
                    cpu,
                    pid: task.pid,
                    comm: comm.clone(),
                    program: Some(name.clone()),
                    effect,
                });
            }
            match result {
                Ok(r0) => {
                    let packet = ctx.packet.as_ref().map(|(buf, start, _)| {
                        // The program may have moved data/data_end (xdp_adjust_head/tail).
                        let field = |off: usize| ctx_buf.read_uint(off, 4).unwrap_or(0);
                        let (d, e) = match machine.programs[p].ctx {
                            CtxKind::Xdp => (field(netctx::XDP_DATA), field(netctx::XDP_DATA_END)),
                            _ => (field(netctx::SKB_DATA), field(netctx::SKB_DATA_END)),
                        };
                        let s = d.saturating_sub(PACKET_BASE) as usize;
                        let e = (e.saturating_sub(PACKET_BASE) as usize).max(s);
                        buf.to_vec(s, e - s)
                            .unwrap_or_else(|_| buf.to_vec(*start, 0).unwrap_or_default())
                    });
                    records.push(Record::Return {
                        event: index,
                        time_ns,
                        program: name,
                        r0,
                        packet,
                    })
                }
                Err(e) => records.push(Record::Fault {
                    event: index,
                    time_ns,
                    program: name,
                    message: e.to_string(),
                }),
            }
        }
        machine.kernel.drain_ringbufs();
        for effect in machine.kernel.effects.drain(..) {
            records.push(Record::Effect {
                event: index,
                time_ns,
                cpu,
                pid: task.pid,
                comm: comm.clone(),
                program: None,
                effect,
            });
        }
    }
    for s in samples {
        records.push(sample(machine, s, last_time));
    }
    Ok(())
}
