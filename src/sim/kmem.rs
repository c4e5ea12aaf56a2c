//! Simulated kernel memory for one event: `task_struct`s laid out from the program's own
//! BTF (so CO-RE reads such as `BPF_CORE_READ(task, real_parent, tgid)` find their fields),
//! and the user and kernel blobs the trace gives.

use std::collections::BTreeMap;

use crate::loader::btf::{Btf, Kind};
use crate::vm::HostBuffer;

/// Where simulated task_structs live: a kernel-looking address, one slot per task.
pub const TASK_BASE: u64 = 0xffff_8880_1000_0000;
pub const TASK_STRIDE: u64 = 0x10_0000;
/// Where the simulator places strings and blobs a trace gives by value.
pub const USER_AUTO_BASE: u64 = 0x7fff_0000_0000;
pub const KERNEL_AUTO_BASE: u64 = 0xffff_8880_2000_0000;

const BTF_KIND_STRUCT: u8 = 4;

/// A byte offset and size of a member, found by name through anonymous structs/unions.
pub fn member(btf: &Btf, struct_id: u32, name: &str) -> Option<(u64, u64, u32)> {
    fn walk(btf: &Btf, id: u32, name: &str, base_bits: u64, depth: u32) -> Option<(u64, u64, u32)> {
        if depth > 8 {
            return None;
        }
        let id = btf.skip_mods_typedefs(id);
        for m in btf.members(id) {
            let bits = base_bits + m.bit_offset as u64;
            let mname = btf.str_at(m.name_off);
            if mname == name && m.bitfield_size == 0 {
                let size = btf.size_of(m.type_id)?;
                return Some((bits / 8, size, m.type_id));
            }
            if mname.is_empty() {
                let inner = btf.skip_mods_typedefs(m.type_id);
                if matches!(btf.kind(inner), Kind::Struct { .. } | Kind::Union { .. }) {
                    if let Some(found) = walk(btf, inner, name, bits, depth + 1) {
                        return Some(found);
                    }
                }
            }
        }
        None
    }
    walk(btf, struct_id, name, 0, 0)
}

/// The BTF id and size of `struct name`, if the BTF has a complete one.
pub fn struct_type(btf: &Btf, name: &str) -> Option<(u32, u64)> {
    let id = btf.find(name, BTF_KIND_STRUCT)?;
    let size = btf.size_of(id)?;
    (size > 0).then_some((id, size))
}

/// Writes an integer into a member (truncated to the member's size); false if the struct
/// has no such member.
pub fn set_int(btf: &Btf, sid: u32, buf: &HostBuffer, name: &str, v: u64) -> bool {
    match member(btf, sid, name) {
        Some((off, size, _)) if size <= 8 => buf.write_uint(off as usize, size as usize, v).is_ok(),
        _ => false,
    }
}

/// Writes bytes into a member (truncated or zero-padded to its size).
pub fn set_bytes(btf: &Btf, sid: u32, buf: &HostBuffer, name: &str, bytes: &[u8]) -> bool {
    match member(btf, sid, name) {
        Some((off, size, _)) => {
            let mut v = bytes.to_vec();
            v.resize(size as usize, 0);
            buf.write(off as usize, &v).is_ok()
        }
        None => false,
    }
}

/// A simulated task.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimTask {
    pub pid: u32,
    pub tgid: u32,
    pub ppid: u32,
    pub comm: String,
    pub exit_code: i32,
    pub fields: BTreeMap<String, u64>,
}

/// Fills task `i`'s task_struct: ids, comm, `real_parent`/`parent` pointing to the
/// parent's task_struct when the parent is a known task, `group_leader` to the thread
/// group leader's (or itself), exit code, priorities and any extra fields.
pub fn write_task(btf: &Btf, tasks: &[SimTask], i: usize, buf: &HostBuffer) {
    let Some((sid, _)) = struct_type(btf, "task_struct") else {
        return;
    };
    let addr_of = |pid: u32| -> u64 {
        tasks
            .iter()
            .position(|t| t.pid == pid)
            .map_or(0, |j| TASK_BASE + j as u64 * TASK_STRIDE)
    };
    let t = &tasks[i];
    let me = TASK_BASE + i as u64 * TASK_STRIDE;
    let _ = buf.fill(0, buf.len(), 0);
    set_int(btf, sid, buf, "pid", t.pid as u64);
    set_int(btf, sid, buf, "tgid", t.tgid as u64);
    let mut comm = t.comm.as_bytes().to_vec();
    comm.truncate(15);
    set_bytes(btf, sid, buf, "comm", &comm);
    let parent = addr_of(t.ppid);
    set_int(btf, sid, buf, "real_parent", parent);
    set_int(btf, sid, buf, "parent", parent);
    let leader = match addr_of(t.tgid) {
        0 => me,
        a => a,
    };
    set_int(btf, sid, buf, "group_leader", leader);
    set_int(btf, sid, buf, "exit_code", t.exit_code as u32 as u64);
    for p in ["prio", "static_prio", "normal_prio"] {
        set_int(btf, sid, buf, p, 120);
    }
    for (name, v) in &t.fields {
        set_int(btf, sid, buf, name, *v);
    }
}

/// A new task_struct for task `i`, if the BTF has `struct task_struct`.
pub fn new_task(btf: &Btf, tasks: &[SimTask], i: usize) -> Option<HostBuffer> {
    let (_, size) = struct_type(btf, "task_struct")?;
    let buf = HostBuffer::zeroed(size.min(TASK_STRIDE) as usize);
    write_task(btf, tasks, i, &buf);
    Some(buf)
}
