/* The current task, time and CPU as helpers see them, on the events of rt_task.json:
 * time (ktime, boot, coarse, jiffies), prandom, identity (pid/tgid, uid/gid, comm, CPU),
 * task_structs (get_current_task with BPF_CORE_READ, get_current_task_btf), cgroups
 * (cgroup id, current_task_under_cgroup on a cgroup array filled with --map), kprobe
 * helpers (func ip, attach cookie, override_return, signals) and stacks (get_stackid
 * into a stack trace map, get_stack). Everything observed is printed with bpf_printk. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

/* Map types and flags vmlinux_min.h leaves out (values from uapi/linux/bpf.h). */
#define MAP_STACK_TRACE 7
#define MAP_CGROUP_ARRAY 8
#define F_USER_STACK (1ULL << 8)

SEC("raw_tp/rt_time")
int rt_time(u64 *ctx)
{
	u64 ns = bpf_ktime_get_ns();
	u64 boot = bpf_ktime_get_boot_ns();
	u64 coarse = bpf_ktime_get_coarse_ns();
	u64 jiffies = bpf_jiffies64();

	bpf_printk("time ns=%llu boot=%llu coarse=%llu", ns, boot, coarse);
	bpf_printk("time jiffies=%llu", jiffies);
	bpf_printk("prandom %u %u %u", bpf_get_prandom_u32(), bpf_get_prandom_u32(),
		   bpf_get_prandom_u32());
	return 0;
}

struct {
	__uint(type, MAP_CGROUP_ARRAY);
	__uint(max_entries, 4);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} cgroups SEC(".maps");

SEC("raw_tp/rt_ident")
int rt_ident(u64 *ctx)
{
	u64 pid_tgid = bpf_get_current_pid_tgid();
	u64 uid_gid = bpf_get_current_uid_gid();
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *btf_task = bpf_get_current_task_btf();
	char comm[16], short_comm[4];
	long a, b, c, d;

	bpf_get_current_comm(comm, sizeof(comm));
	bpf_get_current_comm(short_comm, sizeof(short_comm));
	bpf_printk("ident pid=%u tgid=%u uid=%u gid=%u", (u32)pid_tgid, pid_tgid >> 32,
		   (u32)uid_gid, uid_gid >> 32);
	bpf_printk("ident comm=%s short=%s cpu=%u", comm, short_comm, bpf_get_smp_processor_id());
	bpf_printk("ident task pid=%d tgid=%d parent tgid=%d", BPF_CORE_READ(task, pid),
		   BPF_CORE_READ(task, tgid), BPF_CORE_READ(task, real_parent, tgid));
	bpf_printk("ident btf task is current=%d parent tgid=%d", btf_task == task,
		   btf_task->real_parent->tgid);
	a = bpf_current_task_under_cgroup(&cgroups, 0);
	b = bpf_current_task_under_cgroup(&cgroups, 1);
	c = bpf_current_task_under_cgroup(&cgroups, 2);
	d = bpf_current_task_under_cgroup(&cgroups, 9);
	bpf_printk("cgroup id=%llu", bpf_get_current_cgroup_id());
	bpf_printk("cgroup under [0]=%ld [1]=%ld empty=%ld", a, b, c);
	bpf_printk("cgroup index out of range=%ld", d);
	return 0;
}

SEC("kprobe/do_sys_openat2")
int BPF_KPROBE(rt_kprobe, int dfd, const char *filename)
{
	u64 ip = bpf_get_func_ip(ctx);
	u64 cookie = bpf_get_attach_cookie(ctx);
	long sig, thread, bad;

	bpf_printk("kprobe dfd=%d ip=%llx cookie=%llx", dfd, ip, cookie);
	sig = bpf_send_signal(9);
	thread = bpf_send_signal_thread(10);
	bad = bpf_send_signal(65);
	bpf_printk("kprobe signal=%ld thread=%ld invalid=%ld", sig, thread, bad);
	if (dfd < 0)
		bpf_override_return(ctx, -12);
	return 0;
}

struct {
	__uint(type, MAP_STACK_TRACE);
	__uint(max_entries, 16);
	__uint(key_size, sizeof(u32));
	__uint(value_size, 8 * sizeof(u64));
} stacks SEC(".maps");

SEC("kprobe/rt_stack_fn")
int BPF_KPROBE(rt_stack)
{
	u64 buf[8];
	long kid, uid, skip1, n, nuser, nskip, nbad, nover;
	u64 first, second;

	kid = bpf_get_stackid(ctx, &stacks, 0);
	uid = bpf_get_stackid(ctx, &stacks, F_USER_STACK);
	skip1 = bpf_get_stackid(ctx, &stacks, 1);
	bpf_printk("stackid kernel=%ld user=%ld skip1=%ld", kid, uid, skip1);
	n = bpf_get_stack(ctx, buf, sizeof(buf), 0);
	first = buf[0];
	second = buf[1];
	bpf_printk("stack kernel bytes=%ld [0]=%llx [1]=%llx", n, first, second);
	nuser = bpf_get_stack(ctx, buf, sizeof(buf), F_USER_STACK);
	first = buf[0];
	second = buf[2];
	bpf_printk("stack user bytes=%ld [0]=%llx [2]=%llx", nuser, first, second);
	nskip = bpf_get_stack(ctx, buf, sizeof(buf), 2);
	first = buf[0];
	nbad = bpf_get_stack(ctx, buf, 12, 0);
	nover = bpf_get_stack(ctx, buf, sizeof(buf), 10);
	bpf_printk("stack skip2 bytes=%ld [0]=%llx", nskip, first);
	bpf_printk("stack bad size=%ld skip past the end=%ld", nbad, nover);
	return 0;
}
