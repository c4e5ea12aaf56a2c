//! The current task, time, CPU, cgroups, kprobe helpers, signals and stacks as helpers
//! see them (testdata/src/rt_task.bpf.c on testdata/traces/rt_task.json), on both
//! engines, against the kernel's helpers (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c,
//! kernel/bpf/stackmap.c).

mod runtime_common;

use std::sync::OnceLock;

use ebpf_sim::vm::kernel::{Kernel, KernelConfig};
use ebpf_sim::vm::maps::jhash2;
use runtime_common::{le, run, Run};
use serde_json::Value;

const OBJ: &str = "testdata/obj/rt_task.bpf.o";
const TRACE: &str = "testdata/traces/rt_task.json";

fn task_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let r = run(
            OBJ,
            TRACE,
            &["--map", "cgroups:0=77", "--map", "cgroups:1=4242"],
        );
        r.assert_clean();
        r
    })
}

#[test]
fn time_helpers_follow_the_events_clock() {
    let r = task_run();
    let p0 = r.printk_of_event(0);
    // ktime and boot time are the event's time (nothing suspended); the coarse clock is
    // the last tick (HZ 250: every 4 ms).
    assert_eq!(
        p0[0],
        "time ns=1234567890 boot=1234567890 coarse=1232000000"
    );
    // jiffies start at INITIAL_JIFFIES, (u32)(-300 * HZ), and count 4 ms ticks.
    let initial = (-300i64 * 250) as u32 as u64;
    assert_eq!(p0[1], format!("time jiffies={}", initial + 308));
    let p1 = r.printk_of_event(1);
    assert_eq!(
        p1[0],
        "time ns=2000000001 boot=2000000001 coarse=2000000000"
    );
    assert_eq!(p1[1], format!("time jiffies={}", initial + 500));
}

#[test]
fn prandom_is_the_seeded_sequence() {
    let r = task_run();
    // config.seed 42: the simulated kernel's generator, drawn in program order.
    let mut k = Kernel::new(
        KernelConfig {
            seed: 42,
            ..KernelConfig::default()
        },
        Vec::new(),
    );
    let want: Vec<u32> = (0..6).map(|_| k.next_random()).collect();
    assert_eq!(
        r.printk_of_event(0)[2],
        format!("prandom {} {} {}", want[0], want[1], want[2])
    );
    assert_eq!(
        r.printk_of_event(1)[2],
        format!("prandom {} {} {}", want[3], want[4], want[5])
    );
}

#[test]
fn identity_task_structs_and_cgroups() {
    let r = task_run();
    assert_eq!(
        r.printk_of_event(2),
        [
            // pid_tgid = tgid << 32 | pid; uid_gid = gid << 32 | uid
            "ident pid=1001 tgid=1000 uid=1000 gid=100",
            // comm holds 15 bytes and a NUL; a 4-byte buffer gets 3 and a NUL
            "ident comm=a-very-long-com short=a-v cpu=2",
            // BPF_CORE_READ(task, real_parent, tgid) reaches the parent's task_struct
            "ident task pid=1001 tgid=1000 parent tgid=500",
            "ident btf task is current=1 parent tgid=500",
            "cgroup id=7777",
            // cgroup 77 is an ancestor of the task's, 4242 is not; slot 2 is empty:
            // -EAGAIN; index 9 >= max_entries: -E2BIG
            "cgroup under [0]=1 [1]=0 empty=-11",
            "cgroup index out of range=-7",
        ]
    );
    assert_eq!(
        r.printk_of_event(3),
        [
            "ident pid=2000 tgid=2000 uid=0 gid=0",
            "ident comm=nocg short=noc cpu=3",
            "ident task pid=2000 tgid=2000 parent tgid=1",
            "ident btf task is current=1 parent tgid=1",
            // a task in no cgroup is in the root cgroup (id 1)
            "cgroup id=1",
            "cgroup under [0]=0 [1]=0 empty=-11",
            "cgroup index out of range=-7",
        ]
    );
}

