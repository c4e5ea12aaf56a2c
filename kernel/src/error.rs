//! Errors of the kernel backend.

/// Why a kernel operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    /// The kernel cannot be used here (not Linux, not root, bpf() refused).
    #[error("kernel backend unavailable: {0}")]
    Unavailable(String),
    /// A system call failed.
    #[error("{op}: {}", std::io::Error::from_raw_os_error(*errno))]
    Os { op: &'static str, errno: i32 },
    /// The request cannot be expressed (e.g. a map index out of range).
    #[error("{0}")]
    Invalid(String),
}
