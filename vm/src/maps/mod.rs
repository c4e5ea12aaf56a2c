//! BPF maps with the kernel's semantics, on preallocated storage.
//!
//! A [`Map`] holds its values in one [`HostBuffer`] (`storage()`), which the runtime maps as
//! one region: a program-side [`Map::lookup`] returns the byte offset of the value in it.
//! The buffer never moves or grows while the map lives. Values live in fixed-size slots
//! (`round_up(value_size, 8)` bytes, times `ncpus` for per-CPU maps); free slots are reused
//! in a deterministic order, so the same sequence of operations gives the same offsets on
//! every run. Nothing iterates a `HashMap`; no operation panics on any input (a key or value
//! of the wrong length is [`MapError::Invalid`]).
//!
//! Semantics follow the kernel (`kernel/bpf/{hashtab,arraymap,bpf_lru_list,queue_stack_maps,
//! lpm_trie,bloom_filter,stackmap,map_in_map,ringbuf,syscall}.c`): creation checks and
//! their errnos, update flags, full maps, iteration order, LRU eviction. Where the
//! simulator departs from the kernel it says so on the item concerned; the main points:
//!
//! * Hash seeds are always 0 (the kernel's `BPF_F_ZERO_SEED`), so hash iteration order,
//!   bloom filter bits and stack ids are those of a zero-seeded kernel map.
//! * Updating an existing key of a `HASH` (without `BPF_F_LOCK`), `LRU_HASH` or `LPM_TRIE`
//!   map moves its value to another slot, as the kernel replaces the element: a pointer
//!   from an earlier lookup keeps seeing the old value. Per-CPU hashes, hash-of-maps,
//!   arrays and `BPF_F_LOCK` updates write in place.
//! * User-space (syscall) operations run "on" CPU 0 where the kernel would use whatever
//!   CPU the syscall runs on (this matters for the LRU's per-CPU lists and free elements).
//! * Map types without a simulation (sockmap, devmap, cpumap, storage maps, arena...) are
//!   refused with `EOPNOTSUPP`; ring buffers are only validated (the runtime runs them).
//!
//! Checked against a real kernel (6.18, 2 CPUs) by a differential harness issuing the same
//! operations through bpf(2) and to these maps: creation errnos for ~65 specs, and tens of
//! thousands of random update/lookup/delete/lookup-and-delete/next_key operations on
//! zero-seeded hash, per-CPU hash, LRU and per-CPU LRU hashes (common and per-CPU lists,
//! with program lookups setting ref bits, switching CPUs), arrays, fd arrays, map-in-maps,
//! queues, stacks, LPM tries and bloom filters: same errnos, values, key sets and
//! iteration orders. Programs run through `BPF_PROG_TEST_RUN` confirmed that a pointer
//! from a lookup keeps the old value after an update of `HASH` (preallocated or not) and
//! `LRU_HASH` maps and sees the new one for per-CPU hashes, and that `bpf_get_stackid`'s
//! ids are `jhash2(ips) & (roundup_pow_of_two(max_entries) - 1)` as `store_stack` gives.
//! LPM value replacement follows the kernel source without having been observed.

mod array;
mod bloom;
mod fd_array;
mod hash;
mod jhash;
mod lpm;
mod lru;
mod queue_stack;
mod slots;
mod stack_trace;

use std::fmt;

use crate::buffer::HostBuffer;

pub use jhash::{jhash, jhash2};

/// `enum bpf_map_type` values of the simulated types.
pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const PERCPU_HASH: u32 = 5;
    pub const PERCPU_ARRAY: u32 = 6;
    pub const STACK_TRACE: u32 = 7;
    pub const CGROUP_ARRAY: u32 = 8;
    pub const LRU_HASH: u32 = 9;
    pub const LRU_PERCPU_HASH: u32 = 10;
    pub const LPM_TRIE: u32 = 11;
    pub const ARRAY_OF_MAPS: u32 = 12;
    pub const HASH_OF_MAPS: u32 = 13;
    pub const QUEUE: u32 = 22;
    pub const STACK: u32 = 23;
    pub const RINGBUF: u32 = 27;
    pub const BLOOM_FILTER: u32 = 30;

    /// The kernel's name of a map type (`BPF_MAP_TYPE_` stripped, lower case), for messages.
    pub fn name(t: u32) -> &'static str {
        match t {
            0 => "unspec",
            HASH => "hash",
            ARRAY => "array",
            PROG_ARRAY => "prog_array",
            PERF_EVENT_ARRAY => "perf_event_array",
            PERCPU_HASH => "percpu_hash",
            PERCPU_ARRAY => "percpu_array",
            STACK_TRACE => "stack_trace",
            CGROUP_ARRAY => "cgroup_array",
            LRU_HASH => "lru_hash",
            LRU_PERCPU_HASH => "lru_percpu_hash",
            LPM_TRIE => "lpm_trie",
            ARRAY_OF_MAPS => "array_of_maps",
            HASH_OF_MAPS => "hash_of_maps",
            14 => "devmap",
            15 => "sockmap",
            16 => "cpumap",
            17 => "xskmap",
            18 => "sockhash",
            19 => "cgroup_storage",
            20 => "reuseport_sockarray",
            21 => "percpu_cgroup_storage",
            QUEUE => "queue",
            STACK => "stack",
            24 => "sk_storage",
            25 => "devmap_hash",
            26 => "struct_ops",
            RINGBUF => "ringbuf",
            28 => "inode_storage",
            29 => "task_storage",
            BLOOM_FILTER => "bloom_filter",
            31 => "user_ringbuf",
            32 => "cgrp_storage",
            33 => "arena",
            _ => "unknown",
        }
    }
}

/// Update flags (`BPF_ANY`...) and map creation flags (`BPF_F_*`), as in `uapi/linux/bpf.h`.
pub mod flags {
    /// Create a new element or update an existing one.
    pub const BPF_ANY: u64 = 0;
    /// Create a new element only if it did not exist.
    pub const BPF_NOEXIST: u64 = 1;
    /// Update an existing element.
    pub const BPF_EXIST: u64 = 2;
    /// Update (or read) the value under its `bpf_spin_lock`.
    pub const BPF_F_LOCK: u64 = 4;