fn effects(r: &Run, event: u64) -> Vec<Value> {
    r.records
        .iter()
        .filter(|x| {
            x["event"] == event && (x["type"] == "signal" || x["type"] == "override_return")
        })
        .map(|x| {
            let mut x = x.clone();
            let o = x.as_object_mut().unwrap();
            for k in ["event", "time_ns", "cpu", "pid", "comm", "program"] {
                o.remove(k);
            }
            x
        })
        .collect()
}

#[test]
fn kprobe_func_ip_cookie_signals_and_override_return() {
    let r = task_run();
    assert_eq!(
        r.printk_of_event(4),
        [
            "kprobe dfd=-100 ip=ffffffff81234560 cookie=c0ffee",
            // signals to the current task succeed; 65 is not a signal: -EINVAL
            "kprobe signal=0 thread=0 invalid=-22",
        ]
    );
    assert_eq!(
        effects(r, 4),
        [
            serde_json::json!({"type": "signal", "signal": 9, "thread": false}),
            serde_json::json!({"type": "signal", "signal": 10, "thread": true}),
            serde_json::json!({"type": "override_return", "value": -12}),
        ]
    );
    // init (pid 1) and the idle task (pid 0, a kernel thread) get no signals: -EPERM.
    for event in [5, 6] {
        assert_eq!(
            r.printk_of_event(event)[1],
            "kprobe signal=-1 thread=-1 invalid=-1"
        );
        assert_eq!(effects(r, event), Vec::<Value>::new());
    }
    // No cookie given: 0.
    assert_eq!(
        r.printk_of_event(5)[0],
        "kprobe dfd=3 ip=ffffffff81234560 cookie=0"
    );
}

/// The kernel's stack id: jhash2 of the ips (as u32 words, seed 0), masked to
/// roundup_pow_of_two(max_entries) - 1.
fn stack_id(ips: &[u64]) -> u32 {
    let bytes: Vec<u8> = ips.iter().flat_map(|ip| ip.to_le_bytes()).collect();
    jhash2(&bytes, 0) & 15
}

#[test]
fn stacks_by_id_and_by_copy() {
    let r = task_run();
    let kstack = [
        0xffffffff81000010u64,
        0xffffffff81000020,
        0xffffffff81000030,
    ];
    let ustack = [0x401000u64, 0x402000, 0x403000, 0x404000];
    let (kid, uid, skip1) = (stack_id(&kstack), stack_id(&ustack), stack_id(&kstack[1..]));
    let want = [
        format!("stackid kernel={kid} user={uid} skip1={skip1}"),
        // bpf_get_stack copies the ips and returns the bytes copied
        "stack kernel bytes=24 [0]=ffffffff81000010 [1]=ffffffff81000020".into(),
        "stack user bytes=32 [0]=401000 [2]=403000".into(),
        "stack skip2 bytes=8 [0]=ffffffff81000030".into(),
        // a size that is not a multiple of 8: -EINVAL; skipping more frames than there
        // are: -EFAULT
        "stack bad size=-22 skip past the end=-14".into(),
    ];
    assert_eq!(r.printk_of_event(7), want);
    // The same stacks again get the same ids.
    assert_eq!(r.printk_of_event(8), want);
    // The map holds each stack once, zero-padded to value_size (8 ips).
    let stacks = r.map("stacks");
    assert_eq!(stacks.len(), 3);
    for (id, ips) in [
        (kid, &kstack[..]),
        (uid, &ustack[..]),
        (skip1, &kstack[1..]),
    ] {
        let (_, vals) = stacks
            .iter()
            .find(|(k, _)| le(k) == id as u64)
            .unwrap_or_else(|| panic!("no stack {id}"));
        let mut want: String = ips
            .iter()
            .flat_map(|ip| ip.to_le_bytes())
            .map(|b| format!("{b:02x}"))
            .collect();
        while want.len() < 128 {
            want.push('0');
        }
        assert_eq!(vals[0], want, "stack {id}");
    }
}
