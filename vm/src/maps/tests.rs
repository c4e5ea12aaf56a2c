//! Unit tests per map type. Expected orders and sets marked "kernel 6.18" were recorded by
//! running the same operations through bpf(2) on a 6.18 kernel (2 possible CPUs, the
//! process pinned to CPU 0, `BPF_F_ZERO_SEED` maps).

use super::flags::*;
use super::map_type::*;
use super::*;

fn k32(i: u32) -> Vec<u8> {
    i.to_le_bytes().to_vec()
}

fn u32_of(b: &[u8]) -> u32 {
    u32::from_le_bytes(b[..4].try_into().unwrap())
}

fn new(t: u32, ks: u32, vs: u32, max: u32) -> Map {
    Map::new(MapSpec::new("m", t, ks, vs, max), 1).unwrap()
}

fn errno<T: std::fmt::Debug>(r: Result<T, MapError>) -> i32 {
    r.unwrap_err().errno()
}

fn all_keys(m: &Map) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    while let Ok(k) = m.next_key(cur.as_deref()) {
        keys.push(k.clone());
        cur = Some(k);
        assert!(keys.len() <= 1 << 20, "next_key loops");
    }
    keys
}

fn sorted_u32_keys(m: &Map) -> Vec<u32> {
    let mut v: Vec<u32> = all_keys(m).iter().map(|k| u32_of(k)).collect();
    v.sort();
    v
}

// ---------------------------------------------------------------- creation

#[test]
fn creation_checks_match_the_kernel() {
    // (type, key, value, max, flags, map_extra) -> errno (0 = ok); kernel 6.18.
    let cases: &[(u32, u32, u32, u32, u32, u64, i32)] = &[
        (HASH, 4, 8, 0, 0, 0, 22),
        (HASH, 0, 8, 1, 0, 0, 22),
        (HASH, 4, 0, 1, 0, 0, 22),
        (HASH, 4, 8, 1, BPF_F_NO_COMMON_LRU, 0, 22),
        (HASH, 4, 8, 1, BPF_F_MMAPABLE, 0, 22),
        (HASH, 4, 8, 1, BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG, 0, 22),
        (HASH, 4, 8, 1, BPF_F_RDONLY | BPF_F_WRONLY, 0, 22),
        (HASH, 4, 8, 1, 0, 1, 22),
        (HASH, 4, 4 << 20, 1, 0, 0, 7),
        (HASH, 4, 8, 1, BPF_F_NO_PREALLOC | BPF_F_ZERO_SEED, 0, 0),
        (LRU_HASH, 4, 8, 1, BPF_F_NO_PREALLOC, 0, 524),
        (LRU_PERCPU_HASH, 4, 8, 3, BPF_F_NUMA_NODE, 0, 22),
        (PERCPU_HASH, 4, 40000, 2, 0, 0, 7),
        (PERCPU_HASH, 4, 32768, 2, 0, 0, 0),
        (PERCPU_ARRAY, 4, 32769, 2, 0, 0, 7),
        (ARRAY, 8, 4, 1, 0, 0, 22),
        (ARRAY, 4, 0, 1, 0, 0, 22),
        (ARRAY, 4, 4, 0, 0, 0, 22),
        (ARRAY, 4, 4, 1, BPF_F_MMAPABLE, 0, 0),
        (PERCPU_ARRAY, 4, 4, 1, BPF_F_MMAPABLE, 0, 22),
        (ARRAY, 4, 4, 1, BPF_F_NO_PREALLOC, 0, 22),
        (ARRAY, 4, 4, 1, BPF_F_PRESERVE_ELEMS, 0, 22),
        (PERF_EVENT_ARRAY, 4, 4, 2, BPF_F_PRESERVE_ELEMS, 0, 0),
        (PROG_ARRAY, 4, 8, 1, 0, 0, 22),
        (PROG_ARRAY, 4, 4, 1, BPF_F_RDONLY_PROG, 0, 22),
        (CGROUP_ARRAY, 4, 4, 1, 0, 0, 0),
        (QUEUE, 4, 4, 1, 0, 0, 22),
        (QUEUE, 0, 4, 0, 0, 0, 22),
        (STACK, 0, 0, 1, 0, 0, 22),
        (QUEUE, 0, 4, 1, BPF_F_NO_PREALLOC, 0, 22),
        (STACK, 0, 8, 10, BPF_F_RDONLY_PROG, 0, 0),
        (LPM_TRIE, 8, 4, 1, 0, 0, 22),
        (LPM_TRIE, 4, 4, 1, BPF_F_NO_PREALLOC, 0, 22),
        (LPM_TRIE, 260, 4, 1, BPF_F_NO_PREALLOC, 0, 0),
        (LPM_TRIE, 261, 4, 1, BPF_F_NO_PREALLOC, 0, 22),
        (LPM_TRIE, 8, 0, 1, BPF_F_NO_PREALLOC, 0, 22),
        (BLOOM_FILTER, 0, 4, 1, 0, 16, 22),
        (BLOOM_FILTER, 4, 4, 1, 0, 0, 22),
        (BLOOM_FILTER, 0, 4, 1, 0, 15, 0),
        (BLOOM_FILTER, 0, 4, 1, BPF_F_NO_PREALLOC, 0, 22),
        (STACK_TRACE, 4, 12, 1, 0, 0, 22),
        (STACK_TRACE, 4, 128 * 8, 1, 0, 0, 22),
        (STACK_TRACE, 4, 127 * 8, 1, 0, 0, 0),
        (STACK_TRACE, 8, 8, 1, 0, 0, 22),
        (STACK_TRACE, 4, 64, 1, BPF_F_STACK_BUILD_ID, 0, 0),
        (STACK_TRACE, 4, 48, 1, BPF_F_STACK_BUILD_ID, 0, 22),
        (RINGBUF, 0, 0, 4096, 0, 0, 0),
        (RINGBUF, 0, 0, 4095, 0, 0, 22),
        (RINGBUF, 0, 0, 2048, 0, 0, 22),
        (RINGBUF, 4, 0, 4096, 0, 0, 22),
        (RINGBUF, 0, 0, 8192, BPF_F_RDONLY_PROG, 0, 22),
        (0, 4, 4, 1, 0, 0, 22),
        (99, 4, 4, 1, 0, 0, 22),
    ];
    for &(t, ks, vs, max, f, extra, want) in cases {
        let spec = MapSpec::new("c", t, ks, vs, max)
            .with_flags(f)
            .with_map_extra(extra);
        let got = match Map::new(spec, 2) {
            Ok(_) => 0,
            Err(e) => {
                assert!(e.to_string().contains("map `c`"), "{e}");
                e.errno()
            }
        };
        assert_eq!(
            got, want,
            "type {t} key {ks} value {vs} max {max} flags {f:#x} extra {extra}"
        );
    }
}

