//! Helper prototypes: which argument kinds each common helper takes, what it returns, and
//! which program types may call it.

/// What a helper argument must be (the kernel's `enum bpf_arg_type`, simplified).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg {
    /// Not an argument: not read.
    None,
    /// Any initialised value.
    Anything,
    /// A map from `lddw` (`CONST_PTR_TO_MAP`).
    MapPtr,
    /// Memory holding a key of the map given in the first argument.
    MapKey,
    /// Memory holding a value of that map.
    MapValue,
    /// The program's context, unmodified.
    Ctx,
    /// Readable memory whose size is the next argument.
    Mem,
    /// Writable memory (may be uninitialised) whose size is the next argument.
    MemUninit,
    /// The size of the previous argument's memory; `true`: zero allowed.
    Size(bool),
    /// A constant allocation size (`bpf_ringbuf_reserve`).
    AllocSize,
    /// A ring buffer record to release.
    RingbufRelease,
    /// A callback function (`lddw` src 4).
    Func,
}

/// What a helper returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ret {
    Scalar,
    /// A number below 2^32 (e.g. `bpf_get_smp_processor_id`).
    U32,
    MapValueOrNull,
    RingbufMemOrNull,
    BtfId,
}

/// Callback helpers: how the callback's arguments are set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Callback {
    /// `bpf_loop(n, cb, ctx, flags)`: `cb(u64 index, void *ctx)`.
    Loop,
    /// `bpf_for_each_map_elem(map, cb, ctx, flags)`: `cb(map, key, value, ctx)`.
    ForEachMapElem,
    /// Other callback helpers: scalar arguments.
    Other,
}

#[derive(Clone, Copy, Debug)]
pub struct Proto {
    pub args: [Arg; 5],
    pub ret: Ret,
    /// Map types the map argument must have (empty: any map type not reserved to others).
    pub map_types: &'static [u32],
    pub callback: Option<Callback>,
}

const fn p(args: [Arg; 5], ret: Ret) -> Proto {
    Proto {
        args,
        ret,
        map_types: &[],
        callback: Option::None,
    }
}

const fn pm(args: [Arg; 5], ret: Ret, map_types: &'static [u32]) -> Proto {
    Proto {
        args,
        ret,
        map_types,
        callback: Option::None,
    }
}

use Arg::*;

const RINGBUF: u32 = 27;
const PERF_EVENT_ARRAY: u32 = 4;
const PROG_ARRAY: u32 = 3;
const STACK_TRACE: u32 = 7;
const ARRAY_OF_MAPS: u32 = 12;
const HASH_OF_MAPS: u32 = 13;

/// Helpers that a map type is reserved to (map type, helper ids).
const RESERVED: &[(u32, &[u32])] = &[
    (RINGBUF, &[130, 131, 134, 198, 209]),
    (PERF_EVENT_ARRAY, &[22, 25, 55, 111, 121]),
    (PROG_ARRAY, &[12]),
    (STACK_TRACE, &[27]),
    // Programs only look maps of maps up.
    (ARRAY_OF_MAPS, &[1]),
    (HASH_OF_MAPS, &[1]),
];

/// Whether `map_type` may be passed to helper `id` (the kernel's
/// `check_map_func_compatibility`, for the common map types).
pub fn map_compatible(map_type: u32, id: u32, proto: &Proto) -> bool {
    if !proto.map_types.is_empty() && !proto.map_types.contains(&map_type) {
        return false;
    }
    match RESERVED.iter().find(|(t, _)| *t == map_type) {
        Some((_, ids)) => ids.contains(&id),
        Option::None => true,
    }
}

