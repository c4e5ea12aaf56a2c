//! Context layouts: which offsets and sizes of `*ctx` a program type may read or write, and
//! what a read gives (a scalar, or a packet pointer for `data`/`data_end`/`data_meta`).

/// Kernel program type numbers (`BPF_PROG_TYPE_*`) the verifier treats specially.
pub mod prog_type {
    pub const SOCKET_FILTER: u32 = 1;
    pub const KPROBE: u32 = 2;
    pub const SCHED_CLS: u32 = 3;
    pub const SCHED_ACT: u32 = 4;
    pub const TRACEPOINT: u32 = 5;
    pub const XDP: u32 = 6;
    pub const PERF_EVENT: u32 = 7;
    pub const CGROUP_SKB: u32 = 8;
    pub const CGROUP_SOCK: u32 = 9;
    pub const LWT_IN: u32 = 10;
    pub const LWT_OUT: u32 = 11;
    pub const LWT_XMIT: u32 = 12;
    pub const SK_SKB: u32 = 14;
    pub const CGROUP_DEVICE: u32 = 15;
    pub const RAW_TRACEPOINT: u32 = 17;
    pub const CGROUP_SOCK_ADDR: u32 = 18;
    pub const LWT_SEG6LOCAL: u32 = 19;
    pub const CGROUP_SYSCTL: u32 = 23;
    pub const RAW_TRACEPOINT_WRITABLE: u32 = 24;
    pub const CGROUP_SOCKOPT: u32 = 25;
    pub const TRACING: u32 = 26;
    pub const STRUCT_OPS: u32 = 27;
    pub const EXT: u32 = 28;
    pub const LSM: u32 = 29;
    pub const SK_LOOKUP: u32 = 30;
    pub const SYSCALL: u32 = 31;
    pub const NETFILTER: u32 = 32;
}

use prog_type::*;

/// What a context field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CtxField {
    /// A plain number.
    Scalar,
    /// The packet's first byte (`xdp_md.data`, `__sk_buff.data`).
    PacketData,
    /// One past the packet's last byte (`data_end`).
    PacketEnd,
    /// The packet's metadata (`data_meta`).
    PacketMeta,
    /// A kernel object (tracing arguments): loads give untyped kernel pointers or numbers.
    BtfId,
}

/// `struct __sk_buff` offsets.
mod skb {
    pub const SIZE: i64 = 192;
    pub const CB: i64 = 48;
    pub const CB_END: i64 = 68;
    pub const TC_CLASSID: i64 = 72;
    pub const DATA: i64 = 76;
    pub const DATA_END: i64 = 80;
    pub const FAMILY: i64 = 88;
    pub const LOCAL_PORT_END: i64 = 140;
    pub const REMOTE_IP4: i64 = 92;
    pub const LOCAL_IP6_END: i64 = 132;
    pub const DATA_META: i64 = 140;
    pub const FLOW_KEYS: i64 = 144;
    pub const TSTAMP: i64 = 152;
    pub const WIRE_LEN: i64 = 160;
    pub const SK: i64 = 168;
    pub const TSTAMP_TYPE: i64 = 180;
    pub const HWTSTAMP: i64 = 184;
    pub const MARK: i64 = 8;
    pub const QUEUE_MAPPING: i64 = 12;
    pub const PRIORITY: i64 = 32;
    pub const TC_INDEX: i64 = 44;
}

fn in_range(off: i64, start: i64, end: i64) -> bool {
    off >= start && off < end
}

/// Whether a read of `size` bytes at `off` stays inside one `field_size`-byte field and is
/// aligned (the kernel's `bpf_ctx_narrow_access_ok`).
fn narrow_ok(off: i64, size: i64, field_size: i64) -> bool {
    size <= field_size && (off % field_size) + size <= field_size
}