#[test]
fn map_in_map_creation() {
    let inner = MapSpec::new("inner", ARRAY, 4, 4, 1);
    assert_eq!(
        errno(Map::new(MapSpec::new("o", ARRAY_OF_MAPS, 4, 4, 2), 1)),
        9
    );
    for (t, ks, vs, want) in [
        (ARRAY_OF_MAPS, 4, 4, 0),
        (ARRAY_OF_MAPS, 4, 8, 22),
        (HASH_OF_MAPS, 4, 4, 0),
        (HASH_OF_MAPS, 8, 8, 22),
    ] {
        let r = Map::new(MapSpec::new("o", t, ks, vs, 2).with_inner(inner.clone()), 1);
        assert_eq!(r.err().map_or(0, |e| e.errno()), want, "{t} {ks} {vs}");
    }
    let of_prog = MapSpec::new("o", ARRAY_OF_MAPS, 4, 4, 2)
        .with_inner(MapSpec::new("p", PROG_ARRAY, 4, 4, 1));
    assert_eq!(errno(Map::new(of_prog, 1)), MapError::ENOTSUPP);
    let nested = MapSpec::new("o", HASH_OF_MAPS, 4, 4, 2)
        .with_inner(MapSpec::new("i", ARRAY_OF_MAPS, 4, 4, 1).with_inner(inner.clone()));
    assert_eq!(errno(Map::new(nested, 1)), 22);
}

#[test]
fn too_large_maps_and_no_cpus() {
    let huge = MapSpec::new("h", ARRAY, 4, 1 << 20, 1 << 20);
    assert_eq!(errno(Map::new(huge, 1)), MapError::ENOMEM);
    let percpu = MapSpec::new("p", PERCPU_HASH, 4, 32768, 1 << 16);
    assert_eq!(errno(Map::new(percpu, 4)), MapError::ENOMEM);
    let lru = MapSpec::new("l", LRU_HASH, 4, 8, 1 << 27);
    assert_eq!(errno(Map::new(lru, 1)), MapError::ENOMEM);
    assert_eq!(errno(Map::new(MapSpec::new("a", ARRAY, 4, 4, 1), 0)), 22);
    // Types the kernel has but the simulator doesn't.
    assert_eq!(
        errno(Map::new(MapSpec::new("s", 15, 4, 4, 1), 1)),
        MapError::EOPNOTSUPP
    );
}

#[test]
fn errors_name_the_map_and_carry_errnos() {
    let mut m = Map::new(MapSpec::new("counters", HASH, 4, 8, 1), 1).unwrap();
    let e = m.delete(&k32(1)).unwrap_err();
    assert_eq!(e.errno(), MapError::ENOENT);
    assert!(e.to_string().starts_with("map `counters`: "), "{e}");
    assert_eq!(e.message(), e.to_string());
    m.update(&k32(1), &[0; 8], BPF_ANY, 0).unwrap();
    let e = m.update(&k32(2), &[0; 8], BPF_ANY, 0).unwrap_err();
    assert_eq!(
        e,
        MapError::TooBig("map `counters`: the map is full (1 entries)".into())
    );
}

// ---------------------------------------------------------------- hash

#[test]
fn hash_update_flags_and_errnos() {
    let mut m = new(HASH, 4, 8, 2);
    let v = [7u8; 8];
    assert_eq!(errno(m.update(&k32(1), &v, BPF_EXIST, 0)), MapError::ENOENT);
    m.update(&k32(1), &v, BPF_NOEXIST, 0).unwrap();
    assert_eq!(
        errno(m.update(&k32(1), &v, BPF_NOEXIST, 0)),
        MapError::EEXIST
    );
    m.update(&k32(1), &[8; 8], BPF_EXIST, 0).unwrap();
    assert_eq!(m.lookup_user(&k32(1)).unwrap(), vec![8; 8]);
    for bad in [3, 8, 1 << 32] {
        assert_eq!(errno(m.update(&k32(1), &v, bad, 0)), MapError::EINVAL);
    }
    assert_eq!(
        errno(m.update(&k32(1), &v, BPF_F_LOCK, 0)),
        MapError::EINVAL
    );
    m.update(&k32(2), &v, BPF_ANY, 0).unwrap();
    // Full: new keys are E2BIG, existing keys still update.
    assert_eq!(errno(m.update(&k32(3), &v, BPF_ANY, 0)), MapError::E2BIG);
    m.update(&k32(2), &[9; 8], BPF_ANY, 0).unwrap();
    assert_eq!(m.len(), 2);
    assert_eq!(errno(m.delete(&k32(3))), MapError::ENOENT);
    m.delete(&k32(2)).unwrap();
    m.update(&k32(3), &v, BPF_ANY, 0).unwrap();
    // Wrong sizes are EINVAL, never panics; lookups just miss.
    assert_eq!(errno(m.update(&[1, 2], &v, BPF_ANY, 0)), MapError::EINVAL);
    assert_eq!(errno(m.update(&k32(1), &[1], BPF_ANY, 0)), MapError::EINVAL);
    assert_eq!(errno(m.delete(&[])), MapError::EINVAL);
    assert_eq!(m.lookup(&[1, 2, 3], 0), None);
    assert_eq!(m.lookup(&k32(1), 5), None);
    assert_eq!(errno(m.update(&k32(1), &v, BPF_ANY, 1)), MapError::EINVAL);
    assert_eq!(errno(m.lookup_user(&k32(9))), MapError::ENOENT);
}

#[test]
fn hash_lookup_offsets_point_at_the_value() {
    let mut m = new(HASH, 4, 12, 4);
    m.update(&k32(5), &[1; 12], BPF_ANY, 0).unwrap();
    m.update(&k32(6), &[2; 12], BPF_ANY, 0).unwrap();
    let a = m.lookup(&k32(5), 0).unwrap();
    let b = m.lookup(&k32(6), 0).unwrap();
    assert_eq!(a % 8, 0);
    assert_eq!(m.storage().to_vec(a, 12).unwrap(), vec![1; 12]);
    assert_eq!(m.storage().to_vec(b, 12).unwrap(), vec![2; 12]);
    // A program writing through the pointer is seen by user space.
    m.storage().write(a, &[3; 4]).unwrap();
    assert_eq!(&m.lookup_user(&k32(5)).unwrap()[..4], &[3; 4]);
}

#[test]
fn hash_storage_offsets_are_stable_and_deterministic() {
    let run = || {
        let mut m = new(HASH, 4, 8, 8);
        let mut offs = Vec::new();
        for i in 0..8 {
            m.update(&k32(i), &[i as u8; 8], BPF_ANY, 0).unwrap();
        }
        let before: Vec<_> = (0..8).map(|i| m.lookup(&k32(i), 0).unwrap()).collect();
        m.delete(&k32(3)).unwrap();
        m.delete(&k32(5)).unwrap();
        m.update(&k32(10), &[10; 8], BPF_ANY, 0).unwrap();
        m.update(&k32(11), &[11; 8], BPF_ANY, 0).unwrap();
        // Other keys never move when elements come and go.
        for i in [0, 1, 2, 4, 6, 7] {
            assert_eq!(m.lookup(&k32(i), 0), Some(before[i as usize]));
        }
        // Freed slots are reused, last freed first.
        assert_eq!(m.lookup(&k32(10), 0), Some(before[5]));
        assert_eq!(m.lookup(&k32(11), 0), Some(before[3]));
        offs.extend(before);
        offs.push(m.lookup(&k32(10), 0).unwrap());
        offs
    };
    assert_eq!(run(), run());
}

