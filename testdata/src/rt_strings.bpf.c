/* Memory and string helpers on the events of rt_strings.json: the probe_read family on
 * kernel and user memory the trace gives (and on memory it does not), trace_printk and
 * trace_vprintk with the formats the kernel accepts (and some it refuses), snprintf,
 * strncmp, strtol/strtoul and bpf_loop. Results are printed with bpf_printk. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;

/* args: [0] a kernel string, [1] a user string, [2] an address nothing is mapped at */
SEC("raw_tp/rt_probe")
int rt_probe(u64 *ctx)
{
	const void *kstr = (const void *)ctx[0];
	const void *ustr = (const void *)ctx[1];
	const void *nowhere = (const void *)ctx[2];
	char buf[16], small[6];
	long a, b, c;

	a = bpf_probe_read_kernel(buf, 8, kstr);
	bpf_printk("probe_read_kernel=%ld first=%c eighth=%c", a, buf[0], buf[7]);
	a = bpf_probe_read_kernel_str(buf, sizeof(buf), kstr);
	b = bpf_probe_read_kernel_str(small, sizeof(small), kstr);
	bpf_printk("probe_read_kernel_str=%ld %s truncated=%ld %s", a, buf, b, small);
	a = bpf_probe_read_user(buf, 4, ustr);
	bpf_printk("probe_read_user=%ld first=%c fourth=%c", a, buf[0], buf[3]);
	a = bpf_probe_read_user_str(buf, sizeof(buf), ustr);
	bpf_printk("probe_read_user_str=%ld %s", a, buf);
	/* The legacy helpers read kernel or user memory. */
	a = bpf_probe_read(buf, 4, ustr);
	b = bpf_probe_read_str(small, sizeof(small), ustr);
	c = bpf_probe_read_str(buf, sizeof(buf), kstr);
	bpf_printk("probe_read=%ld probe_read_str user=%ld kernel=%ld", a, b, c);
	/* Wrong address spaces and unmapped memory: errors, and the buffer is zeroed. */
	a = bpf_probe_read_user(buf, 4, kstr);
	b = bpf_probe_read_kernel(buf, 4, ustr);
	c = bpf_probe_read_kernel(buf, 4, nowhere);
	bpf_printk("user read of kernel=%ld kernel read of user=%ld unmapped=%ld", a, b, c);
	a = bpf_probe_read_kernel_str(buf, sizeof(buf), nowhere);
	b = bpf_probe_read_user_str(buf, sizeof(buf), nowhere);
	bpf_printk("unmapped strings kernel=%ld user=%ld zeroed=%d", a, b, buf[0] == 0);
	return 0;
}

static const char bad_octal[] = "bad %o";
static const char bad_alt[] = "bad %#x";
static const char bad_precision[] = "bad %.2d";
static const char bad_short[] = "bad %hd";
static const char bad_four[] = "bad %d %d %d %d";
static const char bad_s[] = "bad %sx";
static const char bad_p[] = "bad %pZ";
static const char unterminated[4] = { 'a', 'b', 'c', 'd' };

/* args: [0] a kernel string, [1] a user string */
SEC("raw_tp/rt_printk")
int rt_printk(u64 *ctx)
{
	u64 kstr = ctx[0], ustr = ctx[1];
	__u8 ip4[4] = { 192, 168, 1, 20 };
	__u8 ip6[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 };
	char word[8] = "word";
	long n, r[8];

	n = bpf_printk("int d=%d i=%i u=%u", -5, -6, 7);
	bpf_printk("returned %ld", n);
	bpf_printk("hex x=%x X=%X", 0xbeef, 0xbeef);
	bpf_printk("long ld=%ld lu=%lu llx=%llx", -1L, -1UL, 0x1deadbeefULL);
	bpf_printk("32 bits d=%d x=%x u=%u", 0x100000005ULL, 0x1ffffffffULL, -1);
	bpf_printk("width [%5d] [%-5d] [%05d]", 42, 42, -42);
	bpf_printk("flags [%+d] [% d] [%5x]", 42, 42, 0xab);
	bpf_printk("char [%c] [%3c] %%", 'A', 'z');
	bpf_printk("strings [%s] [%-6s] [%6s]", word, word, word);
	bpf_printk("kernel %s user %s", kstr, ustr);
	bpf_printk("pks %pks pus %pus", kstr, ustr);
	bpf_printk("ip %pI4 %pi4", ip4, ip4);
	bpf_printk("ip6 %pI6", ip6);
	bpf_printk("ip6 %pi6", ip6);
	bpf_printk("pointer %px", 0xffff888012345678ULL);
	/* More than 3 arguments: bpf_trace_vprintk */
	bpf_printk("vprintk %d %d %d %d %d %s", 1, 2, 3, 4, 5, word);

	/* Formats the kernel refuses: -EINVAL and no line. */
	r[0] = bpf_trace_printk(bad_octal, sizeof(bad_octal), 8);
	r[1] = bpf_trace_printk(bad_alt, sizeof(bad_alt), 8);
	r[2] = bpf_trace_printk(bad_precision, sizeof(bad_precision), 8);
	r[3] = bpf_trace_printk(bad_short, sizeof(bad_short), 8);
	r[4] = bpf_trace_printk(bad_four, sizeof(bad_four), 1, 2, 3);
	r[5] = bpf_trace_printk(bad_s, sizeof(bad_s), (u64)word);
	r[6] = bpf_trace_printk(bad_p, sizeof(bad_p), 1);
	r[7] = bpf_trace_printk(unterminated, sizeof(unterminated));
	bpf_printk("refused o=%ld #=%ld .=%ld", r[0], r[1], r[2]);
	bpf_printk("refused h=%ld 4 args=%ld sx=%ld", r[3], r[4], r[5]);
	bpf_printk("refused pZ=%ld no NUL=%ld", r[6], r[7]);
	return 0;
}

