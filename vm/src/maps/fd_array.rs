//! Arrays of kernel objects (`kernel/bpf/arraymap.c`'s fd arrays): `PROG_ARRAY`,
//! `PERF_EVENT_ARRAY`, `CGROUP_ARRAY` and `ARRAY_OF_MAPS`. User space stores a u32 (an fd
//! in the kernel; here the id of the object, which the runtime resolves) at an index; an
//! index is either set or empty. The id is also kept in storage at the index's slot, where
//! an array of maps' lookup points.

use std::collections::BTreeMap;

use super::{flags, index_key, map_type, MapError, MapSpec, Values};

#[derive(Debug)]
pub(crate) struct FdArray {
    max_entries: u32,
    map_type: u32,
    set: BTreeMap<u32, u32>,
}

impl FdArray {
    pub fn new(spec: &MapSpec) -> Self {
        FdArray {
            max_entries: spec.max_entries,
            map_type: spec.map_type,
            set: BTreeMap::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn get(&self, v: &Values, key: &[u8]) -> Option<u32> {
        self.set.get(&index_key(v, key).ok()?).copied()
    }

    /// Programs can only look up into arrays of maps (the verifier refuses the others; the
    /// kernel's op returns `-EOPNOTSUPP`). An empty index is NULL.
    pub fn lookup(&self, v: &Values, key: &[u8]) -> Option<usize> {
        if self.map_type != map_type::ARRAY_OF_MAPS {
            return None;
        }
        let i = index_key(v, key).ok()?;
        self.set.contains_key(&i).then(|| v.off(i, 0))
    }

    /// `bpf_fd_array_map_lookup_elem`: the id for prog arrays and arrays of maps; perf event
    /// and cgroup arrays have no `map_fd_sys_lookup_elem` (`ENOTSUPP`).
    pub fn lookup_user(&self, v: &Values, key: &[u8]) -> Result<Vec<u8>, MapError> {
        let i = index_key(v, key)?;
        if !matches!(
            self.map_type,
            map_type::PROG_ARRAY | map_type::ARRAY_OF_MAPS
        ) {
            return Err(v.e(
                MapError::NotSupported,
                "perf event and cgroup arrays can't be read from user space",
            ));
        }
        match self.set.get(&i) {
            Some(id) => Ok(id.to_le_bytes().to_vec()),
            None => Err(v.e(MapError::NotFound, format_args!("index {i} is empty"))),
        }
    }

    /// `bpf_fd_array_map_update_elem`: `BPF_ANY` only, `E2BIG` out of range.
    pub fn update(
        &mut self,
        v: &Values,
        key: &[u8],
        value: &[u8],
        fl: u64,
    ) -> Result<(), MapError> {
        let i = index_key(v, key)?;
        v.check_value(value)?;
        if fl != flags::BPF_ANY {
            return Err(v.e(
                MapError::Invalid,
                format_args!("fd arrays take only BPF_ANY, not {fl:#x}"),
            ));
        }
        if i >= self.max_entries {
            return Err(v.e(
                MapError::TooBig,
                format_args!("index {i} out of range (max_entries {})", self.max_entries),
            ));
        }
        let mut id = [0u8; 4];
        id.copy_from_slice(&value[..4]);
        v.write(v.off(i, 0), &id);
        self.set.insert(i, u32::from_le_bytes(id));
        Ok(())
    }

    /// `fd_array_map_delete_elem`: `E2BIG` out of range, `ENOENT` if empty.
    pub fn delete(&mut self, v: &Values, key: &[u8]) -> Result<(), MapError> {
        let i = index_key(v, key)?;
        if i >= self.max_entries {
            return Err(v.e(
                MapError::TooBig,
                format_args!("index {i} out of range (max_entries {})", self.max_entries),
            ));
        }
        match self.set.remove(&i) {
            Some(_) => {
                v.zero(v.off(i, 0), v.stride);
                Ok(())
            }
            None => Err(v.e(MapError::NotFound, format_args!("index {i} is empty"))),
        }
    }

    pub fn entries(&self, _v: &Values) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
        self.set
            .iter()
            .map(|(i, id)| (i.to_le_bytes().to_vec(), vec![id.to_le_bytes().to_vec()]))
            .collect()
    }
}
