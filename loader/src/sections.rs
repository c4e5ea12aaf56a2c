//! libbpf's program section conventions: section name -> program type, expected attach
//! type and attach point.

use std::fmt;

use serde::Serialize;

/// Kernel program types (`enum bpf_prog_type`), the ones libbpf sections name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgramType {
    Unspec,
    SocketFilter,
    Kprobe,
    SchedCls,
    SchedAct,
    Tracepoint,
    Xdp,
    PerfEvent,
    CgroupSkb,
    CgroupSock,
    LwtIn,
    LwtOut,
    LwtXmit,
    SockOps,
    SkSkb,
    CgroupDevice,
    SkMsg,
    RawTracepoint,
    CgroupSockAddr,
    LwtSeg6local,
    LircMode2,
    SkReuseport,
    FlowDissector,
    CgroupSysctl,
    RawTracepointWritable,
    CgroupSockopt,
    Tracing,
    StructOps,
    Ext,
    Lsm,
    SkLookup,
    Syscall,
    Netfilter,
}

impl ProgramType {
    /// The kernel's `BPF_PROG_TYPE_*` number.
    pub fn number(self) -> u32 {
        use ProgramType::*;
        match self {
            Unspec => 0,
            SocketFilter => 1,
            Kprobe => 2,
            SchedCls => 3,
            SchedAct => 4,
            Tracepoint => 5,
            Xdp => 6,
            PerfEvent => 7,
            CgroupSkb => 8,
            CgroupSock => 9,
            LwtIn => 10,
            LwtOut => 11,
            LwtXmit => 12,
            SockOps => 13,
            SkSkb => 14,
            CgroupDevice => 15,
            SkMsg => 16,
            RawTracepoint => 17,
            CgroupSockAddr => 18,
            LwtSeg6local => 19,
            LircMode2 => 20,
            SkReuseport => 21,
            FlowDissector => 22,
            CgroupSysctl => 23,
            RawTracepointWritable => 24,
            CgroupSockopt => 25,
            Tracing => 26,
            StructOps => 27,
            Ext => 28,
            Lsm => 29,
            SkLookup => 30,
            Syscall => 31,
            Netfilter => 32,
        }
    }

    pub fn name(self) -> &'static str {
        use ProgramType::*;
        match self {
            Unspec => "unspec",
            SocketFilter => "socket_filter",
            Kprobe => "kprobe",
            SchedCls => "sched_cls",
            SchedAct => "sched_act",
            Tracepoint => "tracepoint",
            Xdp => "xdp",
            PerfEvent => "perf_event",
            CgroupSkb => "cgroup_skb",
            CgroupSock => "cgroup_sock",
            LwtIn => "lwt_in",
            LwtOut => "lwt_out",
            LwtXmit => "lwt_xmit",
            SockOps => "sock_ops",
            SkSkb => "sk_skb",
            CgroupDevice => "cgroup_device",
            SkMsg => "sk_msg",
            RawTracepoint => "raw_tracepoint",
            CgroupSockAddr => "cgroup_sock_addr",
            LwtSeg6local => "lwt_seg6local",
            LircMode2 => "lirc_mode2",
            SkReuseport => "sk_reuseport",
            FlowDissector => "flow_dissector",
            CgroupSysctl => "cgroup_sysctl",
            RawTracepointWritable => "raw_tracepoint_writable",
            CgroupSockopt => "cgroup_sockopt",
            Tracing => "tracing",
            StructOps => "struct_ops",
            Ext => "ext",
            Lsm => "lsm",
            SkLookup => "sk_lookup",
            Syscall => "syscall",
            Netfilter => "netfilter",
        }
    }
}