#[test]
fn hash_update_of_existing_key_replaces_the_element_like_the_kernel() {
    // The kernel's preallocated hash writes the new value into the CPU's spare element and
    // keeps the old one as the next spare: an old pointer sees the old value.
    let mut m = Map::new(MapSpec::new("h", HASH, 4, 8, 2), 2).unwrap();
    m.update(&k32(1), &[1; 8], BPF_ANY, 0).unwrap();
    let old = m.lookup(&k32(1), 0).unwrap();
    m.update(&k32(1), &[2; 8], BPF_ANY, 0).unwrap();
    let new = m.lookup(&k32(1), 0).unwrap();
    assert_ne!(old, new);
    assert_eq!(m.storage().to_vec(old, 8).unwrap(), vec![1; 8]);
    assert_eq!(m.storage().to_vec(new, 8).unwrap(), vec![2; 8]);
    // CPU 0's spare is now `old`: the next replacing update on CPU 0 lands there.
    m.update(&k32(1), &[3; 8], BPF_ANY, 0).unwrap();
    assert_eq!(m.lookup(&k32(1), 0), Some(old));
    // Each CPU has its own spare.
    m.update(&k32(1), &[4; 8], BPF_ANY, 1).unwrap();
    let on_cpu1 = m.lookup(&k32(1), 0).unwrap();
    assert!(on_cpu1 != old && on_cpu1 != new);
    assert_eq!(m.storage().len(), (2 + 2) * 8);
}

#[test]
fn hash_bpf_f_lock_updates_in_place_around_the_lock() {
    let mut m = new(HASH, 4, 16, 4);
    assert_eq!(
        m.set_spin_lock(Some(2)).unwrap_err().errno(),
        MapError::EINVAL
    );
    m.set_spin_lock(Some(0)).unwrap();
    m.update(&k32(1), &[1; 16], BPF_ANY, 0).unwrap();
    let off = m.lookup(&k32(1), 0).unwrap();
    // A program takes the lock...
    m.storage().write_uint(off, 4, 1).unwrap();
    m.update(&k32(1), &[2; 16], BPF_F_LOCK, 0).unwrap();
    assert_eq!(
        m.lookup(&k32(1), 0),
        Some(off),
        "BPF_F_LOCK writes in place"
    );
    assert_eq!(
        m.storage().read_uint(off, 4).unwrap(),
        1,
        "lock word untouched"
    );
    assert_eq!(m.storage().to_vec(off + 4, 12).unwrap(), vec![2; 12]);
    // User space reads the lock as zero.
    let v = m.lookup_user(&k32(1)).unwrap();
    assert_eq!(&v[..4], &[0; 4]);
    assert_eq!(
        errno(m.update(&k32(1), &[2; 16], BPF_F_LOCK | BPF_NOEXIST, 0)),
        MapError::EEXIST
    );
    assert_eq!(
        errno(m.update(&k32(2), &[2; 16], BPF_F_LOCK | BPF_EXIST, 0)),
        MapError::ENOENT
    );
    m.update(&k32(2), &[5; 16], BPF_F_LOCK, 0).unwrap();
    assert_eq!(&m.lookup_user(&k32(2)).unwrap()[4..], &[5; 12]);
    let mut lru = new(LRU_HASH, 4, 8, 4);
    assert_eq!(
        lru.set_spin_lock(Some(0)).unwrap_err().errno(),
        MapError::EOPNOTSUPP
    );
}

#[test]
fn hash_next_key_order_is_the_kernels_zero_seed_order() {
    // kernel 6.18: HASH max 8, BPF_F_ZERO_SEED, u32 keys 1..=8 inserted in order.
    let mut m = new(HASH, 4, 8, 8);
    for i in 1..=8 {
        m.update(&k32(i), &[0; 8], BPF_ANY, 0).unwrap();
    }
    let order: Vec<u32> = all_keys(&m).iter().map(|k| u32_of(k)).collect();
    assert_eq!(order, vec![4, 7, 2, 1, 8, 6, 5, 3]);
    // kernel 6.18: 6-byte keys (jhash, not jhash2), max 5.
    let mut m = new(HASH, 6, 2, 5);
    for i in 1..=5u8 {
        m.update(&[i, 0, 0, 0, 0, i], &[0; 2], BPF_ANY, 0).unwrap();
    }
    let order: Vec<u8> = all_keys(&m).iter().map(|k| k[0]).collect();
    assert_eq!(order, vec![2, 1, 4, 3, 5]);
}

#[test]
fn hash_next_key_covers_every_key_once() {
    let mut m = new(HASH, 8, 4, 100);
    let mut keys: Vec<Vec<u8>> = (0..100u64)
        .map(|i| (i * 7919).to_le_bytes().to_vec())
        .collect();
    for k in &keys {
        m.update(k, &[1; 4], BPF_ANY, 0).unwrap();
    }
    let mut got = all_keys(&m);
    // entries() lists the same keys in the same order.
    let entry_keys: Vec<_> = m.entries().into_iter().map(|e| e.0).collect();
    assert_eq!(entry_keys, got);
    got.sort();
    keys.sort();
    assert_eq!(got, keys);
    // A key not in the map restarts from the first key, like the kernel.
    assert_eq!(
        m.next_key(Some(&[0xff; 8])).unwrap(),
        m.next_key(None).unwrap()
    );
    assert_eq!(errno(m.next_key(Some(&[1]))), MapError::EINVAL);
    let empty = new(HASH, 4, 4, 4);
    assert_eq!(errno(empty.next_key(None)), MapError::ENOENT);
}

#[test]
fn hash_lookup_and_delete() {
    let mut m = new(HASH, 4, 4, 4);
    m.update(&k32(1), &[1, 2, 3, 4], BPF_ANY, 0).unwrap();
    assert_eq!(m.lookup_and_delete(&k32(1), 0).unwrap(), vec![1, 2, 3, 4]);
    assert_eq!(errno(m.lookup_and_delete(&k32(1), 0)), MapError::ENOENT);
    assert_eq!(errno(m.lookup_and_delete(&k32(1), 8)), MapError::EINVAL);
    assert_eq!(
        errno(m.lookup_and_delete(&k32(1), BPF_F_LOCK)),
        MapError::EINVAL
    );
    let mut a = new(ARRAY, 4, 4, 4);
    assert_eq!(errno(a.lookup_and_delete(&k32(1), 0)), MapError::ENOTSUPP);
}

