//! Program loading: in this process ([`load_here`]) or in a forked child
//! ([`load_in_child`]) for a verdict that survives the loader being killed.

use crate::map::MapSpec;
use crate::KernelError;

/// Size of the verifier log buffer.
pub const LOG_SIZE: usize = 16 << 20;

/// A program to load.
#[derive(Clone, Debug, Default)]
pub struct LoadRequest {
    /// `BPF_PROG_TYPE_*`.
    pub prog_type: u32,
    /// Little-endian instruction bytes. `lddw` with src 5 (`MAP_IDX`) / 1 (`MAP_FD`) and
    /// `imm` = index into `maps` becomes a map fd load; src 6 / 2 a map value load.
    pub insns: Vec<u8>,
    pub maps: Vec<MapSpec>,
    /// 0: no log, 1: the verifier's log, 2: every instruction's state.
    pub log_level: u32,
    pub expected_attach_type: u32,
    /// Load without CAP_PERFMON and CAP_SYS_ADMIN (keeping CAP_BPF), as a user who may
    /// load programs but not read kernel memory: the verifier is stricter (uninitialised
    /// stack, pointer leaks). Only in [`load_in_child`].
    pub without_perfmon: bool,
}

/// What the kernel said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Judgement {
    Accepted {
        log: String,
    },
    Rejected {
        errno: i32,
        log: String,
    },
    /// The loader died or the request could not be made (e.g. a map type this kernel
    /// lacks): no verdict.
    CouldNotJudge(String),
}

impl Judgement {
    /// The verifier's error: the last meaningful line of the log.
    pub fn error_line(&self) -> Option<&str> {
        match self {
            Judgement::Rejected { log, .. } => error_line(log),
            _ => None,
        }
    }
}

/// The verifier's message in its log: the last line that is not a statistic or a state.
pub fn error_line(log: &str) -> Option<&str> {
    log.lines().rev().map(str::trim).find(|l| {
        !l.is_empty()
            && !l.starts_with("processed ")
            && !l.starts_with("verification time")
            && !l.starts_with("stack depth")
            && !l.starts_with("cur state:")
            && !l.starts_with("old state:")
    })
}

#[cfg(target_os = "linux")]
mod imp {
    use super::*;
    use crate::syscall::prog_load::{
        EXPECTED_ATTACH_TYPE, INSNS, INSN_CNT, LICENSE, LOG_BUF, LOG_LEVEL, PROG_TYPE,
    };
    use crate::syscall::{
        bpf, close, collect_child, errno, write_all, Attr, BPF_MAP_CREATE, BPF_PROG_LOAD,
    };

    /// Everything the load needs, allocated before a fork.
    pub(super) struct Prepared {
        insns: Vec<u8>,
        license: [u8; 4],
        pub log: Vec<u8>,
        map_attrs: Vec<Attr>,
        /// (byte offset of the imm field, map index, new src) of each map load.
        patches: Vec<(usize, usize, u8)>,
        prog_type: u32,
        log_level: u32,
        expected_attach_type: u32,
    }

    /// Drops CAP_PERFMON and CAP_SYS_ADMIN from this process (system calls only).
    fn drop_perfmon() -> Result<(), i32> {
        const CAP_SYS_ADMIN: u32 = 21;
        const CAP_PERFMON: u32 = 38;
        let mut head: [u32; 2] = [0x2008_0522, 0];
        let mut data = [0u32; 6];
        // SAFETY: capget/capset read and write the two arrays, sized for version 3.
        unsafe {
            if libc::syscall(libc::SYS_capget, head.as_mut_ptr(), data.as_mut_ptr()) != 0 {
                return Err(errno());
            }
            for set in 0..3 {
                data[set] &= !(1 << CAP_SYS_ADMIN);
                data[3 + set] &= !(1 << (CAP_PERFMON - 32));
            }
            if libc::syscall(libc::SYS_capset, head.as_mut_ptr(), data.as_ptr()) != 0 {
                return Err(errno());
            }
        }
        Ok(())
    }

