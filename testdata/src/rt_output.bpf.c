/* Output maps: a ring buffer (reserve/submit/discard/output/query, a full ring) and a
 * perf event array (bpf_perf_event_output with the current CPU, an explicit index,
 * another CPU, an index out of range, bad flags). Records carry a tag and the CPU so that
 * tests/runtime_output.rs can check which came out, in which order. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;

struct rec {
	u32 tag;
	u32 cpu;
	u64 seq;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} rb SEC(".maps");

/* max_entries left out: libbpf makes it the number of CPUs. */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

static __always_inline void fill(struct rec *r, u32 tag, u64 seq)
{
	r->tag = tag;
	r->cpu = bpf_get_smp_processor_id();
	r->seq = seq;
}

SEC("raw_tp/rt_ringbuf")
int rt_ringbuf(u64 *ctx)
{
	u64 seq = ctx[0];
	long avail0, avail1, avail2, out, flags;
	struct rec *a, *b, *c, d;

	avail0 = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	a = bpf_ringbuf_reserve(&rb, sizeof(*a), 0);
	if (!a)
		return 1;
	b = bpf_ringbuf_reserve(&rb, sizeof(*b), 0);
	if (!b) {
		bpf_ringbuf_discard(a, 0);
		return 2;
	}
	c = bpf_ringbuf_reserve(&rb, sizeof(*c), 0);
	if (!c) {
		bpf_ringbuf_discard(a, 0);
		bpf_ringbuf_discard(b, 0);
		return 3;
	}
	fill(a, 1, seq);
	fill(b, 2, seq);
	fill(c, 3, seq);
	/* Reserved, not yet committed: counted as available data already. */
	avail1 = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	/* Committed out of order; the consumer sees ring order without the discarded one. */
	bpf_ringbuf_submit(c, BPF_RB_NO_WAKEUP);
	bpf_ringbuf_discard(b, 0);
	bpf_ringbuf_submit(a, BPF_RB_FORCE_WAKEUP);
	fill(&d, 4, seq);
	out = bpf_ringbuf_output(&rb, &d, sizeof(d), 0);
	avail2 = bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA);
	flags = bpf_ringbuf_reserve(&rb, 8, 1) != 0;
	bpf_printk("ringbuf avail before=%ld reserved=%ld after output=%ld", avail0, avail1, avail2);
	bpf_printk("ringbuf output=%ld size=%ld reserve with flags=%ld", out,
		   bpf_ringbuf_query(&rb, BPF_RB_RING_SIZE), flags);
	bpf_printk("ringbuf cons_pos=%ld prod_pos=%ld", bpf_ringbuf_query(&rb, BPF_RB_CONS_POS),
		   bpf_ringbuf_query(&rb, BPF_RB_PROD_POS));
	return 0;
}

SEC("raw_tp/rt_ringbuf_full")
int rt_ringbuf_full(u64 *ctx)
{
	char small[8] = "small";
	char big[80] = {};
	long exact, more, out_fits, out_full;
	void *r, *x;

	/* A record of the whole ring (4088 + 8-byte header) is refused: the kernel keeps the
	 * producer less than the ring's size ahead of the consumer. */
	x = bpf_ringbuf_reserve(&rb, 4088, 0);
	exact = x != 0;
	if (x)
		bpf_ringbuf_discard(x, 0);
	r = bpf_ringbuf_reserve(&rb, 4000, 0); /* 4008 of 4096 bytes */
	if (!r)
		return 1;
	x = bpf_ringbuf_reserve(&rb, 100, 0); /* 108 > 88 left: NULL */
	more = x != 0;
	if (x)
		bpf_ringbuf_discard(x, 0);
	out_fits = bpf_ringbuf_output(&rb, small, sizeof(small), 0); /* 16 of 88 */
	out_full = bpf_ringbuf_output(&rb, big, sizeof(big), 0);     /* 88 of 72 */
	bpf_printk("full ring: whole=%ld after 4000 reserve 100=%ld", exact, more);
	bpf_printk("full ring: output 8=%ld output 80=%ld avail=%ld", out_fits, out_full,
		   bpf_ringbuf_query(&rb, BPF_RB_AVAIL_DATA));
	bpf_ringbuf_discard(r, 0);
	return 0;
}

SEC("raw_tp/rt_perf")
int rt_perf(u64 *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();
	long cur, own, other, range, flags;
	struct rec r;

	fill(&r, 10, ctx[0]);
	cur = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &r, sizeof(r));
	r.tag = 11;
	own = bpf_perf_event_output(ctx, &events, cpu, &r, sizeof(r));
	r.tag = 12;
	other = bpf_perf_event_output(ctx, &events, cpu ^ 1, &r, sizeof(r));
	r.tag = 13;
	range = bpf_perf_event_output(ctx, &events, 64, &r, sizeof(r));
	flags = bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU | (1ULL << 32), &r, sizeof(r));
	bpf_printk("perf cpu=%u current=%ld own index=%ld", cpu, cur, own);
	bpf_printk("perf other cpu=%ld out of range=%ld bad flags=%ld", other, range, flags);
	return 0;
}
