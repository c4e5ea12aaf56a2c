//! The helpers of the simulated kernel, by the kernel's helper ids.
//!
//! Each follows the kernel's documented behaviour (include/uapi/linux/bpf.h) for return
//! values and errors; values come from the [`Kernel`] (the event and the configuration).

use super::printk::{self, ArgMemory};
use super::{errno, neg, Effect, Kernel};
use crate::buffer::HostBuffer;
use crate::helpers::{CallList, Callbacks, HelperError, Helpers, TailCallTarget};
use crate::maps::map_type;
use crate::memory::Memory;

type R = Result<u64, HelperError>;

/// Helper ids (enum bpf_func_id).
pub mod id {
    pub const MAP_LOOKUP_ELEM: u32 = 1;
    pub const MAP_UPDATE_ELEM: u32 = 2;
    pub const MAP_DELETE_ELEM: u32 = 3;
    pub const PROBE_READ: u32 = 4;
    pub const KTIME_GET_NS: u32 = 5;
    pub const TRACE_PRINTK: u32 = 6;
    pub const GET_PRANDOM_U32: u32 = 7;
    pub const GET_SMP_PROCESSOR_ID: u32 = 8;
    pub const SKB_STORE_BYTES: u32 = 9;
    pub const TAIL_CALL: u32 = 12;
    pub const GET_CURRENT_PID_TGID: u32 = 14;
    pub const GET_CURRENT_UID_GID: u32 = 15;
    pub const GET_CURRENT_COMM: u32 = 16;
    pub const REDIRECT: u32 = 23;
    pub const PERF_EVENT_OUTPUT: u32 = 25;
    pub const SKB_LOAD_BYTES: u32 = 26;
    pub const GET_STACKID: u32 = 27;
    pub const CSUM_DIFF: u32 = 28;
    pub const GET_CURRENT_TASK: u32 = 35;
    pub const CURRENT_TASK_UNDER_CGROUP: u32 = 37;
    pub const XDP_ADJUST_HEAD: u32 = 44;
    pub const PROBE_READ_STR: u32 = 45;
    pub const OVERRIDE_RETURN: u32 = 58;
    pub const XDP_ADJUST_TAIL: u32 = 65;
    pub const GET_STACK: u32 = 67;
    pub const GET_CURRENT_CGROUP_ID: u32 = 80;
    pub const MAP_PUSH_ELEM: u32 = 87;
    pub const MAP_POP_ELEM: u32 = 88;
    pub const MAP_PEEK_ELEM: u32 = 89;
    pub const STRTOL: u32 = 105;
    pub const STRTOUL: u32 = 106;
    pub const SEND_SIGNAL: u32 = 109;
    pub const PROBE_READ_USER: u32 = 112;
    pub const PROBE_READ_KERNEL: u32 = 113;
    pub const PROBE_READ_USER_STR: u32 = 114;
    pub const PROBE_READ_KERNEL_STR: u32 = 115;
    pub const SEND_SIGNAL_THREAD: u32 = 117;
    pub const JIFFIES64: u32 = 118;
    pub const KTIME_GET_BOOT_NS: u32 = 125;
    pub const RINGBUF_OUTPUT: u32 = 130;
    pub const RINGBUF_RESERVE: u32 = 131;
    pub const RINGBUF_SUBMIT: u32 = 132;
    pub const RINGBUF_DISCARD: u32 = 133;
    pub const RINGBUF_QUERY: u32 = 134;
    pub const GET_CURRENT_TASK_BTF: u32 = 158;
    pub const KTIME_GET_COARSE_NS: u32 = 160;
    pub const SNPRINTF: u32 = 165;
    pub const GET_FUNC_IP: u32 = 173;
    pub const GET_ATTACH_COOKIE: u32 = 174;
    pub const TRACE_VPRINTK: u32 = 177;
    pub const XDP_ADJUST_META: u32 = 54;
    pub const FOR_EACH_MAP_ELEM: u32 = 164;
    pub const LOOP: u32 = 181;
    pub const STRNCMP: u32 = 182;
}