/// The prototype of helper `id`; helpers not described here take unchecked arguments
/// (only initialised, see [`arg_count`]) and return a scalar.
pub fn proto(id: u32) -> Option<Proto> {
    let none = [None; 5];
    Some(match id {
        1 => p([MapPtr, MapKey, None, None, None], Ret::MapValueOrNull),
        2 => p([MapPtr, MapKey, MapValue, Anything, None], Ret::Scalar),
        3 => p([MapPtr, MapKey, None, None, None], Ret::Scalar),
        4 | 45 | 112..=115 => p([MemUninit, Size(true), Anything, None, None], Ret::Scalar),
        5 | 7 | 14 | 15 | 35 | 80 | 125 | 160 | 190 => p(none, Ret::Scalar),
        6 => p([Mem, Size(false), None, None, None], Ret::Scalar),
        12 => pm(
            [Ctx, MapPtr, Anything, None, None],
            Ret::Scalar,
            &[PROG_ARRAY],
        ),
        16 => p([MemUninit, Size(false), None, None, None], Ret::Scalar),
        25 => pm(
            [Ctx, MapPtr, Anything, Mem, Size(true)],
            Ret::Scalar,
            &[PERF_EVENT_ARRAY],
        ),
        26 => p([Ctx, Anything, MemUninit, Size(false), None], Ret::Scalar),
        27 => pm(
            [Ctx, MapPtr, Anything, None, None],
            Ret::Scalar,
            &[STACK_TRACE],
        ),
        130 => pm(
            [MapPtr, Mem, Size(true), Anything, None],
            Ret::Scalar,
            &[RINGBUF],
        ),
        131 => pm(
            [MapPtr, AllocSize, Anything, None, None],
            Ret::RingbufMemOrNull,
            &[RINGBUF],
        ),
        132 | 133 => p([RingbufRelease, Anything, None, None, None], Ret::Scalar),
        134 => pm(
            [MapPtr, Anything, None, None, None],
            Ret::Scalar,
            &[RINGBUF],
        ),
        158 => p(none, Ret::BtfId),
        // bpf_per_cpu_ptr / bpf_this_cpu_ptr of a kernel variable.
        153 | 154 => p(none, Ret::BtfId),
        8 => p(none, Ret::U32),
        164 => Proto {
            args: [MapPtr, Func, Anything, Anything, None],
            ret: Ret::Scalar,
            map_types: &[],
            callback: Some(Callback::ForEachMapElem),
        },
        181 => Proto {
            args: [Anything, Func, Anything, Anything, None],
            ret: Ret::Scalar,
            map_types: &[],
            callback: Some(Callback::Loop),
        },
        _ => return Option::None,
    })
}

/// Number of argument registers a helper reads (for liveness); 5 when unknown.
pub fn arg_count(id: u32) -> usize {
    match proto(id) {
        Some(p) => p.args.iter().take_while(|a| **a != None).count(),
        Option::None => 5,
    }
}

/// The kernel's name of helper `id` (e.g. `bpf_map_lookup_elem`), if it has one.
pub fn name(id: u32) -> Option<&'static str> {
    HELPER_NAMES.get(id as usize).copied().filter(|_| id != 0)
}

/// Whether helper `id` exists in the reference kernel.
pub fn exists(id: u32) -> bool {
    id != 0 && (id as usize) < HELPER_NAMES.len()
}

/// Whether programs of kernel type `prog_type` may call helper `id` (as root). Program
/// types the table does not know may call every helper.
pub fn allowed(prog_type: u32, id: u32) -> bool {
    let Some(row) = ALLOWED.get(prog_type as usize) else {
        return true;
    };
    if row.iter().all(|w| *w == 0) {
        return true;
    }
    let id = id as usize;
    id < 256 && row[id / 64] & (1 << (id % 64)) != 0
}