#[test]
fn percpu_hash_keeps_cpus_apart() {
    let mut m = Map::new(MapSpec::new("p", PERCPU_HASH, 4, 4, 4), 3).unwrap();
    assert_eq!(m.value_stride(), 8);
    m.update(&k32(1), &[1; 4], BPF_ANY, 1).unwrap();
    let offs: Vec<_> = (0..3).map(|c| m.lookup(&k32(1), c).unwrap()).collect();
    assert_eq!(offs[1] - offs[0], 8);
    assert_eq!(offs[2] - offs[1], 8);
    assert_eq!(m.lookup(&k32(1), 3), None);
    // A program's update sets its CPU's copy; a new element's other copies are zero.
    assert_eq!(
        m.lookup_user(&k32(1)).unwrap(),
        [[0u8; 8], [1, 1, 1, 1, 0, 0, 0, 0], [0; 8]].concat()
    );
    // In place: the offsets don't change.
    m.update(&k32(1), &[2; 4], BPF_EXIST, 2).unwrap();
    assert_eq!(m.lookup(&k32(1), 2), Some(offs[2]));
    assert_eq!(m.storage().to_vec(offs[2], 4).unwrap(), vec![2; 4]);
    assert_eq!(m.storage().to_vec(offs[1], 4).unwrap(), vec![1; 4]);
    // User space writes all CPUs at once, 8 bytes each.
    let all: Vec<u8> = (0..24).collect();
    m.update_all_cpus(&k32(1), &all, BPF_ANY).unwrap();
    assert_eq!(m.lookup_user(&k32(1)).unwrap(), all);
    assert_eq!(
        m.storage().to_vec(offs[1], 8).unwrap(),
        (8..16).collect::<Vec<u8>>()
    );
    assert_eq!(errno(m.update_all_cpus(&k32(1), &all[..16], BPF_ANY)), 22);
    assert_eq!(errno(m.update_all_cpus(&k32(1), &all, BPF_F_LOCK)), 22);
    assert_eq!(
        m.entries(),
        vec![(
            k32(1),
            vec![vec![0, 1, 2, 3], vec![8, 9, 10, 11], vec![16, 17, 18, 19]]
        )]
    );
    for i in 2..=4 {
        m.update(&k32(i), &[0; 4], BPF_ANY, 0).unwrap();
    }
    assert_eq!(
        errno(m.update(&k32(5), &[0; 4], BPF_ANY, 0)),
        MapError::E2BIG
    );
}

#[test]
fn hash_of_maps_stores_ids() {
    let inner = MapSpec::new("inner", ARRAY, 4, 4, 1);
    let mut m = Map::new(
        MapSpec::new("o", HASH_OF_MAPS, 4, 4, 2).with_inner(inner.clone()),
        1,
    )
    .unwrap();
    m.update(&k32(7), &42u32.to_le_bytes(), BPF_ANY, 0).unwrap();
    assert_eq!(m.inner_map_id(&k32(7)), Some(42));
    assert_eq!(m.object_id(&k32(7)), Some(42));
    assert_eq!(m.inner_map_id(&k32(8)), None);
    let off = m.lookup(&k32(7), 0).unwrap();
    assert_eq!(m.storage().read_uint(off, 4).unwrap(), 42);
    m.update(&k32(7), &43u32.to_le_bytes(), BPF_EXIST, 0)
        .unwrap();
    assert_eq!(m.lookup(&k32(7), 0), Some(off), "in place");
    assert_eq!(m.lookup_user(&k32(7)).unwrap(), 43u32.to_le_bytes());
    assert_eq!(errno(m.update(&k32(7), &[0; 4], BPF_NOEXIST, 0)), 17);
    assert_eq!(errno(m.update(&k32(7), &[0; 4], BPF_F_LOCK, 0)), 22);
    m.check_inner(&inner).unwrap();
    assert_eq!(errno(m.check_inner(&MapSpec::new("x", ARRAY, 4, 4, 2))), 22);
    assert_eq!(errno(m.check_inner(&MapSpec::new("x", HASH, 4, 4, 1))), 22);
    assert_eq!(errno(m.lookup_and_delete(&k32(7), 0)), MapError::ENOTSUPP);
}

// ---------------------------------------------------------------- LRU

#[test]
fn lru_evicts_like_the_kernel() {
    // kernel 6.18, 2 possible CPUs, everything on CPU 0: LRU_HASH max 8, keys 1..=8, a
    // program looks up 1 and 2, then 9..=12 are inserted.
    let mut m = Map::new(MapSpec::new("l", LRU_HASH, 4, 8, 8), 2).unwrap();
    for i in 1..=8 {
        m.update(&k32(i), &[i as u8; 8], BPF_ANY, 0).unwrap();
    }
    assert_eq!(sorted_u32_keys(&m), (1..=8).collect::<Vec<_>>());
    assert!(m.lookup(&k32(1), 0).is_some());
    assert!(m.lookup(&k32(2), 0).is_some());
    let expect: [&[u32]; 4] = [
        &[1, 2, 5, 6, 7, 8, 9],
        &[1, 2, 5, 6, 7, 8, 9, 10],
        &[1, 2, 7, 8, 9, 10, 11],
        &[1, 2, 7, 8, 9, 10, 11, 12],
    ];
    for (i, want) in (9..=12).zip(expect) {
        m.update(&k32(i), &[i as u8; 8], BPF_ANY, 0).unwrap();
        assert_eq!(sorted_u32_keys(&m), want, "after inserting {i}");
        assert!(m.len() <= 8);
    }
    // Values survived eviction of others.
    assert_eq!(m.lookup_user(&k32(1)).unwrap(), vec![1; 8]);
    assert_eq!(m.lookup_user(&k32(12)).unwrap(), vec![12; 8]);
}

#[test]
fn lru_flags_and_user_lookups() {
    let mut m = new(LRU_HASH, 4, 4, 4);
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_F_LOCK, 0)), 22);
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_EXIST, 0)), 2);
    m.update(&k32(1), &[1; 4], BPF_NOEXIST, 0).unwrap();
    assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_NOEXIST, 0)), 17);
    // An update moves the value to a fresh element (as the kernel does).
    let before = m.lookup(&k32(1), 0).unwrap();
    m.update(&k32(1), &[2; 4], BPF_EXIST, 0).unwrap();
    let after = m.lookup(&k32(1), 0).unwrap();
    assert_ne!(before, after);
    assert_eq!(m.lookup_user(&k32(1)).unwrap(), vec![2; 4]);
    // Never more than max_entries, inserting forever.
    for i in 0..1000 {
        m.update(&k32(i), &[0; 4], BPF_ANY, 0).unwrap();
        assert!(m.len() <= 4);
        assert!(m.lookup(&k32(i), 0).is_some(), "the newest key is present");
    }
    m.delete(&k32(999)).unwrap();
    assert_eq!(errno(m.delete(&k32(999))), 2);
}