    pub const BPF_F_NO_PREALLOC: u32 = 1 << 0;
    pub const BPF_F_NO_COMMON_LRU: u32 = 1 << 1;
    pub const BPF_F_NUMA_NODE: u32 = 1 << 2;
    pub const BPF_F_RDONLY: u32 = 1 << 3;
    pub const BPF_F_WRONLY: u32 = 1 << 4;
    pub const BPF_F_STACK_BUILD_ID: u32 = 1 << 5;
    pub const BPF_F_ZERO_SEED: u32 = 1 << 6;
    pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
    pub const BPF_F_WRONLY_PROG: u32 = 1 << 8;
    pub const BPF_F_CLONE: u32 = 1 << 9;
    pub const BPF_F_MMAPABLE: u32 = 1 << 10;
    pub const BPF_F_PRESERVE_ELEMS: u32 = 1 << 11;
    pub const BPF_F_INNER_MAP: u32 = 1 << 12;
    pub const BPF_F_LINK: u32 = 1 << 13;
    pub const BPF_F_PATH_FD: u32 = 1 << 14;
    pub const BPF_F_VTYPE_BTF_OBJ_FD: u32 = 1 << 15;
    pub const BPF_F_TOKEN_FD: u32 = 1 << 16;
    pub const BPF_F_SEGV_ON_FAULT: u32 = 1 << 17;
    pub const BPF_F_NO_USER_CONV: u32 = 1 << 18;
    /// The flags that give access rights (`BPF_F_ACCESS_MASK`).
    pub const BPF_F_ACCESS_MASK: u32 =
        BPF_F_RDONLY | BPF_F_RDONLY_PROG | BPF_F_WRONLY | BPF_F_WRONLY_PROG;

    /// `bpf_get_stackid` flags: frames to skip (low 8 bits), user stack, compare by hash
    /// only, replace a different stack already in the bucket.
    pub const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
    pub const BPF_F_USER_STACK: u64 = 1 << 8;
    pub const BPF_F_FAST_STACK_CMP: u64 = 1 << 9;
    pub const BPF_F_REUSE_STACKID: u64 = 1 << 10;
    pub const BPF_F_USER_BUILD_ID: u64 = 1 << 11;
}

/// Page size assumed for ring buffer sizes and mmapable arrays.
pub const PAGE_SIZE: u32 = 4096;
/// `KMALLOC_MAX_SIZE` on x86_64 (`1 << (MAX_PAGE_ORDER + PAGE_SHIFT)`).
const KMALLOC_MAX_SIZE: u64 = 1 << 22;
/// `PCPU_MIN_UNIT_SIZE`: the largest per-CPU value.
const PCPU_MIN_UNIT_SIZE: u64 = 32 << 10;
/// `sizeof(struct htab_elem)` on x86_64.
const HTAB_ELEM_SIZE: u64 = 48;
/// `sysctl_perf_event_max_stack`'s default.
pub const PERF_EVENT_MAX_STACK: u32 = 127;
/// The most storage one map may have: one region addresses at most 4 GiB.
const MAX_STORAGE: u64 = u32::MAX as u64;
/// The most bookkeeping allocated up front (LRU lists), so that a huge LRU map fails with
/// `ENOMEM` instead of exhausting the host.
const MAX_EAGER_BOOKKEEPING: u64 = 1 << 30;

/// What a map is created from: `bpf_attr`'s map fields (`inner` stands for
/// `inner_map_fd`: the spec of the template inner map of a map-in-map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapSpec {
    pub name: String,
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    pub map_extra: u64,
    pub inner: Option<Box<MapSpec>>,
}

impl MapSpec {
    /// A spec with no flags, no `map_extra` and no inner map.
    pub fn new(
        name: impl Into<String>,
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
    ) -> Self {
        MapSpec {
            name: name.into(),
            map_type,
            key_size,
            value_size,
            max_entries,
            flags: 0,
            map_extra: 0,
            inner: None,
        }
    }

    pub fn with_flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    pub fn with_map_extra(mut self, map_extra: u64) -> Self {
        self.map_extra = map_extra;
        self
    }

    pub fn with_inner(mut self, inner: MapSpec) -> Self {
        self.inner = Some(Box::new(inner));
        self
    }
}

/// A map operation's failure, with the errno the kernel returns for it. The message names
/// the map and the reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MapError {
    /// `ENOENT`: no such element (or an empty queue).
    #[error("{0}")]
    NotFound(String),
    /// `EEXIST`: the element exists (`BPF_NOEXIST`), or a stack id is taken.
    #[error("{0}")]
    Exists(String),
    /// `E2BIG`: the map is full, or an index or size is out of range.
    #[error("{0}")]
    TooBig(String),
    /// `EINVAL`: bad spec, flags, key or value.
    #[error("{0}")]
    Invalid(String),
    /// `ENOMEM`: no free element (LRU, stack trace), or the map is too large to simulate.
    #[error("{0}")]
    NoMemory(String),
    /// `ENOSPC`: the LPM trie is full.
    #[error("{0}")]
    NoSpace(String),
    /// `EBUSY`.
    #[error("{0}")]
    Busy(String),
    /// `EFAULT`: e.g. skipping more stack frames than there are.
    #[error("{0}")]
    Fault(String),
    /// `EBADF`: a map-in-map without an inner map.
    #[error("{0}")]
    BadFd(String),
    /// `ENOTSUPP` (524, kernel-internal): the kernel does not support this here.
    #[error("{0}")]
    NotSupported(String),
    /// `EOPNOTSUPP` (95): operation not supported by this map type.
    #[error("{0}")]
    OpNotSupported(String),
}

impl MapError {
    pub const ENOENT: i32 = 2;
    pub const EBADF: i32 = 9;
    pub const ENOMEM: i32 = 12;
    pub const EFAULT: i32 = 14;
    pub const EBUSY: i32 = 16;
    pub const EEXIST: i32 = 17;
    pub const EINVAL: i32 = 22;
    pub const ENOSPC: i32 = 28;
    pub const E2BIG: i32 = 7;
    pub const EOPNOTSUPP: i32 = 95;
    pub const ENOTSUPP: i32 = 524;

    /// The (positive) errno the kernel returns; a helper returns its negation.
    pub fn errno(&self) -> i32 {
        match self {
            MapError::NotFound(_) => Self::ENOENT,
            MapError::Exists(_) => Self::EEXIST,
            MapError::TooBig(_) => Self::E2BIG,
            MapError::Invalid(_) => Self::EINVAL,
            MapError::NoMemory(_) => Self::ENOMEM,
            MapError::NoSpace(_) => Self::ENOSPC,
            MapError::Busy(_) => Self::EBUSY,
            MapError::Fault(_) => Self::EFAULT,
            MapError::BadFd(_) => Self::EBADF,
            MapError::NotSupported(_) => Self::ENOTSUPP,
            MapError::OpNotSupported(_) => Self::EOPNOTSUPP,
        }
    }

    /// The message (map name and reason).
    pub fn message(&self) -> &str {
        match self {
            MapError::NotFound(m)
            | MapError::Exists(m)
            | MapError::TooBig(m)
            | MapError::Invalid(m)
            | MapError::NoMemory(m)
            | MapError::NoSpace(m)
            | MapError::Busy(m)
            | MapError::Fault(m)
            | MapError::BadFd(m)
            | MapError::NotSupported(m)
            | MapError::OpNotSupported(m) => m,
        }
    }
}