impl fmt::Display for ProgramType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a program attaches, as far as its section name says.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AttachPoint {
    /// Attached explicitly by the user (xdp, tc, socket, perf_event, syscall, ...),
    /// or the section gives no target.
    Manual,
    Tracepoint {
        category: String,
        name: String,
    },
    RawTracepoint {
        name: String,
    },
    /// `kprobe/func[+offset]`, `kretprobe/func`, `ksyscall/name`.
    Kprobe {
        function: String,
        offset: u64,
        retprobe: bool,
    },
    /// `uprobe/binary:function[+offset]`; both may be empty (set at attach time).
    Uprobe {
        binary: String,
        function: String,
        offset: u64,
        retprobe: bool,
    },
    /// fentry/fexit/fmod_ret/tp_btf/iter/freplace: a BTF-named kernel function or hook.
    Btf {
        attach_type: String,
        target: String,
    },
    Lsm {
        hook: String,
    },
    /// A cgroup or socket hook; `attach_type` is the kernel's BPF_* attach type name.
    Hook {
        attach_type: String,
    },
    StructOps {
        member: String,
    },
}

impl fmt::Display for AttachPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttachPoint::Manual => write!(f, "-"),
            AttachPoint::Tracepoint { category, name } => write!(f, "tracepoint {category}:{name}"),
            AttachPoint::RawTracepoint { name } => write!(f, "raw_tracepoint {name}"),
            AttachPoint::Kprobe {
                function,
                offset,
                retprobe,
            } => {
                let kw = if *retprobe { "kretprobe" } else { "kprobe" };
                write!(f, "{kw} {function}")?;
                if *offset != 0 {
                    write!(f, "+{offset:#x}")?;
                }
                Ok(())
            }
            AttachPoint::Uprobe {
                binary,
                function,
                offset,
                retprobe,
            } => {
                let kw = if *retprobe { "uretprobe" } else { "uprobe" };
                write!(f, "{kw} {binary}:{function}")?;
                if *offset != 0 {
                    write!(f, "+{offset:#x}")?;
                }
                Ok(())
            }
            AttachPoint::Btf {
                attach_type,
                target,
            } => write!(f, "{attach_type} {target}"),
            AttachPoint::Lsm { hook } => write!(f, "lsm {hook}"),
            AttachPoint::Hook { attach_type } => write!(f, "{attach_type}"),
            AttachPoint::StructOps { member } => write!(f, "struct_ops {member}"),
        }
    }
}

