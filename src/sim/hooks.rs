//! Which programs an event reaches, and the context each program type sees.
//!
//! Event hooks are written like section names and classified by the loader's section
//! table, so `tp/sched/sched_switch` and `tracepoint/sched/sched_switch` are one hook, and
//! a function's entry (`kprobe/f`, `fentry/f`) reaches both kprobe and fentry programs.

use crate::loader::{classify, AttachPoint, ProgramType};

/// A hook, independent of how a section spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hook {
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint {
        name: String,
    },
    FuncEntry {
        function: String,
    },
    FuncExit {
        function: String,
    },
    UprobeEntry {
        target: String,
    },
    UprobeExit {
        target: String,
    },
    /// Programs attached by the user (xdp, tc, socket filters, ...): matched by type.
    ByType(ProgramType),
    Lsm {
        hook: String,
    },
    /// Anything else, matched by its section text.
    Section(String),
}

impl Hook {
    /// The hook of a section name (an event's `hook` or a program's section).
    pub fn of_section(section: &str) -> Hook {
        let (ty, attach) = classify(section);
        match attach {
            AttachPoint::Tracepoint { category, name } => Hook::Tracepoint { category, name },
            AttachPoint::RawTracepoint { name } => Hook::RawTracepoint { name },
            AttachPoint::Kprobe {
                function, retprobe, ..
            } => {
                if retprobe {
                    Hook::FuncExit { function }
                } else {
                    Hook::FuncEntry { function }
                }
            }
            AttachPoint::Uprobe {
                binary,
                function,
                retprobe,
                ..
            } => {
                let target = format!("{binary}:{function}");
                if retprobe {
                    Hook::UprobeExit { target }
                } else {
                    Hook::UprobeEntry { target }
                }
            }
            AttachPoint::Btf {
                attach_type,
                target,
            } => match attach_type.as_str() {
                "BPF_TRACE_FENTRY" | "BPF_MODIFY_RETURN" => Hook::FuncEntry { function: target },
                "BPF_TRACE_FEXIT" => Hook::FuncExit { function: target },
                // tp_btf programs see the raw tracepoint's arguments.
                "BPF_TRACE_RAW_TP" => Hook::RawTracepoint { name: target },
                _ => Hook::Section(section.to_string()),
            },
            AttachPoint::Lsm { hook } => Hook::Lsm { hook },
            AttachPoint::Manual if ty != ProgramType::Unspec => Hook::ByType(ty),
            _ => Hook::Section(section.to_string()),
        }
    }
}

/// How a program type reads its context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CtxKind {
    /// A tracepoint record (trace_entry header then fields).
    TracepointRecord,
    /// An array of u64 arguments (raw_tp, tp_btf, fentry/fexit, lsm).
    Args,
    /// x86_64 `struct pt_regs` (kprobes, uprobes).
    PtRegs,
    /// `struct xdp_md`.
    Xdp,
    /// `struct __sk_buff` (tc, socket filters, cgroup_skb).
    SkBuff,
    /// Raw bytes from the trace.
    Raw,
}

pub fn ctx_kind(ty: ProgramType) -> CtxKind {
    match ty {
        ProgramType::Tracepoint => CtxKind::TracepointRecord,
        ProgramType::RawTracepoint
        | ProgramType::RawTracepointWritable
        | ProgramType::Tracing
        | ProgramType::Lsm => CtxKind::Args,
        ProgramType::Kprobe => CtxKind::PtRegs,
        ProgramType::Xdp => CtxKind::Xdp,
        ProgramType::SchedCls
        | ProgramType::SchedAct
        | ProgramType::SocketFilter
        | ProgramType::CgroupSkb => CtxKind::SkBuff,
        _ => CtxKind::Raw,
    }
}

/// Offsets in x86_64 `struct pt_regs`.
pub mod pt_regs {
    pub const SIZE: usize = 168;
    pub const AX: usize = 80;
    pub const IP: usize = 128;
    pub const SP: usize = 152;
    /// Registers of arguments 1..6 (di, si, dx, cx, r8, r9).
    pub const ARGS: [usize; 6] = [112, 104, 96, 88, 72, 64];
}

/// Offsets in `struct xdp_md` and `struct __sk_buff` that the simulator fills.
pub mod netctx {
    pub const XDP_SIZE: usize = 24;
    pub const XDP_DATA: usize = 0;
    pub const XDP_DATA_END: usize = 4;
    pub const XDP_DATA_META: usize = 8;
    pub const XDP_INGRESS_IFINDEX: usize = 12;
    pub const SKB_SIZE: usize = 192;
    pub const SKB_LEN: usize = 0;
    pub const SKB_PROTOCOL: usize = 16;
    pub const SKB_INGRESS_IFINDEX: usize = 36;
    pub const SKB_IFINDEX: usize = 40;
    pub const SKB_DATA: usize = 76;
    pub const SKB_DATA_END: usize = 80;
    pub const SKB_DATA_META: usize = 140;
}

/// Where packet data is mapped: below 4 GiB, so that the 32-bit `data`/`data_end` fields
/// of `xdp_md` and `__sk_buff` hold real pointers. Headroom lets `bpf_xdp_adjust_head`
/// grow the packet at the front, as XDP_PACKET_HEADROOM does.
pub const PACKET_BASE: u64 = 0x0100_0000;
pub const PACKET_HEADROOM: usize = 256;
pub const PACKET_TAILROOM: usize = 256;

