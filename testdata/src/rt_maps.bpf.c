/* Every data map type through the simulator: one program per map type, each on a raw
 * tracepoint of its own (the trace rt_maps.json drives them), printing what it observes
 * with bpf_printk (trace_printk up to 3 arguments, trace_vprintk beyond), so that
 * tests/runtime_maps.rs can assert the kernel's semantics line by line and the final
 * contents with --dump-maps. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;

/* ---- hash: update flags, errors, max_entries, delete ---- */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} hash SEC(".maps");

static __always_inline long put(void *map, u32 k, u64 v, u64 flags)
{
	return bpf_map_update_elem(map, &k, &v, flags);
}

static __always_inline u64 get(void *map, u32 k)
{
	u64 *p = bpf_map_lookup_elem(map, &k);

	return p ? *p : (u64)-1;
}

static __always_inline long del(void *map, u32 k)
{
	return bpf_map_delete_elem(map, &k);
}

SEC("raw_tp/rt_hash")
int rt_hash(void *ctx)
{
	long a, b, c;

	a = put(&hash, 1, 100, BPF_ANY);
	b = put(&hash, 1, 101, BPF_NOEXIST);
	c = put(&hash, 1, 102, BPF_EXIST);
	bpf_printk("hash any=%ld noexist=%ld exist=%ld", a, b, c);
	a = put(&hash, 2, 200, BPF_EXIST);
	b = put(&hash, 2, 200, BPF_F_LOCK);
	c = put(&hash, 2, 200, 8);
	bpf_printk("hash missing-exist=%ld lock=%ld badflags=%ld", a, b, c);
	bpf_printk("hash lookup 1=%llu 2=%lld", get(&hash, 1), get(&hash, 2));
	put(&hash, 2, 20, BPF_NOEXIST);
	put(&hash, 3, 30, BPF_NOEXIST);
	put(&hash, 4, 40, BPF_NOEXIST);
	a = put(&hash, 5, 50, BPF_ANY);
	b = put(&hash, 5, 50, BPF_NOEXIST);
	c = put(&hash, 4, 44, BPF_ANY);
	bpf_printk("hash full: new any=%ld new noexist=%ld existing=%ld", a, b, c);
	a = del(&hash, 3);
	b = del(&hash, 3);
	c = put(&hash, 5, 50, BPF_NOEXIST);
	bpf_printk("hash delete=%ld again=%ld insert=%ld", a, b, c);
	bpf_printk("hash lookup 3=%lld 4=%llu 5=%llu", get(&hash, 3), get(&hash, 4), get(&hash, 5));
	return 0;
}

/* ---- array: flags, out of range, delete, values in place ---- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} array SEC(".maps");

SEC("raw_tp/rt_array")
int rt_array(void *ctx)
{
	long a, b, c;
	u32 k = 0;
	u64 *p;

	a = put(&array, 2, 22, BPF_ANY);
	b = put(&array, 2, 23, BPF_NOEXIST);
	c = put(&array, 2, 24, BPF_EXIST);
	bpf_printk("array any=%ld noexist=%ld exist=%ld", a, b, c);
	a = put(&array, 4, 1, BPF_ANY);
	b = del(&array, 2);
	c = put(&array, 1, 1, 8);
	bpf_printk("array out-of-range=%ld delete=%ld badflags=%ld", a, b, c);
	/* Values are updated in place through the pointer a lookup returns. */
	p = bpf_map_lookup_elem(&array, &k);
	if (p)
		*p += 5;
	k = 4;
	bpf_printk("array [0]=%llu [2]=%llu [4] found=%d", get(&array, 0), get(&array, 2),
		   bpf_map_lookup_elem(&array, &k) != 0);
	return 0;
}

/* ---- per-CPU array and hash: one value per simulated CPU ---- */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} pcpu_array SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} pcpu_hash SEC(".maps");

SEC("raw_tp/rt_percpu")
int rt_percpu(void *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();
	u32 k = 0;
	u64 *count = bpf_map_lookup_elem(&pcpu_array, &k);
	long a, b;

	if (!count)
		return 1;
	*count += 1;
	a = put(&pcpu_hash, 7, 10 * (cpu + 1), BPF_ANY);
	b = put(&pcpu_hash, 7, 1, BPF_NOEXIST);
	bpf_printk("percpu cpu=%u count=%llu hash=%llu", cpu, *count, get(&pcpu_hash, 7));
	bpf_printk("percpu update=%ld noexist=%ld", a, b);
	return 0;
}

/* ---- LRU hash: eviction of the least recently used key ---- */

#define LRU_MAP(name, kind)                          \
	struct {                                     \
		__uint(type, kind);                  \
		__uint(max_entries, 4);              \
		__type(key, u32);                    \
		__type(value, u64);                  \
	} name SEC(".maps")

LRU_MAP(lru_untouched, BPF_MAP_TYPE_LRU_HASH);
LRU_MAP(lru_touched, BPF_MAP_TYPE_LRU_HASH);
LRU_MAP(lru_pcpu, BPF_MAP_TYPE_LRU_PERCPU_HASH);

