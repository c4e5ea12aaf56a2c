//! `bpf_trace_printk` lines from the real kernel: a private tracefs instance with only the
//! `bpf_trace/bpf_trace_printk` event enabled, read (and cleared) after each test run.
//!
//! `trace_pipe` of the top-level instance is shared by everyone on the machine and read
//! asynchronously; an instance of our own (`instances/ebpf-sim-PID-N`) has its own
//! buffer, so a run's lines can be taken right after the run. Other programs' printk
//! lines land there too (the event is global), so lines are kept by the pid of the task
//! that printed them: `BPF_PROG_TEST_RUN` runs the program in the calling task.
//!
//! When tracefs is not mounted it is mounted at a private temporary directory for the
//! time of the run (and unmounted after); `/sys/kernel/debug/tracing` is the fallback.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A tracefs instance that records `bpf_trace_printk` events; removed on drop.
pub struct PrintkInstance {
    dir: PathBuf,
    /// A tracefs mount of ours, unmounted on drop.
    mounted: Option<PathBuf>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// The name of our private mount points (in the temporary directory).
const PRIVATE_PREFIX: &str = "ebpf-sim-tracefs-";

/// The mount point of a tracefs already mounted, from `/proc/self/mounts`.
fn mounted_tracefs() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, dir, kind) = (f.next()?, f.next()?, f.next()?);
        // (Another ebpf-sim's private mount goes away when that process is done.)
        let private = Path::new(dir)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with(PRIVATE_PREFIX));
        (kind == "tracefs" && !private && Path::new(dir).join("instances").is_dir())
            .then(|| dir.into())
    })
}

#[cfg(target_os = "linux")]
fn mount_private() -> Result<PathBuf, String> {
    use std::ffi::CString;
    let dir = std::env::temp_dir().join(format!(
        "{PRIVATE_PREFIX}{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let target = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| "temporary directory name has a NUL".to_string())?;
    // SAFETY: NUL-terminated strings that live across the call; no data argument.
    let r = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        let _ = std::fs::remove_dir(&dir);
        return Err(format!("mounting tracefs: {e}"));
    }
    Ok(dir)
}

#[cfg(not(target_os = "linux"))]
fn mount_private() -> Result<PathBuf, String> {
    Err("not Linux".into())
}

#[cfg(target_os = "linux")]
fn unmount(dir: &Path) {
    use std::ffi::CString;
    if let Ok(target) = CString::new(dir.as_os_str().as_encoded_bytes()) {
        // SAFETY: a NUL-terminated path that lives across the call.
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(not(target_os = "linux"))]
fn unmount(_: &Path) {}

impl PrintkInstance {
    /// Creates the instance and enables the printk event in it. `Err` says why printk
    /// lines cannot be collected.
    pub fn create() -> Result<PrintkInstance, String> {
        let (root, mounted) = match mounted_tracefs() {
            Some(r) => (r, None),
            None => match mount_private() {
                Ok(d) => (d.clone(), Some(d)),
                Err(e) => {
                    let debug = PathBuf::from("/sys/kernel/debug/tracing");
                    if debug.join("instances").is_dir() {
                        (debug, None)
                    } else {
                        return Err(format!("tracefs is not available ({e})"));
                    }
                }
            },
        };
        remove_stale(&root.join("instances"));
        let mut inst = PrintkInstance {
            dir: root.join("instances").join(format!(
                "ebpf-sim-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            )),
            mounted,
        };
        if let Err(e) = std::fs::create_dir(&inst.dir) {
            let msg = format!("creating tracefs instance {}: {e}", inst.dir.display());
            inst.dir = PathBuf::new();
            return Err(msg);
        }
        let enable = inst.dir.join("events/bpf_trace/bpf_trace_printk/enable");
        std::fs::write(&enable, "1").map_err(|e| format!("{}: {e}", enable.display()))?;
        Ok(inst)
    }

    /// The instance's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Removes the instances of ebpf-sim processes that are gone (killed before they could
/// remove theirs).
fn remove_stale(instances: &Path) {
    let Ok(dir) = std::fs::read_dir(instances) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let pid = name
            .strip_prefix("ebpf-sim-")
            .and_then(|r| r.split_once('-'))
            .and_then(|(pid, n)| n.parse::<u32>().ok().and(pid.parse::<u32>().ok()));
        if let Some(pid) = pid {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir(e.path());
            }
        }
    }
}

impl Drop for PrintkInstance {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::write(
                self.dir.join("events/bpf_trace/bpf_trace_printk/enable"),
                "0",
            );
            let _ = std::fs::remove_dir(&self.dir);
        }
        if let Some(m) = &self.mounted {
            unmount(m);
        }
    }
}

/// Restricts the instance's events to `pid` (best effort: lines are filtered by pid too).
pub fn set_event_pid(dir: &Path, pid: u32) {
    let _ = std::fs::write(dir.join("set_event_pid"), pid.to_string());
}

/// The printk lines recorded since the last call, of task `pid`; the buffer is cleared.
pub fn take(dir: &Path, pid: u32) -> Result<Vec<String>, String> {
    let trace = dir.join("trace");
    let text = std::fs::read(&trace).map_err(|e| format!("{}: {e}", trace.display()))?;
    // Opening `trace` for writing with O_TRUNC clears the buffer.
    std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&trace)
        .map_err(|e| format!("clearing {}: {e}", trace.display()))?;
    Ok(parse(&String::from_utf8_lossy(&text), pid))
}

/// The messages of `bpf_trace_printk` events of task `pid` in a `trace` file's text:
/// lines such as `  comm-1234  [001] ..... 12.345678: bpf_trace_printk: message`. A line
/// without such a header continues the previous message (a message with a newline).
pub fn parse(text: &str, pid: u32) -> Vec<String> {
    const TAG: &str = ": bpf_trace_printk: ";
    let mut out: Vec<String> = Vec::new();
    let mut in_ours = false;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        match line.split_once(TAG) {
            Some((head, msg)) if header_pid(head).is_some() => {
                in_ours = header_pid(head) == Some(pid);
                if in_ours {
                    out.push(msg.to_string());
                }
            }
            _ => {
                if header_pid(line).is_some() {
                    // Another event of the instance.
                    in_ours = false;
                } else if in_ours {
                    if let Some(last) = out.last_mut() {
                        last.push('\n');
                        last.push_str(line);
                    }
                }
            }
        }
    }
    out
}

/// The pid of a line's `comm-pid [cpu] flags timestamp` header.
fn header_pid(head: &str) -> Option<u32> {
    let (task, rest) = head.split_once(" [")?;
    let (cpu, _) = rest.split_once(']')?;
    cpu.trim().parse::<u32>().ok()?;
    let (_, pid) = task.trim().rsplit_once('-')?;
    pid.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_one_pid_and_continuations() {
        let text = "# tracer: nop\n#\n\
            \x20          <...>-42      [001] ..... 100.000001: bpf_trace_printk: hello 1\n\
            \x20    my-comm-x-42      [000] d..1. 100.000002: bpf_trace_printk: two\n\
            second line\n\
            \x20          other-43      [000] ..... 100.000003: bpf_trace_printk: not ours\n\
            continuation of theirs\n\
            \x20          a b-42      [003] ..... 100.000004: bpf_trace_printk: x: y\n";
        assert_eq!(parse(text, 42), ["hello 1", "two\nsecond line", "x: y"]);
        assert_eq!(
            parse(text, 43),
            ["not ours\ncontinuation of theirs".to_string()]
        );
        assert!(parse("garbage\n: bpf_trace_printk: x\n", 1).is_empty());
    }
}
