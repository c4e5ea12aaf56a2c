//! Map creation.

/// A map to create (the fields of `BPF_MAP_CREATE` that programs' verification needs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapSpec {
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
}

#[cfg(target_os = "linux")]
impl MapSpec {
    /// The attribute buffer that creates this map.
    pub fn attr(&self) -> crate::syscall::Attr {
        use crate::syscall::map_create::*;
        let mut a = crate::syscall::Attr::default();
        a.u32(MAP_TYPE, self.map_type)
            .u32(KEY_SIZE, self.key_size)
            .u32(VALUE_SIZE, self.value_size)
            .u32(MAX_ENTRIES, self.max_entries)
            .u32(MAP_FLAGS, self.flags);
        a
    }

    /// Creates the map; the file descriptor closes when dropped.
    pub fn create(&self) -> Result<std::os::fd::OwnedFd, crate::KernelError> {
        use std::os::fd::FromRawFd;
        let mut a = self.attr();
        let fd = crate::syscall::bpf_op("BPF_MAP_CREATE", crate::syscall::BPF_MAP_CREATE, &mut a)?;
        // SAFETY: the kernel just returned this new descriptor to us.
        Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
    }
}
