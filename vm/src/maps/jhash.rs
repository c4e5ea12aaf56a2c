//! Bob Jenkins' lookup3 hash as the kernel's `include/linux/jhash.h` computes it: hash
//! maps pick buckets with it, bloom filters set bits with it and stack trace maps pick
//! stack ids with it, so using the same function (with the seed the kernel uses under
//! `BPF_F_ZERO_SEED`) reproduces the kernel's bucket order and ids.

const JHASH_INITVAL: u32 = 0xdead_beef;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

fn word(k: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    for (i, b) in w.iter_mut().enumerate() {
        *b = k.get(at + i).copied().unwrap_or(0);
    }
    u32::from_le_bytes(w)
}

/// `jhash(key, len, initval)`: bytes, little-endian words (x86).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let mut len = key.len();
    let init = JHASH_INITVAL.wrapping_add(len as u32).wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = 0usize;
    while len > 12 {
        a = a.wrapping_add(word(key, k));
        b = b.wrapping_add(word(key, k + 4));
        c = c.wrapping_add(word(key, k + 8));
        mix(&mut a, &mut b, &mut c);
        len -= 12;
        k += 12;
    }
    if len == 0 {
        return c;
    }
    // The tail: bytes past `len` read as zero, which is what the kernel's fallthrough
    // switch adds.
    let tail = &key[k..k + len];
    a = a.wrapping_add(word(tail, 0));
    b = b.wrapping_add(word(tail, 4));
    c = c.wrapping_add(word(tail, 8));
    fin(&mut a, &mut b, &mut c);
    c
}

/// `jhash2(words, n, initval)` over `key` read as little-endian u32 words (`key.len()`
/// must be a multiple of 4; a trailing partial word is ignored).
pub fn jhash2(key: &[u8], initval: u32) -> u32 {
    let mut n = key.len() / 4;
    let init = JHASH_INITVAL
        .wrapping_add((n as u32) << 2)
        .wrapping_add(initval);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut k = 0usize;
    while n > 3 {
        a = a.wrapping_add(word(key, k));
        b = b.wrapping_add(word(key, k + 4));
        c = c.wrapping_add(word(key, k + 8));
        mix(&mut a, &mut b, &mut c);
        n -= 3;
        k += 12;
    }
    match n {
        3 => {
            c = c.wrapping_add(word(key, k + 8));
            b = b.wrapping_add(word(key, k + 4));
            a = a.wrapping_add(word(key, k));
        }
        2 => {
            b = b.wrapping_add(word(key, k + 4));
            a = a.wrapping_add(word(key, k));
        }
        1 => a = a.wrapping_add(word(key, k)),
        _ => return c,
    }
    fin(&mut a, &mut b, &mut c);
    c
}

/// The hash map's `htab_map_hash`: `jhash2` when the key is whole words, else `jhash`.
pub fn htab_hash(key: &[u8], seed: u32) -> u32 {
    if key.len().is_multiple_of(4) {
        jhash2(key, seed)
    } else {
        jhash(key, seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jhash_and_jhash2_agree_on_whole_words() {
        for len in [0usize, 4, 8, 12, 16, 20, 24, 64] {
            let key: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            assert_eq!(jhash(&key, 7), jhash2(&key, 7), "len {len}");
        }
    }

    #[test]
    fn known_values() {
        // lookup3's hashlittle("", 0) is 0xdeadbeef; the kernel's jhash matches it.
        assert_eq!(jhash(b"", 0), 0xdead_beef);
        // hashlittle("Four score and seven years ago", 30, 0) = 0x17770551.
        assert_eq!(jhash(b"Four score and seven years ago", 0), 0x1777_0551);
        // ... and with initval 1: 0xcd628161.
        assert_eq!(jhash(b"Four score and seven years ago", 1), 0xcd62_8161);
    }
}
