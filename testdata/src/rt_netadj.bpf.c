/* Packet helpers the simulator does not register yet: bpf_skb_load_bytes and
 * bpf_skb_store_bytes (tc), bpf_xdp_adjust_head and bpf_xdp_adjust_tail (XDP). Kept
 * apart from rt_net.bpf.c because an object calling an unknown helper does not load.
 * tests/runtime_net.rs asserts the kernel's results (ignored until the helpers exist). */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("tc")
int rt_skb_bytes(struct __sk_buff *skb)
{
	__u8 mac[6], two[2] = { 0xff, 0xff }, dst[6] = { 2, 0, 0, 0, 0, 0x99 };
	long load, past, store, flags, store_past;

	load = bpf_skb_load_bytes(skb, 6, mac, sizeof(mac));
	past = bpf_skb_load_bytes(skb, skb->len - 1, two, sizeof(two));
	flags = bpf_skb_store_bytes(skb, 0, dst, sizeof(dst), 4);
	store_past = bpf_skb_store_bytes(skb, skb->len - 2, dst, sizeof(dst), 0);
	store = bpf_skb_store_bytes(skb, 0, dst, sizeof(dst), BPF_F_INVALIDATE_HASH);
	bpf_printk("skb load=%ld src=%x:%x", load, mac[0], mac[5]);
	bpf_printk("skb load past the end=%ld zeroed=%d", past, two[0] == 0 && two[1] == 0);
	bpf_printk("skb store=%ld bad flags=%ld past the end=%ld", store, flags, store_past);
	return TC_ACT_OK;
}

SEC("xdp")
int rt_xdp_adjust(struct xdp_md *ctx)
{
	long grow, too_far, shrink, extend, too_short;
	__u8 *data, *end;

	grow = bpf_xdp_adjust_head(ctx, -4);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	if (data + 4 > end)
		return XDP_ABORTED;
	data[0] = 0xde;
	data[1] = 0xad;
	data[2] = 0xbe;
	data[3] = 0xef;
	too_far = bpf_xdp_adjust_head(ctx, 4096);
	shrink = bpf_xdp_adjust_tail(ctx, -2);
	extend = bpf_xdp_adjust_tail(ctx, 8);
	too_short = bpf_xdp_adjust_tail(ctx, -4096);
	data = (void *)(long)ctx->data;
	end = (void *)(long)ctx->data_end;
	bpf_printk("xdp adjust head=%ld too far=%ld len=%ld", grow, too_far, (long)(end - data));
	bpf_printk("xdp adjust tail shrink=%ld extend=%ld too short=%ld", shrink, extend, too_short);
	return XDP_PASS;
}
