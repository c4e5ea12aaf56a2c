//! The raw `bpf(2)` system call and the attribute layouts it takes.

use crate::KernelError;

/// `BPF_MAP_CREATE`.
pub const BPF_MAP_CREATE: i32 = 0;
/// `BPF_PROG_LOAD`.
pub const BPF_PROG_LOAD: i32 = 5;

/// Size of the attribute buffers passed (larger than every field used).
pub const ATTR_SIZE: usize = 160;

/// An attribute buffer, zeroed, with little helpers to write fields at byte offsets.
#[repr(C, align(8))]
pub struct Attr(pub [u8; ATTR_SIZE]);

impl Default for Attr {
    fn default() -> Self {
        Attr([0; ATTR_SIZE])
    }
}

impl Attr {
    pub fn u32(&mut self, off: usize, v: u32) -> &mut Self {
        self.0[off..off + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }

    pub fn u64(&mut self, off: usize, v: u64) -> &mut Self {
        self.0[off..off + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
}

/// `union bpf_attr` offsets for `BPF_PROG_LOAD`.
pub mod prog_load {
    pub const PROG_TYPE: usize = 0;
    pub const INSN_CNT: usize = 4;
    pub const INSNS: usize = 8;
    pub const LICENSE: usize = 16;
    pub const LOG_LEVEL: usize = 24;
    pub const LOG_SIZE: usize = 28;
    pub const LOG_BUF: usize = 32;
    pub const EXPECTED_ATTACH_TYPE: usize = 68;
    pub const PROG_BTF_FD: usize = 72;
    pub const FUNC_INFO_REC_SIZE: usize = 76;
    pub const FUNC_INFO: usize = 80;
    pub const FUNC_INFO_CNT: usize = 88;
}

/// `union bpf_attr` offsets for `BPF_MAP_CREATE`.
pub mod map_create {
    pub const MAP_TYPE: usize = 0;
    pub const KEY_SIZE: usize = 4;
    pub const VALUE_SIZE: usize = 8;
    pub const MAX_ENTRIES: usize = 12;
    pub const MAP_FLAGS: usize = 16;
}

/// Calls `bpf(cmd, attr, size)`; returns the result or the errno.
///
/// Async-signal-safe (a single system call), so it may run in a forked child.
pub fn bpf(cmd: i32, attr: &mut Attr) -> Result<i32, i32> {
    // SAFETY: `attr` is a valid, writable buffer of ATTR_SIZE bytes for the duration of
    // the call; the pointers stored inside it are the caller's responsibility.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd as libc::c_long,
            attr.0.as_mut_ptr(),
            ATTR_SIZE as libc::c_long,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as i32)
    }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `bpf()` as a `Result` naming the operation.
pub fn bpf_op(op: &'static str, cmd: i32, attr: &mut Attr) -> Result<i32, KernelError> {
    bpf(cmd, attr).map_err(|errno| KernelError::Os { op, errno })
}

/// `BPF_MAP_LOOKUP_ELEM`.
pub const BPF_MAP_LOOKUP_ELEM: i32 = 1;
/// `BPF_MAP_UPDATE_ELEM`.
pub const BPF_MAP_UPDATE_ELEM: i32 = 2;
/// `BPF_MAP_GET_NEXT_KEY`.
pub const BPF_MAP_GET_NEXT_KEY: i32 = 4;
/// `BPF_PROG_TEST_RUN`.
pub const BPF_PROG_TEST_RUN: i32 = 10;
/// `BPF_BTF_LOAD`.
pub const BPF_BTF_LOAD: i32 = 18;
/// `BPF_MAP_FREEZE`.
pub const BPF_MAP_FREEZE: i32 = 22;

/// `union bpf_attr` offsets of the map element commands.
pub mod map_elem {
    pub const MAP_FD: usize = 0;
    pub const KEY: usize = 8;
    pub const VALUE: usize = 16;
    pub const FLAGS: usize = 24;
}

/// `union bpf_attr` offsets for `BPF_MAP_CREATE` beyond [`map_create`]'s.
pub mod map_create_ext {
    pub const INNER_MAP_FD: usize = 20;
    pub const NUMA_NODE: usize = 24;
    pub const MAP_NAME: usize = 28;
    pub const MAP_EXTRA: usize = 64;
}

/// `union bpf_attr` offsets for `BPF_PROG_TEST_RUN`.
pub mod test_run {
    pub const PROG_FD: usize = 0;
    pub const RETVAL: usize = 4;
    pub const DATA_SIZE_IN: usize = 8;
    pub const DATA_SIZE_OUT: usize = 12;
    pub const DATA_IN: usize = 16;
    pub const DATA_OUT: usize = 24;
    pub const REPEAT: usize = 32;
    pub const DURATION: usize = 36;
    pub const CTX_SIZE_IN: usize = 40;
    pub const CTX_SIZE_OUT: usize = 44;
    pub const CTX_IN: usize = 48;
    pub const CTX_OUT: usize = 56;
    pub const FLAGS: usize = 64;
    pub const CPU: usize = 68;
    /// `BPF_F_TEST_RUN_ON_CPU`.
    pub const F_RUN_ON_CPU: u32 = 1;
}

impl Attr {
    /// Reads a `u32` field.
    pub fn get_u32(&self, off: usize) -> u32 {
        u32::from_ne_bytes(self.0[off..off + 4].try_into().unwrap())
    }
}

/// Closes a descriptor this process opened (negative: nothing to close).
pub(crate) fn close(fd: i32) {
    if fd >= 0 {
        // SAFETY: closing a descriptor this process opened.
        unsafe { libc::close(fd) };
    }
}

/// Writes all of `buf` to a pipe (a child reporting to its parent); gives up on errors.
pub(crate) fn write_all(fd: i32, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid buffer to a pipe we own.
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        buf = &buf[n as usize..];
    }
}

/// The parent's side of a child that reports through a pipe: everything it wrote to the
/// pipe until it closed, and its wait status.
pub(crate) fn collect_child(read_fd: i32, pid: libc::pid_t) -> (Vec<u8>, i32) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        // SAFETY: reading into a valid buffer from our end of the pipe.
        let n = unsafe { libc::read(read_fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            break;
        }
        out.extend_from_slice(&buf[..n as usize]);
    }
    close(read_fd);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    (out, status)
}