/// Builds a [`MapError`] naming the map.
pub(crate) fn err(name: &str, kind: fn(String) -> MapError, reason: impl fmt::Display) -> MapError {
    kind(format!("map `{name}`: {reason}"))
}

pub(crate) fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// Storage accesses are in bounds by construction; a failure is a bug in this module.
fn in_bounds<T>(r: Result<T, crate::buffer::OutOfBounds>) {
    debug_assert!(r.is_ok(), "map storage access out of bounds: {:?}", r.err());
}

/// The storage of a map and how values are laid out in it, shared by every map family.
#[derive(Debug)]
pub(crate) struct Values {
    pub name: String,
    pub key_size: usize,
    pub value_size: usize,
    /// Bytes between consecutive value copies.
    pub stride: usize,
    /// Copies per slot: `ncpus` for per-CPU maps, else 1.
    pub copies: usize,
    pub storage: HostBuffer,
    /// Offset of the value's `bpf_spin_lock`, if the value has one.
    pub spin_lock: Option<usize>,
}

impl Values {
    pub fn e(&self, kind: fn(String) -> MapError, reason: impl fmt::Display) -> MapError {
        err(&self.name, kind, reason)
    }

    /// Offset of `cpu`'s copy of slot `slot`.
    pub fn off(&self, slot: u32, cpu: usize) -> usize {
        (slot as usize * self.copies + cpu) * self.stride
    }

    pub fn check_key(&self, key: &[u8]) -> Result<(), MapError> {
        if key.len() != self.key_size {
            return Err(self.e(
                MapError::Invalid,
                format_args!(
                    "key of {} bytes, the map's keys have {}",
                    key.len(),
                    self.key_size
                ),
            ));
        }
        Ok(())
    }

    pub fn check_value(&self, value: &[u8]) -> Result<(), MapError> {
        if value.len() != self.value_size {
            return Err(self.e(
                MapError::Invalid,
                format_args!(
                    "value of {} bytes, the map's values have {}",
                    value.len(),
                    self.value_size
                ),
            ));
        }
        Ok(())
    }

    /// Checks a user-space value for all CPUs: `copies * round_up(value_size, 8)` bytes.
    pub fn check_all_cpus(&self, values: &[u8]) -> Result<(), MapError> {
        let want = self.copies * round8(self.value_size);
        if values.len() != want {
            return Err(self.e(
                MapError::Invalid,
                format_args!(
                    "per-CPU value of {} bytes, want {} CPUs x {} bytes = {want}",
                    values.len(),
                    self.copies,
                    round8(self.value_size)
                ),
            ));
        }
        Ok(())
    }

    pub fn write(&self, off: usize, data: &[u8]) {
        in_bounds(self.storage.write(off, data));
    }

    pub fn zero(&self, off: usize, len: usize) {
        in_bounds(self.storage.fill(off, len, 0));
    }

    pub fn read(&self, off: usize, len: usize) -> Vec<u8> {
        let mut v = vec![0; len];
        in_bounds(self.storage.read(off, &mut v));
        v
    }

    /// `copy_map_value`: `value_size` bytes, leaving the spin lock alone.
    pub fn put_value(&self, off: usize, value: &[u8]) {
        let n = value.len().min(self.value_size);
        match self.spin_lock {
            Some(l) if l + 4 <= n => {
                self.write(off, &value[..l]);
                self.write(off + l + 4, &value[l + 4..n]);
            }
            _ => self.write(off, &value[..n]),
        }
    }

    /// A value as user space reads it: `value_size` bytes, the spin lock zeroed.
    pub fn get_value(&self, off: usize) -> Vec<u8> {
        let mut v = self.read(off, self.value_size);
        if let Some(l) = self.spin_lock {
            if let Some(lock) = v.get_mut(l..l + 4) {
                lock.fill(0);
            }
        }
        v
    }

    /// `zero_map_value` of a whole copy (value and padding).
    pub fn zero_copy(&self, off: usize) {
        self.zero(off, self.stride);
    }

    /// A program's write of `cpu`'s copy of a per-CPU slot: `value_size` bytes, padding
    /// zeroed.
    pub fn put_cpu(&self, slot: u32, cpu: usize, value: &[u8]) {
        let off = self.off(slot, cpu);
        self.zero_copy(off);
        self.put_value(off, value);
    }

    /// User space's write of every CPU's copy: `round_up(value_size, 8)` bytes each.
    pub fn put_all_cpus(&self, slot: u32, values: &[u8]) {
        let size = round8(self.value_size);
        for (cpu, chunk) in values.chunks(size).take(self.copies).enumerate() {
            self.write(self.off(slot, cpu), chunk);
        }
    }

    /// User space's read of every CPU's copy, `round_up(value_size, 8)` bytes each.
    pub fn get_all_cpus(&self, slot: u32) -> Vec<u8> {
        let size = round8(self.value_size);
        let mut out = Vec::with_capacity(size * self.copies);
        for cpu in 0..self.copies {
            out.extend(self.read(self.off(slot, cpu), size));
        }
        out
    }

    /// Each CPU's value (`value_size` bytes), for dumps.
    pub fn per_cpu_values(&self, slot: u32) -> Vec<Vec<u8>> {
        (0..self.copies)
            .map(|cpu| self.get_value(self.off(slot, cpu)))
            .collect()
    }
}

/// Parses an array index key (a u32 in host order).
pub(crate) fn index_key(v: &Values, key: &[u8]) -> Result<u32, MapError> {
    v.check_key(key)?;
    let mut b = [0u8; 4];
    b.copy_from_slice(&key[..4]);
    Ok(u32::from_le_bytes(b))
}

/// `bpf_map_flags_access_ok`: a program can't be denied both reading and writing.
fn access_ok(flags: u32) -> bool {
    flags & (flags::BPF_F_RDONLY_PROG | flags::BPF_F_WRONLY_PROG)
        != (flags::BPF_F_RDONLY_PROG | flags::BPF_F_WRONLY_PROG)
}

#[derive(Debug)]
enum Kind {
    Array(array::ArrayMap),
    FdArray(fd_array::FdArray),
    Hash(Box<hash::HashMap>),
    QueueStack(queue_stack::QueueStack),
    Lpm(lpm::Lpm),
    Bloom(bloom::Bloom),
    StackTrace(stack_trace::StackTrace),
    RingBuf,
}

/// A BPF map. See the [module documentation](self).
#[derive(Debug)]
pub struct Map {
    spec: MapSpec,
    ncpus: u32,
    vals: Values,
    kind: Kind,
}

/// Storage needs of a validated spec.
struct Plan {
    /// Slots of values in storage.
    slots: u64,
    /// Bytes per value copy.
    stride: u64,
    copies: u64,
    /// Bytes of eagerly allocated bookkeeping (LRU lists), counted against the limit.
    extra_bytes: u64,
}

