//! Ring buffers and perf event arrays (testdata/src/rt_output.bpf.c on
//! testdata/traces/rt_output.json), on both engines, against kernel/bpf/ringbuf.c and
//! kernel/trace/bpf_trace.c.

mod runtime_common;

use std::sync::OnceLock;

use runtime_common::{bytes, le, run, Run};
use serde_json::Value;

const OBJ: &str = "testdata/obj/rt_output.bpf.o";
const TRACE: &str = "testdata/traces/rt_output.json";

fn output_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let r = run(OBJ, TRACE, &[]);
        r.assert_clean();
        r
    })
}

/// (tag, cpu, seq) of a 16-byte `struct rec`.
fn rec(r: &Value) -> (u64, u64, u64) {
    let b = bytes(r["data"].as_str().expect("data"));
    assert_eq!(b.len(), 16, "{r}");
    let hex = |s: &[u8]| le(&s.iter().map(|x| format!("{x:02x}")).collect::<String>());
    (hex(&b[0..4]), hex(&b[4..8]), hex(&b[8..16]))
}

fn ring_records(r: &Run, event: u64) -> Vec<Value> {
    r.of_type("ringbuf")
        .into_iter()
        .filter(|x| x["event"] == event)
        .cloned()
        .collect()
}

#[test]
fn ringbuf_reserve_submit_discard_output_query() {
    let r = output_run();
    assert_eq!(
        r.printk_of_event(0),
        [
            // 3 reservations of 16 bytes, each with its 8-byte header; bpf_ringbuf_output
            // adds a 4th record
            "ringbuf avail before=0 reserved=72 after output=96",
            // reserve with flags is NULL; BPF_RB_RING_SIZE is max_entries
            "ringbuf output=0 size=4096 reserve with flags=0",
            "ringbuf cons_pos=0 prod_pos=96",
        ]
    );
    // Ring order (reservation order), not commit order; the discarded record is gone.
    let recs: Vec<_> = ring_records(r, 0).iter().map(rec).collect();
    assert_eq!(recs, [(1, 0, 1), (3, 0, 1), (4, 0, 1)]);
    for x in ring_records(r, 0) {
        assert_eq!(x["map"], "rb");
        assert_eq!(x["program"], Value::Null, "emitted when the event ends");
    }
    let recs: Vec<_> = ring_records(r, 1).iter().map(rec).collect();
    assert_eq!(recs, [(1, 1, 2), (3, 1, 2), (4, 1, 2)]);
}

#[test]
fn ringbuf_positions_count_from_the_rings_creation() {
    let r = output_run();
    // The consumer read event 0's 96 bytes; event 1 produced 96 more.
    assert_eq!(r.printk_of_event(1)[2], "ringbuf cons_pos=96 prod_pos=192");
    // Event 2 reserved 4008 + 16 bytes (discarded records are consumed too).
    assert_eq!(
        r.printk_of_event(3)[2],
        "ringbuf cons_pos=4216 prod_pos=4312"
    );
}

#[test]
fn a_full_ring_returns_null_and_eagain() {
    let r = output_run();
    assert_eq!(
        r.printk_of_event(2),
        [
            // a record as large as the ring (4088 + 8 = 4096) never fits; after 4008 bytes
            // a 108-byte record does not either
            "full ring: whole=0 after 4000 reserve 100=0",
            // 16 bytes still fit (4024 of 4096); 88 more do not: -EAGAIN
            "full ring: output 8=0 output 80=-11 avail=4024",
        ]
    );
    let recs = ring_records(r, 2);
    assert_eq!(recs.len(), 1, "only the small output: {recs:?}");
    assert_eq!(recs[0]["data"], "736d616c6c000000");
    // The ring is drained after every event: the next event has room again.
    assert_eq!(ring_records(r, 3).len(), 3);
    assert_eq!(r.r0(2), [0]);
}

#[test]
fn perf_event_output_goes_to_the_current_cpus_buffer() {
    let r = output_run();
    for (event, cpu) in [(4, 0), (5, 1)] {
        assert_eq!(
            r.printk_of_event(event),
            [
                format!("perf cpu={cpu} current=0 own index=0"),
                // another CPU's event: -EOPNOTSUPP; index >= max_entries: -E2BIG; flags
                // beyond the index mask: -EINVAL
                "perf other cpu=-95 out of range=-7 bad flags=-22".to_string(),
            ]
        );
        let perf: Vec<(u64, u64, u64, u64)> = r
            .of_type("perf")
            .into_iter()
            .filter(|x| x["event"] == event)
            .map(|x| {
                let (tag, c, seq) = rec(x);
                assert_eq!(x["map"], "events");
                assert_eq!(x["program"], "rt_perf", "emitted as the program runs");
                (x["perf_cpu"].as_u64().unwrap(), tag, c, seq)
            })
            .collect();
        // Only the two successful outputs, both on this CPU's buffer.
        assert_eq!(perf, [(cpu, 10, cpu, event), (cpu, 11, cpu, event)]);
    }
}

#[test]
fn the_plain_output_shows_records_as_hex() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ebpf-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["run", OBJ, "--trace", TRACE, "--no-verify"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("rb record (16 bytes): 01 00 00 00 00 00 00 00 01 00 00 00 00 00 00 00"),
        "{text}"
    );
    assert!(
        text.contains("events record (16 bytes): 0a 00 00 00 01 00 00 00 05 00"),
        "{text}"
    );
}