/// Every helper the simulated kernel provides.
pub fn kernel_helpers() -> Helpers<Kernel> {
    let mut h = Helpers::new();
    h.register(id::MAP_LOOKUP_ELEM, "bpf_map_lookup_elem", map_lookup_elem)
        .register(id::MAP_UPDATE_ELEM, "bpf_map_update_elem", map_update_elem)
        .register(id::MAP_DELETE_ELEM, "bpf_map_delete_elem", map_delete_elem)
        .register(id::MAP_PUSH_ELEM, "bpf_map_push_elem", map_push_elem)
        .register(id::MAP_POP_ELEM, "bpf_map_pop_elem", map_pop_elem)
        .register(id::MAP_PEEK_ELEM, "bpf_map_peek_elem", map_peek_elem)
        .register(id::PROBE_READ, "bpf_probe_read", probe_read)
        .register(
            id::PROBE_READ_KERNEL,
            "bpf_probe_read_kernel",
            probe_read_kernel,
        )
        .register(id::PROBE_READ_USER, "bpf_probe_read_user", probe_read_user)
        .register(id::PROBE_READ_STR, "bpf_probe_read_str", probe_read_str)
        .register(
            id::PROBE_READ_KERNEL_STR,
            "bpf_probe_read_kernel_str",
            probe_read_kernel_str,
        )
        .register(
            id::PROBE_READ_USER_STR,
            "bpf_probe_read_user_str",
            probe_read_user_str,
        )
        .register(id::KTIME_GET_NS, "bpf_ktime_get_ns", ktime_get_ns)
        .register(
            id::KTIME_GET_BOOT_NS,
            "bpf_ktime_get_boot_ns",
            ktime_get_boot_ns,
        )
        .register(
            id::KTIME_GET_COARSE_NS,
            "bpf_ktime_get_coarse_ns",
            ktime_get_coarse_ns,
        )
        .register(id::JIFFIES64, "bpf_jiffies64", jiffies64)
        .register(id::TRACE_PRINTK, "bpf_trace_printk", trace_printk)
        .register(id::TRACE_VPRINTK, "bpf_trace_vprintk", trace_vprintk)
        .register(id::SNPRINTF, "bpf_snprintf", snprintf)
        .register(id::GET_PRANDOM_U32, "bpf_get_prandom_u32", get_prandom_u32)
        .register(
            id::GET_SMP_PROCESSOR_ID,
            "bpf_get_smp_processor_id",
            get_smp_processor_id,
        )
        .register(
            id::GET_CURRENT_PID_TGID,
            "bpf_get_current_pid_tgid",
            get_current_pid_tgid,
        )
        .register(
            id::GET_CURRENT_UID_GID,
            "bpf_get_current_uid_gid",
            get_current_uid_gid,
        )
        .register(
            id::GET_CURRENT_COMM,
            "bpf_get_current_comm",
            get_current_comm,
        )
        .register(
            id::GET_CURRENT_TASK,
            "bpf_get_current_task",
            get_current_task,
        )
        .register(
            id::GET_CURRENT_TASK_BTF,
            "bpf_get_current_task_btf",
            get_current_task,
        )
        .register(
            id::GET_CURRENT_CGROUP_ID,
            "bpf_get_current_cgroup_id",
            get_current_cgroup_id,
        )
        .register(
            id::CURRENT_TASK_UNDER_CGROUP,
            "bpf_current_task_under_cgroup",
            current_task_under_cgroup,
        )
        .register(id::TAIL_CALL, "bpf_tail_call", tail_call)
        .register(
            id::PERF_EVENT_OUTPUT,
            "bpf_perf_event_output",
            perf_event_output,
        )
        .register(id::RINGBUF_OUTPUT, "bpf_ringbuf_output", ringbuf_output)
        .register(id::RINGBUF_RESERVE, "bpf_ringbuf_reserve", ringbuf_reserve)
        .register(id::RINGBUF_SUBMIT, "bpf_ringbuf_submit", ringbuf_submit)
        .register(id::RINGBUF_DISCARD, "bpf_ringbuf_discard", ringbuf_discard)
        .register(id::RINGBUF_QUERY, "bpf_ringbuf_query", ringbuf_query)
        .register(id::SEND_SIGNAL, "bpf_send_signal", send_signal)
        .register(
            id::SEND_SIGNAL_THREAD,
            "bpf_send_signal_thread",
            send_signal_thread,
        )
        .register(id::OVERRIDE_RETURN, "bpf_override_return", override_return)
        .register(id::REDIRECT, "bpf_redirect", redirect)
        .register(id::CSUM_DIFF, "bpf_csum_diff", csum_diff)
        .register(id::STRNCMP, "bpf_strncmp", strncmp)
        .register(id::STRTOL, "bpf_strtol", strtol)
        .register(id::STRTOUL, "bpf_strtoul", strtoul)
        .register(id::GET_FUNC_IP, "bpf_get_func_ip", get_func_ip)
        .register(
            id::GET_ATTACH_COOKIE,
            "bpf_get_attach_cookie",
            get_attach_cookie,
        )
        .register(id::GET_STACK, "bpf_get_stack", get_stack)
        .register(id::GET_STACKID, "bpf_get_stackid", get_stackid)
        .register(id::LOOP, "bpf_loop", bpf_loop)
        .register(id::XDP_ADJUST_HEAD, "bpf_xdp_adjust_head", xdp_adjust_head)
        .register(id::XDP_ADJUST_TAIL, "bpf_xdp_adjust_tail", xdp_adjust_tail)
        .register(id::XDP_ADJUST_META, "bpf_xdp_adjust_meta", xdp_adjust_meta)
        .register(id::SKB_LOAD_BYTES, "bpf_skb_load_bytes", skb_load_bytes)
        .register(id::SKB_STORE_BYTES, "bpf_skb_store_bytes", skb_store_bytes)
        .register(
            id::FOR_EACH_MAP_ELEM,
            "bpf_for_each_map_elem",
            for_each_map_elem,
        );
    h
}

fn read(mem: &Memory<'_>, addr: u64, len: usize) -> Result<Vec<u8>, HelperError> {
    let mut v = vec![0u8; len];
    mem.read_bytes(addr, &mut v)?;
    Ok(v)
}

fn map_arg(k: &Kernel, handle: u64) -> Result<usize, HelperError> {
    k.map_index(handle)
        .ok_or_else(|| HelperError::Other(format!("{handle:#x} is not a map")))
}

fn key_arg(k: &Kernel, mem: &Memory<'_>, map: usize, addr: u64) -> Result<Vec<u8>, HelperError> {
    read(mem, addr, k.maps[map].spec().key_size as usize)
}

fn map_lookup_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let key = key_arg(k, mem, m, a[1])?;
    let map = &mut k.maps[m];
    let t = map.spec().map_type;
    if t == map_type::ARRAY_OF_MAPS || t == map_type::HASH_OF_MAPS {
        return Ok(map
            .inner_map_id(&key)
            .map_or(0, |inner| super::map_handle(inner as usize)));
    }
    let cpu = k.event.cpu;
    Ok(match k.maps[m].lookup(&key, cpu) {
        Some(off) => k.map_addrs[m] + off as u64,
        None => 0,
    })
}

