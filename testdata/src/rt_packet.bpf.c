/* Packet helpers: bpf_xdp_adjust_head/tail/meta, bpf_skb_load_bytes/store_bytes,
 * bpf_csum_diff and bpf_redirect, checked by tests/packet_helpers.rs. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int strip_ethernet(struct xdp_md *ctx)
{
	long too_far = bpf_xdp_adjust_head(ctx, -1000);
	long ok = bpf_xdp_adjust_head(ctx, 14);
	long tail = bpf_xdp_adjust_tail(ctx, -4);
	long meta = bpf_xdp_adjust_meta(ctx, -8);
	long bad_meta = bpf_xdp_adjust_meta(ctx, -6);
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	unsigned char *ip = data;

	if (ip + 1 > (unsigned char *)end)
		return 1; /* XDP_DROP */
	bpf_printk("head %ld %ld tail %ld len %ld first %x", too_far, ok, tail, (long)(end - data), ip[0]);
	bpf_printk("meta %ld %ld size %ld", meta, bad_meta, (long)(data - (void *)(long)ctx->data_meta));
	return 2; /* XDP_PASS */
}

SEC("tc")
int rewrite_ttl(struct __sk_buff *skb)
{
	unsigned short proto = 0;
	unsigned char ttl = 0, new_ttl = 1;
	unsigned int old_word = 0, new_word = 0;
	long r1 = bpf_skb_load_bytes(skb, 12, &proto, 2);
	long r2 = bpf_skb_load_bytes(skb, 22, &ttl, 1);
	long r3 = bpf_skb_store_bytes(skb, 22, &new_ttl, 1, 0);
	long r4 = bpf_skb_load_bytes(skb, 10000, &ttl, 1);
	long csum;

	old_word = 64;
	new_word = 1;
	csum = bpf_csum_diff(&old_word, 4, &new_word, 4, 0);
	bpf_printk("proto %x load %ld %ld store %ld far %ld", proto, r1, r2, r3, r4);
	bpf_printk("csum %lx", csum);
	return bpf_redirect(7, 0);
}