/// How the part after the prefix is read.
#[derive(Clone, Copy)]
enum Arg {
    NoTarget,
    TpCatName,
    RawName,
    KFunc(bool),
    KSys(bool),
    UFunc(bool),
    BtfTarget(&'static str),
    LsmHook,
    HookType(&'static str),
    OpsMember,
}

/// (prefix, program type, argument parser). A prefix matches the whole section name or
/// the part before a `/`. Order matters: more specific first, as in libbpf's table.
const SECTIONS: &[(&str, ProgramType, Arg)] = {
    use Arg::*;
    use ProgramType::*;
    &[
        ("socket", SocketFilter, NoTarget),
        ("sk_reuseport/migrate", SkReuseport, NoTarget),
        ("sk_reuseport", SkReuseport, NoTarget),
        ("kprobe.multi", Kprobe, KFunc(false)),
        ("kretprobe.multi", Kprobe, KFunc(true)),
        ("kprobe", Kprobe, KFunc(false)),
        ("kretprobe", Kprobe, KFunc(true)),
        ("ksyscall", Kprobe, KSys(false)),
        ("kretsyscall", Kprobe, KSys(true)),
        ("uprobe.multi", Kprobe, UFunc(false)),
        ("uretprobe.multi", Kprobe, UFunc(true)),
        ("uprobe.s", Kprobe, UFunc(false)),
        ("uretprobe.s", Kprobe, UFunc(true)),
        ("uprobe", Kprobe, UFunc(false)),
        ("uretprobe", Kprobe, UFunc(true)),
        ("usdt", Kprobe, NoTarget),
        ("tc/ingress", SchedCls, HookType("BPF_TCX_INGRESS")),
        ("tc/egress", SchedCls, HookType("BPF_TCX_EGRESS")),
        ("tcx/ingress", SchedCls, HookType("BPF_TCX_INGRESS")),
        ("tcx/egress", SchedCls, HookType("BPF_TCX_EGRESS")),
        ("tc", SchedCls, NoTarget),
        ("classifier", SchedCls, NoTarget),
        ("action", SchedAct, NoTarget),
        ("netkit/primary", SchedCls, HookType("BPF_NETKIT_PRIMARY")),
        ("netkit/peer", SchedCls, HookType("BPF_NETKIT_PEER")),
        ("tracepoint", Tracepoint, TpCatName),
        ("tp", Tracepoint, TpCatName),
        ("raw_tracepoint.w", RawTracepointWritable, RawName),
        ("raw_tp.w", RawTracepointWritable, RawName),
        ("raw_tracepoint", RawTracepoint, RawName),
        ("raw_tp", RawTracepoint, RawName),
        ("tp_btf", Tracing, BtfTarget("BPF_TRACE_RAW_TP")),
        ("fentry.s", Tracing, BtfTarget("BPF_TRACE_FENTRY")),
        ("fmod_ret.s", Tracing, BtfTarget("BPF_MODIFY_RETURN")),
        ("fexit.s", Tracing, BtfTarget("BPF_TRACE_FEXIT")),
        ("fentry", Tracing, BtfTarget("BPF_TRACE_FENTRY")),
        ("fmod_ret", Tracing, BtfTarget("BPF_MODIFY_RETURN")),
        ("fexit", Tracing, BtfTarget("BPF_TRACE_FEXIT")),
        ("freplace", Ext, BtfTarget("BPF_EXT")),
        ("lsm.s", Lsm, LsmHook),
        ("lsm_cgroup", Lsm, LsmHook),
        ("lsm", Lsm, LsmHook),
        ("iter.s", Tracing, BtfTarget("BPF_TRACE_ITER")),
        ("iter", Tracing, BtfTarget("BPF_TRACE_ITER")),
        ("syscall", Syscall, NoTarget),
        ("xdp.frags/devmap", Xdp, HookType("BPF_XDP_DEVMAP")),
        ("xdp/devmap", Xdp, HookType("BPF_XDP_DEVMAP")),
        ("xdp.frags/cpumap", Xdp, HookType("BPF_XDP_CPUMAP")),
        ("xdp/cpumap", Xdp, HookType("BPF_XDP_CPUMAP")),
        ("xdp.frags", Xdp, NoTarget),
        ("xdp", Xdp, NoTarget),
        ("perf_event", PerfEvent, NoTarget),
        ("lwt_in", LwtIn, NoTarget),
        ("lwt_out", LwtOut, NoTarget),
        ("lwt_xmit", LwtXmit, NoTarget),
        ("lwt_seg6local", LwtSeg6local, NoTarget),
        ("sockops", SockOps, HookType("BPF_CGROUP_SOCK_OPS")),
        (
            "sk_skb/stream_parser",
            SkSkb,
            HookType("BPF_SK_SKB_STREAM_PARSER"),
        ),
        (
            "sk_skb/stream_verdict",
            SkSkb,
            HookType("BPF_SK_SKB_STREAM_VERDICT"),
        ),
        ("sk_skb/verdict", SkSkb, HookType("BPF_SK_SKB_VERDICT")),
        ("sk_skb", SkSkb, NoTarget),
        ("sk_msg", SkMsg, HookType("BPF_SK_MSG_VERDICT")),
        ("lirc_mode2", LircMode2, HookType("BPF_LIRC_MODE2")),
        (
            "flow_dissector",
            FlowDissector,
            HookType("BPF_FLOW_DISSECTOR"),
        ),
        (
            "cgroup_skb/ingress",
            CgroupSkb,
            HookType("BPF_CGROUP_INET_INGRESS"),
        ),
        (
            "cgroup_skb/egress",
            CgroupSkb,
            HookType("BPF_CGROUP_INET_EGRESS"),
        ),
        ("cgroup/skb", CgroupSkb, NoTarget),
        (
            "cgroup/sock_create",
            CgroupSock,
            HookType("BPF_CGROUP_INET_SOCK_CREATE"),
        ),
        (
            "cgroup/sock_release",
            CgroupSock,
            HookType("BPF_CGROUP_INET_SOCK_RELEASE"),
        ),
        (
            "cgroup/sock",
            CgroupSock,
            HookType("BPF_CGROUP_INET_SOCK_CREATE"),
        ),
        (
            "cgroup/post_bind4",
            CgroupSock,
            HookType("BPF_CGROUP_INET4_POST_BIND"),
        ),
        (
            "cgroup/post_bind6",
            CgroupSock,
            HookType("BPF_CGROUP_INET6_POST_BIND"),
        ),
        (
            "cgroup/bind4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET4_BIND"),
        ),
        (
            "cgroup/bind6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET6_BIND"),
        ),
        (
            "cgroup/connect4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET4_CONNECT"),
        ),
        (
            "cgroup/connect6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET6_CONNECT"),
        ),
        (
            "cgroup/connect_unix",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UNIX_CONNECT"),
        ),
        (
            "cgroup/sendmsg4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UDP4_SENDMSG"),
        ),
        (
            "cgroup/sendmsg6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UDP6_SENDMSG"),
        ),
        (
            "cgroup/sendmsg_unix",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UNIX_SENDMSG"),
        ),
        (
            "cgroup/recvmsg4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UDP4_RECVMSG"),
        ),
        (
            "cgroup/recvmsg6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UDP6_RECVMSG"),
        ),
        (
            "cgroup/recvmsg_unix",
            CgroupSockAddr,
            HookType("BPF_CGROUP_UNIX_RECVMSG"),
        ),
        (
            "cgroup/getpeername4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET4_GETPEERNAME"),
        ),
        (
            "cgroup/getpeername6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET6_GETPEERNAME"),
        ),
        (
            "cgroup/getsockname4",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET4_GETSOCKNAME"),
        ),
        (
            "cgroup/getsockname6",
            CgroupSockAddr,
            HookType("BPF_CGROUP_INET6_GETSOCKNAME"),
        ),
        ("cgroup/sysctl", CgroupSysctl, HookType("BPF_CGROUP_SYSCTL")),
        (
            "cgroup/getsockopt",
            CgroupSockopt,
            HookType("BPF_CGROUP_GETSOCKOPT"),
        ),
        (
            "cgroup/setsockopt",
            CgroupSockopt,
            HookType("BPF_CGROUP_SETSOCKOPT"),
        ),
        ("cgroup/dev", CgroupDevice, HookType("BPF_CGROUP_DEVICE")),
        ("struct_ops.s", StructOps, OpsMember),
        ("struct_ops", StructOps, OpsMember),
        ("sk_lookup", SkLookup, HookType("BPF_SK_LOOKUP")),
        ("netfilter", Netfilter, HookType("BPF_NETFILTER")),
    ]
};