#[test]
fn lru_referenced_elements_survive() {
    // A key looked up by a program between insertions outlives unreferenced ones.
    let mut m = new(LRU_HASH, 4, 8, 64);
    m.update(&k32(0), &[0; 8], BPF_ANY, 0).unwrap();
    for i in 1..2000 {
        assert!(m.lookup(&k32(0), 0).is_some(), "hot key evicted at {i}");
        m.update(&k32(i), &[0; 8], BPF_ANY, 0).unwrap();
    }
}

#[test]
fn lru_percpu_and_per_cpu_lists() {
    let mut m = Map::new(MapSpec::new("l", LRU_PERCPU_HASH, 4, 4, 4), 2).unwrap();
    m.update(&k32(1), &[1; 4], BPF_ANY, 1).unwrap();
    let v = m.lookup_user(&k32(1)).unwrap();
    assert_eq!(v, [[0u8; 8], [1, 1, 1, 1, 0, 0, 0, 0]].concat());
    let off = m.lookup(&k32(1), 1).unwrap();
    m.update(&k32(1), &[2; 4], BPF_ANY, 1).unwrap();
    assert_eq!(
        m.lookup(&k32(1), 1),
        Some(off),
        "per-CPU LRU values update in place"
    );
    for i in 2..100 {
        m.update_all_cpus(&k32(i), &[i as u8; 16], BPF_ANY).unwrap();
        assert!(m.len() <= 4);
    }
    // BPF_F_NO_COMMON_LRU rounds max_entries up to a multiple of the CPUs.
    let m = Map::new(
        MapSpec::new("n", LRU_HASH, 4, 4, 5).with_flags(BPF_F_NO_COMMON_LRU),
        4,
    )
    .unwrap();
    assert_eq!(m.spec().max_entries, 8);
    let mut m = Map::new(
        MapSpec::new("n", LRU_HASH, 4, 4, 4).with_flags(BPF_F_NO_COMMON_LRU),
        2,
    )
    .unwrap();
    // Each CPU evicts from its own list of 2.
    for i in 0..10 {
        m.update(&k32(i), &[0; 4], BPF_ANY, i % 2).unwrap();
        assert!(m.len() <= 4);
    }
}

// ---------------------------------------------------------------- arrays

#[test]
fn array_semantics() {
    let mut m = new(ARRAY, 4, 6, 3);
    assert_eq!(m.len(), 3);
    assert_eq!(m.value_stride(), 8);
    assert_eq!(m.storage().len(), 24);
    for i in 0..3 {
        assert_eq!(m.lookup(&k32(i), 0), Some(i as usize * 8));
        assert_eq!(
            m.lookup_user(&k32(i)).unwrap(),
            vec![0; 6],
            "zero-initialised"
        );
    }
    assert_eq!(m.lookup(&k32(3), 0), None);
    assert_eq!(errno(m.lookup_user(&k32(3))), 2);
    m.update(&k32(2), &[5; 6], BPF_ANY, 0).unwrap();
    m.update(&k32(2), &[6; 6], BPF_EXIST, 0).unwrap();
    assert_eq!(m.storage().to_vec(16, 6).unwrap(), vec![6; 6]);
    assert_eq!(errno(m.update(&k32(2), &[0; 6], BPF_NOEXIST, 0)), 17);
    assert_eq!(errno(m.update(&k32(3), &[0; 6], BPF_ANY, 0)), 7);
    assert_eq!(errno(m.update(&k32(0), &[0; 6], 3, 0)), 22);
    assert_eq!(errno(m.update(&k32(0), &[0; 6], BPF_F_LOCK, 0)), 22);
    assert_eq!(errno(m.delete(&k32(0))), 22);
    // next_key: by index; past the end or unknown restarts at 0.
    assert_eq!(m.next_key(None).unwrap(), k32(0));
    assert_eq!(m.next_key(Some(&k32(0))).unwrap(), k32(1));
    assert_eq!(errno(m.next_key(Some(&k32(2)))), 2);
    assert_eq!(m.next_key(Some(&k32(77))).unwrap(), k32(0));
    assert_eq!(all_keys(&m), vec![k32(0), k32(1), k32(2)]);
    let e = m.entries();
    assert_eq!(e.len(), 3);
    assert_eq!(e[2], (k32(2), vec![vec![6; 6]]));
    let mm = Map::new(
        MapSpec::new("d", ARRAY, 4, 4, 1).with_flags(BPF_F_MMAPABLE),
        1,
    );
    assert!(mm.is_ok());
}

#[test]
fn percpu_array_semantics() {
    let mut m = Map::new(MapSpec::new("p", PERCPU_ARRAY, 4, 4, 2), 2).unwrap();
    m.update(&k32(1), &[9; 4], BPF_ANY, 1).unwrap();
    assert_eq!(m.lookup(&k32(1), 0), Some(16));
    assert_eq!(m.lookup(&k32(1), 1), Some(24));
    assert_eq!(
        m.lookup_user(&k32(1)).unwrap(),
        [[0u8; 8], [9, 9, 9, 9, 0, 0, 0, 0]].concat()
    );
    m.update_all_cpus(&k32(0), &[[1u8; 8], [2; 8]].concat(), BPF_ANY)
        .unwrap();
    assert_eq!(m.entries()[0].1, vec![vec![1; 4], vec![2; 4]]);
    assert_eq!(errno(m.update_all_cpus(&k32(0), &[0; 16], BPF_NOEXIST)), 17);
    assert_eq!(errno(m.update_all_cpus(&k32(2), &[0; 16], BPF_ANY)), 7);
    assert_eq!(errno(m.update_all_cpus(&k32(0), &[0; 16], 3)), 22);
    assert_eq!(errno(m.update_all_cpus(&k32(0), &[0; 8], BPF_ANY)), 22);
}

#[test]
fn fd_arrays() {
    for t in [PROG_ARRAY, PERF_EVENT_ARRAY, CGROUP_ARRAY] {
        let mut m = new(t, 4, 4, 4);
        m.update(&k32(1), &7u32.to_le_bytes(), BPF_ANY, 0).unwrap();
        assert_eq!(m.object_id(&k32(1)), Some(7));
        assert_eq!(m.object_id(&k32(2)), None);
        assert_eq!(m.inner_map_id(&k32(1)), None);
        assert_eq!(m.lookup(&k32(1), 0), None, "programs can't look into {t}");
        assert_eq!(m.len(), 1);
        assert_eq!(errno(m.update(&k32(1), &[0; 4], BPF_EXIST, 0)), 22);
        assert_eq!(errno(m.update(&k32(4), &[0; 4], BPF_ANY, 0)), 7);
        assert_eq!(errno(m.delete(&k32(4))), 7);
        assert_eq!(errno(m.delete(&k32(2))), 2);
        assert_eq!(
            m.entries(),
            vec![(k32(1), vec![7u32.to_le_bytes().to_vec()])]
        );
        // next_key walks every index, set or not.
        assert_eq!(all_keys(&m).len(), 4);
        m.delete(&k32(1)).unwrap();
        assert_eq!(m.object_id(&k32(1)), None);
    }
    let mut p = new(PROG_ARRAY, 4, 4, 2);
    p.update(&k32(0), &3u32.to_le_bytes(), BPF_ANY, 0).unwrap();
    assert_eq!(p.lookup_user(&k32(0)).unwrap(), 3u32.to_le_bytes());
    assert_eq!(errno(p.lookup_user(&k32(1))), 2);
    let perf = new(PERF_EVENT_ARRAY, 4, 4, 2);
    assert_eq!(errno(perf.lookup_user(&k32(0))), MapError::ENOTSUPP);
}