fn is_percpu_type(t: u32) -> bool {
    matches!(
        t,
        map_type::PERCPU_HASH | map_type::PERCPU_ARRAY | map_type::LRU_PERCPU_HASH
    )
}

/// `map_create`'s checks and each type's `map_alloc_check`/`map_alloc` checks, in the
/// kernel's order. May adjust `spec.max_entries` as the kernel does (per-CPU LRU lists).
fn validate(spec: &mut MapSpec, ncpus: u32) -> Result<Plan, MapError> {
    use flags::*;
    use map_type::*;
    let name = spec.name.clone();
    let inval = |r: &str| err(&name, MapError::Invalid, r);
    let big = |r: &str| err(&name, MapError::TooBig, r);
    if ncpus == 0 {
        return Err(inval("a simulated machine needs at least one CPU"));
    }
    if spec.map_type != BLOOM_FILTER && spec.map_extra != 0 {
        return Err(inval("map_extra is only for bloom filters"));
    }
    if spec.flags & BPF_F_RDONLY != 0 && spec.flags & BPF_F_WRONLY != 0 {
        return Err(inval("BPF_F_RDONLY and BPF_F_WRONLY together"));
    }
    if !matches!(
        spec.map_type,
        HASH | ARRAY
            | PROG_ARRAY
            | PERF_EVENT_ARRAY
            | PERCPU_HASH
            | PERCPU_ARRAY
            | STACK_TRACE
            | CGROUP_ARRAY
            | LRU_HASH
            | LRU_PERCPU_HASH
            | LPM_TRIE
            | ARRAY_OF_MAPS
            | HASH_OF_MAPS
            | QUEUE
            | STACK
            | RINGBUF
            | BLOOM_FILTER
    ) {
        if spec.map_type > 33 || spec.map_type == 0 {
            return Err(inval(&format!("unknown map type {}", spec.map_type)));
        }
        return Err(err(
            &name,
            MapError::OpNotSupported,
            format_args!(
                "map type {} ({}) is not simulated",
                map_type::name(spec.map_type),
                spec.map_type
            ),
        ));
    }
    let numa = spec.flags & BPF_F_NUMA_NODE != 0;
    let k = spec.key_size as u64;
    let v = spec.value_size as u64;
    let v8 = v.div_ceil(8) * 8;
    let n = spec.max_entries as u64;
    let plan = |slots: u64, stride: u64, copies: u64| Plan {
        slots,
        stride,
        copies,
        extra_bytes: 0,
    };
    let p = match spec.map_type {
        HASH | PERCPU_HASH | LRU_HASH | LRU_PERCPU_HASH | HASH_OF_MAPS => {
            if spec.map_type == HASH_OF_MAPS && v != 4 {
                return Err(inval(
                    "a hash of maps holds u32 map fds: value_size must be 4",
                ));
            }
            let percpu = matches!(spec.map_type, PERCPU_HASH | LRU_PERCPU_HASH);
            let lru = matches!(spec.map_type, LRU_HASH | LRU_PERCPU_HASH);
            let percpu_lru = spec.flags & BPF_F_NO_COMMON_LRU != 0;
            let prealloc = spec.flags & BPF_F_NO_PREALLOC == 0;
            let mask = BPF_F_NO_PREALLOC
                | BPF_F_NO_COMMON_LRU
                | BPF_F_NUMA_NODE
                | BPF_F_ACCESS_MASK
                | BPF_F_ZERO_SEED;
            if spec.flags & !mask != 0 || !access_ok(spec.flags) {
                return Err(inval(&format!(
                    "flags {:#x} not allowed for a hash map",
                    spec.flags
                )));
            }
            if !lru && percpu_lru {
                return Err(inval("BPF_F_NO_COMMON_LRU is only for LRU maps"));
            }
            if lru && !prealloc {
                return Err(err(
                    &name,
                    MapError::NotSupported,
                    "LRU maps are always preallocated (BPF_F_NO_PREALLOC)",
                ));
            }
            if numa && (percpu || percpu_lru) {
                return Err(inval("BPF_F_NUMA_NODE with per-CPU values or lists"));
            }
            if n == 0 || k == 0 || v == 0 {
                return Err(inval("max_entries, key_size and value_size must be > 0"));
            }
            if k + v >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE {
                return Err(big("key_size + value_size too large"));
            }
            if percpu && v8 > PCPU_MIN_UNIT_SIZE {
                return Err(big("per-CPU value_size above 32 KiB"));
            }
            if percpu_lru {
                // Each CPU's list gets the same number (at least one) of elements.
                let c = ncpus as u64;
                let mut m = n.div_ceil(c) * c;
                if m > u32::MAX as u64 {
                    m = n / c * c;
                }
                spec.max_entries = m as u32;
            }
            let n = spec.max_entries as u64;
            if n > 1 << 31 {
                return Err(big("max_entries above 2^31"));
            }
            // Plain hashes keep one spare element per CPU for replacing updates.
            let extra = if !percpu && !lru && spec.map_type == HASH {
                ncpus as u64
            } else {
                0
            };
            let mut p = plan(n + extra, v8, if percpu { ncpus as u64 } else { 1 });
            if lru {
                p.extra_bytes = (n + 8 * ncpus as u64) * lru::NODE_BYTES;
            }
            p
        }
        ARRAY | PERCPU_ARRAY | PROG_ARRAY | PERF_EVENT_ARRAY | CGROUP_ARRAY | ARRAY_OF_MAPS => {
            let fd = !matches!(spec.map_type, ARRAY | PERCPU_ARRAY);
            if fd {
                if v != 4 {
                    return Err(inval("fd arrays hold u32 fds: value_size must be 4"));
                }
                if spec.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG) != 0 {
                    return Err(inval("BPF_F_RDONLY_PROG/BPF_F_WRONLY_PROG on an fd array"));
                }
            }
            let percpu = spec.map_type == PERCPU_ARRAY;
            let mask = BPF_F_NUMA_NODE
                | BPF_F_MMAPABLE
                | BPF_F_ACCESS_MASK
                | BPF_F_PRESERVE_ELEMS
                | BPF_F_INNER_MAP;
            if n == 0
                || k != 4
                || v == 0
                || spec.flags & !mask != 0
                || !access_ok(spec.flags)
                || (percpu && numa)
            {
                return Err(inval(
                    "arrays need key_size 4, value_size > 0, max_entries > 0 and valid flags",
                ));
            }
            if spec.map_type != ARRAY && spec.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP) != 0 {
                return Err(inval("BPF_F_MMAPABLE/BPF_F_INNER_MAP are only for arrays"));
            }
            if spec.map_type != PERF_EVENT_ARRAY && spec.flags & BPF_F_PRESERVE_ELEMS != 0 {
                return Err(inval("BPF_F_PRESERVE_ELEMS is only for perf event arrays"));
            }
            if v > i32::MAX as u64 {
                return Err(big("value_size above INT_MAX"));
            }
            if percpu && v8 > PCPU_MIN_UNIT_SIZE {
                return Err(big("per-CPU value_size above 32 KiB"));
            }
            plan(n, v8, if percpu { ncpus as u64 } else { 1 })
        }
        QUEUE | STACK => {
            if n == 0
                || k != 0
                || v == 0
                || spec.flags & !(BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK) != 0
                || !access_ok(spec.flags)
            {
                return Err(inval(
                    "queues and stacks need key_size 0, value_size > 0, max_entries > 0",
                ));
            }
            if v > KMALLOC_MAX_SIZE {
                return Err(big("value_size above KMALLOC_MAX_SIZE"));
            }
            // A ring of max_entries + 1 values, packed like the kernel's.
            plan(n + 1, v, 1)
        }
        LPM_TRIE => {
            let mask = BPF_F_NO_PREALLOC | BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;
            if n == 0
                || spec.flags & BPF_F_NO_PREALLOC == 0
                || spec.flags & !mask != 0
                || !access_ok(spec.flags)
                || !(4 + lpm::DATA_SIZE_MIN..=4 + lpm::DATA_SIZE_MAX).contains(&k)
                || !(1..=lpm::VALUE_SIZE_MAX).contains(&v)
            {
                return Err(inval(
                    "LPM tries need BPF_F_NO_PREALLOC, key_size 5..=260, value_size > 0, \
                     max_entries > 0",
                ));
            }
            // One spare slot: replacing a value takes a new slot before freeing the old.
            plan(n + 1, v8, 1)
        }
        BLOOM_FILTER => {
            if v > KMALLOC_MAX_SIZE {
                return Err(big("value_size above KMALLOC_MAX_SIZE"));
            }
            if k != 0
                || v == 0
                || n == 0
                || spec.flags & !(BPF_F_NUMA_NODE | BPF_F_ZERO_SEED | BPF_F_ACCESS_MASK) != 0
                || !access_ok(spec.flags)
                || spec.map_extra & !0xf != 0
            {
                return Err(inval(
                    "bloom filters need key_size 0, value_size > 0, max_entries > 0, \
                     map_extra <= 15",
                ));
            }
            plan(0, 0, 1)
        }
        STACK_TRACE => {
            if spec.flags & !(BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY | BPF_F_STACK_BUILD_ID)
                != 0
            {
                return Err(inval("flags not allowed for a stack trace map"));
            }
            if n == 0 || k != 4 || v < 8 || !v.is_multiple_of(8) {
                return Err(inval(
                    "stack trace maps need key_size 4 and value_size a multiple of 8",
                ));
            }
            if spec.flags & BPF_F_STACK_BUILD_ID != 0 {
                if !v.is_multiple_of(stack_trace::BUILD_ID_ENTRY)
                    || v / stack_trace::BUILD_ID_ENTRY > PERF_EVENT_MAX_STACK as u64
                {
                    return Err(inval(
                        "value_size must be a multiple of 32 up to 127 entries",
                    ));
                }
            } else if v / 8 > PERF_EVENT_MAX_STACK as u64 {
                return Err(inval("value_size above 127 frames"));
            }
            if n > 1 << 31 {
                return Err(big("max_entries above 2^31"));
            }
            plan(n, v, 1)
        }
        RINGBUF => {
            if spec.flags & !BPF_F_NUMA_NODE != 0 {
                return Err(inval("flags not allowed for a ring buffer"));
            }
            if k != 0
                || v != 0
                || !spec.max_entries.is_power_of_two()
                || !n.is_multiple_of(PAGE_SIZE as u64)
            {
                return Err(inval(
                    "ring buffers need key_size 0, value_size 0 and max_entries a power of 2 \
                     multiple of the page size",
                ));
            }
            plan(0, 0, 1)
        }
        _ => unreachable!("checked above"),
    };
    if matches!(spec.map_type, ARRAY_OF_MAPS | HASH_OF_MAPS) {
        let Some(inner) = spec.inner.as_deref() else {
            return Err(err(
                &name,
                MapError::BadFd,
                "a map-in-map needs an inner map (inner_map_fd)",
            ));
        };
        if matches!(inner.map_type, ARRAY_OF_MAPS | HASH_OF_MAPS) {
            return Err(inval("an inner map can't itself hold maps"));
        }
        if inner.map_type == PROG_ARRAY {
            return Err(err(
                &name,
                MapError::NotSupported,
                "a prog array can't be an inner map",
            ));
        }
        let mut inner = inner.clone();
        validate(&mut inner, ncpus).map_err(|e| {
            err(
                &name,
                MapError::Invalid,
                format_args!("inner map: {}", e.message()),
            )
        })?;
    }
    let bytes = p
        .slots
        .checked_mul(p.stride)
        .and_then(|b| b.checked_mul(p.copies));
    match bytes {
        Some(b) if b <= MAX_STORAGE && p.extra_bytes <= MAX_EAGER_BOOKKEEPING => Ok(p),
        _ => Err(err(
            &name,
            MapError::NoMemory,
            "the map needs more memory than a simulated map can have (4 GiB of values, \
             1 GiB of LRU lists)",
        )),
    }
}

