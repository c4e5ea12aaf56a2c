//! Random operation sequences on hash, LRU, array, queue, stack and LPM maps: never a panic,
//! never more than `max_entries` elements, and agreement with a simple model.

use std::collections::{BTreeMap, VecDeque};

use ebpf_sim_vm::maps::{flags::*, map_type::*, Map, MapError, MapSpec};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Update {
        key: u8,
        val: u8,
        flags: u64,
        cpu: u32,
    },
    Delete {
        key: u8,
    },
    Lookup {
        key: u8,
        cpu: u32,
    },
    NextKey {
        key: Option<u8>,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        Just(BPF_ANY),
        Just(BPF_NOEXIST),
        Just(BPF_EXIST),
        Just(3u64),
        Just(BPF_F_LOCK)
    ];
    prop_oneof![
        4 => (0u8..12, any::<u8>(), flags, 0u32..3).prop_map(|(key, val, flags, cpu)| Op::Update { key, val, flags, cpu }),
        1 => (0u8..12).prop_map(|key| Op::Delete { key }),
        2 => (0u8..12, 0u32..3).prop_map(|(key, cpu)| Op::Lookup { key, cpu }),
        1 => proptest::option::of(0u8..12).prop_map(|key| Op::NextKey { key }),
    ]
}

fn key(k: u8) -> Vec<u8> {
    (k as u32).to_le_bytes().to_vec()
}

fn val(v: u8, size: usize) -> Vec<u8> {
    vec![v; size]
}

fn errno(r: Result<(), MapError>) -> i32 {
    r.err().map_or(0, |e| e.errno())
}

fn iterate(m: &Map) -> Vec<Vec<u8>> {
    let mut keys = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    while let Ok(k) = m.next_key(cur.as_deref()) {
        keys.push(k.clone());
        cur = Some(k);
        assert!(keys.len() <= 1000, "next_key loops");
    }
    keys
}

