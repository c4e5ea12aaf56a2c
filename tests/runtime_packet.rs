//! Packet helpers on both engines: bpf_xdp_adjust_head/tail/meta (bounds as the kernel checks
//! them, the packet the program leaves), bpf_skb_load_bytes/store_bytes, bpf_csum_diff,
//! bpf_redirect (recorded, TC_ACT_REDIRECT returned).

use std::process::Command;

fn run(engine: &str) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_ebpf-sim"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "run",
            "testdata/obj/rt_packet.bpf.o",
            "--trace",
            "testdata/traces/rt_packet.json",
            "--json",
            "--engine",
            engine,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn packet_helpers_follow_the_kernel() {
    let records = run("interp");
    assert_eq!(records, run("jit"), "engines differ");
    let printk: Vec<&str> = records
        .iter()
        .filter(|r| r["type"] == "printk")
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    // -1000 would move data before the buffer: -EINVAL; +14 strips Ethernet; -4 trims.
    assert_eq!(printk[0], "head -22 0 tail 0 len 40 first 45");
    // 8 bytes of metadata are fine; a size that is not a multiple of 4 is refused with
    // -EACCES (xdp_metalen_invalid).
    assert_eq!(printk[1], "meta 0 -13 size 8");
    // EtherType 0x0800 read as a little-endian u16; 10000 is past the packet: -EFAULT.
    assert_eq!(printk[2], "proto 8 load 0 0 store 0 far -14");
    // Folded to 16 bits, as the kernel (6.13 and later) returns it.
    assert_eq!(printk[3], "csum ffc0");
    let returns: Vec<&serde_json::Value> =
        records.iter().filter(|r| r["type"] == "return").collect();
    assert_eq!(returns[0]["r0"], 2);
    assert_eq!(
        returns[0]["packet"],
        "4500002800010000400600000a0000010a0000029c40005000000001000000005002200000000000"
    );
    // The TTL (byte 22) became 1.
    let skb_packet = returns[1]["packet"].as_str().unwrap();
    assert_eq!(&skb_packet[44..46], "01");
    assert_eq!(returns[1]["r0"], 7, "TC_ACT_REDIRECT");
    let redirect = records.iter().find(|r| r["type"] == "redirect").unwrap();
    assert_eq!(redirect["ifindex"], 7);
}
