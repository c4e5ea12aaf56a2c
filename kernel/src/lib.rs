//! The real kernel as a backend: raw `bpf(2)` calls to create maps and load programs with
//! the verifier's log, and [`prog::load_in_child`] to ask the kernel's verifier for a
//! verdict in a forked process, so that a kernel that kills the loader (this kernel's
//! verifier does on programs that make it hold too many states) gives "could not judge",
//! never a verdict.
//!
//! Everything needs Linux and the right to call `bpf()` (root, or CAP_BPF + CAP_PERFMON):
//! [`availability`] says whether this process has it, and why not.
//!
//! Layout: [`syscall`] (the raw call and attribute layouts), [`map`] (map creation),
//! [`prog`] (program loading and verdicts), [`object`] (whole objects loaded and
//! test-run in a child), [`testrun`] (raw bytecode test-run as XDP), [`tracefs`] (printk lines), [`error`].

pub mod error;
pub mod map;
pub mod object;
pub mod prog;
#[cfg(target_os = "linux")]
pub mod syscall;
pub mod testrun;
pub mod tracefs;

/// Test programs as bytes, from (opcode, dst | src << 4, off, imm) tuples.
#[cfg(test)]
pub(crate) fn test_insns(v: &[(u8, u8, i16, i32)]) -> Vec<u8> {
    v.iter()
        .flat_map(|&(code, regs, off, imm)| {
            let mut b = vec![code, regs];
            b.extend_from_slice(&off.to_le_bytes());
            b.extend_from_slice(&imm.to_le_bytes());
            b
        })
        .collect()
}

pub use error::KernelError;
pub use map::MapSpec;
pub use object::{run_object, KObject, KPreload, KResult, KRun, LoadOutcome, RunOutcome};
pub use prog::{load_in_child, Judgement, LoadRequest};
pub use testrun::{run_xdp, XdpCase, XdpOutcome};

/// Whether this process can load programs into the kernel; `Err` gives the reason (not
/// root, bpf() unavailable, not Linux).
pub fn availability() -> Result<(), KernelError> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(KernelError::Unavailable("not running as root".into()));
        }
        let exit = [0xb7u8, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
        let req = LoadRequest {
            prog_type: 1,
            insns: exit.to_vec(),
            maps: Vec::new(),
            log_level: 0,
            expected_attach_type: 0,
            without_perfmon: false,
        };
        match prog::load_here(&req) {
            Ok(_) => Ok(()),
            Err(KernelError::Os { errno, .. })
                if errno == libc::EPERM || errno == libc::ENOSYS || errno == libc::EACCES =>
            {
                Err(KernelError::Unavailable(format!(
                    "bpf() is not available: {}",
                    std::io::Error::from_raw_os_error(errno)
                )))
            }
            Err(e) => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        Err(KernelError::Unavailable("not Linux".into()))
    }
}
