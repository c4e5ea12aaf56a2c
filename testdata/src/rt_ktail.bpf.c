/* Tail calls to compare with the real kernel (`ebpf-sim parity --prog kt_entry`): XDP
 * programs and a prog array filled by its libbpf-style initialiser
 * (`.values = { [0] = &kt_self, [2] = &kt_next }`), so the simulator and the kernel
 * backend fill it the same way with no options. The packet's first byte picks a case:
 *  0: kt_entry tail-calls slot 0, kt_self, which tail-calls itself: 33 tail calls
 *     succeed, the 34th falls through (34 runs; r0 = 34);
 *  1: an empty slot (1) and an index out of range (100) fall through, r0 and the packet
 *     unchanged by them;
 *  2: kt_entry -> kt_next, which writes the packet and returns XDP_TX;
 *  3: 33 tail calls into an empty slot (index 1, a constant), then one to kt_next;
 *  4: the same with the index from the packet (byte 1), which the kernel's JIT compiles
 *     to an indirect tail call rather than a patched direct jump.
 * Cases 3 and 4 show whether a tail call into an empty slot counts towards the limit of
 * 33 (docs/kernel-differences.md: in the kernel it does not). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u8 u8;
typedef __u32 u32;

int kt_self(struct xdp_md *ctx);
int kt_next(struct xdp_md *ctx);

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, int(struct xdp_md *));
} chain SEC(".maps") = {
	.values = { [0] = (void *)&kt_self, [2] = (void *)&kt_next },
};

/* Programs run in the current chain, and of every chain. */
u32 runs;
u32 total_runs;

SEC("xdp")
int kt_entry(struct xdp_md *ctx)
{
	u8 *data = (u8 *)(long)ctx->data;
	u8 *end = (u8 *)(long)ctx->data_end;

	if (data + 2 > end)
		return XDP_ABORTED;
	runs = 1;
	total_runs++;
	if (data[0] == 0) {
		bpf_tail_call(ctx, &chain, 0);
		bpf_printk("entry fell through: runs=%u", runs);
		return 1000;
	}
	if (data[0] == 1) {
		bpf_tail_call(ctx, &chain, 1);
		bpf_printk("empty slot fell through: runs=%u", runs);
		bpf_tail_call(ctx, &chain, 100);
		bpf_printk("index out of range fell through: runs=%u", runs);
		return XDP_PASS;
	}
	if (data[0] == 3) {
		for (int i = 0; i < 33; i++)
			bpf_tail_call(ctx, &chain, 1);
		bpf_tail_call(ctx, &chain, 2);
		bpf_printk("33 empty slots used up the tail calls: runs=%u", runs);
		return 1002;
	}
	if (data[0] == 4) {
		u32 empty = data[1];

		for (int i = 0; i < 33; i++)
			bpf_tail_call(ctx, &chain, empty);
		bpf_tail_call(ctx, &chain, 2);
		bpf_printk("33 empty slots (index from the packet) used up the tail calls: runs=%u",
			   runs);
		return 1003;
	}
	bpf_tail_call(ctx, &chain, 2);
	bpf_printk("next fell through");
	return 1001;
}

SEC("xdp")
int kt_self(struct xdp_md *ctx)
{
	runs++;
	total_runs++;
	bpf_tail_call(ctx, &chain, 0);
	bpf_printk("self fell through: runs=%u tail calls=%u", runs, runs - 1);
	return runs;
}

SEC("xdp")
int kt_next(struct xdp_md *ctx)
{
	u8 *data = (u8 *)(long)ctx->data;
	u8 *end = (u8 *)(long)ctx->data_end;

	runs++;
	total_runs++;
	if (data + 2 > end)
		return XDP_ABORTED;
	data[1] = 0xaa;
	bpf_printk("next: runs=%u len=%u", runs, (u32)(end - data));
	return XDP_TX;
}
