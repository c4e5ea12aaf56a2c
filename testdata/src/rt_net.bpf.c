/* Network helpers on the packets of rt_net.json: a tc program rewrites the IPv4
 * destination with the checksum fixed from bpf_csum_diff and redirects; an XDP program
 * redirects. The bad-flag redirects come first, so that the good ones are the ones the
 * kernel would act on. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

static __always_inline __u16 fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

SEC("tc")
int rt_tc(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	__be32 addrs[2], new_daddr = bpf_htonl(0x0a000063); /* 10.0.0.99 */
	long push, diff, bad, ingress, redirect;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	addrs[0] = ip->saddr;
	addrs[1] = ip->daddr;
	/* The ones' complement sum of the addresses, and the change of the destination. */
	push = bpf_csum_diff(0, 0, addrs, sizeof(addrs), 0);
	diff = bpf_csum_diff(&ip->daddr, 4, &new_daddr, 4, 0);
	bpf_printk("tc csum push=%x diff=%x", fold(push), fold(diff));
	ip->check = ~fold((__u16)~ip->check + (__u64)(__u32)diff);
	ip->daddr = new_daddr;
	bad = bpf_redirect(3, 0x10);
	ingress = bpf_redirect(4, BPF_F_INGRESS);
	redirect = bpf_redirect(skb->ifindex + 1, 0);
	bpf_printk("tc len=%u ifindex=%u protocol=%x", skb->len, skb->ifindex,
		   bpf_ntohs(skb->protocol));
	bpf_printk("tc redirect bad flags=%ld ingress=%ld egress=%ld", bad, ingress, redirect);
	return redirect;
}

SEC("xdp")
int rt_xdp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	long bad, redirect;

	if ((void *)(eth + 1) > end)
		return XDP_ABORTED;
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	bad = bpf_redirect(9, 1);
	redirect = bpf_redirect(ctx->ingress_ifindex + 10, 0);
	bpf_printk("xdp ifindex=%u len=%ld", ctx->ingress_ifindex, (long)(end - data));
	bpf_printk("xdp redirect bad flags=%ld redirect=%ld", bad, redirect);
	return redirect;
}