    pub(super) fn prepare(req: &LoadRequest) -> Result<Prepared, KernelError> {
        if !req.insns.len().is_multiple_of(8) || req.insns.is_empty() {
            return Err(KernelError::Invalid(
                "program is not whole instructions".into(),
            ));
        }
        let mut patches = Vec::new();
        let mut i = 0;
        while i + 8 <= req.insns.len() {
            let code = req.insns[i];
            let src = req.insns[i + 1] >> 4;
            if code == 0x18 {
                if matches!(src, 1 | 2 | 5 | 6) {
                    let idx = i32::from_le_bytes(req.insns[i + 4..i + 8].try_into().unwrap());
                    if idx < 0 || idx as usize >= req.maps.len() {
                        return Err(KernelError::Invalid(format!(
                            "map index {idx} out of range"
                        )));
                    }
                    let new_src = if matches!(src, 1 | 5) { 1 } else { 2 };
                    patches.push((i, idx as usize, new_src));
                }
                i += 16;
            } else {
                i += 8;
            }
        }
        Ok(Prepared {
            insns: req.insns.clone(),
            license: *b"GPL\0",
            log: vec![0; if req.log_level > 0 { LOG_SIZE } else { 1 }],
            map_attrs: req.maps.iter().map(|m| m.attr()).collect(),
            patches,
            prog_type: req.prog_type,
            log_level: req.log_level,
            expected_attach_type: req.expected_attach_type,
        })
    }

    /// Creates the maps and loads the program; only system calls (safe after fork).
    /// Returns the program fd or the errno; map fds are left open (the caller exits or
    /// closes them).
    pub(super) fn run(p: &mut Prepared, map_fds: &mut [i32]) -> Result<i32, (&'static str, i32)> {
        for (k, a) in p.map_attrs.iter_mut().enumerate() {
            map_fds[k] = bpf(BPF_MAP_CREATE, a).map_err(|e| ("BPF_MAP_CREATE", e))?;
        }
        for &(off, idx, src) in &p.patches {
            let dst = p.insns[off + 1] & 0x0f;
            p.insns[off + 1] = dst | (src << 4);
            p.insns[off + 4..off + 8].copy_from_slice(&map_fds[idx].to_le_bytes());
        }
        let mut a = Attr::default();
        a.u32(PROG_TYPE, p.prog_type)
            .u32(INSN_CNT, (p.insns.len() / 8) as u32)
            .u64(INSNS, p.insns.as_ptr() as u64)
            .u64(LICENSE, p.license.as_ptr() as u64)
            .u32(EXPECTED_ATTACH_TYPE, p.expected_attach_type);
        if p.log_level > 0 {
            a.u32(LOG_LEVEL, p.log_level)
                .u32(crate::syscall::prog_load::LOG_SIZE, p.log.len() as u32)
                .u64(LOG_BUF, p.log.as_mut_ptr() as u64);
        }
        bpf(BPF_PROG_LOAD, &mut a).map_err(|e| ("BPF_PROG_LOAD", e))
    }

    pub(super) fn log_text(log: &[u8]) -> String {
        let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
        String::from_utf8_lossy(&log[..end]).into_owned()
    }

