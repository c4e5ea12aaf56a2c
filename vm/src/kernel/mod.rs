//! The simulated kernel programs run against: maps, ring buffers, the current event's
//! task, time and CPU, simulated user memory, and the effects helpers record. It is the
//! environment `C` of the helper registry ([`helpers::kernel_helpers`]).
//!
//! Every value a helper returns comes from here (the event or the configuration), never
//! from the host, so the same trace gives the same output.

pub mod helpers;
pub mod printk;
pub mod ringbuf;

use crate::maps::{Map, MapSpec};
use crate::memory::{vaddr, Memory, MAP_REGION, REGION_SHIFT};

pub use ringbuf::RingBuf;

/// Linux errno values helpers return (negated).
pub mod errno {
    pub const EPERM: i64 = 1;
    pub const ENOENT: i64 = 2;
    pub const E2BIG: i64 = 7;
    pub const EAGAIN: i64 = 11;
    pub const EACCES: i64 = 13;
    pub const EFAULT: i64 = 14;
    pub const EBUSY: i64 = 16;
    pub const EEXIST: i64 = 17;
    pub const EINVAL: i64 = 22;
    pub const ENOSPC: i64 = 28;
    pub const ERANGE: i64 = 34;
    pub const EOPNOTSUPP: i64 = 95;
}

/// `-errno` as a helper's u64 return value.
pub fn neg(errno: i64) -> u64 {
    (-errno) as u64
}

/// The task an event runs in (cheap to clone: one per event).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Task {
    pub pid: u32,
    pub tgid: u32,
    pub uid: u32,
    pub gid: u32,
    pub comm: std::rc::Rc<str>,
    /// The cgroup the task is in and its ancestors, innermost first.
    pub cgroups: std::rc::Rc<[u64]>,
    /// Address of its simulated `task_struct` (0: none was built).
    pub task_struct: u64,
}

impl Task {
    /// `comm` as the kernel stores it: at most 15 bytes and a NUL.
    pub fn comm_bytes(&self) -> [u8; 16] {
        let mut c = [0u8; 16];
        let b = self.comm.as_bytes();
        let n = b.len().min(15);
        c[..n].copy_from_slice(&b[..n]);
        c
    }

    pub fn cgroup_id(&self) -> u64 {
        self.cgroups.first().copied().unwrap_or(1)
    }
}

/// What the current event gives helpers.
#[derive(Clone, Debug, Default)]
pub struct EventContext {
    /// Monotonic time (`bpf_ktime_get_ns`).
    pub time_ns: u64,
    pub cpu: u32,
    pub task: Task,
    /// Kernel and user stacks for `bpf_get_stack(id)`, innermost first.
    pub kernel_stack: Vec<u64>,
    pub user_stack: Vec<u64>,
    /// `bpf_get_func_ip` and `bpf_get_attach_cookie`.
    pub func_ip: u64,
    pub attach_cookie: u64,
}

/// An observable thing a helper did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A `bpf_trace_printk` / `bpf_trace_vprintk` line.
    Printk {
        text: String,
    },
    /// A record submitted to a ring buffer (emitted when the event ends, in ring order).
    Ringbuf {
        map: usize,
        data: Vec<u8>,
    },
    /// A `bpf_perf_event_output` record.
    Perf {
        map: usize,
        cpu: u32,
        data: Vec<u8>,
    },
    Signal {
        signal: u32,
        thread: bool,
    },
    OverrideReturn {
        value: u64,
    },
    Redirect {
        ifindex: u64,
        flags: u64,
    },
    /// A `bpf_tail_call`: the slot, the program it holds, and whether the call is taken
    /// (not when the index is out of range, the chain already made 33, or the slot is
    /// empty).
    TailCall {
        map: usize,
        index: u32,
        program: Option<u32>,
        taken: bool,
    },
    /// Something the program did that a real kernel would survive but the user should
    /// know about (e.g. reading memory the trace did not give).
    Warning {
        message: String,
    },
}

/// The packet of a network program: where its buffer is mapped and which context fields
/// hold its data pointers (32-bit, as in `xdp_md` and `__sk_buff`).
#[derive(Clone, Debug)]
pub struct Packet {
    /// The whole buffer, headroom and tailroom included.
    pub buf: crate::buffer::HostBuffer,
    /// The program address of `buf`'s first byte.
    pub base: u64,
    /// The context, and the offsets of its `data`, `data_end` and `data_meta` fields.
    pub ctx: crate::buffer::HostBuffer,
    pub data_field: usize,
    pub end_field: usize,
    pub meta_field: usize,
}

impl Packet {
    fn field(&self, off: usize) -> u64 {
        self.ctx.read_uint(off, 4).unwrap_or(0)
    }

    /// Offsets of data and data_end within `buf`.
    pub fn bounds(&self) -> (usize, usize) {
        let d = self.field(self.data_field).saturating_sub(self.base) as usize;
        let e = self.field(self.end_field).saturating_sub(self.base) as usize;
        (d, e.max(d))
    }

    fn set(&self, field: usize, buf_offset: usize) {
        let _ = self.ctx.write_uint(field, 4, self.base + buf_offset as u64);
    }
}

