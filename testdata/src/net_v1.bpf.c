/* Networking programs compiled with -mcpu=v1: legacy `maps` section definitions. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* The pre-BTF map definition layout libbpf used to accept. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct bpf_map_def SEC("maps") pkt_count = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(u32),
	.value_size = sizeof(u64),
	.max_entries = 4,
};

struct bpf_map_def SEC("maps") flows = {
	.type = BPF_MAP_TYPE_LRU_HASH,
	.key_size = 8,
	.value_size = 4,
	.max_entries = 1024,
	.map_flags = 0,
};

const volatile int verbose = 1;
static const char greeting[] = "hello from xdp";

static __noinline int bump(u32 key)
{
	u64 *v = bpf_map_lookup_elem(&pkt_count, &key);
	if (v)
		__sync_fetch_and_add(v, 1);
	return v != 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	bump(0);
	if (verbose)
		bpf_trace_printk(greeting, sizeof(greeting));
	if (data + 14 > data_end)
		return XDP_DROP;
	return XDP_PASS;
}

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
	u64 key = skb->len;
	u32 one = 1;
	bump(1);
	bpf_map_update_elem(&flows, &key, &one, BPF_ANY);
	return TC_ACT_OK;
}

SEC("classifier")
int cls_main(struct __sk_buff *skb)
{
	return bump(2) ? TC_ACT_OK : TC_ACT_SHOT;
}

SEC("socket")
int sock_filter(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("cgroup_skb/ingress")
int cg_ingress(struct __sk_buff *skb)
{
	bump(3);
	return 1;
}

SEC("cgroup_skb/egress")
int cg_egress(struct __sk_buff *skb)
{
	return 1;
}