fn map_update_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let key = key_arg(k, mem, m, a[1])?;
    let value = read(mem, a[2], k.maps[m].spec().value_size as usize)?;
    let cpu = k.event.cpu;
    match k.maps[m].update(&key, &value, a[3], cpu) {
        Ok(()) => Ok(0),
        Err(e) => {
            let errno = e.errno() as i64;
            if errno == errno::E2BIG || errno == 12 {
                let spec = k.maps[m].spec();
                let msg = format!(
                    "map {} is full ({} entries): bpf_map_update_elem returned -{errno}",
                    spec.name, spec.max_entries
                );
                k.warn(msg);
            }
            Ok(neg(errno))
        }
    }
}

fn map_delete_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let key = key_arg(k, mem, m, a[1])?;
    Ok(match k.maps[m].delete(&key) {
        Ok(()) => 0,
        Err(e) => neg(e.errno() as i64),
    })
}

fn map_push_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let value = read(mem, a[1], k.maps[m].spec().value_size as usize)?;
    Ok(match k.maps[m].push(&value, a[2]) {
        Ok(()) => 0,
        Err(e) => neg(e.errno() as i64),
    })
}

fn map_pop_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let mut out = vec![0u8; k.maps[m].spec().value_size as usize];
    match k.maps[m].pop(&mut out) {
        Ok(()) => {
            mem.write_bytes(a[1], &out)?;
            Ok(0)
        }
        Err(e) => Ok(neg(e.errno() as i64)),
    }
}

fn map_peek_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let size = k.maps[m].spec().value_size as usize;
    if k.maps[m].spec().map_type == map_type::BLOOM_FILTER {
        // For a bloom filter, "peek" tests membership of the value at r2.
        let value = read(mem, a[1], size)?;
        return Ok(match k.maps[m].bloom_test(&value) {
            Ok(()) => 0,
            Err(e) => neg(e.errno() as i64),
        });
    }
    let mut out = vec![0u8; size];
    match k.maps[m].peek(&mut out) {
        Ok(()) => {
            mem.write_bytes(a[1], &out)?;
            Ok(0)
        }
        Err(e) => Ok(neg(e.errno() as i64)),
    }
}

/// Where a probe read may look.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Space {
    Kernel,
    User,
    /// Legacy `bpf_probe_read`: kernel memory, else user memory.
    Any,
}

fn space_name(s: Space) -> &'static str {
    match s {
        Space::Kernel => "kernel",
        Space::User => "user",
        Space::Any => "kernel or user",
    }
}

/// Reads `len` bytes the way probe_read helpers do: from program memory and simulated
/// kernel memory, or from the trace's user memory.
fn probe(k: &Kernel, mem: &Memory<'_>, space: Space, addr: u64, len: usize) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; len];
    if space != Space::User && mem.read_bytes(addr, &mut buf).is_ok() {
        return Some(buf);
    }
    if space != Space::Kernel && k.read_user(addr, &mut buf) {
        return Some(buf);
    }
    None
}

/// The errno of a failed probe read: x86's `copy_from_kernel_nofault` refuses user
/// addresses (below `TASK_SIZE_MAX + PAGE_SIZE`, 1 << 47) with -ERANGE before trying;
/// other failures are -EFAULT.
fn probe_errno(space: Space, addr: u64) -> i64 {
    if space == Space::Kernel && addr < 1 << 47 {
        errno::ERANGE
    } else {
        errno::EFAULT
    }
}

fn probe_read_common(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5], space: Space) -> R {
    let (dst, size, src) = (a[0], a[1] as u32 as usize, a[2]);
    match probe(k, mem, space, src, size) {
        Some(data) => {
            mem.write_bytes(dst, &data)?;
            Ok(0)
        }
        None => {
            // The kernel zeroes the destination and returns -EFAULT (or -ERANGE).
            mem.write_bytes(dst, &vec![0u8; size])?;
            k.warn(format!(
                "probe read of {size} bytes of {} memory at {src:#x}: the trace gives no memory there",
                space_name(space)
            ));
            Ok(neg(probe_errno(space, src)))
        }
    }
}

fn probe_read(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_common(k, mem, a, Space::Any)
}
fn probe_read_kernel(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_common(k, mem, a, Space::Kernel)
}
fn probe_read_user(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_common(k, mem, a, Space::User)
}

/// The NUL-terminated string at `addr` (at most `max` bytes, without the NUL), or None
/// when its first byte cannot be read.
fn probe_string(
    k: &Kernel,
    mem: &Memory<'_>,
    space: Space,
    addr: u64,
    max: usize,
) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    if space != Space::User {
        let mut b = [0u8; 1];
        let mut a = addr;
        while out.len() < max && mem.read_bytes(a, &mut b).is_ok() {
            if b[0] == 0 {
                return Some(out);
            }
            out.push(b[0]);
            a = a.wrapping_add(1);
        }
        if !out.is_empty() {
            return Some(out);
        }
    }
    if space != Space::Kernel {
        if let Some(tail) = k.user_tail(addr) {
            return Some(
                tail.iter()
                    .take(max)
                    .take_while(|&&c| c != 0)
                    .copied()
                    .collect(),
            );
        }
    }
    None
}

fn probe_read_str_common(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5], space: Space) -> R {
    let (dst, size, src) = (a[0], a[1] as u32 as usize, a[2]);
    if size == 0 {
        return Ok(0);
    }
    match probe_string(k, mem, space, src, size - 1) {
        Some(mut s) => {
            s.push(0);
            mem.write_bytes(dst, &s)?;
            Ok(s.len() as u64)
        }
        None => {
            mem.write_bytes(dst, &vec![0u8; size])?;
            k.warn(format!(
                "probe read of a string of {} memory at {src:#x}: the trace gives no memory there",
                space_name(space)
            ));
            Ok(neg(probe_errno(space, src)))
        }
    }
}