fn skb_access(ptype: u32, off: i64, size: i64, write: bool) -> Option<CtxField> {
    if !(0..skb::SIZE).contains(&off) || off % size != 0 {
        return None;
    }
    let tc = matches!(ptype, SCHED_CLS | SCHED_ACT);
    let direct = tc
        || matches!(
            ptype,
            CGROUP_SKB | SK_SKB | LWT_IN | LWT_OUT | LWT_XMIT | LWT_SEG6LOCAL
        );
    // Fields this program type may not touch at all.
    let denied = match ptype {
        SOCKET_FILTER => {
            in_range(off, skb::TC_CLASSID, skb::TC_CLASSID + 4)
                || in_range(off, skb::DATA, skb::DATA_END + 4)
                || in_range(off, skb::FAMILY, skb::LOCAL_PORT_END)
                || in_range(off, skb::DATA_META, skb::DATA_META + 4)
                || in_range(off, skb::TSTAMP, skb::TSTAMP + 8)
                || in_range(off, skb::WIRE_LEN, skb::WIRE_LEN + 4)
                || in_range(off, skb::HWTSTAMP, skb::HWTSTAMP + 8)
        }
        _ => {
            (!tc && in_range(off, skb::TC_CLASSID, skb::TC_CLASSID + 4))
                || (!direct && in_range(off, skb::DATA, skb::DATA_END + 4))
                || (!tc && in_range(off, skb::DATA_META, skb::DATA_META + 4))
        }
    };
    if denied {
        return None;
    }
    if write {
        let ok = in_range(off, skb::CB, skb::CB_END)
            || (tc
                && [
                    skb::MARK,
                    skb::TC_INDEX,
                    skb::PRIORITY,
                    skb::TC_CLASSID,
                    skb::QUEUE_MAPPING,
                ]
                .contains(&off))
            || (ptype != SOCKET_FILTER && off == skb::MARK);
        if in_range(off, skb::TSTAMP, skb::TSTAMP + 8) {
            return (tc && size == 8).then_some(CtxField::Scalar);
        }
        return (ok && (size == 4 || in_range(off, skb::CB, skb::CB_END)))
            .then_some(CtxField::Scalar);
    }
    if in_range(off, skb::CB, skb::CB_END) {
        return (off + size <= skb::CB_END).then_some(CtxField::Scalar);
    }
    let default_size = |ok: bool| ok.then_some(CtxField::Scalar);
    match off {
        skb::DATA => (size == 4).then_some(CtxField::PacketData),
        skb::DATA_END => (size == 4).then_some(CtxField::PacketEnd),
        skb::DATA_META => (size == 4).then_some(CtxField::PacketMeta),
        o if in_range(o, skb::REMOTE_IP4, skb::LOCAL_IP6_END) => default_size(size == 4),
        o if in_range(o, skb::FLOW_KEYS, skb::FLOW_KEYS + 8) => None,
        o if in_range(o, skb::HWTSTAMP, skb::HWTSTAMP + 8) => default_size(size == 8),
        o if in_range(o, skb::TSTAMP, skb::TSTAMP + 8) => default_size(size == 8),
        skb::SK => (size == 8).then_some(CtxField::BtfId),
        o if in_range(o, skb::SK, skb::SK + 8) => None,
        o if in_range(o, skb::TSTAMP_TYPE, skb::HWTSTAMP) => None,
        _ => default_size(narrow_ok(off, size, 4)),
    }
}

fn xdp_access(off: i64, size: i64, write: bool) -> Option<CtxField> {
    // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
    // egress_ifindex (only for devmap programs).
    if write || !(0..20).contains(&off) || off % size != 0 || size != 4 {
        return None;
    }
    Some(match off {
        0 => CtxField::PacketData,
        4 => CtxField::PacketEnd,
        8 => CtxField::PacketMeta,
        _ => CtxField::Scalar,
    })
}

