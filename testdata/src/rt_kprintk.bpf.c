/* bpf_printk formats to compare with the real kernel (`ebpf-sim parity`): integers of
 * every width and base, padding, characters, strings, IPv4 addresses and more than three
 * arguments (bpf_trace_vprintk), from a raw tracepoint's u64 arguments. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;
typedef __s64 s64;

SEC("raw_tp/kprintk")
int kp_formats(u64 *ctx)
{
	u64 a = ctx[0], b = ctx[1];
	char name[8] = "ebpf";
	unsigned char ip[4] = { 10, 0, 0, (unsigned char)a };

	bpf_printk("d=%d u=%u x=%x", (int)a, (u32)b, (u32)b);
	bpf_printk("lld=%lld llu=%llu llx=%llx", (s64)b, b, b);
	bpf_printk("X=%X ld=%ld lx=%lx", (u32)a, (long)a, (long)b);
	bpf_printk("pad [%5d] [%-5d] [%05x]", (int)a, (int)a, (u32)a);
	bpf_printk("s=%s c=%c %%", name, 'k');
	bpf_printk("ip=%pI4", ip);
	bpf_printk("four %d %u %x %llx", (int)a, (u32)a, (u32)b, b);
	bpf_printk("");
	return (int)a;
}
