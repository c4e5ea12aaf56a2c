//! Network helpers (testdata/src/rt_net.bpf.c on testdata/traces/rt_net.json), on both
//! engines: bpf_csum_diff, bpf_redirect from tc and XDP (net/core/filter.c), packets
//! rewritten through direct access. testdata/src/rt_netadj.bpf.c uses the packet helpers
//! the simulator does not register yet (skb_load_bytes, skb_store_bytes,
//! xdp_adjust_head, xdp_adjust_tail); its tests assert the kernel's results and are
//! ignored until they exist.

mod runtime_common;

use runtime_common::{bytes, run, run_on, Run};
use serde_json::{json, Value};

const OBJ: &str = "testdata/obj/rt_net.bpf.o";
const TRACE: &str = "testdata/traces/rt_net.json";
const PACKET: &str =
    "02000000000202000000000108004500001c1234000040119ceac0a8010a0a0000011388003500080000";

/// The ones' complement sum of 16-bit big-endian words, folded.
fn ones_sum(b: &[u8]) -> u16 {
    let mut s: u32 = b
        .chunks(2)
        .map(|c| u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0)))
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn redirects(r: &Run, event: u64) -> Vec<Value> {
    r.of_type("redirect")
        .iter()
        .filter(|x| x["event"] == event)
        .map(|x| json!({"ifindex": x["ifindex"], "flags": x["flags"]}))
        .collect()
}

fn packet(r: &Run, event: u64) -> Vec<u8> {
    let ret = r
        .of_type("return")
        .into_iter()
        .find(|x| x["event"] == event)
        .expect("a return");
    bytes(ret["packet"].as_str().expect("packet"))
}

#[test]
fn tc_rewrites_with_csum_diff_and_redirects() {
    let r = run(OBJ, TRACE, &[]);
    r.assert_clean();
    // The sums are of the bytes as the packet holds them, read as little-endian
    // 16-bit words (what the checksum fields hold): 192.168.1.10 + 10.0.0.1 is
    // 0xa8c0 + 0x0a01 + 0x000a + 0x0100; 10.0.0.1 -> 10.0.0.99 is ~0x000a + ~0x0100 +
    // 0x000a + 0x6300. (The kernel returns the 32-bit partial sum before 6.13 and
    // csum_from32to16 of it since; the program folds.)
    assert_eq!(
        r.printk_of_event(0),
        [
            "tc csum push=b3cb diff=6200",
            "tc len=42 ifindex=2 protocol=800",
            // tc's bpf_redirect takes BPF_F_INGRESS only: other flags are TC_ACT_SHOT;
            // else TC_ACT_REDIRECT
            "tc redirect bad flags=2 ingress=7 egress=7",
        ]
    );
    assert_eq!(
        redirects(&r, 0),
        [
            json!({"ifindex": 4, "flags": 1}),
            json!({"ifindex": 3, "flags": 0})
        ]
    );
    assert_eq!(r.r0(0), [7]);
    // The destination is now 10.0.0.99 and the header checksum, updated from the
    // diff, is valid: the header sums to 0xffff.
    let p = packet(&r, 0);
    let want = PACKET
        .replace("9ceac0a8010a0a000001", "9c88c0a8010a0a000063")
        .to_string();
    assert_eq!(p, bytes(&want));
    assert_eq!(ones_sum(&p[14..34]), 0xffff, "{p:02x?}");
}

#[test]
fn xdp_redirect_and_pass() {
    let r = run(OBJ, TRACE, &[]);
    assert_eq!(
        r.printk_of_event(1),
        [
            "xdp ifindex=3 len=42",
            // XDP's bpf_redirect takes no flags: XDP_ABORTED; else XDP_REDIRECT
            "xdp redirect bad flags=0 redirect=4",
        ]
    );
    assert_eq!(redirects(&r, 1), [json!({"ifindex": 13, "flags": 0})]);
    assert_eq!(r.r0(1), [4]);
    assert_eq!(packet(&r, 1), bytes(PACKET));
    // An ARP packet passes untouched.
    assert_eq!(r.r0(2), [2]);
    assert!(r.printk_of_event(2).is_empty());
}

const ADJ_OBJ: &str = "testdata/obj/rt_netadj.bpf.o";
const ADJ_TRACE: &str = "testdata/traces/rt_netadj.json";

#[test]
fn skb_load_and_store_bytes() {
    let r = run(ADJ_OBJ, ADJ_TRACE, &["--prog", "rt_skb_bytes"]);
    assert_eq!(
        r.printk_of_event(0),
        [
            "skb load=0 src=2:1",
            // skb_header_pointer fails past skb->len: -EFAULT and the buffer zeroed
            "skb load past the end=-14 zeroed=1",
            // flags beyond BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH: -EINVAL; a write
            // past the end cannot be made writable: -EFAULT
            "skb store=0 bad flags=-22 past the end=-14",
        ]
    );
    let p = packet(&r, 0);
    assert_eq!(&p[..6], &[2, 0, 0, 0, 0, 0x99]);
    assert_eq!(&p[6..], &bytes(PACKET)[6..]);
    assert_eq!(r.r0(0), [0]);
}

#[test]
fn xdp_adjust_head_and_tail() {
    let r = run(ADJ_OBJ, ADJ_TRACE, &["--prog", "rt_xdp_adjust"]);
    assert_eq!(
        r.printk_of_event(1),
        [
            // 4 bytes of headroom taken; moving data past data_end - ETH_HLEN: -EINVAL
            "xdp adjust head=0 too far=-22 len=52",
            // shrink by 2, grow by 8 (zeroed); below ETH_HLEN: -EINVAL
            "xdp adjust tail shrink=0 extend=0 too short=-22",
        ]
    );
    let mut want = vec![0xde, 0xad, 0xbe, 0xef];
    want.extend(&bytes(PACKET)[..40]);
    want.extend([0; 8]);
    assert_eq!(packet(&r, 1), want);
    assert_eq!(r.r0(1), [2]);
}

/// What the simulator does with rt_netadj today: it refuses to load it, naming the
/// helper (so the two tests above can't pass by accident).
#[test]
fn objects_calling_unregistered_helpers_are_refused() {
    let engine = ebpf_sim::engine::Engine::Interp;
    let (_, r) = run_on(engine, ADJ_OBJ, ADJ_TRACE, &[]);
    if r.success {
        // The helpers exist now: the ignored tests above should run.
        return;
    }
    assert!(r.stderr.contains("call to unknown helper"), "{}", r.stderr);
}