/// Splits `func+0x10` into the name and offset.
fn name_offset(s: &str) -> (String, u64) {
    if let Some((name, off)) = s.rsplit_once('+') {
        let off = off.trim();
        let parsed = match off.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => off.parse().ok(),
        };
        if let Some(v) = parsed {
            return (name.to_string(), v);
        }
    }
    (s.to_string(), 0)
}

/// The program type and attach point a section name stands for. Unknown sections give
/// `Unspec` (libbpf would refuse to load them; the runtime decides).
pub fn classify(section: &str) -> (ProgramType, AttachPoint) {
    for &(prefix, ty, arg) in SECTIONS {
        let rest = if section == prefix {
            ""
        } else if let Some(r) = section
            .strip_prefix(prefix)
            .and_then(|r| r.strip_prefix('/'))
        {
            r
        } else {
            continue;
        };
        let attach = match arg {
            Arg::NoTarget => AttachPoint::Manual,
            Arg::TpCatName => match rest.split_once('/') {
                Some((cat, name)) => AttachPoint::Tracepoint {
                    category: cat.to_string(),
                    name: name.to_string(),
                },
                None => AttachPoint::Manual,
            },
            Arg::RawName if rest.is_empty() => AttachPoint::Manual,
            Arg::RawName => AttachPoint::RawTracepoint {
                name: rest.to_string(),
            },
            Arg::KFunc(_) | Arg::KSys(_) if rest.is_empty() => AttachPoint::Manual,
            Arg::KFunc(retprobe) => {
                let (function, offset) = name_offset(rest);
                AttachPoint::Kprobe {
                    function,
                    offset,
                    retprobe,
                }
            }
            Arg::KSys(retprobe) => AttachPoint::Kprobe {
                function: format!("__x64_sys_{rest}"),
                offset: 0,
                retprobe,
            },
            Arg::UFunc(retprobe) => {
                // `uprobe/PATH:FUNC[+OFF]`; the path itself may contain slashes.
                let (binary, func) = rest.rsplit_once(':').unwrap_or((rest, ""));
                let (function, offset) = name_offset(func);
                AttachPoint::Uprobe {
                    binary: binary.to_string(),
                    function,
                    offset,
                    retprobe,
                }
            }
            Arg::BtfTarget(attach_type) => AttachPoint::Btf {
                attach_type: attach_type.to_string(),
                target: rest.to_string(),
            },
            Arg::LsmHook => AttachPoint::Lsm {
                hook: rest.to_string(),
            },
            Arg::HookType(attach_type) => AttachPoint::Hook {
                attach_type: attach_type.to_string(),
            },
            Arg::OpsMember => AttachPoint::StructOps {
                member: rest.to_string(),
            },
        };
        return (ty, attach);
    }
    (ProgramType::Unspec, AttachPoint::Manual)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_libbpf_sections() {
        let tp = classify("tp/sched/sched_process_exec");
        assert_eq!(tp.0, ProgramType::Tracepoint);
        assert_eq!(
            tp.1,
            AttachPoint::Tracepoint {
                category: "sched".into(),
                name: "sched_process_exec".into()
            }
        );
        assert_eq!(
            classify("tracepoint/syscalls/sys_enter_openat").0,
            ProgramType::Tracepoint
        );
        assert_eq!(
            classify("raw_tp/sched_switch").1,
            AttachPoint::RawTracepoint {
                name: "sched_switch".into()
            }
        );
        assert_eq!(classify("raw_tracepoint/x").0, ProgramType::RawTracepoint);
        assert_eq!(
            classify("kretprobe/do_unlinkat").1,
            AttachPoint::Kprobe {
                function: "do_unlinkat".into(),
                offset: 0,
                retprobe: true
            }
        );
        assert_eq!(
            classify("kprobe/foo+0x10").1,
            AttachPoint::Kprobe {
                function: "foo".into(),
                offset: 16,
                retprobe: false
            }
        );
        assert_eq!(
            classify("uprobe//bin/bash:readline").1,
            AttachPoint::Uprobe {
                binary: "/bin/bash".into(),
                function: "readline".into(),
                offset: 0,
                retprobe: false
            }
        );
        assert_eq!(classify("uretprobe/x:y").0, ProgramType::Kprobe);
        let fentry = classify("fentry/do_unlinkat");
        assert_eq!(fentry.0, ProgramType::Tracing);
        assert_eq!(fentry.1.to_string(), "BPF_TRACE_FENTRY do_unlinkat");
        assert_eq!(classify("fexit/x").0, ProgramType::Tracing);
        assert_eq!(classify("lsm/bprm_check_security").0, ProgramType::Lsm);
        assert_eq!(classify("xdp").0, ProgramType::Xdp);
        assert_eq!(classify("xdp.frags").0, ProgramType::Xdp);
        assert_eq!(classify("tc").0, ProgramType::SchedCls);
        assert_eq!(classify("classifier").0, ProgramType::SchedCls);
        assert_eq!(classify("socket").0, ProgramType::SocketFilter);
        assert_eq!(
            classify("cgroup_skb/ingress"),
            (
                ProgramType::CgroupSkb,
                AttachPoint::Hook {
                    attach_type: "BPF_CGROUP_INET_INGRESS".into()
                }
            )
        );
        assert_eq!(classify("perf_event").0, ProgramType::PerfEvent);
        assert_eq!(classify("syscall").0, ProgramType::Syscall);
        assert_eq!(
            classify("struct_ops/init"),
            (
                ProgramType::StructOps,
                AttachPoint::StructOps {
                    member: "init".into()
                }
            )
        );
        assert_eq!(classify("ksyscall/openat").0, ProgramType::Kprobe);
        // A prefix must end at a `/`: "tpx" is not "tp".
        assert_eq!(classify("tpx/a/b").0, ProgramType::Unspec);
        assert_eq!(classify("weird").0, ProgramType::Unspec);
    }
}