const NCPUS: u32 = 2;

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn hash_agrees_with_a_btreemap(ops in proptest::collection::vec(op(), 1..200), max in 1u32..8) {
        let mut m = Map::new(MapSpec::new("h", HASH, 4, 6, max), NCPUS).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Update { key: k, val: v, flags, cpu } => {
                    let (k, v) = (key(k), val(v, 6));
                    let exists = model.contains_key(&k);
                    let want = if cpu >= NCPUS || flags > BPF_EXIST { 22 }
                        else if exists && flags == BPF_NOEXIST { 17 }
                        else if !exists && flags == BPF_EXIST { 2 }
                        else if !exists && model.len() >= max as usize { 7 }
                        else { 0 };
                    prop_assert_eq!(errno(m.update(&k, &v, flags, cpu)), want);
                    if want == 0 { model.insert(k, v); }
                }
                Op::Delete { key: k } => {
                    let k = key(k);
                    let want = if model.remove(&k).is_some() { 0 } else { 2 };
                    prop_assert_eq!(errno(m.delete(&k)), want);
                }
                Op::Lookup { key: k, cpu } => {
                    let k = key(k);
                    let off = m.lookup(&k, cpu);
                    match model.get(&k) {
                        Some(v) if cpu < NCPUS => prop_assert_eq!(&m.storage().to_vec(off.unwrap(), 6).unwrap(), v),
                        _ => prop_assert_eq!(off, None),
                    }
                }
                Op::NextKey { key: k } => {
                    let k = k.map(key);
                    let got = m.next_key(k.as_deref());
                    match &k {
                        // From a key in the map: the next one, or ENOENT after the last.
                        Some(k) if model.contains_key(k) => match &got {
                            Ok(g) => prop_assert!(model.contains_key(g) && g != k),
                            Err(e) => prop_assert_eq!(e.errno(), 2),
                        },
                        // Else from the first key.
                        _ => {
                            prop_assert_eq!(got.is_ok(), !model.is_empty());
                            if let Ok(g) = got {
                                prop_assert_eq!(Some(g), iterate(&m).first().cloned());
                            }
                        }
                    }
                }
            }
            prop_assert!(m.len() <= max as usize);
            prop_assert_eq!(m.len(), model.len());
        }
        let mut keys = iterate(&m);
        keys.sort();
        prop_assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
        for (k, vals) in m.entries() {
            prop_assert_eq!(&vals, &vec![model[&k].clone()]);
        }
    }

    #[test]
    fn percpu_hash_agrees_with_a_model(ops in proptest::collection::vec(op(), 1..150), max in 1u32..6) {
        let mut m = Map::new(MapSpec::new("p", PERCPU_HASH, 4, 3, max), NCPUS).unwrap();
        let mut model: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Update { key: k, val: v, flags, cpu } => {
                    let (k, v) = (key(k), val(v, 3));
                    let exists = model.contains_key(&k);
                    let want = if cpu >= NCPUS || flags > BPF_EXIST { 22 }
                        else if exists && flags == BPF_NOEXIST { 17 }
                        else if !exists && flags == BPF_EXIST { 2 }
                        else if !exists && model.len() >= max as usize { 7 }
                        else { 0 };
                    prop_assert_eq!(errno(m.update(&k, &v, flags, cpu)), want);
                    if want == 0 {
                        let e = model.entry(k).or_insert_with(|| vec![vec![0; 3]; NCPUS as usize]);
                        e[cpu as usize] = v;
                    }
                }
                Op::Delete { key: k } => {
                    let k = key(k);
                    let want = if model.remove(&k).is_some() { 0 } else { 2 };
                    prop_assert_eq!(errno(m.delete(&k)), want);
                }
                Op::Lookup { key: k, cpu } => {
                    let k = key(k);
                    match (model.get(&k), m.lookup(&k, cpu)) {
                        (Some(vals), Some(off)) if cpu < NCPUS => {
                            prop_assert_eq!(&m.storage().to_vec(off, 3).unwrap(), &vals[cpu as usize]);
                        }
                        (None, None) => {}
                        (_, None) if cpu >= NCPUS => {}
                        (a, b) => prop_assert!(false, "model {:?} map {:?}", a, b),
                    }
                }
                Op::NextKey { .. } => {}
            }
            prop_assert!(m.len() <= max as usize);
        }
        let entries: BTreeMap<_, _> = m.entries().into_iter().collect();
        prop_assert_eq!(entries, model);
    }

    #[test]
    fn lru_never_overflows_and_keeps_last_written_values(
        ops in proptest::collection::vec(op(), 1..300),
        max in 1u32..10,
        no_common in any::<bool>(),
        percpu in any::<bool>(),
    ) {
        let t = if percpu { LRU_PERCPU_HASH } else { LRU_HASH };
        let f = if no_common { BPF_F_NO_COMMON_LRU } else { 0 };
        let mut m = Map::new(MapSpec::new("l", t, 4, 5, max).with_flags(f), NCPUS).unwrap();
        let max = m.spec().max_entries as usize;
        // Last value written per key and CPU; `None` where it can't be known (a per-CPU
        // element's other copies are zeroed if the update's own eviction removed the key).
        let mut last: BTreeMap<Vec<u8>, Vec<Option<Vec<u8>>>> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Update { key: k, val: v, flags, cpu } => {
                    let (k, v) = (key(k), val(v, 5));
                    let was = m.lookup_user(&k).is_ok();
                    let r = m.update(&k, &v, flags, cpu);
                    match errno(r) {
                        0 => {
                            prop_assert!(flags <= BPF_EXIST && cpu < NCPUS);
                            let zero = Some(vec![0; 5]);
                            let e = last.entry(k.clone()).or_insert_with(|| vec![zero.clone(); NCPUS as usize]);
                            if !percpu {
                                e[0] = Some(v);
                            } else {
                                for (c, slot) in e.iter_mut().enumerate() {
                                    if c == cpu as usize {
                                        *slot = Some(v.clone());
                                    } else if !was {
                                        *slot = zero.clone();
                                    } else if flags != BPF_EXIST {
                                        *slot = None;
                                    }
                                }
                            }
                            prop_assert!(m.lookup_user(&k).is_ok(), "just updated");
                        }
                        17 => prop_assert!(was && flags == BPF_NOEXIST),
                        2 => prop_assert!(flags == BPF_EXIST),
                        22 => prop_assert!(flags > BPF_EXIST || cpu >= NCPUS),
                        e => prop_assert!(false, "unexpected errno {}", e),
                    }
                }
                Op::Delete { key: k } => {
                    let k = key(k);
                    let was = m.lookup_user(&k).is_ok();
                    prop_assert_eq!(errno(m.delete(&k)), if was { 0 } else { 2 });
                    last.remove(&k);
                }
                Op::Lookup { key: k, cpu } => { let _ = m.lookup(&key(k), cpu); }
                Op::NextKey { key: k } => { let _ = m.next_key(k.map(key).as_deref()); }
            }
            prop_assert!(m.len() <= max);
            // Everything still in the map holds what was last written to it.
            for (k, vals) in m.entries() {
                for (got, want) in vals.iter().zip(&last[&k]) {
                    if let Some(w) = want {
                        prop_assert_eq!(got, w);
                    }
                }
            }
        }
        prop_assert_eq!(iterate(&m).len(), m.len());
    }

    #[test]
    fn array_agrees_with_a_vec(ops in proptest::collection::vec(op(), 1..200), max in 1u32..10) {
        let mut m = Map::new(MapSpec::new("a", ARRAY, 4, 3, max), NCPUS).unwrap();
        let mut model = vec![vec![0u8; 3]; max as usize];
        for op in ops {
            match op {
                Op::Update { key: k, val: v, flags, cpu } => {
                    let want = if cpu >= NCPUS || flags & !BPF_F_LOCK > BPF_EXIST { 22 }
                        else if k as u32 >= max { 7 }
                        else if flags & BPF_NOEXIST != 0 { 17 }
                        else if flags & BPF_F_LOCK != 0 { 22 }
                        else { 0 };
                    prop_assert_eq!(errno(m.update(&key(k), &val(v, 3), flags, cpu)), want);
                    if want == 0 { model[k as usize] = val(v, 3); }
                }
                Op::Delete { key: k } => prop_assert_eq!(errno(m.delete(&key(k))), 22),
                Op::Lookup { key: k, cpu } => {
                    let off = m.lookup(&key(k), cpu);
                    if (k as u32) < max && cpu < NCPUS {
                        prop_assert_eq!(off, Some(k as usize * 8));
                        prop_assert_eq!(&m.storage().to_vec(off.unwrap(), 3).unwrap(), &model[k as usize]);
                    } else {
                        prop_assert_eq!(off, None);
                    }
                }
                Op::NextKey { key: k } => {
                    let got = m.next_key(k.map(key).as_deref());
                    match k {
                        Some(k) if (k as u32) == max - 1 => prop_assert_eq!(got.unwrap_err().errno(), 2),
                        Some(k) if (k as u32) < max => prop_assert_eq!(got.unwrap(), key(k + 1)),
                        _ => prop_assert_eq!(got.unwrap(), key(0)),
                    }
                }
            }
        }
        let vals: Vec<Vec<u8>> = m.entries().into_iter().map(|e| e.1[0].clone()).collect();
        prop_assert_eq!(vals, model);
    }

    #[test]
    fn queue_and_stack_agree_with_a_deque(
        ops in proptest::collection::vec((0u8..4, any::<u8>(), prop_oneof![Just(0u64), Just(1), Just(2), Just(3)]), 1..200),
        max in 1u32..6,
        stack in any::<bool>(),
    ) {
        let t = if stack { STACK } else { QUEUE };
        let mut m = Map::new(MapSpec::new("q", t, 0, 2, max), NCPUS).unwrap();
        let mut model: VecDeque<[u8; 2]> = VecDeque::new();
        for (what, v, flags) in ops {
            let mut out = [0u8; 2];
            match what {
                0 | 1 => {
                    let want = if flags & BPF_NOEXIST != 0 || flags > BPF_EXIST { 22 }
                        else if model.len() == max as usize && flags != BPF_EXIST { 7 }
                        else { 0 };
                    prop_assert_eq!(errno(m.push(&[v, v], flags)), want);
                    if want == 0 {
                        if model.len() == max as usize { model.pop_front(); }
                        model.push_back([v, v]);
                    }
                }
                2 => {
                    let r = m.pop(&mut out);
                    let want = if stack { model.pop_back() } else { model.pop_front() };
                    match want {
                        Some(w) => { prop_assert!(r.is_ok()); prop_assert_eq!(out, w); }
                        None => { prop_assert_eq!(errno(r), 2); prop_assert_eq!(out, [0, 0]); }
                    }
                }
                _ => {
                    let r = m.peek(&mut out);
                    let want = if stack { model.back() } else { model.front() };
                    match want {
                        Some(w) => { prop_assert!(r.is_ok()); prop_assert_eq!(&out, w); }
                        None => prop_assert_eq!(errno(r), 2),
                    }
                }
            }
            prop_assert_eq!(m.len(), model.len());
            prop_assert!(m.len() <= max as usize);
        }
        let mut order: Vec<[u8; 2]> = model.iter().copied().collect();
        if stack { order.reverse(); }
        let got: Vec<[u8; 2]> = m.entries().into_iter().map(|e| [e.1[0][0], e.1[0][1]]).collect();
        prop_assert_eq!(got, order);
    }

    #[test]
    fn lpm_agrees_with_brute_force(
        ops in proptest::collection::vec((0u8..4, 0u32..18, 0usize..5, any::<u8>(), prop_oneof![Just(0u64), Just(1), Just(2)]), 1..150),
        max in 1u32..8,
    ) {
        // 16-bit addresses; a few base patterns so prefixes nest and diverge.
        const BASES: [[u8; 2]; 5] = [[0xc0, 0xa8], [0xc0, 0xa9], [0x0a, 0x00], [0xc0, 0x28], [0xff, 0xff]];
        let mut m = Map::new(MapSpec::new("t", LPM_TRIE, 6, 1, max).with_flags(BPF_F_NO_PREALLOC), NCPUS).unwrap();
        let mask = |d: [u8; 2], p: u32| -> u16 {
            let x = u16::from_be_bytes(d);
            if p == 0 { 0 } else { x & (u16::MAX << (16 - p.min(16))) }
        };
        let mut model: BTreeMap<(u32, u16), u8> = BTreeMap::new();
        for (what, plen, base, v, flags) in ops {
            let d = BASES[base];
            let mut k = plen.to_le_bytes().to_vec();
            k.extend(d);
            match what {
                0 | 1 => {
                    let id = (plen, mask(d, plen));
                    let exists = model.contains_key(&id);
                    let want = if plen > 16 { 22 }
                        else if exists && flags == BPF_NOEXIST { 17 }
                        else if !exists && flags == BPF_EXIST { 2 }
                        else if !exists && model.len() == max as usize { 28 }
                        else { 0 };
                    prop_assert_eq!(errno(m.update(&k, &[v], flags, 0)), want);
                    if want == 0 { model.insert(id, v); }
                }
                2 => {
                    let want = if plen > 16 { 22 } else if model.remove(&(plen, mask(d, plen))).is_some() { 0 } else { 2 };
                    prop_assert_eq!(errno(m.delete(&k)), want);
                }
                _ => {
                    // Longest stored prefix of the address (looked up with prefixlen 16).
                    let best = (0..=16u32).rev().find_map(|p| model.get(&(p, mask(d, p))));
                    let mut full = 16u32.to_le_bytes().to_vec();
                    full.extend(d);
                    let got = m.lookup(&full, 0).map(|off| m.storage().to_vec(off, 1).unwrap()[0]);
                    prop_assert_eq!(got, best.copied());
                }
            }
            prop_assert_eq!(m.len(), model.len());
            prop_assert!(m.len() <= max as usize);
        }
        let mut keys: Vec<(u32, u16)> = iterate(&m).iter().map(|k| {
            let p = u32::from_le_bytes(k[..4].try_into().unwrap());
            (p, mask([k[4], k[5]], p))
        }).collect();
        // Postorder: a prefix comes after every longer prefix it contains.
        for (i, &(p, a)) in keys.iter().enumerate() {
            for &(q, b) in &keys[i + 1..] {
                let contains = q > p && mask(b.to_be_bytes(), p) == a;
                prop_assert!(!contains, "{:?} listed before its more specific {:?}", (p, a), (q, b));
            }
        }
        keys.sort();
        prop_assert_eq!(keys, model.keys().copied().collect::<Vec<_>>());
    }
}