/// Settings of the simulated kernel.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub ncpus: u32,
    /// Seed of `bpf_get_prandom_u32`.
    pub seed: u64,
    /// Time spent suspended, added to `bpf_ktime_get_boot_ns`.
    pub suspended_ns: u64,
    /// CONFIG_HZ, for jiffies.
    pub hz: u64,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            ncpus: 4,
            seed: 0x5eed,
            suspended_ns: 0,
            hz: 250,
        }
    }
}

/// A span of simulated user memory (only `bpf_probe_read_user*` reach it).
#[derive(Clone, Debug)]
pub struct UserBlob {
    pub start: u64,
    pub data: Vec<u8>,
}

/// The simulated kernel.
pub struct Kernel {
    pub config: KernelConfig,
    pub maps: Vec<Map>,
    /// Base address of each map's value storage in program memory.
    pub map_addrs: Vec<u64>,
    /// Ring buffer state, for maps that are ring buffers.
    pub ringbufs: Vec<Option<RingBuf>>,
    /// Program ids stored in prog arrays are indices into the runtime's program table.
    pub event: EventContext,
    pub user_memory: Vec<UserBlob>,
    pub effects: Vec<Effect>,
    /// The kernel's `BPF_PROG_TYPE_*` of the running program (some helpers depend on it).
    pub prog_type: u32,
    /// The packet of the running network program, if any.
    pub packet: Option<Packet>,
    /// Tail calls counted in the current run (the engines apply the same rule; this
    /// count only says, in the effects, whether each call was taken).
    pub tail_calls: u32,
    rng: u64,
}

/// `lddw` of map `index` gives this value.
pub fn map_handle(index: usize) -> u64 {
    vaddr(MAP_REGION, index as u32)
}

impl Kernel {
    /// A kernel with the given maps (created by the caller from their specs).
    pub fn new(config: KernelConfig, maps: Vec<Map>) -> Self {
        let ringbufs = maps
            .iter()
            .map(|m| {
                m.is_ringbuf()
                    .then(|| RingBuf::new(m.spec().max_entries as usize))
            })
            .collect();
        let rng = config.seed ^ 0x9e37_79b9_7f4a_7c15;
        Kernel {
            config,
            map_addrs: vec![0; maps.len()],
            maps,
            ringbufs,
            event: EventContext::default(),
            user_memory: Vec::new(),
            effects: Vec::new(),
            prog_type: 0,
            packet: None,
            tail_calls: 0,
            rng,
        }
    }

    /// Creates maps from specs, naming the first that the kernel would refuse.
    pub fn with_specs(config: KernelConfig, specs: &[MapSpec]) -> Result<Self, String> {
        let maps = specs
            .iter()
            .map(|s| Map::new(s.clone(), config.ncpus).map_err(|e| format!("map {}: {e}", s.name)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(config, maps))
    }

    /// Maps every map's value storage and every ring buffer's data area into `mem`, in map
    /// order, so addresses are the same on every run. Call once per memory.
    pub fn map_into(&mut self, mem: &mut Memory<'_>) {
        for (i, m) in self.maps.iter().enumerate() {
            let writable = m.spec().flags & crate::maps::flags::BPF_F_RDONLY_PROG == 0;
            let name = format!("map {} values", m.spec().name);
            self.map_addrs[i] = match &self.ringbufs[i] {
                Some(rb) => {
                    mem.map_buffer(format!("ring buffer {}", m.spec().name), rb.data(), true)
                }
                None => mem.map_buffer(name, m.storage(), writable),
            };
        }
    }

    /// The map a handle names, if it is one.
    pub fn map_index(&self, handle: u64) -> Option<usize> {
        if handle >> REGION_SHIFT != MAP_REGION as u64 {
            return None;
        }
        let i = (handle & 0xffff_ffff) as usize;
        (i < self.maps.len()).then_some(i)
    }

    /// The next deterministic pseudo-random number (xorshift64*).
    pub fn next_random(&mut self) -> u32 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }

    /// Reads simulated user memory.
    pub fn read_user(&self, addr: u64, buf: &mut [u8]) -> bool {
        let end = match addr.checked_add(buf.len() as u64) {
            Some(e) => e,
            None => return false,
        };
        // The latest blob at an address wins (a trace may rewrite memory).
        self.user_memory.iter().rev().any(|b| {
            let bend = b.start + b.data.len() as u64;
            if addr >= b.start && end <= bend {
                let off = (addr - b.start) as usize;
                buf.copy_from_slice(&b.data[off..off + buf.len()]);
                true
            } else {
                false
            }
        })
    }

    /// Bytes of simulated user memory from `addr` to the end of its blob (for strings).
    pub fn user_tail(&self, addr: u64) -> Option<&[u8]> {
        self.user_memory.iter().rev().find_map(|b| {
            let bend = b.start + b.data.len() as u64;
            (addr >= b.start && addr < bend).then(|| &b.data[(addr - b.start) as usize..])
        })
    }

    /// Moves the records submitted to ring buffers during the event into the effects, in
    /// ring order, and empties the rings (a consumer that keeps up).
    pub fn drain_ringbufs(&mut self) {
        for (map, rb) in self.ringbufs.iter_mut().enumerate() {
            if let Some(rb) = rb {
                for data in rb.drain() {
                    self.effects.push(Effect::Ringbuf { map, data });
                }
            }
        }
    }

    pub fn warn(&mut self, message: String) {
        self.effects.push(Effect::Warning { message });
    }
}