/* Bit k set when key k (1..5) is in the map (lookups of absent keys change nothing). */
static __always_inline u32 keys_of(void *map)
{
	u32 mask = 0;

	for (u32 k = 1; k <= 5; k++)
		if (bpf_map_lookup_elem(map, &k))
			mask |= 1 << k;
	return mask;
}

SEC("raw_tp/rt_lru")
int rt_lru(void *ctx)
{
	long full;

	for (u32 k = 1; k <= 4; k++) {
		put(&lru_untouched, k, k * 10, BPF_NOEXIST);
		put(&lru_touched, k, k * 10, BPF_NOEXIST);
		put(&lru_pcpu, k, k * 10, BPF_NOEXIST);
	}
	/* Key 1 is used again: the least recently used key becomes 2. */
	get(&lru_touched, 1);
	get(&lru_pcpu, 1);
	full = put(&lru_untouched, 5, 50, BPF_NOEXIST);
	put(&lru_touched, 5, 50, BPF_NOEXIST);
	put(&lru_pcpu, 5, 50, BPF_NOEXIST);
	bpf_printk("lru insert into full map=%ld", full);
	bpf_printk("lru keys untouched=0x%x touched=0x%x percpu=0x%x", keys_of(&lru_untouched),
		   keys_of(&lru_touched), keys_of(&lru_pcpu));
	return 0;
}

/* On another CPU: a per-CPU LRU's element has a separate value for this CPU. */
SEC("raw_tp/rt_lru_cpu")
int rt_lru_cpu(void *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();
	long a, b;

	a = put(&lru_pcpu, 1, 111, BPF_EXIST);
	b = put(&lru_pcpu, 2, 222, BPF_EXIST);
	bpf_printk("lru percpu cpu=%u exist=%ld missing=%ld", cpu, a, b);
	bpf_printk("lru percpu cpu=%u value 1=%llu 3=%llu", cpu, get(&lru_pcpu, 1), get(&lru_pcpu, 3));
	return 0;
}

/* ---- LPM trie: longest prefix match ---- */

struct lpm_key {
	u32 prefixlen;
	__u8 addr[4];
};

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 8);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct lpm_key);
	__type(value, u32);
} lpm SEC(".maps");

static __always_inline long lpm_put(u32 len, __u8 a, __u8 b, __u8 c, __u8 d, u32 v, u64 flags)
{
	struct lpm_key k = { len, { a, b, c, d } };

	return bpf_map_update_elem(&lpm, &k, &v, flags);
}

static __always_inline long lpm_get(__u8 a, __u8 b, __u8 c, __u8 d)
{
	struct lpm_key k = { 32, { a, b, c, d } };
	u32 *v = bpf_map_lookup_elem(&lpm, &k);

	return v ? (long)*v : -1;
}

SEC("raw_tp/rt_lpm")
int rt_lpm(void *ctx)
{
	struct lpm_key k24 = { 24, { 10, 1, 2, 0 } };
	long a, b;

	lpm_put(8, 10, 0, 0, 0, 8, BPF_ANY);
	lpm_put(16, 10, 1, 0, 0, 16, BPF_ANY);
	lpm_put(24, 10, 1, 2, 0, 24, BPF_ANY);
	a = lpm_put(16, 10, 1, 0, 0, 99, BPF_NOEXIST);
	b = lpm_put(16, 10, 1, 0, 0, 1616, BPF_EXIST);
	bpf_printk("lpm noexist=%ld exist=%ld", a, b);
	bpf_printk("lpm 10.1.2.3=%ld 10.1.9.9=%ld 10.9.9.9=%ld", lpm_get(10, 1, 2, 3),
		   lpm_get(10, 1, 9, 9), lpm_get(10, 9, 9, 9));
	a = bpf_map_delete_elem(&lpm, &k24);
	b = bpf_map_delete_elem(&lpm, &k24);
	bpf_printk("lpm delete=%ld again=%ld", a, b);
	bpf_printk("lpm after delete 10.1.2.3=%ld 11.1.2.3=%ld", lpm_get(10, 1, 2, 3),
		   lpm_get(11, 1, 2, 3));
	return 0;
}

/* ---- bloom filter, queue, stack ---- */

struct {
	__uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
	__uint(max_entries, 16);
	__uint(map_extra, 3);
	__type(value, u32);
} bloom SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 3);
	__type(value, u32);
} queue SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK);
	__uint(max_entries, 3);
	__type(value, u32);
} stack SEC(".maps");

static __always_inline long push(void *map, u32 v, u64 flags)
{
	return bpf_map_push_elem(map, &v, flags);
}

static __always_inline long pop(void *map)
{
	u32 v;
	long r = bpf_map_pop_elem(map, &v);

	return r ? r : v;
}