#[test]
fn array_of_maps() {
    let inner = MapSpec::new("inner", ARRAY, 4, 8, 4).with_flags(BPF_F_INNER_MAP);
    let mut m = Map::new(
        MapSpec::new("o", ARRAY_OF_MAPS, 4, 4, 3).with_inner(inner),
        1,
    )
    .unwrap();
    assert_eq!(m.lookup(&k32(1), 0), None, "empty slot is NULL");
    m.update(&k32(1), &11u32.to_le_bytes(), BPF_ANY, 0).unwrap();
    let off = m.lookup(&k32(1), 0).unwrap();
    assert_eq!(m.storage().read_uint(off, 4).unwrap(), 11);
    assert_eq!(m.inner_map_id(&k32(1)), Some(11));
    assert_eq!(m.lookup_user(&k32(1)).unwrap(), 11u32.to_le_bytes());
    // BPF_F_INNER_MAP: any max_entries fits.
    m.check_inner(&MapSpec::new("x", ARRAY, 4, 8, 100).with_flags(BPF_F_INNER_MAP))
        .unwrap();
    assert_eq!(
        errno(m.check_inner(&MapSpec::new("x", ARRAY, 4, 8, 100))),
        22
    );
    let plain = new(ARRAY, 4, 4, 1);
    assert_eq!(
        errno(plain.check_inner(&MapSpec::new("x", ARRAY, 4, 4, 1))),
        22
    );
}

// ---------------------------------------------------------------- queue / stack

#[test]
fn queue_fifo_overwrite_and_errors() {
    let mut q = new(QUEUE, 0, 2, 3);
    let mut out = [0u8; 2];
    assert_eq!(errno(q.pop(&mut out)), 2);
    out = [9, 9];
    assert_eq!(errno(q.peek(&mut out)), 2);
    assert_eq!(out, [0, 0], "zeroed when empty");
    for i in 1..=3u8 {
        q.push(&[i, i], BPF_ANY).unwrap();
    }
    assert_eq!(errno(q.push(&[4, 4], BPF_ANY)), 7);
    assert_eq!(errno(q.push(&[4, 4], BPF_NOEXIST)), 22);
    assert_eq!(errno(q.push(&[4, 4], 3)), 22);
    assert_eq!(errno(q.push(&[4, 4], 4)), 22);
    // BPF_EXIST drops the oldest.
    q.push(&[4, 4], BPF_EXIST).unwrap();
    assert_eq!(q.len(), 3);
    let vals: Vec<_> = q.entries().into_iter().map(|e| e.1[0][0]).collect();
    assert_eq!(vals, vec![2, 3, 4]);
    q.peek(&mut out).unwrap();
    assert_eq!(out, [2, 2]);
    for want in [2u8, 3, 4] {
        q.pop(&mut out).unwrap();
        assert_eq!(out, [want, want]);
    }
    assert!(q.is_empty());
    assert_eq!(q.lookup(&[], 0), None);
    assert_eq!(errno(q.next_key(None)), 22);
    assert_eq!(errno(q.delete(&[])), 22);
    assert_eq!(errno(q.pop(&mut [0u8; 3])), 22);
    // The syscall's update and lookup are push and peek.
    q.update(&[], &[7, 7], BPF_ANY, 0).unwrap();
    assert_eq!(q.lookup_user(&[]).unwrap(), vec![7, 7]);
    assert_eq!(q.lookup_and_delete(&[], 0).unwrap(), vec![7, 7]);
    assert_eq!(errno(q.lookup_and_delete(&[], BPF_F_LOCK)), 22);
}

#[test]
fn stack_lifo_and_overwrite() {
    let mut s = new(STACK, 0, 1, 3);
    for i in 1..=3u8 {
        s.push(&[i], BPF_ANY).unwrap();
    }
    assert_eq!(errno(s.push(&[4], BPF_ANY)), 7);
    // BPF_EXIST drops the oldest (bottom) value.
    s.push(&[4], BPF_EXIST).unwrap();
    let vals: Vec<_> = s.entries().into_iter().map(|e| e.1[0][0]).collect();
    assert_eq!(vals, vec![4, 3, 2]);
    let mut out = [0u8];
    for want in [4u8, 3, 2] {
        s.peek(&mut out).unwrap();
        assert_eq!(out, [want]);
        s.pop(&mut out).unwrap();
        assert_eq!(out, [want]);
    }
    assert_eq!(errno(s.pop(&mut out)), 2);
    // Wrap-around many times.
    for i in 0..50u8 {
        s.push(&[i], BPF_EXIST).unwrap();
        assert!(s.len() <= 3);
    }
    s.pop(&mut out).unwrap();
    assert_eq!(out, [49]);
}

// ---------------------------------------------------------------- LPM trie

fn lpm_key(plen: u32, d: [u8; 4]) -> Vec<u8> {
    let mut k = plen.to_le_bytes().to_vec();
    k.extend(d);
    k
}

fn lpm() -> Map {
    Map::new(
        MapSpec::new("lpm", LPM_TRIE, 8, 4, 16).with_flags(BPF_F_NO_PREALLOC),
        1,
    )
    .unwrap()
}

#[test]
fn lpm_longest_prefix_match() {
    let mut t = lpm();
    t.update(&lpm_key(16, [192, 168, 0, 0]), &k32(1), BPF_ANY, 0)
        .unwrap();
    t.update(&lpm_key(24, [192, 168, 0, 0]), &k32(2), BPF_ANY, 0)
        .unwrap();
    t.update(&lpm_key(24, [192, 168, 128, 0]), &k32(3), BPF_ANY, 0)
        .unwrap();
    t.update(&lpm_key(24, [192, 168, 1, 0]), &k32(5), BPF_ANY, 0)
        .unwrap();
    let get = |t: &mut Map, d: [u8; 4]| {
        t.lookup(&lpm_key(32, d), 0)
            .map(|off| t.storage().read_uint(off, 4).unwrap())
    };
    assert_eq!(get(&mut t, [192, 168, 0, 9]), Some(2));
    assert_eq!(get(&mut t, [192, 168, 1, 9]), Some(5));
    assert_eq!(get(&mut t, [192, 168, 128, 1]), Some(3));
    assert_eq!(get(&mut t, [192, 168, 2, 1]), Some(1));
    assert_eq!(get(&mut t, [192, 169, 0, 0]), None);
    // A shorter lookup prefix only matches shorter stored prefixes.
    assert_eq!(
        t.lookup_user(&lpm_key(20, [192, 168, 0, 0])).unwrap(),
        k32(1)
    );
    assert_eq!(t.lookup(&lpm_key(33, [192, 168, 0, 0]), 0), None);
    // Exact match for delete; intermediate nodes are not elements.
    assert_eq!(errno(t.delete(&lpm_key(23, [192, 168, 0, 0]))), 2);
    assert_eq!(errno(t.delete(&lpm_key(33, [0; 4]))), 22);
    t.delete(&lpm_key(24, [192, 168, 0, 0])).unwrap();
    assert_eq!(get(&mut t, [192, 168, 0, 9]), Some(1));
    assert_eq!(t.len(), 3);
    // 0.0.0.0/0 matches everything.
    t.update(&lpm_key(0, [0; 4]), &k32(9), BPF_ANY, 0).unwrap();
    assert_eq!(get(&mut t, [1, 2, 3, 4]), Some(9));
}