static const char vfmt[] = "vprintk direct %d+%d";

SEC("raw_tp/rt_vprintk")
int rt_vprintk(u64 *ctx)
{
	u64 args[13] = { 20, 22 };
	long ok, odd, many;

	ok = bpf_trace_vprintk(vfmt, sizeof(vfmt), args, 2 * 8);
	odd = bpf_trace_vprintk(vfmt, sizeof(vfmt), args, 12);
	many = bpf_trace_vprintk(vfmt, sizeof(vfmt), args, 13 * 8);
	bpf_printk("vprintk ok=%ld odd size=%ld 13 args=%ld", ok, odd, many);
	return 0;
}

SEC("raw_tp/rt_snprintf")
int rt_snprintf(u64 *ctx)
{
	static const char fmt_bad[] = "%o";
	static const char fmt_long[] = "0123456789";
	char out[32], tiny[8], name[8] = "sim";
	u64 args[2];
	long n, t, bad;

	n = BPF_SNPRINTF(out, sizeof(out), "pid=%d name=%s", 4242, name);
	bpf_printk("snprintf n=%ld out=%s", n, out);
	t = bpf_snprintf(tiny, sizeof(tiny), fmt_long, 0, 0);
	bpf_printk("snprintf truncated n=%ld out=%s", t, tiny);
	args[0] = 8;
	bad = bpf_snprintf(out, sizeof(out), fmt_bad, args, 8);
	bpf_printk("snprintf bad=%ld", bad);
	return 0;
}

SEC("raw_tp/rt_strncmp")
int rt_strncmp(u64 *ctx)
{
	char name[8] = "bash";

	bpf_printk("strncmp same=%ld less=%ld greater=%ld", bpf_strncmp(name, sizeof(name), "bash"),
		   bpf_strncmp(name, sizeof(name), "bat"), bpf_strncmp(name, sizeof(name), "ba"));
	bpf_printk("strncmp first 3 of bash vs bax=%ld first 2=%ld",
		   bpf_strncmp(name, 3, "bax"), bpf_strncmp(name, 2, "bax"));
	return 0;
}

#define STRTOL(fn, s, flags)                                          \
	({                                                            \
		static const char __s[] = s;                          \
		long __r;                                             \
		res = 777;                                            \
		__r = fn(__s, sizeof(__s), flags, (void *)&res);      \
		bpf_printk(#fn " '%s' base %d: %ld -> %lld", __s, flags, __r, res); \
	})

SEC("raw_tp/rt_strtol")
int rt_strtol(u64 *ctx)
{
	long long res;

	STRTOL(bpf_strtol, "  -42xyz", 10);
	STRTOL(bpf_strtol, "0x1f", 0);
	STRTOL(bpf_strtol, "017", 0);
	STRTOL(bpf_strtol, "ff", 16);
	STRTOL(bpf_strtol, "+5", 10);
	STRTOL(bpf_strtol, "zz", 10);
	STRTOL(bpf_strtol, "9223372036854775807", 10);
	STRTOL(bpf_strtol, "9223372036854775808", 10);
	STRTOL(bpf_strtol, "-9223372036854775808", 10);
	STRTOL(bpf_strtol, "12", 3);
	STRTOL(bpf_strtoul, "18446744073709551615", 10);
	STRTOL(bpf_strtoul, "18446744073709551616", 10);
	STRTOL(bpf_strtoul, "-1", 10);
	STRTOL(bpf_strtoul, " 0755", 8);
	return 0;
}

static long add_index(u32 index, u64 *sum)
{
	*sum += index;
	return index == 9;
}

static long count_all(u32 index, u64 *sum)
{
	*sum += 1;
	return 0;
}

SEC("raw_tp/rt_loop")
int rt_loop(u64 *ctx)
{
	u64 sum = 0, count = 0;
	long a, b, c, d;

	a = bpf_loop(100, add_index, &sum, 0);
	b = bpf_loop(ctx[0], count_all, &count, 0);
	c = bpf_loop(1, count_all, &count, 1);
	d = bpf_loop((1 << 23) + 1, count_all, &count, 0);
	bpf_printk("loop stop at 9: calls=%ld sum=%llu", a, sum);
	bpf_printk("loop %ld calls count=%llu", b, count);
	bpf_printk("loop flags=%ld too many=%ld", c, d);
	return 0;
}