fn probe_read_str(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_str_common(k, mem, a, Space::Any)
}
fn probe_read_kernel_str(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_str_common(k, mem, a, Space::Kernel)
}
fn probe_read_user_str(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    probe_read_str_common(k, mem, a, Space::User)
}

fn ktime_get_ns(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.time_ns)
}
fn ktime_get_boot_ns(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.time_ns + k.config.suspended_ns)
}
fn ktime_get_coarse_ns(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    let tick = 1_000_000_000 / k.config.hz.max(1);
    Ok(k.event.time_ns / tick * tick)
}
fn jiffies64(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    // INITIAL_JIFFIES: the kernel starts jiffies 5 minutes before wrap-around of 32 bits.
    let initial = (-300i64 * k.config.hz as i64) as u32 as u64;
    Ok(initial + k.event.time_ns / (1_000_000_000 / k.config.hz.max(1)))
}

/// Formatter memory: strings and bytes from program memory or simulated kernel memory.
struct Args<'k, 'm, 'a> {
    k: &'k Kernel,
    mem: &'m Memory<'a>,
}

impl ArgMemory for Args<'_, '_, '_> {
    fn string(&mut self, addr: u64, max: usize, from: printk::StrSource) -> Option<Vec<u8>> {
        let space = match from {
            printk::StrSource::Any => Space::Any,
            printk::StrSource::Kernel => Space::Kernel,
            printk::StrSource::User => Space::User,
        };
        probe_string(self.k, self.mem, space, addr, max)
    }
    fn bytes(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        probe(self.k, self.mem, Space::Kernel, addr, len)
    }
}

fn format_with(
    k: &mut Kernel,
    mem: &Memory<'_>,
    fmt_addr: u64,
    fmt_size: u64,
    args: &[u64],
    max_args: usize,
) -> Result<Option<String>, HelperError> {
    let fmt = read(mem, fmt_addr, fmt_size as u32 as usize)?;
    if !fmt.contains(&0) {
        // The kernel requires the format to be NUL-terminated within its size.
        return Ok(None);
    }
    let result = printk::format(&fmt, args, max_args, &mut Args { k, mem });
    match result {
        Ok((text, unreadable)) => {
            for addr in unreadable {
                k.warn(format!(
                    "printk argument {addr:#x} (%s, %pks, %pus, %pI4...) is not readable memory"
                ));
            }
            Ok(Some(text))
        }
        Err(e) => {
            k.warn(format!("printk format refused: {}", e.0));
            Ok(None)
        }
    }
}

fn trace_printk(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    match format_with(k, mem, a[0], a[1], &a[2..5], 3)? {
        Some(text) => {
            let n = text.len() as u64;
            k.effects.push(Effect::Printk { text });
            Ok(n)
        }
        None => Ok(neg(errno::EINVAL)),
    }
}

/// Reads the u64 argument array of vprintk/snprintf (`data_len` must be a multiple of 8).
fn arg_array(mem: &Memory<'_>, data: u64, len: u64) -> Result<Option<Vec<u64>>, HelperError> {
    let len = len as u32 as usize;
    if !len.is_multiple_of(8) || len / 8 > 12 {
        return Ok(None);
    }
    let bytes = read(mem, data, len)?;
    Ok(Some(
        bytes
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect(),
    ))
}

fn trace_vprintk(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let Some(args) = arg_array(mem, a[2], a[3])? else {
        return Ok(neg(errno::EINVAL));
    };
    match format_with(k, mem, a[0], a[1], &args, 12)? {
        Some(text) => {
            let n = text.len() as u64;
            k.effects.push(Effect::Printk { text });
            Ok(n)
        }
        None => Ok(neg(errno::EINVAL)),
    }
}

fn snprintf(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (out, out_size, fmt) = (a[0], a[1] as u32 as usize, a[2]);
    let Some(args) = arg_array(mem, a[3], a[4])? else {
        return Ok(neg(errno::EINVAL));
    };
    // The format of bpf_snprintf is a read-only string of unknown size: read up to 1 KiB.
    let mut fmt_bytes = Vec::new();
    let mut b = [0u8; 1];
    while fmt_bytes.len() < 1024 && mem.read_bytes(fmt + fmt_bytes.len() as u64, &mut b).is_ok() {
        fmt_bytes.push(b[0]);
        if b[0] == 0 {
            break;
        }
    }
    let result = printk::format(&fmt_bytes, &args, 12, &mut Args { k, mem });
    match result {
        Ok((text, _)) => {
            let bytes = text.as_bytes();
            if out_size > 0 {
                let n = bytes.len().min(out_size - 1);
                let mut buf = bytes[..n].to_vec();
                buf.push(0);
                mem.write_bytes(out, &buf)?;
            }
            // Like snprintf: the length the whole output needs, with its NUL.
            Ok(bytes.len() as u64 + 1)
        }
        Err(_) => Ok(neg(errno::EINVAL)),
    }
}

fn get_prandom_u32(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.next_random() as u64)
}
fn get_smp_processor_id(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.cpu as u64)
}
fn get_current_pid_tgid(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok((k.event.task.tgid as u64) << 32 | k.event.task.pid as u64)
}
fn get_current_uid_gid(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok((k.event.task.gid as u64) << 32 | k.event.task.uid as u64)
}

fn get_current_comm(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let size = a[1] as u32 as usize;
    if size == 0 {
        return Ok(neg(errno::EINVAL));
    }
    // strscpy_pad: at most size-1 bytes, NUL padded to size.
    let comm = k.event.task.comm_bytes();
    let mut buf = vec![0u8; size];
    let n = comm
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(16)
        .min(size - 1);
    buf[..n].copy_from_slice(&comm[..n]);
    mem.write_bytes(a[0], &buf)?;
    Ok(0)
}