    pub(super) fn load_here(
        req: &LoadRequest,
    ) -> Result<(std::os::fd::OwnedFd, String), KernelError> {
        use std::os::fd::FromRawFd;
        let mut p = prepare(req)?;
        let mut fds = vec![-1; req.maps.len()];
        let r = run(&mut p, &mut fds);
        fds.iter().for_each(|&fd| close(fd));
        match r {
            // SAFETY: a new descriptor from the kernel.
            Ok(fd) => Ok((
                unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) },
                log_text(&p.log),
            )),
            Err((op, errno)) => Err(KernelError::Os { op, errno }),
        }
    }

    pub(super) fn load_in_child(req: &LoadRequest) -> Judgement {
        let mut p = match prepare(req) {
            Ok(p) => p,
            Err(e) => return Judgement::CouldNotJudge(e.to_string()),
        };
        let mut fds = vec![-1i32; req.maps.len()];
        let mut pipe = [0i32; 2];
        // SAFETY: pipe writes two descriptors into the array.
        if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
            return Judgement::CouldNotJudge(format!("pipe: errno {}", errno()));
        }
        // SAFETY: the child only makes system calls on memory prepared before the fork,
        // then _exits; it never returns into Rust code that could allocate or lock.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            close(pipe[0]);
            close(pipe[1]);
            return Judgement::CouldNotJudge(format!("fork: errno {}", errno()));
        }
        if pid == 0 {
            close(pipe[0]);
            let r = if req.without_perfmon {
                drop_perfmon().map_err(|e| ("capset", e))
            } else {
                Ok(())
            };
            let r = r.and_then(|_| run(&mut p, &mut fds));
            // Header: status (0 accepted, 1 rejected, 2 could not judge), errno.
            let (status, e) = match r {
                Ok(_) => (0u32, 0i32),
                Err(("BPF_PROG_LOAD", e)) => (1, e),
                Err((_, e)) => (2, e),
            };
            let mut head = [0u8; 8];
            head[..4].copy_from_slice(&status.to_le_bytes());
            head[4..].copy_from_slice(&e.to_le_bytes());
            write_all(pipe[1], &head);
            let end = p.log.iter().position(|&b| b == 0).unwrap_or(p.log.len());
            write_all(pipe[1], &p.log[..end]);
            // SAFETY: leaves the child without running destructors or atexit handlers.
            unsafe { libc::_exit(0) };
        }
        close(pipe[1]);
        let (out, status) = collect_child(pipe[0], pid);
        if !libc::WIFEXITED(status) || out.len() < 8 {
            return Judgement::CouldNotJudge(format!(
                "kernel could not judge: the loading process died (wait status {status:#x})"
            ));
        }
        let st = u32::from_le_bytes(out[..4].try_into().unwrap());
        let e = i32::from_le_bytes(out[4..8].try_into().unwrap());
        let log = String::from_utf8_lossy(&out[8..]).into_owned();
        match st {
            0 => Judgement::Accepted { log },
            1 if e == libc::ENOSPC => Judgement::CouldNotJudge("verifier log overflowed".into()),
            1 => Judgement::Rejected { errno: e, log },
            _ => Judgement::CouldNotJudge(format!(
                "kernel could not judge: map creation failed: {}",
                std::io::Error::from_raw_os_error(e)
            )),
        }
    }
}

/// Loads a program in this process; returns its fd and the verifier log.
#[cfg(target_os = "linux")]
pub fn load_here(req: &LoadRequest) -> Result<(std::os::fd::OwnedFd, String), KernelError> {
    imp::load_here(req)
}

/// Asks the kernel's verifier about a program in a forked child process: creates the
/// maps, loads the program with the log, reports and exits. A child that dies gives
/// [`Judgement::CouldNotJudge`].
pub fn load_in_child(req: &LoadRequest) -> Judgement {
    #[cfg(target_os = "linux")]
    {
        imp::load_in_child(req)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = req;
        Judgement::CouldNotJudge("not Linux".into())
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use crate::test_insns as insns;

    #[test]
    fn kernel_judges_in_a_child() {
        if let Err(e) = crate::availability() {
            eprintln!("SKIPPED: {e}");
            return;
        }
        let ok = LoadRequest {
            prog_type: 1,
            insns: insns(&[(0xb7, 0, 0, 0), (0x95, 0, 0, 0)]),
            log_level: 1,
            ..Default::default()
        };
        assert!(matches!(load_in_child(&ok), Judgement::Accepted { .. }));
        let bad = LoadRequest {
            insns: insns(&[(0x95, 0, 0, 0)]),
            ..ok.clone()
        };
        let j = load_in_child(&bad);
        assert_eq!(j.error_line(), Some("R0 !read_ok"), "{j:?}");
        // A map lookup with the map given by index.
        let with_map = LoadRequest {
            insns: insns(&[(0x18, 0x51, 0, 0), (0, 0, 0, 0), (0x95, 0, 0, 0)]),
            maps: vec![MapSpec {
                map_type: 2,
                key_size: 4,
                value_size: 8,
                max_entries: 1,
                flags: 0,
            }],
            ..ok
        };
        assert_eq!(load_in_child(&with_map).error_line(), Some("R0 !read_ok"));
    }
}