impl Map {
    /// Creates a map as `BPF_MAP_CREATE` would, for a machine of `ncpus` CPUs, with the
    /// kernel's checks and errnos (`MapError::Invalid` for `EINVAL`...). Map types the
    /// simulator does not have are `OpNotSupported`; maps whose storage would exceed 4 GiB
    /// are `NoMemory`. `BPF_F_NO_COMMON_LRU` rounds `max_entries` to a multiple of
    /// `ncpus` as the kernel does (and `spec()` shows it).
    pub fn new(mut spec: MapSpec, ncpus: u32) -> Result<Map, MapError> {
        let plan = validate(&mut spec, ncpus)?;
        let bytes = (plan.slots * plan.stride * plan.copies) as usize;
        let vals = Values {
            name: spec.name.clone(),
            key_size: spec.key_size as usize,
            value_size: spec.value_size as usize,
            stride: plan.stride as usize,
            copies: plan.copies as usize,
            storage: HostBuffer::zeroed(bytes),
            spin_lock: None,
        };
        use map_type::*;
        let kind = match spec.map_type {
            ARRAY | PERCPU_ARRAY => Kind::Array(array::ArrayMap::new(&spec)),
            PROG_ARRAY | PERF_EVENT_ARRAY | CGROUP_ARRAY | ARRAY_OF_MAPS => {
                Kind::FdArray(fd_array::FdArray::new(&spec))
            }
            HASH | PERCPU_HASH | LRU_HASH | LRU_PERCPU_HASH | HASH_OF_MAPS => {
                Kind::Hash(Box::new(hash::HashMap::new(&spec, ncpus)))
            }
            QUEUE | STACK => Kind::QueueStack(queue_stack::QueueStack::new(&spec)),
            LPM_TRIE => Kind::Lpm(lpm::Lpm::new(&spec)),
            BLOOM_FILTER => Kind::Bloom(bloom::Bloom::new(&spec)),
            STACK_TRACE => Kind::StackTrace(stack_trace::StackTrace::new(&spec)),
            _ => Kind::RingBuf,
        };
        Ok(Map {
            spec,
            ncpus,
            vals,
            kind,
        })
    }

