//! `STACK_TRACE` (`kernel/bpf/stackmap.c`): `roundup_pow_of_two(max_entries)` buckets
//! indexed by stack id, each pointing to one of `max_entries` preallocated elements (slots
//! in storage) that hold the instruction pointers (u64 each), zero-padded to `value_size`.

use std::collections::BTreeMap;

use super::jhash::jhash2;
use super::slots::Slots;
use super::{flags, index_key, MapError, MapSpec, Values, PERF_EVENT_MAX_STACK};

/// `sizeof(struct bpf_stack_build_id)`.
pub(crate) const BUILD_ID_ENTRY: u64 = 32;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    hash: u32,
    nr: u32,
    slot: u32,
}

#[derive(Debug)]
pub(crate) struct StackTrace {
    n_buckets: u32,
    buckets: BTreeMap<u32, Bucket>,
    slots: Slots,
}

impl StackTrace {
    pub fn new(spec: &MapSpec) -> Self {
        StackTrace {
            n_buckets: spec.max_entries.next_power_of_two(),
            buckets: BTreeMap::new(),
            slots: Slots::new(spec.max_entries),
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    fn ips(v: &Values, b: &Bucket) -> Vec<u8> {
        v.read(v.off(b.slot, 0), b.nr as usize * 8)
    }

    /// `__bpf_get_stackid` on the call chain `ips` as `bpf_get_stackid` collects it.
    pub fn store(&mut self, v: &Values, ips: &[u64], fl: u64) -> Result<u32, MapError> {
        let known = flags::BPF_F_SKIP_FIELD_MASK
            | flags::BPF_F_USER_STACK
            | flags::BPF_F_FAST_STACK_CMP
            | flags::BPF_F_REUSE_STACKID;
        if fl & !known != 0 {
            return Err(v.e(MapError::Invalid, format_args!("unknown flags {fl:#x}")));
        }
        let skip = (fl & flags::BPF_F_SKIP_FIELD_MASK) as usize;
        // get_perf_callchain collects at most value_size / 8 + skip frames (capped).
        let max_depth = (v.value_size / 8 + skip).min(PERF_EVENT_MAX_STACK as usize);
        let trace = &ips[..ips.len().min(max_depth)];
        if trace.len() <= skip {
            return Err(v.e(
                MapError::Fault,
                format_args!("skipping {skip} of {} frames", trace.len()),
            ));
        }
        let trace = &trace[skip..];
        let bytes: Vec<u8> = trace.iter().flat_map(|ip| ip.to_le_bytes()).collect();
        let hash = jhash2(&bytes, 0);
        let id = hash & (self.n_buckets - 1);
        let nr = trace.len() as u32;
        let bucket = self.buckets.get(&id).copied();
        let hash_matches = bucket.is_some_and(|b| b.hash == hash);
        if hash_matches && fl & flags::BPF_F_FAST_STACK_CMP != 0 {
            return Ok(id);
        }
        if let Some(b) = bucket {
            if hash_matches && b.nr == nr && Self::ips(v, &b) == bytes {
                return Ok(id);
            }
            if fl & flags::BPF_F_REUSE_STACKID == 0 {
                return Err(v.e(
                    MapError::Exists,
                    format_args!("stack id {id} holds another stack"),
                ));
            }
        }
        let slot = self
            .slots
            .alloc()
            .ok_or_else(|| v.e(MapError::NoMemory, "every stack element is in use"))?;
        let off = v.off(slot, 0);
        v.zero(off, v.stride);
        v.write(off, &bytes);
        if let Some(old) = self.buckets.insert(id, Bucket { hash, nr, slot }) {
            self.slots.release(old.slot);
        }
        Ok(id)
    }

    /// `bpf_stackmap_copy`: the stack, zero-padded to `value_size`.
    pub fn lookup_user(&self, v: &Values, key: &[u8]) -> Result<Vec<u8>, MapError> {
        let id = index_key(v, key)?;
        let b = self
            .buckets
            .get(&id)
            .ok_or_else(|| v.e(MapError::NotFound, format_args!("no stack with id {id}")))?;
        let mut out = Self::ips(v, b);
        out.resize(v.value_size, 0);
        Ok(out)
    }

    pub fn delete(&mut self, v: &Values, key: &[u8]) -> Result<(), MapError> {
        let id = index_key(v, key)?;
        if id >= self.n_buckets {
            return Err(v.e(MapError::TooBig, format_args!("stack id {id} out of range")));
        }
        match self.buckets.remove(&id) {
            Some(b) => {
                self.slots.release(b.slot);
                Ok(())
            }
            None => Err(v.e(MapError::NotFound, format_args!("no stack with id {id}"))),
        }
    }

    /// `stack_map_get_next_key`: ids in increasing order; an unknown id restarts at 0.
    pub fn next_key(&self, v: &Values, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        let from = match key {
            None => 0,
            Some(k) => {
                let id = index_key(v, k)?;
                if self.buckets.contains_key(&id) {
                    id + 1
                } else {
                    0
                }
            }
        };
        self.buckets
            .range(from..)
            .next()
            .map(|(id, _)| id.to_le_bytes().to_vec())
            .ok_or_else(|| v.e(MapError::NotFound, "no more stacks"))
    }

    pub fn entries(&self, v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.buckets
            .iter()
            .map(|(id, b)| {
                let mut val = Self::ips(v, b);
                val.resize(v.value_size, 0);
                (id.to_le_bytes().to_vec(), vec![val])
            })
            .collect()
    }
}