fn get_current_task(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.task.task_struct)
}

fn get_current_cgroup_id(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.task.cgroup_id())
}

fn current_task_under_cgroup(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[0])?;
    let index = a[1] as u32;
    let map = &k.maps[m];
    if map.spec().map_type != map_type::CGROUP_ARRAY {
        return Ok(neg(errno::EINVAL));
    }
    if index >= map.spec().max_entries {
        return Ok(neg(errno::E2BIG));
    }
    match map.object_id(&index.to_le_bytes()) {
        None => Ok(neg(errno::EAGAIN)),
        Some(cgroup) => Ok(k.event.task.cgroups.contains(&(cgroup as u64)) as u64),
    }
}

fn tail_call(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[1])?;
    let map = &k.maps[m];
    if map.spec().map_type != map_type::PROG_ARRAY {
        return Err(HelperError::Other(format!(
            "bpf_tail_call on map {}, which is not a prog array",
            map.spec().name
        )));
    }
    let index = a[2] as u32;
    let target = if index >= map.spec().max_entries {
        TailCallTarget::OutOfRange
    } else {
        match map.object_id(&index.to_le_bytes()) {
            Some(prog) => TailCallTarget::Program(prog),
            None => TailCallTarget::Empty,
        }
    };
    // The engines' rule, applied to a mirror of their count to record whether it is taken.
    let taken = target.take(&mut k.tail_calls).is_some();
    k.effects.push(Effect::TailCall {
        map: m,
        index,
        program: match target {
            TailCallTarget::Program(p) => Some(p),
            _ => None,
        },
        taken,
    });
    Err(HelperError::TailCall(target))
}

const BPF_F_INDEX_MASK: u64 = 0xffff_ffff;
const BPF_F_CURRENT_CPU: u64 = BPF_F_INDEX_MASK;

fn perf_event_output(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[1])?;
    let flags = a[2];
    if flags & !BPF_F_INDEX_MASK != 0 {
        return Ok(neg(errno::EINVAL));
    }
    let index = flags & BPF_F_INDEX_MASK;
    let cpu = if index == BPF_F_CURRENT_CPU {
        k.event.cpu
    } else {
        index as u32
    };
    if k.maps[m].spec().map_type != map_type::PERF_EVENT_ARRAY {
        return Ok(neg(errno::EINVAL));
    }
    if cpu >= k.maps[m].spec().max_entries {
        return Ok(neg(errno::E2BIG));
    }
    // The consumer (libbpf's perf buffer) opens one event per CPU, bound to that CPU:
    // there is no event beyond the CPUs, and the kernel refuses to write to another
    // CPU's event (`event->oncpu != cpu`).
    if cpu >= k.config.ncpus {
        return Ok(neg(errno::ENOENT));
    }
    if cpu != k.event.cpu {
        return Ok(neg(errno::EOPNOTSUPP));
    }
    let data = read(mem, a[3], a[4] as u32 as usize)?;
    k.effects.push(Effect::Perf { map: m, cpu, data });
    Ok(0)
}

fn ringbuf_of(k: &mut Kernel, handle: u64) -> Result<(usize, &mut super::RingBuf), HelperError> {
    let m = map_arg(k, handle)?;
    match k.ringbufs[m].as_mut() {
        Some(rb) => Ok((m, rb)),
        None => Err(HelperError::Other(format!(
            "map {} is not a ring buffer",
            k.maps[m].spec().name
        ))),
    }
}

fn ringbuf_output(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let data = read(mem, a[1], a[2] as u32 as usize)?;
    if a[3] & !3 != 0 {
        return Ok(neg(errno::EINVAL));
    }
    let (_, rb) = ringbuf_of(k, a[0])?;
    Ok(if rb.output(&data) {
        0
    } else {
        neg(errno::EAGAIN)
    })
}

fn ringbuf_reserve(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    if a[2] != 0 {
        return Ok(0);
    }
    let (m, rb) = ringbuf_of(k, a[0])?;
    let off = rb.reserve(a[1] as usize);
    let base = k.map_addrs[m];
    Ok(off.map_or(0, |o| base + o as u64))
}

fn ringbuf_commit(k: &mut Kernel, a: [u64; 5], discard: bool) -> R {
    // The record pointer says which ring it belongs to.
    let ptr = a[0];
    let found = k.ringbufs.iter().enumerate().find_map(|(m, rb)| {
        let rb = rb.as_ref()?;
        let base = k.map_addrs[m];
        (ptr >= base && ptr < base + rb.capacity() as u64).then_some((m, (ptr - base) as usize))
    });
    let ok = match found {
        Some((m, off)) => k.ringbufs[m]
            .as_mut()
            .is_some_and(|rb| rb.commit(off, discard)),
        None => false,
    };
    if ok {
        Ok(0)
    } else {
        Err(HelperError::Other(format!(
            "{ptr:#x} is not a pending ring buffer reservation"
        )))
    }
}

fn ringbuf_submit(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    ringbuf_commit(k, a, false)
}
fn ringbuf_discard(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    ringbuf_commit(k, a, true)
}

fn ringbuf_query(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (_, rb) = ringbuf_of(k, a[0])?;
    Ok(match a[1] {
        0 => rb.pending() as u64,  // BPF_RB_AVAIL_DATA
        1 => rb.capacity() as u64, // BPF_RB_RING_SIZE
        2 => rb.consumer_pos(),    // BPF_RB_CONS_POS
        3 => rb.producer_pos(),    // BPF_RB_PROD_POS
        _ => 0,
    })
}

