/* Tracepoint and kprobe programs to run in the kernel as raw tracepoints
 * (`ebpf-sim parity --kernel-as raw_tp`): they read only their context (a tracepoint
 * record, pt_regs registers within the first 96 bytes), maps, a ring buffer and printk
 * (and bpf_probe_read_kernel of the context itself),
 * so the simulator and the kernel see the same thing. `kr_kprobe_di` reads `di`
 * (pt_regs offset 112), which raw_tp rules refuse (contexts are 12 u64 arguments). */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

typedef __u32 u32;
typedef __u64 u64;

/* x86_64 struct pt_regs, by offset (no CO-RE). */
struct regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8;
	unsigned long ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

struct sys_enter {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	long id;
	unsigned long args[6];
};

struct sched_switch {
	unsigned short common_type;
	unsigned char common_flags;
	unsigned char common_preempt_count;
	int common_pid;
	char prev_comm[16];
	int prev_pid;
	int prev_prio;
	long prev_state;
	char next_comm[16];
	int next_pid;
	int next_prio;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, u32);
	__type(value, u64);
} bytes_by_fd SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} regs_seen SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} switches SEC(".maps");

struct switch_event {
	int prev_pid;
	int next_pid;
	long prev_state;
	char next_comm[16];
};

SEC("tp/syscalls/sys_enter_write")
int kr_write(struct sys_enter *ctx)
{
	u32 fd = ctx->args[0];
	u64 count = ctx->args[2];
	u64 *total = bpf_map_lookup_elem(&bytes_by_fd, &fd);

	if (total)
		__sync_fetch_and_add(total, count);
	else
		bpf_map_update_elem(&bytes_by_fd, &fd, &count, BPF_ANY);
	bpf_printk("write id=%ld fd=%u count=%llu", ctx->id, fd, count);
	return count > 100;
}

SEC("tp/sched/sched_switch")
int kr_switch(struct sched_switch *ctx)
{
	struct switch_event *e;

	bpf_printk("switch %s/%d -> %s/%d", ctx->prev_comm, ctx->prev_pid, ctx->next_comm,
		   ctx->next_pid);
	e = bpf_ringbuf_reserve(&switches, sizeof(*e), 0);
	if (!e)
		return -1;
	e->prev_pid = ctx->prev_pid;
	e->next_pid = ctx->next_pid;
	e->prev_state = ctx->prev_state;
	/* The context is kernel memory in both: the tracepoint's record, the test run's copy. */
	bpf_probe_read_kernel(e->next_comm, sizeof(e->next_comm), ctx->next_comm);
	bpf_ringbuf_submit(e, 0);
	return ctx->prev_prio;
}

SEC("kprobe/rt_kfn")
int kr_kprobe(struct regs *ctx)
{
	u32 k = 0;
	u64 parm5 = ctx->r8, parm6 = ctx->r9;

	bpf_map_update_elem(&regs_seen, &k, &parm5, BPF_ANY);
	k = 1;
	bpf_map_update_elem(&regs_seen, &k, &parm6, BPF_ANY);
	bpf_printk("kprobe r8=%lx r9=%lx", parm5, parm6);
	return parm5 + parm6;
}

SEC("kretprobe/rt_kfn")
int kr_kretprobe(struct regs *ctx)
{
	u32 k = 2;
	u64 ret = ctx->ax;

	bpf_map_update_elem(&regs_seen, &k, &ret, BPF_ANY);
	return ret + 1;
}

SEC("kprobe/rt_kfn2")
int kr_kprobe_di(struct regs *ctx)
{
	return ctx->di;
}