    pub fn spec(&self) -> &MapSpec {
        &self.spec
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    pub fn map_type(&self) -> u32 {
        self.spec.map_type
    }

    pub fn ncpus(&self) -> u32 {
        self.ncpus
    }

    /// The value storage, to be mapped as one region. Values never move while the map
    /// lives.
    pub fn storage(&self) -> &HostBuffer {
        &self.vals.storage
    }

    /// Bytes between a slot's per-CPU copies (and between values): `round_up(value_size,
    /// 8)`, which is also the size of one CPU's value in [`Map::update_all_cpus`] (queues
    /// and stacks pack their ring at `value_size`).
    pub fn value_stride(&self) -> usize {
        self.vals.stride
    }

    pub fn is_percpu(&self) -> bool {
        is_percpu_type(self.spec.map_type)
    }

    pub fn is_ringbuf(&self) -> bool {
        self.spec.map_type == map_type::RINGBUF
    }

    /// Declares that values hold a `struct bpf_spin_lock` at `offset` (from the map's BTF),
    /// which makes `BPF_F_LOCK` valid and keeps updates and user reads off the lock word.
    /// The kernel allows spin locks in hash and array maps only (`EOPNOTSUPP` otherwise).
    pub fn set_spin_lock(&mut self, offset: Option<u32>) -> Result<(), MapError> {
        if let Some(off) = offset {
            if !matches!(self.spec.map_type, map_type::HASH | map_type::ARRAY) {
                return Err(self.vals.e(
                    MapError::OpNotSupported,
                    "bpf_spin_lock is only allowed in hash and array values",
                ));
            }
            let off = off as usize;
            if !off.is_multiple_of(4) || off + 4 > self.vals.value_size {
                return Err(self.vals.e(
                    MapError::Invalid,
                    format_args!("spin lock at {off} doesn't fit the value"),
                ));
            }
        }
        self.vals.spin_lock = offset.map(|o| o as usize);
        Ok(())
    }

    /// `cpu` must be one of the machine's CPUs.
    fn check_cpu(&self, cpu: u32) -> Result<usize, MapError> {
        if cpu >= self.ncpus {
            return Err(self.vals.e(
                MapError::Invalid,
                format_args!("CPU {cpu} on a machine of {} CPUs", self.ncpus),
            ));
        }
        Ok(cpu as usize)
    }

    fn check_lock_flag(&self, flags: u64) -> Result<(), MapError> {
        if flags & flags::BPF_F_LOCK != 0 && self.vals.spin_lock.is_none() {
            return Err(self.vals.e(
                MapError::Invalid,
                "BPF_F_LOCK on a value without a bpf_spin_lock",
            ));
        }
        Ok(())
    }

    /// Program-side `bpf_map_lookup_elem`: the byte offset in [`Map::storage`] of the value
    /// for `key` (of `cpu`'s copy for per-CPU maps), or `None` if absent (or `key` is the
    /// wrong size, or `cpu` is not a CPU). LRU maps mark the element referenced. Maps whose
    /// values a program can't point to (queue, stack, bloom filter, ring buffer, stack
    /// trace, prog/perf event/cgroup arrays) return `None`. For map-in-maps the offset is
    /// that of the stored inner map id: use [`Map::inner_map_id`].
    pub fn lookup(&mut self, key: &[u8], cpu: u32) -> Option<usize> {
        if cpu >= self.ncpus {
            return None;
        }
        let cpu = cpu as usize;
        match &mut self.kind {
            Kind::Array(a) => a.lookup(&self.vals, key, cpu),
            Kind::FdArray(a) => a.lookup(&self.vals, key),
            Kind::Hash(h) => h.lookup(&self.vals, key, cpu),
            Kind::Lpm(t) => t.lookup(&self.vals, key),
            Kind::QueueStack(_) | Kind::Bloom(_) | Kind::StackTrace(_) | Kind::RingBuf => None,
        }
    }

    /// User-space `BPF_MAP_LOOKUP_ELEM`: a copy of the value (all CPUs' values, each
    /// `round_up(value_size, 8)` bytes, for per-CPU maps; the id for prog arrays and
    /// map-in-maps; the stack for stack traces; the oldest/top value of a queue/stack).
    /// Does not mark LRU elements. Errors as the kernel: `ENOENT` if absent, `ENOTSUPP` for
    /// perf event and cgroup arrays and ring buffers.
    pub fn lookup_user(&self, key: &[u8]) -> Result<Vec<u8>, MapError> {
        match &self.kind {
            Kind::Array(a) => a.lookup_user(&self.vals, key),
            Kind::FdArray(a) => a.lookup_user(&self.vals, key),
            Kind::Hash(h) => h.lookup_user(&self.vals, key),
            Kind::Lpm(t) => t.lookup_user(&self.vals, key),
            Kind::StackTrace(s) => s.lookup_user(&self.vals, key),
            Kind::QueueStack(q) => {
                self.check_empty_key(key)?;
                let mut out = vec![0; self.vals.value_size];
                q.peek(&self.vals, &mut out)?;
                Ok(out)
            }
            Kind::Bloom(_) => Err(self.vals.e(
                MapError::Invalid,
                "a bloom filter is queried with peek (the value to test)",
            )),
            Kind::RingBuf => Err(self
                .vals
                .e(MapError::NotSupported, "ring buffers have no elements")),
        }
    }

    fn check_empty_key(&self, key: &[u8]) -> Result<(), MapError> {
        if !key.is_empty() {
            return Err(self.vals.e(MapError::Invalid, "this map type takes no key"));
        }
        Ok(())
    }

    /// `bpf_map_update_elem` from a program running on `cpu` (or from user space for maps
    /// that are not per-CPU), with the kernel's flag semantics and errnos: `EINVAL` for
    /// unknown flags or `BPF_F_LOCK` without a spin lock, `EEXIST` for `BPF_NOEXIST` on an
    /// existing element, `ENOENT` for `BPF_EXIST` on a missing one, `E2BIG` when a hash
    /// map is full or an array index is out of range (LRU maps evict instead, LPM tries
    /// are `ENOSPC`). Per-CPU maps update only `cpu`'s copy (a new element's other copies
    /// are zeroed). Fd arrays and map-in-maps store `value` (a u32 id) as user space's
    /// update would (`BPF_ANY` only for arrays); queues, stacks and bloom filters push, as
    /// the syscall does.
    ///
    /// Checks run in the order of the map's own update function, as for a helper call. The
    /// syscall additionally rejects `BPF_F_LOCK` on a value without a spin lock before
    /// anything else; the only visible difference is an array index out of range with that
    /// flag (`E2BIG` here and from a program, `EINVAL` from the syscall).
    pub fn update(
        &mut self,
        key: &[u8],
        value: &[u8],
        flags: u64,
        cpu: u32,
    ) -> Result<(), MapError> {
        let cpu = self.check_cpu(cpu)?;
        match &mut self.kind {
            Kind::Array(a) => a.update(&self.vals, key, value, flags, Some(cpu)),
            Kind::FdArray(a) => a.update(&self.vals, key, value, flags),
            Kind::Hash(h) => h.update(&self.vals, key, value, flags, cpu, false),
            Kind::Lpm(t) => t.update(&self.vals, key, value, flags),
            Kind::QueueStack(_) | Kind::Bloom(_) => {
                self.check_empty_key(key)?;
                self.push(value, flags)
            }
            Kind::StackTrace(_) => Err(self.vals.e(
                MapError::Invalid,
                "stack trace maps are only filled by bpf_get_stackid",
            )),
            Kind::RingBuf => Err(self
                .vals
                .e(MapError::NotSupported, "ring buffers have no elements")),
        }
    }

    /// User-space `BPF_MAP_UPDATE_ELEM` of a per-CPU map: `values` holds every CPU's value,
    /// each `round_up(value_size, 8)` bytes ([`Map::value_stride`]). Other maps take one
    /// value, as [`Map::update`] from CPU 0. `BPF_F_LOCK` is `EINVAL` on per-CPU maps.
    pub fn update_all_cpus(
        &mut self,
        key: &[u8],
        values: &[u8],
        flags: u64,
    ) -> Result<(), MapError> {
        if !self.is_percpu() {
            return self.update(key, values, flags, 0);
        }
        self.check_lock_flag(flags)?;
        match &mut self.kind {
            Kind::Array(a) => {
                if flags > flags::BPF_EXIST {
                    return Err(self
                        .vals
                        .e(MapError::Invalid, format_args!("unknown flags {flags:#x}")));
                }
                a.update_all(&self.vals, key, values, flags)
            }
            Kind::Hash(h) => h.update(&self.vals, key, values, flags, 0, true),
            _ => unreachable!("per-CPU maps are arrays or hashes"),
        }
    }

    /// `bpf_map_delete_elem`: `ENOENT` if absent; arrays `EINVAL`; fd arrays and stack
    /// traces `E2BIG` for an index out of range; queues and stacks `EINVAL`; bloom filters
    /// `EOPNOTSUPP`.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), MapError> {
        match &mut self.kind {
            Kind::Array(_) => Err(self
                .vals
                .e(MapError::Invalid, "array elements can't be deleted")),
            Kind::FdArray(a) => a.delete(&self.vals, key),
            Kind::Hash(h) => h.delete(&self.vals, key),
            Kind::Lpm(t) => t.delete(&self.vals, key),
            Kind::StackTrace(s) => s.delete(&self.vals, key),
            Kind::QueueStack(_) => Err(self.vals.e(
                MapError::Invalid,
                "queue and stack elements are removed with pop",
            )),
            Kind::Bloom(_) => Err(self.vals.e(
                MapError::OpNotSupported,
                "bloom filter elements can't be deleted",
            )),
            Kind::RingBuf => Err(self
                .vals
                .e(MapError::NotSupported, "ring buffers have no elements")),
        }
    }

