//! Hash maps (`kernel/bpf/hashtab.c`): `HASH`, `PERCPU_HASH`, `LRU_HASH`,
//! `LRU_PERCPU_HASH` and `HASH_OF_MAPS`, all preallocated.
//!
//! The table keeps the kernel's structure: `roundup_pow_of_two(max_entries)` buckets chosen
//! by `jhash` (seed 0, as with `BPF_F_ZERO_SEED`), new elements at the head of their bucket.
//! `next_key` walks buckets in order and each bucket from its head, which is the kernel's
//! iteration order for a zero-seeded map (the kernel's default seed is random, so its order
//! is not reproducible anyway).
//!
//! Elements live in slots of the map's storage. Like the kernel's preallocated elements:
//! * `HASH` replaces an existing key's element on update: the new value goes to the CPU's
//!   spare slot and the old slot becomes the spare (the kernel's `extra_elems`), so a
//!   pointer from an earlier lookup keeps the old value; `BPF_F_LOCK` updates in place.
//! * `PERCPU_HASH` and `HASH_OF_MAPS` update in place.
//! * LRU maps take a fresh node from the LRU for every update (possibly evicting), then
//!   release the old one (`LRU_PERCPU_HASH` updates an existing value in place but still
//!   takes and returns a node unless `BPF_EXIST`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::jhash::htab_hash;
use super::lru::Lru;
use super::slots::Slots;
use super::{flags, map_type, MapError, MapSpec, Values};

#[derive(Clone, Debug)]
struct SlotInfo {
    key: Vec<u8>,
    pos: (u32, u64),
}

/// Keys to slots, in bucket order.
#[derive(Clone, Debug)]
pub(crate) struct Table {
    mask: u32,
    by_key: BTreeMap<Vec<u8>, u32>,
    /// (bucket, rank) -> slot; ranks decrease with insertion time, so a bucket's newest
    /// element comes first as at the head of the kernel's bucket list.
    order: BTreeMap<(u32, u64), u32>,
    info: Vec<Option<SlotInfo>>,
    inserted: u64,
}

impl Table {
    fn new(max_entries: u32) -> Self {
        Table {
            mask: max_entries.next_power_of_two().wrapping_sub(1),
            by_key: BTreeMap::new(),
            order: BTreeMap::new(),
            info: Vec::new(),
            inserted: 0,
        }
    }

    fn len(&self) -> usize {
        self.by_key.len()
    }

    fn find(&self, key: &[u8]) -> Option<u32> {
        self.by_key.get(key).copied()
    }

    /// Adds `key` (not present) at the head of its bucket.
    fn insert(&mut self, key: &[u8], slot: u32) {
        let bucket = htab_hash(key, 0) & self.mask;
        let pos = (bucket, u64::MAX - self.inserted);
        self.inserted += 1;
        self.by_key.insert(key.to_vec(), slot);
        self.order.insert(pos, slot);
        let i = slot as usize;
        if self.info.len() <= i {
            self.info.resize(i + 1, None);
        }
        self.info[i] = Some(SlotInfo {
            key: key.to_vec(),
            pos,
        });
    }

    fn remove_slot(&mut self, slot: u32) -> bool {
        let Some(info) = self.info.get_mut(slot as usize).and_then(Option::take) else {
            return false;
        };
        self.by_key.remove(&info.key);
        self.order.remove(&info.pos);
        true
    }

    fn remove_key(&mut self, key: &[u8]) -> Option<u32> {
        let slot = self.find(key)?;
        self.remove_slot(slot);
        Some(slot)
    }

    fn key_of(&self, slot: u32) -> &[u8] {
        self.info
            .get(slot as usize)
            .and_then(Option::as_ref)
            .map_or(&[][..], |i| &i.key)
    }

    /// `htab_map_get_next_key`: after `key`'s element; from the first element if `key` is
    /// `None` or not in the table.
    fn next_key(&self, key: Option<&[u8]>) -> Option<&[u8]> {
        let after = key
            .and_then(|k| self.find(k))
            .and_then(|s| self.info.get(s as usize)?.as_ref())
            .map(|i| i.pos);
        let next = match after {
            Some(p) => self
                .order
                .range((Bound::Excluded(p), Bound::Unbounded))
                .next(),
            None => self.order.iter().next(),
        };
        next.map(|(_, &s)| self.key_of(s))
    }