/// Kernel helper names by id (`bpf_` prefix included), as the 6.18 kernel prints them.
pub const HELPER_NAMES: [&str; 212] = [
    "bpf_unspec",
    "bpf_map_lookup_elem",
    "bpf_map_update_elem",
    "bpf_map_delete_elem",
    "bpf_probe_read",
    "bpf_ktime_get_ns",
    "bpf_trace_printk",
    "bpf_get_prandom_u32",
    "bpf_get_smp_processor_id",
    "bpf_skb_store_bytes",
    "bpf_l3_csum_replace",
    "bpf_l4_csum_replace",
    "bpf_tail_call",
    "bpf_clone_redirect",
    "bpf_get_current_pid_tgid",
    "bpf_get_current_uid_gid",
    "bpf_get_current_comm",
    "bpf_get_cgroup_classid",
    "bpf_skb_vlan_push",
    "bpf_skb_vlan_pop",
    "bpf_skb_get_tunnel_key",
    "bpf_skb_set_tunnel_key",
    "bpf_perf_event_read",
    "bpf_redirect",
    "bpf_get_route_realm",
    "bpf_perf_event_output",
    "bpf_skb_load_bytes",
    "bpf_get_stackid",
    "bpf_csum_diff",
    "bpf_skb_get_tunnel_opt",
    "bpf_skb_set_tunnel_opt",
    "bpf_skb_change_proto",
    "bpf_skb_change_type",
    "bpf_skb_under_cgroup",
    "bpf_get_hash_recalc",
    "bpf_get_current_task",
    "bpf_probe_write_user",
    "bpf_current_task_under_cgroup",
    "bpf_skb_change_tail",
    "bpf_skb_pull_data",
    "bpf_csum_update",
    "bpf_set_hash_invalid",
    "bpf_get_numa_node_id",
    "bpf_skb_change_head",
    "bpf_xdp_adjust_head",
    "bpf_probe_read_str",
    "bpf_get_socket_cookie",
    "bpf_get_socket_uid",
    "bpf_set_hash",
    "bpf_setsockopt",
    "bpf_skb_adjust_room",
    "bpf_redirect_map",
    "bpf_sk_redirect_map",
    "bpf_sock_map_update",
    "bpf_xdp_adjust_meta",
    "bpf_perf_event_read_value",
    "bpf_perf_prog_read_value",
    "bpf_getsockopt",
    "bpf_override_return",
    "bpf_sock_ops_cb_flags_set",
    "bpf_msg_redirect_map",
    "bpf_msg_apply_bytes",
    "bpf_msg_cork_bytes",
    "bpf_msg_pull_data",
    "bpf_bind",
    "bpf_xdp_adjust_tail",
    "bpf_skb_get_xfrm_state",
    "bpf_get_stack",
    "bpf_skb_load_bytes_relative",
    "bpf_fib_lookup",
    "bpf_sock_hash_update",
    "bpf_msg_redirect_hash",
    "bpf_sk_redirect_hash",
    "bpf_lwt_push_encap",
    "bpf_lwt_seg6_store_bytes",
    "bpf_lwt_seg6_adjust_srh",
    "bpf_lwt_seg6_action",
    "bpf_rc_repeat",
    "bpf_rc_keydown",
    "bpf_skb_cgroup_id",
    "bpf_get_current_cgroup_id",
    "bpf_get_local_storage",
    "bpf_sk_select_reuseport",
    "bpf_skb_ancestor_cgroup_id",
    "bpf_sk_lookup_tcp",
    "bpf_sk_lookup_udp",
    "bpf_sk_release",
    "bpf_map_push_elem",
    "bpf_map_pop_elem",
    "bpf_map_peek_elem",
    "bpf_msg_push_data",
    "bpf_msg_pop_data",
    "bpf_rc_pointer_rel",
    "bpf_spin_lock",
    "bpf_spin_unlock",
    "bpf_sk_fullsock",
    "bpf_tcp_sock",
    "bpf_skb_ecn_set_ce",
    "bpf_get_listener_sock",
    "bpf_skc_lookup_tcp",
    "bpf_tcp_check_syncookie",
    "bpf_sysctl_get_name",
    "bpf_sysctl_get_current_value",
    "bpf_sysctl_get_new_value",
    "bpf_sysctl_set_new_value",
    "bpf_strtol",
    "bpf_strtoul",
    "bpf_sk_storage_get",
    "bpf_sk_storage_delete",
    "bpf_send_signal",
    "bpf_tcp_gen_syncookie",
    "bpf_skb_output",
    "bpf_probe_read_user",
    "bpf_probe_read_kernel",
    "bpf_probe_read_user_str",
    "bpf_probe_read_kernel_str",
    "bpf_tcp_send_ack",
    "bpf_send_signal_thread",
    "bpf_jiffies64",
    "bpf_read_branch_records",
    "bpf_get_ns_current_pid_tgid",
    "bpf_xdp_output",
    "bpf_get_netns_cookie",
    "bpf_get_current_ancestor_cgroup_id",
    "bpf_sk_assign",
    "bpf_ktime_get_boot_ns",
    "bpf_seq_printf",
    "bpf_seq_write",
    "bpf_sk_cgroup_id",
    "bpf_sk_ancestor_cgroup_id",
    "bpf_ringbuf_output",
    "bpf_ringbuf_reserve",
    "bpf_ringbuf_submit",
    "bpf_ringbuf_discard",
    "bpf_ringbuf_query",
    "bpf_csum_level",
    "bpf_skc_to_tcp6_sock",
    "bpf_skc_to_tcp_sock",
    "bpf_skc_to_tcp_timewait_sock",
    "bpf_skc_to_tcp_request_sock",
    "bpf_skc_to_udp6_sock",
    "bpf_get_task_stack",
    "bpf_load_hdr_opt",
    "bpf_store_hdr_opt",
    "bpf_reserve_hdr_opt",
    "bpf_inode_storage_get",
    "bpf_inode_storage_delete",
    "bpf_d_path",
    "bpf_copy_from_user",
    "bpf_snprintf_btf",
    "bpf_seq_printf_btf",
    "bpf_skb_cgroup_classid",
    "bpf_redirect_neigh",
    "bpf_per_cpu_ptr",
    "bpf_this_cpu_ptr",
    "bpf_redirect_peer",
    "bpf_task_storage_get",
    "bpf_task_storage_delete",
    "bpf_get_current_task_btf",
    "bpf_bprm_opts_set",
    "bpf_ktime_get_coarse_ns",
    "bpf_ima_inode_hash",
    "bpf_sock_from_file",
    "bpf_check_mtu",
    "bpf_for_each_map_elem",
    "bpf_snprintf",
    "bpf_sys_bpf",
    "bpf_btf_find_by_name_kind",
    "bpf_sys_close",
    "bpf_timer_init",
    "bpf_timer_set_callback",
    "bpf_timer_start",
    "bpf_timer_cancel",
    "bpf_get_func_ip",
    "bpf_get_attach_cookie",
    "bpf_task_pt_regs",
    "bpf_get_branch_snapshot",
    "bpf_trace_vprintk",
    "bpf_skc_to_unix_sock",
    "bpf_kallsyms_lookup_name",
    "bpf_find_vma",
    "bpf_loop",
    "bpf_strncmp",
    "bpf_get_func_arg",
    "bpf_get_func_ret",
    "bpf_get_func_arg_cnt",
    "bpf_get_retval",
    "bpf_set_retval",
    "bpf_xdp_get_buff_len",
    "bpf_xdp_load_bytes",
    "bpf_xdp_store_bytes",
    "bpf_copy_from_user_task",
    "bpf_skb_set_tstamp",
    "bpf_ima_file_hash",
    "bpf_kptr_xchg",
    "bpf_map_lookup_percpu_elem",
    "bpf_skc_to_mptcp_sock",
    "bpf_dynptr_from_mem",
    "bpf_ringbuf_reserve_dynptr",
    "bpf_ringbuf_submit_dynptr",
    "bpf_ringbuf_discard_dynptr",
    "bpf_dynptr_read",
    "bpf_dynptr_write",
    "bpf_dynptr_data",
    "bpf_tcp_raw_gen_syncookie_ipv4",
    "bpf_tcp_raw_gen_syncookie_ipv6",
    "bpf_tcp_raw_check_syncookie_ipv4",
    "bpf_tcp_raw_check_syncookie_ipv6",
    "bpf_ktime_get_tai_ns",
    "bpf_user_ringbuf_drain",
    "bpf_cgrp_storage_get",
    "bpf_cgrp_storage_delete",
];