/// A named field of a tracepoint record: offset, size, and whether it is a string stored
/// after the fixed fields (`__data_loc`).
#[derive(Clone, Copy, Debug)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
    pub data_loc: bool,
}

const fn f(name: &'static str, offset: usize, size: usize) -> Field {
    Field {
        name,
        offset,
        size,
        data_loc: false,
    }
}

const fn loc(name: &'static str, offset: usize) -> Field {
    Field {
        name,
        offset,
        size: 4,
        data_loc: true,
    }
}

/// Layout of a tracepoint record: its fixed size and fields (after the 8-byte
/// trace_entry: common_type u16, flags u8, preempt_count u8, common_pid i32).
pub struct Layout {
    pub size: usize,
    pub fields: Vec<Field>,
}

/// x86_64 syscall numbers and argument names of common syscalls, for
/// `syscalls/sys_enter_*` fields by name and the record's `id`.
pub fn syscall(name: &str) -> Option<(u64, &'static [&'static str])> {
    Some(match name {
        "read" => (0, &["fd", "buf", "count"]),
        "write" => (1, &["fd", "buf", "count"]),
        "open" => (2, &["filename", "flags", "mode"]),
        "close" => (3, &["fd"]),
        "stat" => (4, &["filename", "statbuf"]),
        "mmap" => (9, &["addr", "len", "prot", "flags", "fd", "off"]),
        "ioctl" => (16, &["fd", "cmd", "arg"]),
        "connect" => (42, &["fd", "uservaddr", "addrlen"]),
        "accept" => (43, &["fd", "upeer_sockaddr", "upeer_addrlen"]),
        "clone" => (
            56,
            &[
                "clone_flags",
                "newsp",
                "parent_tidptr",
                "child_tidptr",
                "tls",
            ],
        ),
        "execve" => (59, &["filename", "argv", "envp"]),
        "exit" => (60, &["error_code"]),
        "kill" => (62, &["pid", "sig"]),
        "unlink" => (87, &["pathname"]),
        "exit_group" => (231, &["error_code"]),
        "openat" => (257, &["dfd", "filename", "flags", "mode"]),
        "unlinkat" => (263, &["dfd", "pathname", "flag"]),
        "execveat" => (322, &["fd", "filename", "argv", "envp", "flags"]),
        "openat2" => (437, &["dfd", "filename", "how", "usize"]),
        _ => return None,
    })
}

/// The record layout of a tracepoint the simulator knows, by category and name.
pub fn tracepoint_layout(category: &str, name: &str) -> Option<Layout> {
    if category == "syscalls" {
        if name.starts_with("sys_enter_") {
            // struct trace_event_raw_sys_enter: long id; unsigned long args[6]
            let mut fields = vec![f("__syscall_nr", 8, 8)];
            for (i, name) in ARG_NAMES.iter().enumerate() {
                fields.push(f(name, 16 + 8 * i, 8));
            }
            return Some(Layout { size: 64, fields });
        }
        if name.starts_with("sys_exit_") {
            return Some(Layout {
                size: 24,
                fields: vec![f("__syscall_nr", 8, 8), f("ret", 16, 8)],
            });
        }
        return None;
    }
    let (size, fields) = match (category, name) {
        ("sched", "sched_process_exec") => (
            20,
            vec![loc("filename", 8), f("pid", 12, 4), f("old_pid", 16, 4)],
        ),
        ("sched", "sched_process_exit") => (
            36,
            vec![
                f("comm", 8, 16),
                f("pid", 24, 4),
                f("prio", 28, 4),
                f("group_dead", 32, 1),
            ],
        ),
        ("sched", "sched_process_fork") => (
            48,
            vec![
                f("parent_comm", 8, 16),
                f("parent_pid", 24, 4),
                f("child_comm", 28, 16),
                f("child_pid", 44, 4),
            ],
        ),
        ("sched", "sched_switch") => (
            64,
            vec![
                f("prev_comm", 8, 16),
                f("prev_pid", 24, 4),
                f("prev_prio", 28, 4),
                f("prev_state", 32, 8),
                f("next_comm", 40, 16),
                f("next_pid", 56, 4),
                f("next_prio", 60, 4),
            ],
        ),
        ("sched", "sched_wakeup") | ("sched", "sched_wakeup_new") | ("sched", "sched_waking") => (
            36,
            vec![
                f("comm", 8, 16),
                f("pid", 24, 4),
                f("prio", 28, 4),
                f("target_cpu", 32, 4),
            ],
        ),
        ("signal", "signal_generate") => (
            48,
            vec![
                f("sig", 8, 4),
                f("errno", 12, 4),
                f("code", 16, 4),
                f("comm", 20, 16),
                f("pid", 36, 4),
                f("group", 40, 4),
                f("result", 44, 4),
            ],
        ),
        _ => return None,
    };
    Some(Layout { size, fields })
}

/// Names of the six generic syscall argument slots (`args[i]` also works by position).
pub const ARG_NAMES: [&str; 6] = ["arg0", "arg1", "arg2", "arg3", "arg4", "arg5"];