    /// User-space `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: hash maps (value as
    /// [`Map::lookup_user`] gives it) and queues/stacks (pop; `flags` must be 0). Other
    /// types are `ENOTSUPP`, as in the kernel.
    pub fn lookup_and_delete(&mut self, key: &[u8], flags: u64) -> Result<Vec<u8>, MapError> {
        if flags & !flags::BPF_F_LOCK != 0 {
            return Err(self
                .vals
                .e(MapError::Invalid, format_args!("unknown flags {flags:#x}")));
        }
        self.check_lock_flag(flags)?;
        match &mut self.kind {
            Kind::QueueStack(q) => {
                if flags != 0 {
                    return Err(self.vals.e(MapError::Invalid, "flags on a queue/stack pop"));
                }
                if !key.is_empty() {
                    return Err(self.vals.e(MapError::Invalid, "this map type takes no key"));
                }
                let mut out = vec![0; self.vals.value_size];
                q.pop(&self.vals, &mut out)?;
                Ok(out)
            }
            Kind::Hash(h) if self.spec.map_type != map_type::HASH_OF_MAPS => {
                let v = h.lookup_user(&self.vals, key)?;
                h.delete(&self.vals, key)?;
                Ok(v)
            }
            _ => Err(self.vals.e(
                MapError::NotSupported,
                "lookup-and-delete is for hash maps, queues and stacks",
            )),
        }
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key`, or the first key for `None`. Arrays go
    /// by index (an index out of range restarts at 0); hash maps go bucket by bucket, newest
    /// first within a bucket, with the zero-seeded jhash, which is exactly what the kernel
    /// does for a `BPF_F_ZERO_SEED` map (a key not in the map restarts at the first key);
    /// LPM tries go in postorder (more specific prefixes first); stack traces by id.
    /// `ENOENT` after the last key. Queues/stacks `EINVAL`, bloom filters `EOPNOTSUPP`.
    pub fn next_key(&self, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        if let Some(k) = key {
            if !matches!(
                self.kind,
                Kind::QueueStack(_) | Kind::Bloom(_) | Kind::RingBuf
            ) {
                self.vals.check_key(k)?;
            }
        }
        match &self.kind {
            Kind::Array(_) | Kind::FdArray(_) => {
                array::next_index(&self.vals, self.spec.max_entries, key)
            }
            Kind::Hash(h) => h.next_key(&self.vals, key),
            Kind::Lpm(t) => t.next_key(&self.vals, key),
            Kind::StackTrace(s) => s.next_key(&self.vals, key),
            Kind::QueueStack(_) => Err(self
                .vals
                .e(MapError::Invalid, "queues and stacks have no keys")),
            Kind::Bloom(_) => Err(self
                .vals
                .e(MapError::OpNotSupported, "bloom filters have no keys")),
            Kind::RingBuf => Err(self
                .vals
                .e(MapError::NotSupported, "ring buffers have no keys")),
        }
    }

    /// `bpf_map_push_elem`: queues and stacks append (`BPF_EXIST` overwrites the oldest
    /// value when full, else `E2BIG`; `BPF_NOEXIST` or other flags `EINVAL`); bloom
    /// filters add `value` (flags must be `BPF_ANY`).
    pub fn push(&mut self, value: &[u8], flags: u64) -> Result<(), MapError> {
        self.vals.check_value(value)?;
        match &mut self.kind {
            Kind::QueueStack(q) => q.push(&self.vals, value, flags),
            Kind::Bloom(b) => b.push(&self.vals, value, flags),
            _ => Err(self.vals.e(
                MapError::Invalid,
                "push is for queues, stacks and bloom filters",
            )),
        }
    }

    /// `bpf_map_pop_elem`: the oldest (queue) or newest (stack) value into `out`
    /// (`value_size` bytes); `ENOENT` and `out` zeroed when empty. Bloom filters
    /// `EOPNOTSUPP`.
    pub fn pop(&mut self, out: &mut [u8]) -> Result<(), MapError> {
        self.vals.check_value(out)?;
        match &mut self.kind {
            Kind::QueueStack(q) => q.pop(&self.vals, out),
            Kind::Bloom(_) => Err(self
                .vals
                .e(MapError::OpNotSupported, "bloom filters can't pop")),
            _ => Err(self
                .vals
                .e(MapError::Invalid, "pop is for queues and stacks")),
        }
    }

    /// `bpf_map_peek_elem`: for queues and stacks, copies the value `pop` would return into
    /// `value` without removing it (`ENOENT`, zeroed, when empty). For bloom filters
    /// `value` is the value to test and is only read: `Ok` if it may be in the set,
    /// `ENOENT` if it certainly is not.
    pub fn peek(&self, value: &mut [u8]) -> Result<(), MapError> {
        self.vals.check_value(value)?;
        match &self.kind {
            Kind::QueueStack(q) => q.peek(&self.vals, value),
            Kind::Bloom(b) => b.test(&self.vals, value),
            _ => Err(self.vals.e(
                MapError::Invalid,
                "peek is for queues, stacks and bloom filters",
            )),
        }
    }

    /// Bloom filter membership test (the read-only form of [`Map::peek`]).
    pub fn bloom_test(&self, value: &[u8]) -> Result<(), MapError> {
        self.vals.check_value(value)?;
        match &self.kind {
            Kind::Bloom(b) => b.test(&self.vals, value),
            _ => Err(self.vals.e(MapError::Invalid, "not a bloom filter")),
        }
    }

    /// Every element for dumps, in [`Map::next_key`] order: `(key, values)` with one value
    /// (`value_size` bytes) per CPU for per-CPU maps, else one. Arrays list every index; fd
    /// arrays the set indices (value: the u32 id); queues/stacks their values in pop order
    /// with empty keys; bloom filters and ring buffers nothing.
    pub fn entries(&self) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        match &self.kind {
            Kind::Array(a) => a.entries(&self.vals),
            Kind::FdArray(a) => a.entries(&self.vals),
            Kind::Hash(h) => h.entries(&self.vals),
            Kind::Lpm(t) => t.entries(&self.vals),
            Kind::StackTrace(s) => s.entries(&self.vals),
            Kind::QueueStack(q) => q.entries(&self.vals),
            Kind::Bloom(_) | Kind::RingBuf => Vec::new(),
        }
    }

    /// Elements in the map: `max_entries` for arrays (every index exists), set indices for
    /// fd arrays, stored stacks for stack traces, 0 for bloom filters and ring buffers.
    pub fn len(&self) -> usize {
        match &self.kind {
            Kind::Array(_) => self.spec.max_entries as usize,
            Kind::FdArray(a) => a.len(),
            Kind::Hash(h) => h.len(),
            Kind::Lpm(t) => t.len(),
            Kind::StackTrace(s) => s.len(),
            Kind::QueueStack(q) => q.len(),
            Kind::Bloom(_) | Kind::RingBuf => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The inner map id stored under `key` in an array or hash of maps (what a program's
    /// lookup returns a pointer to), or `None`.
    pub fn inner_map_id(&self, key: &[u8]) -> Option<u32> {
        match self.spec.map_type {
            map_type::ARRAY_OF_MAPS | map_type::HASH_OF_MAPS => self.object_id(key),
            _ => None,
        }
    }

    /// The id stored under `key` in a prog, perf event, cgroup array or map-in-map (the
    /// runtime's tail call, perf output and cgroup lookups), or `None`.
    pub fn object_id(&self, key: &[u8]) -> Option<u32> {
        match &self.kind {
            Kind::FdArray(a) => a.get(&self.vals, key),
            Kind::Hash(h) if self.spec.map_type == map_type::HASH_OF_MAPS => {
                let v = h.lookup_user(&self.vals, key).ok()?;
                Some(u32::from_le_bytes(v.get(..4)?.try_into().ok()?))
            }
            _ => None,
        }
    }

    /// Whether a map of spec `inner` may be stored in this map-in-map, as the kernel's
    /// `bpf_map_meta_equal` against the template inner map decides (`EINVAL` if not): same
    /// type, key and value sizes and flags, and for arrays the same `max_entries` unless the
    /// template has `BPF_F_INNER_MAP`.
    pub fn check_inner(&self, inner: &MapSpec) -> Result<(), MapError> {
        let Some(meta) = self.spec.inner.as_deref() else {
            return Err(self.vals.e(MapError::Invalid, "not a map-in-map"));
        };
        let same = meta.map_type == inner.map_type
            && meta.key_size == inner.key_size
            && meta.value_size == inner.value_size
            && meta.flags & !(flags::BPF_F_RDONLY | flags::BPF_F_WRONLY)
                == inner.flags & !(flags::BPF_F_RDONLY | flags::BPF_F_WRONLY);
        let entries_ok = meta.map_type != map_type::ARRAY
            || meta.flags & flags::BPF_F_INNER_MAP != 0
            || meta.max_entries == inner.max_entries;
        if !same || !entries_ok {
            return Err(self.vals.e(
                MapError::Invalid,
                format_args!("map `{}` doesn't match the inner map template", inner.name),
            ));
        }
        Ok(())
    }

    /// `bpf_get_stackid` into a stack trace map: `ips` is the whole call chain (innermost
    /// first); `flags` holds the frames to skip (low 8 bits), `BPF_F_USER_STACK`,
    /// `BPF_F_FAST_STACK_CMP` and `BPF_F_REUSE_STACKID`. The id is the kernel's
    /// `jhash2(ips) & (roundup_pow_of_two(max_entries) - 1)`; a different stack already in
    /// that bucket is `EEXIST` unless `BPF_F_REUSE_STACKID`. `EFAULT` if all frames are
    /// skipped, `ENOMEM` if every element is in use.
    pub fn store_stack(&mut self, ips: &[u64], flags: u64) -> Result<u32, MapError> {
        match &mut self.kind {
            Kind::StackTrace(s) => s.store(&self.vals, ips, flags),
            _ => Err(self.vals.e(MapError::Invalid, "not a stack trace map")),
        }
    }
}

#[cfg(test)]
mod tests;