/// `bpf_send_signal_common`: never to a kernel thread (the simulator's pid 0, the idle
/// task) or to init (tgid 1), -EPERM; the signal must be valid (`valid_signal`: at most
/// _NSIG, 64), else -EINVAL. Signal 0 only checks: nothing is sent.
fn send_signal_common(k: &mut Kernel, sig: u32, thread: bool) -> R {
    let task = &k.event.task;
    if task.pid == 0 || task.tgid == 1 {
        return Ok(neg(errno::EPERM));
    }
    if sig > 64 {
        return Ok(neg(errno::EINVAL));
    }
    if sig != 0 {
        k.effects.push(Effect::Signal {
            signal: sig,
            thread,
        });
    }
    Ok(0)
}
fn send_signal(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    send_signal_common(k, a[0] as u32, false)
}
fn send_signal_thread(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    send_signal_common(k, a[0] as u32, true)
}
fn override_return(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    k.effects.push(Effect::OverrideReturn { value: a[1] });
    Ok(0)
}

/// BPF_PROG_TYPE_XDP.
const PROG_TYPE_XDP: u32 = 6;

/// `BPF_F_INGRESS`, the only flag tc's bpf_redirect takes.
const BPF_F_INGRESS: u64 = 1;

fn redirect(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (ifindex, flags) = (a[0] as u32 as u64, a[1]);
    // XDP (bpf_xdp_redirect) takes no flags: XDP_ABORTED; tc's bpf_redirect takes
    // BPF_F_INGRESS only: TC_ACT_SHOT. Neither redirects then.
    let xdp = k.prog_type == PROG_TYPE_XDP;
    if xdp && flags != 0 {
        return Ok(0);
    }
    if !xdp && flags & !BPF_F_INGRESS != 0 {
        return Ok(2);
    }
    k.effects.push(Effect::Redirect { ifindex, flags });
    // XDP_REDIRECT for XDP programs, TC_ACT_REDIRECT for the others.
    Ok(if xdp { 4 } else { 7 })
}

/// The kernel's `csum_partial` as x86 computes it: a 32-bit ones' complement sum.
pub fn csum_partial(data: &[u8], seed: u32) -> u32 {
    let mut sum = seed as u64;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        sum += u32::from_le_bytes(c.try_into().expect("4 bytes")) as u64;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 4];
        b[..rest.len()].copy_from_slice(rest);
        sum += u32::from_le_bytes(b) as u64;
    }
    while sum >> 32 != 0 {
        sum = (sum & 0xffff_ffff) + (sum >> 32);
    }
    sum as u32
}

fn csum_diff(_: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (from, from_size, to, to_size, seed) = (
        a[0],
        a[1] as u32 as usize,
        a[2],
        a[3] as u32 as usize,
        a[4] as u32,
    );
    if !from_size.is_multiple_of(4) || !to_size.is_multiple_of(4) || from_size + to_size > 512 {
        return Ok(neg(errno::EINVAL));
    }
    // diff = ~from ++ to, summed, folded to 16 bits (csum_from32to16) as the kernel does
    // on every architecture since 6.13 (seen on 6.18: 0xffc0 where the unfolded sum is
    // 0xffffffc0).
    let mut diff: Vec<u8> = read(mem, from, from_size)?.iter().map(|b| !b).collect();
    diff.extend(read(mem, to, to_size)?);
    let sum = csum_partial(&diff, seed);
    Ok((sum.wrapping_add(sum.rotate_right(16)) >> 16) as u64)
}

fn c_string(mem: &Memory<'_>, addr: u64, max: usize) -> Result<Vec<u8>, HelperError> {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    while out.len() < max {
        mem.read_bytes(addr + out.len() as u64, &mut b)?;
        if b[0] == 0 {
            break;
        }
        out.push(b[0]);
    }
    Ok(out)
}

fn strncmp(_: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let s1 = read(mem, a[0], a[1] as u32 as usize)?;
    let s2 = c_string(mem, a[2], s1.len() + 1)?;
    for (i, &c1) in s1.iter().enumerate() {
        let c2 = s2.get(i).copied().unwrap_or(0);
        if c1 != c2 {
            // lib/string.c's strncmp (x86_64 has no arch version): -1 or 1.
            return Ok(if c1 < c2 { -1i64 as u64 } else { 1 });
        }
        if c1 == 0 {
            return Ok(0);
        }
    }
    Ok(0)
}

/// The kernel's bpf_strtol/strtoul (`__bpf_strtoull`): base in the low 5 bits of flags
/// (0, 8, 10, 16), leading whitespace (the kernel's `isspace`) and a '-' (never '+');
/// strtoul refuses a negative number. Returns the number of bytes consumed.
fn parse_number(buf: &[u8], flags: u64, signed: bool) -> Result<(u64, usize), i64> {
    let base = (flags & 0x1f) as u32;
    if flags & !0x1f != 0 || !matches!(base, 0 | 8 | 10 | 16) {
        return Err(errno::EINVAL);
    }
    let text = buf.split(|&b| b == 0).next().unwrap_or(&[]);
    let mut i = 0;
    while i < text.len() && matches!(text[i], b' ' | b'\t'..=b'\r' | 0xa0) {
        i += 1;
    }
    // Only '-' (for strtoul too, which then refuses the number); no '+'.
    let negative = i < text.len() && text[i] == b'-';
    if negative {
        i += 1;
    }
    let mut base = base;
    let has_hex_prefix = i + 1 < text.len() && text[i] == b'0' && (text[i + 1] | 0x20) == b'x';
    // Base 0 takes "0x" as hex only before a hex digit (`_parse_integer_fixup_radix`).
    let hex_digit_follows = text.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
    if has_hex_prefix && (base == 16 || (base == 0 && hex_digit_follows)) {
        base = 16;
        i += 2;
    } else if base == 0 {
        base = if i < text.len() && text[i] == b'0' {
            8
        } else {
            10
        };
    }
    let start = i;
    let mut v: u64 = 0;
    while i < text.len() {
        let Some(d) = (text[i] as char).to_digit(base) else {
            break;
        };
        v = v
            .checked_mul(base as u64)
            .and_then(|v| v.checked_add(d as u64))
            .ok_or(errno::ERANGE)?;
        i += 1;
    }
    if i == start {
        return Err(errno::EINVAL);
    }
    if !signed && negative {
        return Err(errno::EINVAL);
    }
    if signed {
        let limit = if negative {
            1u64 << 63
        } else {
            i64::MAX as u64
        };
        if v > limit {
            return Err(errno::ERANGE);
        }
        let s = if negative {
            (v as i64).wrapping_neg()
        } else {
            v as i64
        };
        return Ok((s as u64, i));
    }
    Ok((v, i))
}