#[test]
fn lpm_flags_and_full() {
    let mut t = Map::new(
        MapSpec::new("lpm", LPM_TRIE, 8, 4, 2).with_flags(BPF_F_NO_PREALLOC),
        1,
    )
    .unwrap();
    let a = lpm_key(8, [10, 0, 0, 0]);
    let b = lpm_key(8, [11, 0, 0, 0]);
    assert_eq!(errno(t.update(&a, &k32(1), BPF_EXIST, 0)), 2);
    t.update(&a, &k32(1), BPF_NOEXIST, 0).unwrap();
    assert_eq!(errno(t.update(&a, &k32(1), BPF_NOEXIST, 0)), 17);
    assert_eq!(errno(t.update(&a, &k32(1), 3, 0)), 22);
    assert_eq!(errno(t.update(&lpm_key(33, [0; 4]), &k32(1), 0, 0)), 22);
    t.update(&b, &k32(2), BPF_ANY, 0).unwrap();
    // Now an intermediate 10.0.0.0/7 exists; adding it as a real element needs room.
    assert_eq!(
        errno(t.update(&lpm_key(7, [10, 0, 0, 0]), &k32(3), BPF_ANY, 0)),
        MapError::ENOSPC
    );
    assert_eq!(
        errno(t.update(&lpm_key(7, [10, 0, 0, 0]), &k32(3), BPF_EXIST, 0)),
        2
    );
    // Replacing a value in a full trie works and moves it to a new slot.
    let before = t.lookup(&lpm_key(32, [10, 1, 1, 1]), 0).unwrap();
    t.update(&a, &k32(4), BPF_EXIST, 0).unwrap();
    let after = t.lookup(&lpm_key(32, [10, 1, 1, 1]), 0).unwrap();
    assert_ne!(before, after);
    assert_eq!(t.storage().read_uint(after, 4).unwrap(), 4);
    assert_eq!(t.len(), 2);
}

#[test]
fn lpm_next_key_is_the_kernels_postorder() {
    // kernel 6.18 order for these six prefixes.
    let mut t = lpm();
    let prefixes = [
        ([192, 168, 0, 0], 16),
        ([192, 168, 0, 0], 24),
        ([192, 168, 128, 0], 24),
        ([192, 168, 1, 0], 24),
        ([10, 0, 0, 0], 8),
        ([0, 0, 0, 0], 0),
    ];
    for (i, (d, p)) in prefixes.iter().enumerate() {
        t.update(&lpm_key(*p, *d), &k32(i as u32), BPF_ANY, 0)
            .unwrap();
    }
    let want = vec![
        lpm_key(8, [10, 0, 0, 0]),
        lpm_key(24, [192, 168, 0, 0]),
        lpm_key(24, [192, 168, 1, 0]),
        lpm_key(24, [192, 168, 128, 0]),
        lpm_key(16, [192, 168, 0, 0]),
        lpm_key(0, [0, 0, 0, 0]),
    ];
    assert_eq!(all_keys(&t), want);
    let entries = t.entries();
    assert_eq!(
        entries.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        want
    );
    assert_eq!(entries[0].1, vec![k32(4)]);
    // An unknown or invalid key restarts from the first.
    assert_eq!(t.next_key(Some(&lpm_key(5, [1; 4]))).unwrap(), want[0]);
    assert_eq!(t.next_key(Some(&lpm_key(40, [1; 4]))).unwrap(), want[0]);
}

// ---------------------------------------------------------------- bloom filter

#[test]
fn bloom_filter_no_false_negatives_and_kernel_positives() {
    let mut b = new(BLOOM_FILTER, 0, 4, 10);
    for i in 0..30u32 {
        b.push(&i.to_le_bytes(), BPF_ANY).unwrap();
    }
    for i in 0..30u32 {
        b.bloom_test(&i.to_le_bytes()).unwrap();
        let mut v = i.to_le_bytes();
        b.peek(&mut v).unwrap();
        assert_eq!(v, i.to_le_bytes(), "peek only reads a bloom value");
    }
    // kernel 6.18 (BPF_F_ZERO_SEED, 5 hashes): false positives among 1000..1040.
    let pos: Vec<u32> = (1000..1040u32)
        .filter(|i| b.bloom_test(&i.to_le_bytes()).is_ok())
        .collect();
    assert_eq!(
        pos,
        vec![1001, 1004, 1014, 1015, 1019, 1021, 1025, 1032, 1035, 1038]
    );
    assert_eq!(errno(b.bloom_test(&1002u32.to_le_bytes())), 2);
    assert_eq!(errno(b.push(&[0; 4], BPF_EXIST)), 22);
    assert_eq!(errno(b.pop(&mut [0; 4])), MapError::EOPNOTSUPP);
    assert_eq!(errno(b.delete(&[])), MapError::EOPNOTSUPP);
    assert_eq!(errno(b.next_key(None)), MapError::EOPNOTSUPP);
    assert_eq!(b.lookup(&[], 0), None);
    assert_eq!(b.len(), 0);
    assert!(b.entries().is_empty());
    // map_extra sets the number of hash functions; many values, still no false negative.
    let mut b = Map::new(
        MapSpec::new("b", BLOOM_FILTER, 0, 7, 1000).with_map_extra(3),
        1,
    )
    .unwrap();
    for i in 0..1000u64 {
        b.update(&[], &i.to_le_bytes()[..7], BPF_ANY, 0).unwrap();
    }
    for i in 0..1000u64 {
        b.bloom_test(&i.to_le_bytes()[..7]).unwrap();
    }
}

// ---------------------------------------------------------------- stack trace

