//! `BLOOM_FILTER` (`kernel/bpf/bloom_filter.c`): `nr_hash_funcs` (map_extra's low 4 bits,
//! default 5) jhash functions with seeds `0..nr_hash_funcs` (the kernel's seed under
//! `BPF_F_ZERO_SEED` plus the function's index) over a bit array of the kernel's size:
//! `max_entries * nr_hash_funcs * 7 / 5` bits rounded up to a power of two (at least 64,
//! 2^32 on overflow). No false negatives; false positives exactly where a zero-seeded
//! kernel filter has them.

use std::collections::BTreeSet;

use super::jhash::htab_hash;
use super::{flags, MapError, MapSpec, Values};

#[derive(Debug)]
pub(crate) struct Bloom {
    nr_hash_funcs: u32,
    bitset_mask: u32,
    /// Set bits (sparse: the kernel's bit array can be 512 MiB).
    bits: BTreeSet<u32>,
}

impl Bloom {
    pub fn new(spec: &MapSpec) -> Self {
        let nr_hash_funcs = match (spec.map_extra & 0xf) as u32 {
            0 => 5,
            n => n,
        };
        let bits = spec
            .max_entries
            .checked_mul(nr_hash_funcs)
            .and_then(|b| (b / 5).checked_mul(7))
            .filter(|&b| b <= 1 << 31);
        let bitset_mask = match bits {
            None => u32::MAX,
            Some(b) if b <= 64 => 63,
            Some(b) => b.next_power_of_two() - 1,
        };
        Bloom {
            nr_hash_funcs,
            bitset_mask,
            bits: BTreeSet::new(),
        }
    }

    fn hash(&self, value: &[u8], index: u32) -> u32 {
        htab_hash(value, index) & self.bitset_mask
    }

    pub fn push(&mut self, v: &Values, value: &[u8], fl: u64) -> Result<(), MapError> {
        if fl != flags::BPF_ANY {
            return Err(v.e(
                MapError::Invalid,
                format_args!("bloom filters take only BPF_ANY, not {fl:#x}"),
            ));
        }
        for i in 0..self.nr_hash_funcs {
            let h = self.hash(value, i);
            self.bits.insert(h);
        }
        Ok(())
    }

    pub fn test(&self, v: &Values, value: &[u8]) -> Result<(), MapError> {
        for i in 0..self.nr_hash_funcs {
            if !self.bits.contains(&self.hash(value, i)) {
                return Err(v.e(MapError::NotFound, "value not in the filter"));
            }
        }
        Ok(())
    }
}
