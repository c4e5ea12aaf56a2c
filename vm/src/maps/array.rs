//! `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY` (`kernel/bpf/arraymap.c`): every
//! index `0..max_entries` always exists, zero-initialised; index `i` is slot `i`.

use super::{flags, index_key, MapError, MapSpec, Values};

#[derive(Debug)]
pub(crate) struct ArrayMap {
    max_entries: u32,
    percpu: bool,
}

impl ArrayMap {
    pub fn new(spec: &MapSpec) -> Self {
        ArrayMap {
            max_entries: spec.max_entries,
            percpu: spec.map_type == super::map_type::PERCPU_ARRAY,
        }
    }

    fn index(&self, v: &Values, key: &[u8]) -> Option<u32> {
        index_key(v, key).ok().filter(|&i| i < self.max_entries)
    }

    pub fn lookup(&self, v: &Values, key: &[u8], cpu: usize) -> Option<usize> {
        let i = self.index(v, key)?;
        Some(v.off(i, if self.percpu { cpu } else { 0 }))
    }

    pub fn lookup_user(&self, v: &Values, key: &[u8]) -> Result<Vec<u8>, MapError> {
        index_key(v, key)?;
        let i = self
            .index(v, key)
            .ok_or_else(|| v.e(MapError::NotFound, "index out of range"))?;
        Ok(if self.percpu {
            v.get_all_cpus(i)
        } else {
            v.get_value(v.off(i, 0))
        })
    }

    /// `array_map_update_elem`: from a program (per-CPU arrays: `cpu`'s copy).
    pub fn update(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
        cpu: Option<usize>,
    ) -> Result<(), MapError> {
        let i = index_key(v, key)?;
        v.check_value(value)?;
        if fl & !flags::BPF_F_LOCK > flags::BPF_EXIST {
            return Err(v.e(MapError::Invalid, format_args!("unknown flags {fl:#x}")));
        }
        if i >= self.max_entries {
            return Err(v.e(
                MapError::TooBig,
                format_args!("index {i} out of range (max_entries {})", self.max_entries),
            ));
        }
        if fl & flags::BPF_NOEXIST != 0 {
            return Err(v.e(MapError::Exists, "array elements always exist"));
        }
        if fl & flags::BPF_F_LOCK != 0 && v.spin_lock.is_none() {
            return Err(v.e(
                MapError::Invalid,
                "BPF_F_LOCK on a value without a bpf_spin_lock",
            ));
        }
        let cpu = if self.percpu { cpu.unwrap_or(0) } else { 0 };
        // copy_map_value: value_size bytes, padding and spin lock untouched.
        v.put_value(v.off(i, cpu), value);
        Ok(())
    }

    /// `bpf_percpu_array_update`: user space writes every CPU's copy.
    pub fn update_all(
        &mut self,
        v: &Values,
        key: &[u8],
        values: &[u8],
        fl: u64,
    ) -> Result<(), MapError> {
        let i = index_key(v, key)?;
        v.check_all_cpus(values)?;
        if i >= self.max_entries {
            return Err(v.e(
                MapError::TooBig,
                format_args!("index {i} out of range (max_entries {})", self.max_entries),
            ));
        }
        if fl == flags::BPF_NOEXIST {
            return Err(v.e(MapError::Exists, "array elements always exist"));
        }
        v.put_all_cpus(i, values);
        Ok(())
    }

    pub fn entries(&self, v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        (0..self.max_entries)
            .map(|i| (i.to_le_bytes().to_vec(), v.per_cpu_values(i)))
            .collect()
    }
}

/// `array_map_get_next_key`, shared with the fd arrays.
pub(crate) fn next_index(
    v: &Values,
    max_entries: u32,
    key: Option<&[u8]>,
) -> Result<Vec<u8>, MapError> {
    let index = match key {
        Some(k) => index_key(v, k)?,
        None => u32::MAX,
    };
    if index >= max_entries {
        return Ok(0u32.to_le_bytes().to_vec());
    }
    if index == max_entries - 1 {
        return Err(v.e(MapError::NotFound, "no key after the last index"));
    }
    Ok((index + 1).to_le_bytes().to_vec())
}
