/* Native versions of the programs of benches/jit.rs, written to do the same work as the
 * eBPF code (same algorithm, same loads, same result), so that the eBPF engines can be
 * compared with what a C compiler makes of it. Every function takes the buffer and its
 * length (prime_count takes its bound there), so nothing is known at compile time.
 * build.rs compiles this file twice, with PREFIX = vec_ (plain -O2) and sca_ (-O2
 * without auto-vectorisation and without turning loops into memcpy). */
#include <stdint.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define FN(name) CAT(PREFIX, name)

static inline uint64_t ld16(const uint8_t *p) { uint16_t v; __builtin_memcpy(&v, p, 2); return v; }
static inline uint64_t ld32(const uint8_t *p) { uint32_t v; __builtin_memcpy(&v, p, 4); return v; }
static inline uint64_t ld64(const uint8_t *p) { uint64_t v; __builtin_memcpy(&v, p, 8); return v; }

uint64_t FN(empty)(uint8_t *p, uint64_t len) { (void)p; (void)len; return 0; }

/* Number of primes below n, by trial division up to the square root. */
uint64_t FN(prime_count)(uint8_t *p, uint64_t n) {
    (void)p;
    uint64_t count = 0;
    for (uint64_t i = 2; i < n; i++) {
        for (uint64_t d = 2;; d++) {
            if (d * d > i) { count++; break; }
            if (i % d == 0) break;
        }
    }
    return count;
}

uint64_t FN(fnv1a)(uint8_t *p, uint64_t len) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (uint64_t i = 0; i < len; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

/* Copies p[0..len) to p[len..2*len), byte by byte. */
uint64_t FN(copy)(uint8_t *p, uint64_t len) {
    for (uint64_t i = 0; i < len; i++) p[len + i] = p[i];
    return ld64(p + len) ^ ld64(p + 2 * len - 8);
}

uint64_t FN(switch_sm)(uint8_t *p, uint64_t len) {
    uint64_t r0 = 0, s = 0;
    for (uint64_t i = 0; i < len; i++) {
        uint64_t b = p[i];
        switch ((b + s) & 15) {
        case 0: s += 1; break;
        case 1: r0 += s; break;
        case 2: r0 ^= b; break;
        case 3: s ^= 3; break;
        case 4: r0 *= 3; break;
        case 5: r0 += b << 2; break;
        case 6: s = 0; break;
        case 7: r0 -= s; break;
        case 8: r0 >>= 1; break;
        default: r0 += 1; break;
        }
    }
    return r0;
}

/* Insertion sort of the 64 u64 at the start of the buffer, in a local array, then a hash
 * of the sorted array. */
uint64_t FN(sort)(uint8_t *p, uint64_t len) {
    (void)len;
    uint64_t a[64];
    for (int i = 0; i < 64; i++) a[i] = ld64(p + 8 * i);
    for (int i = 1; i < 64; i++) {
        uint64_t key = a[i];
        int j = i;
        while (j > 0 && a[j - 1] > key) { a[j] = a[j - 1]; j--; }
        a[j] = key;
    }
    uint64_t h = 0;
    for (int i = 0; i < 64; i++) h = h * 31 + a[i];
    return h;
}

/* Ethernet (optional 802.1Q) / IPv4 (header checksum verified) / TCP or UDP: a hash of
 * the 5-tuple, or 0 for anything malformed or not IPv4. */
uint64_t FN(parse)(uint8_t *p, uint64_t len) {
    uint8_t *end = p + len;
    if (p + 14 > end) return 0;
    uint64_t eth = ld16(p + 12), l3 = 14;
    if (eth == 0x0081) {
        if (p + 18 > end) return 0;
        eth = ld16(p + 16);
        l3 = 18;
    }
    if (eth != 0x0008) return 0;
    uint8_t *ip = p + l3;
    if (ip + 20 > end) return 0;
    uint64_t vihl = ip[0];
    if ((vihl >> 4) != 4) return 0;
    uint64_t hlen = vihl & 15;
    if (hlen < 5) return 0;
    hlen <<= 2;
    if (ip + hlen > end) return 0;
    uint64_t sum = 0;
    for (uint64_t i = 0; i < hlen; i += 2) sum += ld16(ip + i);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum + (sum >> 16)) & 0xffff;
    if (sum != 0xffff) return 0;
    uint64_t proto = ip[9], saddr = ld32(ip + 12), daddr = ld32(ip + 16), ports = 0;
    if ((ld16(ip + 6) & 0xff1f) == 0) {
        uint8_t *l4 = ip + hlen;
        if (proto == 6) {
            if (l4 + 20 > end) return 0;
            ports = ld32(l4);
        } else if (proto == 17) {
            if (l4 + 8 > end) return 0;
            ports = ld32(l4);
        }
    }
    uint64_t h = ((ports << 8) | proto) ^ ((saddr << 32) | daddr);
    h *= 0x9e3779b97f4a7c15ull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

/* The Internet checksum's ones'-complement sum of the buffer's 16-bit words, folded. */
uint64_t FN(csum)(uint8_t *p, uint64_t len) {
    uint64_t sum = 0;
    for (uint64_t i = 0; i < len; i += 2) sum += ld16(p + i);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum + (sum >> 16)) & 0xffff;
    return sum;
}

/* CRC-32 (IEEE, reflected), bit by bit, without branches. */
uint64_t FN(crc32)(uint8_t *p, uint64_t len) {
    uint32_t crc = 0xffffffffu;
    for (uint64_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ ((crc & 1) * 0xedb88320u);
    }
    return (uint32_t)~crc;
}

/* The helper of `calls`: kept out of line, as a helper is for the eBPF engines. */
__attribute__((noinline)) uint64_t FN(mix)(uint64_t a, uint64_t b) {
    return (a ^ b) * 0x100000001b3ull;
}

/* One call per 8-byte word: the cost of a helper call. */
uint64_t FN(calls)(uint8_t *p, uint64_t len) {
    uint64_t acc = 0;
    for (uint64_t i = 0; i + 8 <= len; i += 8) acc = FN(mix)(acc, ld64(p + i));
    return acc;
}
