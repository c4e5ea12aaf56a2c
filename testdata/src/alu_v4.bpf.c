/* cpu v4 instructions: signed division and modulo, sign-extending moves and loads,
 * unconditional byte swaps, 32-bit jumps; atomics. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, s64);
} results SEC(".maps");

volatile s64 numer = -100;
volatile s64 denom = 7;
volatile signed char small = -5;
volatile short medium = -300;
volatile u64 word = 0x0102030405060708ULL;
volatile s32 narrow = -9;

static __noinline s64 mix(s64 a, s64 b)
{
	return a / b + a % b;
}

SEC("xdp")
int v4_ops(struct xdp_md *ctx)
{
	u32 key = 0;
	s64 *out = bpf_map_lookup_elem(&results, &key);
	s64 r = mix(numer, denom);
	r += small;                        /* ldxsb */
	r += medium;                       /* ldxsh */
	r += (s64)narrow / 2;              /* sdiv with sign extension */
	r += (s32)numer % (s32)denom;      /* smod32 */
	r ^= __builtin_bswap64(word);      /* bswap64 */
	r += __builtin_bswap32((u32)word); /* bswap32 */
	r += (s8)ctx->data;                /* movsx */
	if (out)
		__sync_fetch_and_add(out, r);
	return XDP_PASS;
}