static __always_inline long peek(void *map)
{
	u32 v;
	long r = bpf_map_peek_elem(map, &v);

	return r ? r : v;
}

SEC("raw_tp/rt_bloom")
int rt_bloom(void *ctx)
{
	long a, b, c;
	u32 v;

	a = push(&bloom, 1, BPF_ANY);
	push(&bloom, 2, BPF_ANY);
	push(&bloom, 3, BPF_ANY);
	b = push(&bloom, 4, BPF_EXIST);
	bpf_printk("bloom push=%ld badflags=%ld", a, b);
	v = 2;
	a = bpf_map_peek_elem(&bloom, &v);
	v = 3;
	b = bpf_map_peek_elem(&bloom, &v);
	v = 99;
	c = bpf_map_peek_elem(&bloom, &v);
	bpf_printk("bloom has 2=%ld 3=%ld 99=%ld", a, b, c);
	return 0;
}

static __always_inline void queue_like(void *map, const char *name)
{
	long a, b, c;

	push(map, 1, BPF_ANY);
	push(map, 2, BPF_ANY);
	push(map, 3, BPF_ANY);
	a = push(map, 4, BPF_ANY);
	b = push(map, 4, BPF_EXIST);
	c = push(map, 5, BPF_NOEXIST);
	bpf_printk("%s full=%ld exist=%ld noexist=%ld", name, a, b, c);
	a = peek(map);
	b = pop(map);
	c = pop(map);
	bpf_printk("%s peek=%ld pop=%ld pop=%ld", name, a, b, c);
	a = pop(map);
	b = pop(map);
	c = peek(map);
	bpf_printk("%s last=%ld empty pop=%ld peek=%ld", name, a, b, c);
	push(map, 7, BPF_ANY);
	push(map, 8, BPF_ANY);
}

SEC("raw_tp/rt_queue")
int rt_queue(void *ctx)
{
	queue_like(&queue, "queue");
	queue_like(&stack, "stack");
	return 0;
}

/* ---- maps of maps ---- */

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, u64);
};

struct inner inner0 SEC(".maps"), inner1 SEC(".maps"), inner2 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, struct inner);
} outer_array SEC(".maps") = {
	.values = { [0] = &inner0, [2] = &inner1 },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, u32);
	__array(values, struct inner);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner2 },
};

SEC("raw_tp/rt_in_maps")
int rt_in_maps(void *ctx)
{
	u32 slots = 0, zero = 0, one = 1;

	for (u32 i = 0; i < 4; i++) {
		void *m = bpf_map_lookup_elem(&outer_array, &i);
		u64 *v;

		if (!m)
			continue;
		slots |= 1 << i;
		v = bpf_map_lookup_elem(m, &zero);
		if (v)
			*v += i + 1;
	}
	void *h1 = bpf_map_lookup_elem(&outer_hash, &one);
	void *h0 = bpf_map_lookup_elem(&outer_hash, &zero);
	if (h1)
		put(h1, 1, 77, BPF_ANY);
	bpf_printk("maps of maps: array slots=0x%x hash 1=%d 0=%d", slots, h1 != 0, h0 != 0);
	return 0;
}

/* ---- bpf_for_each_map_elem ---- */

struct sum_ctx {
	u64 sum;
	u32 count;
	u32 stop_at;
};

static long sum_elem(void *map, u32 *key, u64 *val, struct sum_ctx *c)
{
	c->sum += *val;
	c->count++;
	return c->count == c->stop_at;
}

SEC("raw_tp/rt_for_each")
int rt_for_each(void *ctx)
{
	struct sum_ctx c = {};
	long n;

	n = bpf_for_each_map_elem(&hash, sum_elem, &c, 0);
	bpf_printk("for_each hash n=%ld count=%u sum=%llu", n, c.count, c.sum);
	c = (struct sum_ctx){ .stop_at = 2 };
	n = bpf_for_each_map_elem(&array, sum_elem, &c, 0);
	bpf_printk("for_each array stop at 2: n=%ld sum=%llu", n, c.sum);
	c = (struct sum_ctx){};
	n = bpf_for_each_map_elem(&pcpu_array, sum_elem, &c, 0);
	bpf_printk("for_each percpu cpu=%u n=%ld sum=%llu", bpf_get_smp_processor_id(), n, c.sum);
	n = bpf_for_each_map_elem(&hash, sum_elem, &c, 1);
	bpf_printk("for_each badflags=%ld", n);
	return 0;
}

/* ---- global data: .rodata, .data, .bss ---- */

const volatile u32 ro_magic = 0xfeed;
u64 data_counter = 40;
u32 bss_hits[4];

SEC("raw_tp/rt_global")
int rt_global(void *ctx)
{
	u32 cpu = bpf_get_smp_processor_id() & 3;

	data_counter += 2;
	bss_hits[cpu]++;
	bpf_printk("global ro=%x data=%llu bss[cpu]=%u", ro_magic, data_counter, bss_hits[cpu]);
	return 0;
}