#[test]
fn stack_trace_ids() {
    let mut m = new(STACK_TRACE, 4, 8 * 4, 8);
    let a = [0x1000u64, 0x2000, 0x3000];
    let id = m.store_stack(&a, 0).unwrap();
    let bytes: Vec<u8> = a.iter().flat_map(|x| x.to_le_bytes()).collect();
    assert_eq!(id, jhash2(&bytes, 0) & 7, "the kernel's jhash2 bucket");
    assert_eq!(m.store_stack(&a, 0).unwrap(), id, "same stack, same id");
    let v = m.lookup_user(&k32(id)).unwrap();
    assert_eq!(&v[..24], &bytes[..]);
    assert_eq!(&v[24..], &[0; 8], "zero-padded to value_size");
    assert_eq!(
        m.lookup(&k32(id), 0),
        None,
        "programs can't read stack maps"
    );
    // Skipping frames hashes the rest; frames past value_size / 8 + skip are dropped.
    let skipped = m.store_stack(&[9, 0x1000, 0x2000, 0x3000], 1).unwrap();
    assert_eq!(skipped, id);
    let long: Vec<u64> = (1..=10).collect();
    let mut m2 = new(STACK_TRACE, 4, 8 * 4, 8);
    let lid = m2.store_stack(&long, 0).unwrap();
    let lv = m2.lookup_user(&k32(lid)).unwrap();
    assert_eq!(
        lv,
        [1u64, 2, 3, 4]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect::<Vec<_>>()
    );
    assert_eq!(errno(m.store_stack(&[1, 2], 2)), MapError::EFAULT);
    assert_eq!(errno(m.store_stack(&[1, 2], 1 << 12)), 22);
    // Find another stack with the same id: EEXIST unless BPF_F_REUSE_STACKID.
    let other = (0u64..)
        .map(|i| [i, i + 1])
        .find(|s| {
            let b: Vec<u8> = s.iter().flat_map(|x| x.to_le_bytes()).collect();
            jhash2(&b, 0) & 7 == id
        })
        .unwrap();
    assert_eq!(errno(m.store_stack(&other, 0)), 17);
    assert_eq!(
        m.store_stack(&other, BPF_F_FAST_STACK_CMP)
            .unwrap_err()
            .errno(),
        17
    );
    assert_eq!(m.store_stack(&other, BPF_F_REUSE_STACKID).unwrap(), id);
    assert_eq!(
        &m.lookup_user(&k32(id)).unwrap()[..8],
        &other[0].to_le_bytes()
    );
    // Deletes and iteration by id.
    let ids: Vec<u32> = all_keys(&m).iter().map(|k| u32_of(k)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ids.len(), m.len());
    assert_eq!(errno(m.delete(&k32(8))), 7);
    m.delete(&k32(id)).unwrap();
    assert_eq!(errno(m.delete(&k32(id))), 2);
    assert_eq!(errno(m.lookup_user(&k32(id))), 2);
    assert_eq!(errno(m.update(&k32(0), &[0; 32], BPF_ANY, 0)), 22);
}

#[test]
fn stack_trace_runs_out_of_elements() {
    // 3 elements but 4 buckets: the 4th distinct bucket finds no free element.
    let mut m = new(STACK_TRACE, 4, 8, 3);
    let mut used = std::collections::BTreeSet::new();
    let mut results = Vec::new();
    for i in 0u64.. {
        let b = i.to_le_bytes();
        let id = jhash2(&b, 0) & 3;
        if used.insert(id) {
            results.push(m.store_stack(&[i], 0));
        }
        if used.len() == 4 {
            break;
        }
    }
    assert!(results[..3].iter().all(Result::is_ok));
    assert_eq!(results[3].as_ref().unwrap_err().errno(), MapError::ENOMEM);
}

// ---------------------------------------------------------------- ring buffer

#[test]
fn ringbuf_is_only_validated() {
    let mut r = Map::new(MapSpec::new("rb", RINGBUF, 0, 0, 1 << 16), 1).unwrap();
    assert!(r.is_ringbuf());
    assert!(!new(ARRAY, 4, 4, 1).is_ringbuf());
    assert_eq!(r.storage().len(), 0);
    assert_eq!(r.lookup(&[], 0), None);
    assert_eq!(errno(r.update(&[], &[], BPF_ANY, 0)), MapError::ENOTSUPP);
    assert_eq!(errno(r.delete(&[])), MapError::ENOTSUPP);
    assert_eq!(errno(r.next_key(None)), MapError::ENOTSUPP);
    assert_eq!(errno(r.lookup_user(&[])), MapError::ENOTSUPP);
    assert_eq!(r.len(), 0);
}

// ---------------------------------------------------------------- robustness

#[test]
fn every_operation_on_every_type_with_garbage_never_panics() {
    let inner = MapSpec::new("inner", ARRAY, 4, 4, 1);
    let specs = vec![
        MapSpec::new("h", HASH, 4, 8, 4),
        MapSpec::new("ph", PERCPU_HASH, 4, 8, 4),
        MapSpec::new("l", LRU_HASH, 4, 8, 4),
        MapSpec::new("lp", LRU_PERCPU_HASH, 4, 8, 4),
        MapSpec::new("a", ARRAY, 4, 8, 4),
        MapSpec::new("pa", PERCPU_ARRAY, 4, 8, 4),
        MapSpec::new("pr", PROG_ARRAY, 4, 4, 4),
        MapSpec::new("pe", PERF_EVENT_ARRAY, 4, 4, 4),
        MapSpec::new("cg", CGROUP_ARRAY, 4, 4, 4),
        MapSpec::new("ao", ARRAY_OF_MAPS, 4, 4, 4).with_inner(inner.clone()),
        MapSpec::new("ho", HASH_OF_MAPS, 4, 4, 4).with_inner(inner),
        MapSpec::new("q", QUEUE, 0, 8, 4),
        MapSpec::new("s", STACK, 0, 8, 4),
        MapSpec::new("t", LPM_TRIE, 8, 8, 4).with_flags(BPF_F_NO_PREALLOC),
        MapSpec::new("b", BLOOM_FILTER, 0, 8, 4),
        MapSpec::new("st", STACK_TRACE, 4, 8, 4),
        MapSpec::new("rb", RINGBUF, 0, 0, 4096),
    ];
    let blobs: Vec<Vec<u8>> = vec![
        vec![],
        vec![1],
        vec![0xff; 4],
        vec![0xff; 8],
        vec![2; 16],
        vec![0; 33],
    ];
    for spec in specs {
        let mut m = Map::new(spec, 2).unwrap();
        for k in &blobs {
            for v in &blobs {
                for f in [0u64, 1, 2, 3, 4, 7, u64::MAX] {
                    for cpu in [0u32, 1, 2, u32::MAX] {
                        let _ = m.update(k, v, f, cpu);
                        let _ = m.update_all_cpus(k, v, f);
                        let _ = m.lookup(k, cpu);
                    }
                    let _ = m.push(v, f);
                    let _ = m.lookup_and_delete(k, f);
                    let _ = m.store_stack(&[1, 2, 3], f);
                }
                let _ = m.lookup_user(k);
                let _ = m.next_key(Some(k));
                let _ = m.delete(k);
                let mut out = v.clone();
                let _ = m.pop(&mut out);
                let _ = m.peek(&mut out);
                let _ = m.bloom_test(v);
                let _ = m.inner_map_id(k);
                let _ = m.object_id(k);
            }
        }
        let _ = m.next_key(None);
        assert!(m.len() <= m.spec().max_entries as usize);
        let _ = m.entries();
    }
}