/// Size of `struct pt_regs` on x86_64.
pub const PT_REGS_SIZE: i64 = 168;
/// The kernel's bound on tracepoint records (`PERF_MAX_TRACE_SIZE`).
pub const TRACEPOINT_MAX: i64 = 2048;

/// Checks one context access; `None` is the kernel's "invalid bpf_context access".
pub fn access(ptype: u32, off: i64, size: i64, write: bool) -> Option<CtxField> {
    if off < 0 || size <= 0 {
        return None;
    }
    let read_only = |limit: i64, min: i64| {
        (!write && off >= min && off + size <= limit && off % size == 0).then_some(CtxField::Scalar)
    };
    match ptype {
        SOCKET_FILTER | SCHED_CLS | SCHED_ACT | CGROUP_SKB | LWT_IN | LWT_OUT | LWT_XMIT
        | LWT_SEG6LOCAL | SK_SKB => skb_access(ptype, off, size, write),
        XDP => xdp_access(off, size, write),
        KPROBE => read_only(PT_REGS_SIZE, 0),
        // The first 8 bytes are the common tracepoint fields, not readable.
        TRACEPOINT => read_only(TRACEPOINT_MAX, 8),
        PERF_EVENT => read_only(PT_REGS_SIZE + 16, 0),
        RAW_TRACEPOINT | RAW_TRACEPOINT_WRITABLE => read_only(8 * 12, 0),
        TRACING | LSM | STRUCT_OPS | EXT => {
            (!write && off + size <= 8 * 12 && off % size == 0).then_some(CtxField::BtfId)
        }
        SYSCALL => (off + size <= u16::MAX as i64).then_some(CtxField::Scalar),
        // Other types: a generous read-only bound.
        _ => read_only(4096, 0),
    }
}

/// Whether `LD_ABS`/`LD_IND` are allowed (`may_access_skb`).
pub fn may_access_skb(ptype: u32) -> bool {
    matches!(ptype, SOCKET_FILTER | SCHED_CLS | SCHED_ACT)
}

/// Whether direct packet writes are allowed.
pub fn packet_writable(ptype: u32) -> bool {
    matches!(
        ptype,
        SCHED_CLS | SCHED_ACT | XDP | LWT_XMIT | SK_SKB | LWT_SEG6LOCAL
    )
}

/// The range R0 must be in at program exit, if the program type restricts it.
pub fn return_range(ptype: u32) -> Option<(i64, i64)> {
    match ptype {
        CGROUP_SKB | CGROUP_SOCK | CGROUP_DEVICE | CGROUP_SOCK_ADDR | CGROUP_SYSCTL
        | CGROUP_SOCKOPT | SK_LOOKUP | NETFILTER => Some((0, 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        assert_eq!(access(XDP, 0, 4, false), Some(CtxField::PacketData));
        assert_eq!(access(XDP, 4, 4, false), Some(CtxField::PacketEnd));
        assert_eq!(access(XDP, 0, 8, false), None);
        assert_eq!(access(XDP, 0, 4, true), None);
        assert_eq!(access(SCHED_CLS, 76, 4, false), Some(CtxField::PacketData));
        assert_eq!(access(SOCKET_FILTER, 76, 4, false), None);
        assert_eq!(access(SOCKET_FILTER, 0, 4, false), Some(CtxField::Scalar));
        assert_eq!(access(SOCKET_FILTER, 0, 2, false), Some(CtxField::Scalar));
        assert_eq!(access(SOCKET_FILTER, 48, 4, true), Some(CtxField::Scalar));
        assert_eq!(access(SOCKET_FILTER, 0, 4, true), None);
        assert_eq!(access(KPROBE, 160, 8, false), Some(CtxField::Scalar));
        assert_eq!(access(KPROBE, 168, 8, false), None);
        assert_eq!(access(TRACEPOINT, 0, 8, false), None);
        assert_eq!(access(TRACEPOINT, 16, 8, false), Some(CtxField::Scalar));
    }
}