    fn slots_in_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.order.values().copied()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flavor {
    /// `HASH`: replace on update via per-CPU spare slots.
    Plain,
    /// `PERCPU_HASH` and `HASH_OF_MAPS`: update in place.
    InPlace,
    Lru,
    LruPercpu,
}

#[derive(Debug)]
pub(crate) struct HashMap {
    flavor: Flavor,
    percpu: bool,
    of_maps: bool,
    table: Table,
    slots: Slots,
    /// `HASH`: each CPU's spare slot.
    extra: Vec<u32>,
    lru: Option<Lru>,
}

/// `check_flags`.
fn check_flags(v: &Values, exists: bool, fl: u64) -> Result<(), MapError> {
    let f = fl & !flags::BPF_F_LOCK;
    if exists && f == flags::BPF_NOEXIST {
        return Err(v.e(MapError::Exists, "key exists (BPF_NOEXIST)"));
    }
    if !exists && f == flags::BPF_EXIST {
        return Err(v.e(MapError::NotFound, "no such key (BPF_EXIST)"));
    }
    Ok(())
}

fn unknown_flags(v: &Values, fl: u64) -> MapError {
    v.e(MapError::Invalid, format_args!("unknown flags {fl:#x}"))
}

impl HashMap {
    pub fn new(spec: &MapSpec, ncpus: u32) -> Self {
        let n = spec.max_entries;
        let flavor = match spec.map_type {
            map_type::HASH => Flavor::Plain,
            map_type::LRU_HASH => Flavor::Lru,
            map_type::LRU_PERCPU_HASH => Flavor::LruPercpu,
            _ => Flavor::InPlace,
        };
        let lru = matches!(flavor, Flavor::Lru | Flavor::LruPercpu)
            .then(|| Lru::new(n, ncpus, spec.flags & flags::BPF_F_NO_COMMON_LRU != 0));
        HashMap {
            flavor,
            percpu: matches!(
                spec.map_type,
                map_type::PERCPU_HASH | map_type::LRU_PERCPU_HASH
            ),
            of_maps: spec.map_type == map_type::HASH_OF_MAPS,
            table: Table::new(n),
            slots: Slots::new(n),
            extra: if flavor == Flavor::Plain {
                (0..ncpus).map(|c| n + c).collect()
            } else {
                Vec::new()
            },
            lru,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn lookup(&mut self, v: &Values, key: &[u8], cpu: usize) -> Option<usize> {
        if key.len() != v.key_size {
            return None;
        }
        let slot = self.table.find(key)?;
        if let Some(lru) = &mut self.lru {
            lru.set_ref(slot);
        }
        Some(v.off(slot, if self.percpu { cpu } else { 0 }))
    }

    pub fn lookup_user(&self, v: &Values, key: &[u8]) -> Result<Vec<u8>, MapError> {
        v.check_key(key)?;
        let slot = self
            .table
            .find(key)
            .ok_or_else(|| v.e(MapError::NotFound, "no such key"))?;
        Ok(if self.percpu {
            v.get_all_cpus(slot)
        } else {
            v.get_value(v.off(slot, 0))
        })
    }

    /// Writes a new element's value: per-CPU maps set `cpu`'s copy and zero the others
    /// (`pcpu_init_value`) or set all copies from user space.
    fn init_value(&self, v: &Values, slot: u32, value: &[u8], cpu: usize, all: bool) {
        if all {
            v.put_all_cpus(slot, value);
        } else if self.percpu {
            for c in 0..v.copies {
                if c == cpu {
                    v.put_cpu(slot, c, value);
                } else {
                    v.zero_copy(v.off(slot, c));
                }
            }
        } else if self.of_maps {
            let off = v.off(slot, 0);
            v.zero_copy(off);
            v.write(off, value);
        } else {
            v.put_value(v.off(slot, 0), value);
        }
    }

    /// Overwrites an existing element's value in place (`pcpu_copy_value`, map-in-map id,
    /// `copy_map_value_locked`).
    fn copy_value(&self, v: &Values, slot: u32, value: &[u8], cpu: usize, all: bool) {
        if all {
            v.put_all_cpus(slot, value);
        } else if self.percpu {
            v.put_value(v.off(slot, cpu), value);
        } else {
            v.put_value(v.off(slot, 0), value);
        }
    }

    /// Updates from a program on `cpu`, or from user space with every CPU's value (`all`).
    pub fn update(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: usize,
        all: bool,
    ) -> Result<(), MapError> {
        v.check_key(key)?;
        if all {
            v.check_all_cpus(value)?;
        } else {
            v.check_value(value)?;
        }
        match self.flavor {
            Flavor::Plain => self.update_plain(v, key, value, fl, cpu),
            Flavor::InPlace => self.update_in_place(v, key, value, fl, cpu, all),
            Flavor::Lru => self.update_lru(v, key, value, fl, cpu),
            Flavor::LruPercpu => self.update_lru_percpu(v, key, value, fl, cpu, all),
        }
    }

    /// `htab_map_update_elem`.
    fn update_plain(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        if fl & !flags::BPF_F_LOCK > flags::BPF_EXIST {
            return Err(unknown_flags(v, fl));
        }
        let old = self.table.find(key);
        if fl & flags::BPF_F_LOCK != 0 {
            if v.spin_lock.is_none() {
                return Err(v.e(
                    MapError::Invalid,
                    "BPF_F_LOCK on a value without a bpf_spin_lock",
                ));
            }
            check_flags(v, old.is_some(), fl)?;
            if let Some(slot) = old {
                // Under the element's lock, in place.
                self.copy_value(v, slot, value, 0, false);
                return Ok(());
            }
        }
        check_flags(v, old.is_some(), fl)?;
        let slot = match old {
            Some(o) => std::mem::replace(&mut self.extra[cpu], o),
            None => self.slots.alloc().ok_or_else(|| {
                v.e(
                    MapError::TooBig,
                    format_args!("the map is full ({} entries)", self.table.len()),
                )
            })?,
        };
        self.init_value(v, slot, value, cpu, false);
        if old.is_some() {
            self.table.remove_key(key);
        }
        self.table.insert(key, slot);
        Ok(())
    }

    /// `htab_map_update_elem_in_place` (per-CPU hash, hash of maps).
    fn update_in_place(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: usize,
        all: bool,
    ) -> Result<(), MapError> {
        if fl > flags::BPF_EXIST {
            return Err(unknown_flags(v, fl));
        }
        let old = self.table.find(key);
        check_flags(v, old.is_some(), fl)?;
        if let Some(slot) = old {
            if self.of_maps {
                self.init_value(v, slot, value, cpu, all);
            } else {
                self.copy_value(v, slot, value, cpu, all);
            }
            return Ok(());
        }
        let slot = self.slots.alloc().ok_or_else(|| {
            v.e(
                MapError::TooBig,
                format_args!("the map is full ({} entries)", self.table.len()),
            )
        })?;
        self.init_value(v, slot, value, cpu, all);
        self.table.insert(key, slot);
        Ok(())
    }

    fn pop_lru_node(&mut self, v: &Values, cpu: usize) -> Result<u32, MapError> {
        let (Some(lru), table) = (&mut self.lru, &mut self.table) else {
            return Err(v.e(MapError::Invalid, "not an LRU map"));
        };
        let mut del = |slot: u32| table.remove_slot(slot);
        lru.pop_free(cpu as u32, &mut del)
            .ok_or_else(|| v.e(MapError::NoMemory, "no free LRU element"))
    }

    fn push_lru_node(&mut self, slot: u32) {
        if let Some(lru) = &mut self.lru {
            lru.push_free(slot);
        }
    }

    /// `htab_lru_map_update_elem`: the new element is taken (maybe evicting) before the
    /// flags are checked.
    fn update_lru(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: usize,
    ) -> Result<(), MapError> {
        if fl > flags::BPF_EXIST {
            return Err(unknown_flags(v, fl));
        }
        let node = self.pop_lru_node(v, cpu)?;
        self.init_value(v, node, value, cpu, false);
        let old = self.table.find(key);
        if let Err(e) = check_flags(v, old.is_some(), fl) {
            self.push_lru_node(node);
            return Err(e);
        }
        if old.is_some() {
            self.table.remove_key(key);
            if let Some(lru) = &mut self.lru {
                lru.set_ref(node);
            }
        }
        self.table.insert(key, node);
        if let Some(o) = old {
            self.push_lru_node(o);
        }
        Ok(())
    }

    /// `__htab_lru_percpu_map_update_elem`.
    fn update_lru_percpu(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: usize,
        all: bool,
    ) -> Result<(), MapError> {
        if fl > flags::BPF_EXIST {
            return Err(unknown_flags(v, fl));
        }
        let mut node = None;
        if fl != flags::BPF_EXIST {
            node = Some(self.pop_lru_node(v, cpu)?);
        }
        let old = self.table.find(key);
        if let Err(e) = check_flags(v, old.is_some(), fl) {
            if let Some(n) = node {
                self.push_lru_node(n);
            }
            return Err(e);
        }
        match old {
            Some(o) => {
                if let Some(lru) = &mut self.lru {
                    lru.set_ref(o);
                }
                self.copy_value(v, o, value, cpu, all);
            }
            None => {
                if let Some(n) = node.take() {
                    self.init_value(v, n, value, cpu, all);
                    self.table.insert(key, n);
                }
            }
        }
        if let Some(n) = node {
            self.push_lru_node(n);
        }
        Ok(())
    }

    pub fn delete(&mut self, v: &Values, key: &[u8]) -> Result<(), MapError> {
        v.check_key(key)?;
        let slot = self
            .table
            .remove_key(key)
            .ok_or_else(|| v.e(MapError::NotFound, "no such key"))?;
        if self.lru.is_some() {
            self.push_lru_node(slot);
        } else {
            self.slots.release(slot);
        }
        Ok(())
    }

    pub fn next_key(&self, v: &Values, key: Option<&[u8]>) -> Result<Vec<u8>, MapError> {
        self.table
            .next_key(key)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| v.e(MapError::NotFound, "no more keys"))
    }

    pub fn entries(&self, v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.table
            .slots_in_order()
            .map(|s| (self.table.key_of(s).to_vec(), v.per_cpu_values(s)))
            .collect()
    }
}
