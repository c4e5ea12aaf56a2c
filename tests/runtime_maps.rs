//! Every data map type, run through the simulator by testdata/src/rt_maps.bpf.c on
//! testdata/traces/rt_maps.json, on both engines; each assertion is the kernel's
//! semantics (kernel/bpf/{hashtab,arraymap,bpf_lru_list,lpm_trie,bloom_filter,
//! queue_stack_maps,map_in_map}.c).

mod runtime_common;

use std::sync::OnceLock;

use runtime_common::{le, run, Run};

const OBJ: &str = "testdata/obj/rt_maps.bpf.o";
const TRACE: &str = "testdata/traces/rt_maps.json";

/// Event indices in rt_maps.json.
mod ev {
    pub const HASH: u64 = 0;
    pub const ARRAY: u64 = 1;
    pub const PERCPU: [u64; 4] = [2, 3, 4, 5];
    pub const LRU: u64 = 6;
    pub const LRU_CPU1: u64 = 7;
    pub const LPM: u64 = 8;
    pub const BLOOM: u64 = 9;
    pub const QUEUE: u64 = 10;
    pub const IN_MAPS: u64 = 11;
    pub const FOR_EACH: u64 = 12;
    pub const GLOBAL: [u64; 3] = [13, 14, 15];
}

/// One run (on every engine) shared by the tests.
fn maps_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let r = run(OBJ, TRACE, &[]);
        r.assert_clean();
        r
    })
}

fn lines(r: &Run, event: u64) -> Vec<String> {
    r.printk_of_event(event)
}

#[test]
fn every_program_returns_zero() {
    let r = maps_run();
    let returns = r.returns();
    assert_eq!(returns.len(), 16, "{returns:?}");
    assert!(returns.iter().all(|(_, _, r0)| *r0 == 0), "{returns:?}");
}

#[test]
fn hash_update_flags_errors_and_max_entries() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::HASH),
        [
            // BPF_ANY creates; BPF_NOEXIST on an existing key is -EEXIST; BPF_EXIST replaces
            "hash any=0 noexist=-17 exist=0",
            // BPF_EXIST on a missing key is -ENOENT; BPF_F_LOCK without a spin lock and
            // unknown flags are -EINVAL
            "hash missing-exist=-2 lock=-22 badflags=-22",
            "hash lookup 1=102 2=-1",
            // 4 of 4 entries: a new key is -E2BIG with any flag; an existing one updates
            "hash full: new any=-7 new noexist=-7 existing=0",
            // delete, then -ENOENT; the freed element takes a new key
            "hash delete=0 again=-2 insert=0",
            "hash lookup 3=-1 4=44 5=50",
        ]
    );
    let mut entries: Vec<(u64, u64)> = r
        .map("hash")
        .iter()
        .map(|(k, v)| (le(k), le(&v[0])))
        .collect();
    entries.sort();
    assert_eq!(entries, [(1, 102), (2, 20), (4, 44), (5, 50)]);
    // The full map is named in a warning, with the event and the program.
    let full: Vec<&serde_json::Value> = r
        .records
        .iter()
        .filter(|w| w["type"] == "warning")
        .filter(|w| {
            w["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("map hash is full (4 entries)"))
        })
        .collect();
    assert_eq!(full.len(), 2, "one warning per refused update");
    assert_eq!(full[0]["program"], "rt_hash");
}

#[test]
fn array_flags_range_and_in_place_values() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::ARRAY),
        [
            // every element exists: BPF_NOEXIST is always -EEXIST
            "array any=0 noexist=-17 exist=0",
            // index >= max_entries: -E2BIG; array elements can't be deleted: -EINVAL
            "array out-of-range=-7 delete=-22 badflags=-22",
            "array [0]=5 [2]=24 [4] found=0",
        ]
    );
    let values: Vec<u64> = r.map("array").iter().map(|(_, v)| le(&v[0])).collect();
    assert_eq!(values, [5, 0, 24, 0]);
}

#[test]
fn per_cpu_values_follow_the_simulated_cpu() {
    let r = maps_run();
    let got: Vec<Vec<String>> = ev::PERCPU.iter().map(|&e| lines(r, e)).collect();
    assert_eq!(
        got,
        [
            [
                "percpu cpu=0 count=1 hash=10",
                "percpu update=0 noexist=-17"
            ],
            [
                "percpu cpu=0 count=2 hash=10",
                "percpu update=0 noexist=-17"
            ],
            [
                "percpu cpu=1 count=1 hash=20",
                "percpu update=0 noexist=-17"
            ],
            [
                "percpu cpu=3 count=1 hash=40",
                "percpu update=0 noexist=-17"
            ],
        ]
    );
    // cpu 0 ran twice, cpus 1 and 3 once, cpu 2 never: each CPU has its own counter.
    assert_eq!(r.values_u32_key("pcpu_array", 0).unwrap(), [2, 1, 0, 1]);
    // A program's update writes only its CPU's copy; a new element's others are zero.
    assert_eq!(r.values_u32_key("pcpu_hash", 7).unwrap(), [10, 20, 0, 40]);
}