fn strto(mem: &mut Memory<'_>, a: [u64; 5], signed: bool) -> R {
    let buf = read(mem, a[0], a[1] as u32 as usize)?;
    // The result is 0 unless a number was parsed.
    let (v, ret) = match parse_number(&buf, a[2], signed) {
        Ok((v, consumed)) => (v, consumed as u64),
        Err(e) => (0, neg(e)),
    };
    mem.write_bytes(a[3], &v.to_le_bytes())?;
    Ok(ret)
}

fn strtol(_: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    strto(mem, a, true)
}
fn strtoul(_: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    strto(mem, a, false)
}

fn get_func_ip(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.func_ip)
}
fn get_attach_cookie(k: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> R {
    Ok(k.event.attach_cookie)
}

const BPF_F_SKIP_FIELD_MASK: u64 = 0xff;
const BPF_F_USER_STACK: u64 = 1 << 8;
const BPF_F_REUSE_STACKID: u64 = 1 << 10;

const BPF_F_USER_BUILD_ID: u64 = 1 << 11;

/// The event's whole call chain (user or kernel, by `flags`), innermost first.
fn stack_of(k: &Kernel, flags: u64) -> &[u64] {
    if flags & BPF_F_USER_STACK != 0 {
        &k.event.user_stack
    } else {
        &k.event.kernel_stack
    }
}

fn get_stack(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (buf, size, flags) = (a[1], a[2] as u32 as usize, a[3]);
    let skip = (flags & BPF_F_SKIP_FIELD_MASK) as usize;
    let ips = stack_of(k, flags);
    // On an error the kernel zeroes the whole buffer.
    let err = if !size.is_multiple_of(8)
        || flags & !(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) != 0
        || flags & (BPF_F_USER_STACK | BPF_F_USER_BUILD_ID) == BPF_F_USER_BUILD_ID
    {
        Some(errno::EINVAL)
    } else if ips.len() < skip {
        Some(errno::EFAULT)
    } else {
        None
    };
    if let Some(e) = err {
        mem.write_bytes(buf, &vec![0u8; size])?;
        return Ok(neg(e));
    }
    let n = (ips.len() - skip).min(size / 8);
    let bytes: Vec<u8> = ips[skip..skip + n]
        .iter()
        .flat_map(|ip| ip.to_le_bytes())
        .collect();
    mem.write_bytes(buf, &bytes)?;
    // The rest of the buffer is zeroed, as the kernel does.
    if n * 8 < size {
        mem.write_bytes(buf + (n * 8) as u64, &vec![0u8; size - n * 8])?;
    }
    Ok((n * 8) as u64)
}

fn get_stackid(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let m = map_arg(k, a[1])?;
    let flags = a[2];
    if flags & !(BPF_F_SKIP_FIELD_MASK | BPF_F_USER_STACK | (1 << 9) | BPF_F_REUSE_STACKID) != 0 {
        return Ok(neg(errno::EINVAL));
    }
    // The map skips the frames flags ask for (and is -EFAULT when none are left).
    let ips = stack_of(k, flags).to_vec();
    Ok(match k.maps[m].store_stack(&ips, flags) {
        Ok(id) => id as u64,
        Err(e) => neg(e.errno() as i64),
    })
}

/// ETH_HLEN: XDP keeps at least an Ethernet header between data and data_end.
const ETH_HLEN: usize = 14;
/// The kernel keeps room for a `struct xdp_frame` at the start of the headroom.
const XDP_FRAME_SIZE: usize = 40;

fn packet(k: &Kernel) -> Result<&super::Packet, HelperError> {
    k.packet
        .as_ref()
        .ok_or_else(|| HelperError::Other("this program has no packet".into()))
}

fn xdp_adjust_head(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let p = packet(k)?;
    let (data, end) = p.bounds();
    let meta = p.field(p.meta_field).saturating_sub(p.base) as usize;
    let new = data as i64 + a[1] as i32 as i64;
    if new < XDP_FRAME_SIZE as i64 || new > end as i64 - ETH_HLEN as i64 {
        return Ok(neg(errno::EINVAL));
    }
    let new = new as usize;
    // Metadata moves with the head (the kernel keeps data_meta <= data).
    let new_meta = if meta < data {
        new - (data - meta).min(new)
    } else {
        new
    };
    p.set(p.data_field, new);
    p.set(p.meta_field, new_meta);
    Ok(0)
}

fn xdp_adjust_meta(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let p = packet(k)?;
    let (data, _) = p.bounds();
    let meta = p.field(p.meta_field).saturating_sub(p.base) as i64;
    let new = meta + a[1] as i32 as i64;
    if new < XDP_FRAME_SIZE as i64 || new > data as i64 {
        return Ok(neg(errno::EINVAL));
    }
    // xdp_metalen_invalid: not a multiple of 4, or more than 32 bytes.
    if data as i64 - new > 32 || (data as i64 - new) % 4 != 0 {
        return Ok(neg(errno::EACCES));
    }
    p.set(p.meta_field, new as usize);
    Ok(0)
}

fn xdp_adjust_tail(k: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let p = packet(k)?;
    let (data, end) = p.bounds();
    let new = end as i64 + a[1] as i32 as i64;
    if new > p.buf.len() as i64 || new < (data + ETH_HLEN) as i64 {
        return Ok(neg(errno::EINVAL));
    }
    let new = new as usize;
    if new > end {
        // Grown bytes read as zeros, as the kernel clears them.
        let _ = p.buf.fill(end, new - end, 0);
    }
    p.set(p.end_field, new);
    Ok(0)
}

fn skb_load_bytes(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (off, to, len) = (a[1] as u32 as usize, a[2], a[3] as u32 as usize);
    let p = packet(k)?;
    let (data, end) = p.bounds();
    match data
        .checked_add(off)
        .filter(|s| s.checked_add(len).is_some_and(|e| e <= end))
    {
        Some(start) if len > 0 => {
            let bytes = p.buf.to_vec(start, len).unwrap_or_default();
            mem.write_bytes(to, &bytes)?;
            Ok(0)
        }
        _ => {
            mem.write_bytes(to, &vec![0u8; len])?;
            Ok(neg(errno::EFAULT))
        }
    }
}

fn skb_store_bytes(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (off, from, len, flags) = (a[1] as u32 as usize, a[2], a[3] as u32 as usize, a[4]);
    // BPF_F_RECOMPUTE_CSUM and BPF_F_INVALIDATE_HASH are accepted (nothing to recompute).
    if flags & !3 != 0 {
        return Ok(neg(errno::EINVAL));
    }
    let bytes = read(mem, from, len)?;
    let p = packet(k)?;
    let (data, end) = p.bounds();
    match data
        .checked_add(off)
        .filter(|s| s.checked_add(len).is_some_and(|e| e <= end))
    {
        Some(start) => {
            let _ = p.buf.write(start, &bytes);
            Ok(0)
        }
        None => Ok(neg(errno::EFAULT)),
    }
}

/// The kernel's BPF_MAX_LOOPS.
const MAX_LOOPS: u64 = 1 << 23;

fn bpf_loop(_: &mut Kernel, _: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (count, func, ctx, flags) = (a[0] as u32 as u64, a[1], a[2], a[3]);
    if flags != 0 {
        return Ok(neg(errno::EINVAL));
    }
    if count > MAX_LOOPS {
        return Ok(neg(errno::E2BIG));
    }
    Err(HelperError::Callbacks(Callbacks {
        func,
        calls: CallList::Loop { count, ctx },
    }))
}

fn for_each_map_elem(k: &mut Kernel, mem: &mut Memory<'_>, a: [u64; 5]) -> R {
    let (handle, func, ctx, flags) = (a[0], a[1], a[2], a[3]);
    if flags != 0 {
        return Ok(neg(errno::EINVAL));
    }
    let m = map_arg(k, handle)?;
    let cpu = k.event.cpu;
    let spec = k.maps[m].spec().clone();
    let keys: Vec<Vec<u8>> = match spec.map_type {
        map_type::ARRAY | map_type::PERCPU_ARRAY => (0..spec.max_entries)
            .map(|i| i.to_le_bytes().to_vec())
            .collect(),
        map_type::HASH | map_type::PERCPU_HASH | map_type::LRU_HASH | map_type::LRU_PERCPU_HASH => {
            k.maps[m]
                .entries()
                .into_iter()
                .map(|(key, _)| key)
                .collect()
        }
        _ => return Ok(neg(errno::EINVAL)),
    };
    // The callback gets pointers to each key: copies of the keys in a scratch region.
    let ks = spec.key_size as usize;
    let scratch = HostBuffer::zeroed((ks * keys.len()).max(1));
    for (i, key) in keys.iter().enumerate() {
        let _ = scratch.write(i * ks, key);
    }
    let base = mem.map_buffer(format!("keys of map {}", spec.name), &scratch, false);
    let mut calls = Vec::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        let Some(off) = k.maps[m].lookup(key, cpu) else {
            continue;
        };
        calls.push([
            handle,
            base + (i * ks) as u64,
            k.map_addrs[m] + off as u64,
            ctx,
            0,
        ]);
    }
    Err(HelperError::Callbacks(Callbacks {
        func,
        calls: CallList::Each(calls),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_like_the_kernel() {
        assert_eq!(parse_number(b"  -42x", 10, true), Ok(((-42i64) as u64, 5)));
        assert_eq!(parse_number(b"0x1f", 0, false), Ok((31, 4)));
        assert_eq!(parse_number(b"017", 0, false), Ok((15, 3)));
        assert_eq!(parse_number(b"zz", 10, false), Err(errno::EINVAL));
        assert_eq!(
            parse_number(b"99999999999999999999", 10, false),
            Err(errno::ERANGE)
        );
        assert_eq!(parse_number(b"1", 3, false), Err(errno::EINVAL));
        assert_eq!(parse_number(b"+5", 10, true), Err(errno::EINVAL));
        assert_eq!(parse_number(b"-5", 10, false), Err(errno::EINVAL));
        assert_eq!(parse_number(b"0xg", 0, false), Ok((0, 1)));
        assert_eq!(parse_number(b"0xg", 16, false), Err(errno::EINVAL));
        assert_eq!(parse_number(b"\x0b7", 10, false), Ok((7, 2)));
    }

    #[test]
    fn csum_folds_carries() {
        assert_eq!(csum_partial(&[0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0], 0), 1);
        assert_eq!(csum_partial(&[1, 2], 5), 0x0201 + 5);
    }
}