/// For each `BPF_PROG_TYPE_*` number (index), a bit set over helper ids of the helpers
/// that program type may call, probed from a 6.18 kernel loading `call N` as root.
/// Tracing, struct_ops, ext and lsm (which need BTF attach targets to probe) get the
/// union of the kprobe, tracepoint, perf_event and raw_tracepoint sets.
pub const ALLOWED: [[u64; 4]; 33] = [
    [
        0x0000000000000000,
        0x0000000000000000,
        0x0000000000000000,
        0x0000000000000000,
    ],
    [
        0x0080c4280643d1ee,
        0x2d6f260063810010,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008024280a43d1fe,
        0x296f260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x0085cfeff7ffffee,
        0x3d6f7e1fe3f98034,
        0x80779e397fb03ffc,
        0x00000000000ffffd,
    ],
    [
        0x0085cfeff7ffffee,
        0x3d6f7e1fe3f98034,
        0x80779e397fb03ffc,
        0x00000000000ffffd,
    ],
    [
        0x008024280a43d1fe,
        0x296f260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x00c8142812c3d1ee,
        0x296f661863f10022,
        0xf0779e3976303f7c,
        0x00000000000ffffc,
    ],
    [
        0x018024280a43d1fe,
        0x29ef260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x0080c4280643d1ee,
        0x2d6f3e0fe3fb8010,
        0x80779e3176303f7f,
        0x00000000000f0ffc,
    ],
    [
        0x008044280243d1ee,
        0x2d6f2e0063830000,
        0x8c739e317630207c,
        0x00000000000f0fec,
    ],
    [
        0x008004ae1743d1ee,
        0x296f260063810200,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008004ae1743d1ee,
        0x296f260063810000,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x00800fee77f3ffee,
        0x296f260063810200,
        0x80779e3176303ffc,
        0x00000000000f0ffc,
    ],
    [
        0x0aa244280243d1ee,
        0x2d6f3e0163830040,
        0x80779e317631ff7c,
        0x00000000000f0ffc,
    ],
    [
        0x0094cce80643d3ee,
        0x296f260863f10100,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008004280243d1ee,
        0x296f260063830000,
        0x80739e307630207c,
        0x00000000000f0fec,
    ],
    [
        0xf08004280243d1ee,
        0x2d6f3e006f810080,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008024280a43d1fe,
        0x296f260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x028244280243d1ee,
        0x2d6f3e0863f30001,
        0x8c779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008004ae1743d1ee,
        0x296f260063811c00,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008024280a43d1fe,
        0x296f260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x008044280443d1ee,
        0x296f260063850010,
        0x80739e317630207c,
        0x00000000000f0fec,
    ],
    [
        0x008004280443d1ee,
        0x296f260063810000,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0x008004280243d1ee,
        0x296f27e063830000,
        0x80739e317630207c,
        0x00000000000f0fec,
    ],
    [
        0x008024280a43d1fe,
        0x296f260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x008004280243d1ee,
        0x2d6f3e0163830000,
        0x8c739e307630207c,
        0x00000000000f0fec,
    ],
    [
        0x018024280a43d1fe,
        0x29ef260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x018024280a43d1fe,
        0x29ef260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x018024280a43d1fe,
        0x29ef260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x018024280a43d1fe,
        0x29ef260063810008,
        0x8073fe307630207c,
        0x00000000000f0fec,
    ],
    [
        0x008004280243d1ee,
        0x396f260063c10000,
        0x80779e3176303f7c,
        0x00000000000f0ffc,
    ],
    [
        0xfffffffffffffffe,
        0xffffffffffffffff,
        0xffffffffffffffff,
        0x00000000000fffff,
    ],
    [
        0x008004280043d1ee,
        0x296f260063810000,
        0x80739e307630207c,
        0x00000000000f0fec,
    ],
];