#[test]
fn lru_evicts_the_least_recently_used_key() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::LRU),
        [
            // an LRU map never refuses a new key: it evicts
            "lru insert into full map=0",
            // keys 1..4 then 5 into 4 entries: untouched, key 1 (the oldest) goes
            // (bits 2..5 = 0x3c); after a lookup of key 1, key 2 goes (0x3a)
            "lru keys untouched=0x3c touched=0x3a percpu=0x3a",
        ]
    );
    let keys = |m: &str| {
        let mut k: Vec<u64> = r.map(m).iter().map(|(k, _)| le(k)).collect();
        k.sort();
        k
    };
    assert_eq!(keys("lru_untouched"), [2, 3, 4, 5]);
    assert_eq!(keys("lru_touched"), [1, 3, 4, 5]);
    assert_eq!(keys("lru_pcpu"), [1, 3, 4, 5]);
}

#[test]
fn lru_percpu_values_are_per_cpu() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::LRU_CPU1),
        [
            // BPF_EXIST updates cpu 1's copy in place; the evicted key 2 is -ENOENT
            "lru percpu cpu=1 exist=0 missing=-2",
            // cpu 1 sees its own copy: 111 for key 1, 0 for key 3 (set on cpu 0)
            "lru percpu cpu=1 value 1=111 3=0",
        ]
    );
    assert_eq!(r.values_u32_key("lru_pcpu", 1).unwrap(), [10, 111, 0, 0]);
    assert_eq!(r.values_u32_key("lru_pcpu", 3).unwrap(), [30, 0, 0, 0]);
}

#[test]
fn lpm_trie_picks_the_longest_prefix() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::LPM),
        [
            "lpm noexist=-17 exist=0",
            // 10.1.2.3 matches /8, /16 and /24: the /24 wins; 10.1.9.9 the /16 (replaced
            // by BPF_EXIST with 1616); 10.9.9.9 only the /8
            "lpm 10.1.2.3=24 10.1.9.9=1616 10.9.9.9=8",
            "lpm delete=0 again=-2",
            // without the /24, 10.1.2.3 falls back to the /16; 11.x matches nothing
            "lpm after delete 10.1.2.3=1616 11.1.2.3=-1",
        ]
    );
    // Dumped in the kernel's postorder: the more specific prefix first.
    let entries: Vec<(&str, u64)> = r
        .map("lpm")
        .iter()
        .map(|(k, v)| (k.as_str(), le(&v[0])))
        .collect();
    assert_eq!(
        entries,
        [("100000000a010000", 1616), ("080000000a000000", 8)]
    );
}

#[test]
fn bloom_filter_membership() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::BLOOM),
        [
            // bloom filters take BPF_ANY only
            "bloom push=0 badflags=-22",
            // peek tests membership: 0 for values pushed, -ENOENT for one that is not
            "bloom has 2=0 3=0 99=-2",
        ]
    );
}

#[test]
fn queue_and_stack_order_capacity_and_flags() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::QUEUE),
        [
            // full at 3: -E2BIG, unless BPF_EXIST, which drops the oldest value;
            // BPF_NOEXIST is -EINVAL
            "queue full=-7 exist=0 noexist=-22",
            // 1 was dropped: FIFO from 2
            "queue peek=2 pop=2 pop=3",
            "queue last=4 empty pop=-2 peek=-2",
            "stack full=-7 exist=0 noexist=-22",
            // LIFO from 4; the dropped oldest value was 1
            "stack peek=4 pop=4 pop=3",
            "stack last=2 empty pop=-2 peek=-2",
        ]
    );
    let vals = |m: &str| -> Vec<u64> { r.map(m).iter().map(|(_, v)| le(&v[0])).collect() };
    // 7 then 8 pushed: the queue pops 7 first, the stack 8.
    assert_eq!(vals("queue"), [7, 8]);
    assert_eq!(vals("stack"), [8, 7]);
}

#[test]
fn maps_of_maps_reach_their_inner_maps() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::IN_MAPS),
        ["maps of maps: array slots=0x5 hash 1=1 0=0"]
    );
    assert_eq!(r.values_u32_key("inner0", 0).unwrap(), [1]);
    assert_eq!(r.values_u32_key("inner1", 0).unwrap(), [3]);
    assert_eq!(r.values_u32_key("inner2", 1).unwrap(), [77]);
    assert_eq!(r.map("outer_array").len(), 2);
    assert_eq!(r.map("outer_hash").len(), 1);
}

#[test]
fn for_each_map_elem_visits_counts_and_stops() {
    let r = maps_run();
    assert_eq!(
        lines(r, ev::FOR_EACH),
        [
            // 4 hash elements: 102 + 20 + 44 + 50
            "for_each hash n=4 count=4 sum=216",
            // the callback returned 1 on the 2nd element: the helper returns 2
            "for_each array stop at 2: n=2 sum=5",
            // a per-CPU array's callback sees this CPU's value (2 runs on cpu 0)
            "for_each percpu cpu=0 n=1 sum=2",
            "for_each badflags=-22",
        ]
    );
}

#[test]
fn global_data_sections_are_maps() {
    let r = maps_run();
    let got: Vec<Vec<String>> = ev::GLOBAL.iter().map(|&e| lines(r, e)).collect();
    assert_eq!(
        got,
        [
            ["global ro=feed data=42 bss[cpu]=1"],
            ["global ro=feed data=44 bss[cpu]=2"],
            ["global ro=feed data=46 bss[cpu]=1"],
        ]
    );
    // .data starts from its initial value, .bss from zeros; both persist across events.
    assert_eq!(r.values_u32_key("rt_maps.data", 0).unwrap(), [46]);
    let bss = &r.map("rt_maps.bss")[0].1[0];
    assert_eq!(bss, "02000000000000000100000000000000");
    // .rodata holds the constant (and the printk formats)
    assert!(r.map("rt_maps.rodata")[0].1[0].contains("edfe0000"));
}
