/* Tail calls through a prog array (filled by the test: `--map jmp_table:0=tail_self
 * --map jmp_table:1=tail_hop --map jmp_table:2=tail_end`, or the Machine API):
 *  - rt_tail: tail_entry tail-calls slot 0, tail_self, which tail-calls itself until the
 *    kernel's limit: 33 tail calls succeed, the 34th falls through (34 runs in all);
 *  - rt_tail_missing: an empty slot and an index out of range fall through;
 *  - rt_tail_hops: entry -> tail_hop -> tail_end, each seeing the same context. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 8);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} jmp_table SEC(".maps");

/* State of the current chain: programs run, and the context it started with. */
u32 runs;
u64 first_ctx;
u64 first_arg;
u32 ctx_changed;

static __always_inline void check_ctx(u64 *ctx)
{
	if ((u64)ctx != first_ctx || ctx[0] != first_arg)
		ctx_changed++;
}

static __always_inline void start(u64 *ctx)
{
	runs = 1;
	first_ctx = (u64)ctx;
	first_arg = ctx[0];
	ctx_changed = 0;
}

SEC("raw_tp/rt_tail")
int tail_entry(u64 *ctx)
{
	start(ctx);
	bpf_tail_call(ctx, &jmp_table, 0);
	bpf_printk("entry fell through: runs=%u", runs);
	return 1000 + runs;
}

SEC("raw_tp")
int tail_self(u64 *ctx)
{
	runs++;
	check_ctx(ctx);
	bpf_tail_call(ctx, &jmp_table, 0);
	bpf_printk("self fell through: runs=%u tail calls=%u ctx changed=%u", runs, runs - 1,
		   ctx_changed);
	return runs;
}

SEC("raw_tp/rt_tail_missing")
int tail_missing(u64 *ctx)
{
	start(ctx);
	bpf_tail_call(ctx, &jmp_table, 5);
	bpf_printk("empty slot fell through: runs=%u", runs);
	bpf_tail_call(ctx, &jmp_table, 100);
	bpf_printk("index out of range fell through: runs=%u", runs);
	return 7;
}

SEC("raw_tp/rt_tail_hops")
int tail_hops(u64 *ctx)
{
	start(ctx);
	bpf_tail_call(ctx, &jmp_table, 1);
	bpf_printk("hops fell through");
	return -1;
}

SEC("raw_tp")
int tail_hop(u64 *ctx)
{
	runs++;
	check_ctx(ctx);
	bpf_tail_call(ctx, &jmp_table, 2);
	bpf_printk("hop fell through");
	return -2;
}

SEC("raw_tp")
int tail_end(u64 *ctx)
{
	runs++;
	check_ctx(ctx);
	bpf_printk("hop end: args %llu %llu runs=%u", ctx[0], ctx[1], runs);
	bpf_printk("hop end: ctx changed=%u", ctx_changed);
	return ctx[0] + ctx[1];
}
