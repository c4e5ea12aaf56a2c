/* Tracing programs: BTF-defined maps (hash, ringbuf, map-in-map), every kind of global
 * data section, bpf-to-bpf calls, a bpf_loop callback and CO-RE reads. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	int pid;
	int ppid;
	unsigned int exit_code;
	unsigned long long duration_ns;
	char comm[16];
	unsigned char exit_event;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, pid_t);
	__type(value, u64);
} exec_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} rb SEC(".maps");

struct inner {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, u32);
	__type(value, u64);
} inner_a SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, u32);
	__array(values, struct inner);
} outer SEC(".maps") = {
	.values = { [0] = &inner_a },
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 128);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(key_size, 8);
	__uint(value_size, 16);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sized SEC(".maps");

/* One global in each data section. */
const volatile unsigned long long min_duration_ns = 0; /* .rodata */
const volatile pid_t targ_pid = 0;                     /* .rodata */
const volatile bool targ_verbose = false;              /* .rodata */
int counter = 7;                                       /* .data */
long long total_bytes;                                 /* .bss */
u32 seen_cpus[4];                                      /* .bss */
int custom_flag SEC(".data.custom") = 42;              /* .data.custom */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

struct task_struct___old {
	long state_old;
	int nonexistent_field;
} __attribute__((preserve_access_index));

static __noinline int parent_tgid(struct task_struct *task)
{
	return BPF_CORE_READ(task, real_parent, tgid);
}

__noinline int global_helper(int a, int b)
{
	counter += a;
	return a * b + custom_flag;
}

static int loop_cb(u32 index, void *ctx)
{
	long long *sum = ctx;
	*sum += index;
	return index > 10;
}

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct event *e;
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	u64 ts = bpf_ktime_get_ns();
	long long sum = 0;

	if (targ_pid && pid != targ_pid)
		return 0;
	bpf_map_update_elem(&exec_start, &pid, &ts, BPF_ANY);
	e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
	if (!e)
		return 0;
	e->exit_event = 0;
	e->pid = pid;
	e->ppid = parent_tgid(task);
	e->exit_code = BPF_CORE_READ_BITFIELD_PROBED(task, sched_migrated);
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	bpf_loop(20, loop_cb, &sum, 0);
	e->duration_ns = sum + global_helper(ctx->pid, 3);
	bpf_ringbuf_submit(e, 0);
	if (targ_verbose)
		bpf_printk("exec %d", pid);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	u64 *start;
	int code = 0;

	start = bpf_map_lookup_elem(&exec_start, &pid);
	if (start && bpf_ktime_get_ns() - *start < min_duration_ns)
		return 0;
	if (bpf_core_field_exists(task->exit_code))
		code = BPF_CORE_READ(task, exit_code);
	if (bpf_core_field_exists(((struct task_struct___old *)task)->nonexistent_field))
		code = -1;
	code += bpf_core_type_exists(struct task_struct___old);
	code += bpf_core_type_size(struct task_struct);
	code += bpf_core_type_matches(struct mm_struct);
	code += bpf_core_enum_value(enum pid_type, PIDTYPE_TGID);
	code += bpf_core_enum_value_exists(enum pid_type, PIDTYPE_SID);
	code += bpf_core_field_size(task->comm);
	code += bpf_core_type_id_kernel(struct task_struct);
	code += bpf_core_type_id_local(struct event);
	code += BPF_CORE_READ_BITFIELD(task, sched_contributes_to_load);
	total_bytes += code;
	bpf_printk("exit %d code %d", pid, code);
	return 0;
}

/* Two programs in one section. */
SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat, int dfd, struct filename *name)
{
	const char *fname = BPF_CORE_READ(name, name);
	bpf_printk("unlink dfd=%d name=%s", dfd, fname);
	return parent_tgid((struct task_struct *)bpf_get_current_task()) > 0;
}

SEC("kprobe/do_unlinkat")
int BPF_KPROBE(do_unlinkat_second, int dfd)
{
	return global_helper(dfd, 2);
}

SEC("kretprobe/do_unlinkat")
int BPF_KRETPROBE(do_unlinkat_exit, long ret)
{
	bpf_printk("unlink ret=%ld", ret);
	return 0;
}

SEC("fentry/do_unlinkat")
int BPF_PROG(fentry_unlink, int dfd, struct filename *name)
{
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(fexit_unlink, int dfd, struct filename *name, long ret)
{
	return 0;
}

SEC("raw_tp/sched_switch")
int handle_switch(u64 *ctx)
{
	u32 cpu = bpf_get_smp_processor_id();
	if (cpu < 4)
		seen_cpus[cpu] = 1;
	return 0;
}

SEC("uprobe//bin/bash:readline")
int BPF_KPROBE(uprobe_readline, const void *prompt)
{
	return 0;
}

SEC("uretprobe//bin/bash:readline")
int BPF_KRETPROBE(uretprobe_readline, const void *ret)
{
	return 0;
}

SEC("lsm/bprm_check_security")
int BPF_PROG(lsm_bprm, struct linux_binprm *bprm)
{
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_openat")
int enter_openat(struct trace_event_raw_sys_enter *ctx)
{
	return ctx->args[1] != 0;
}

static __noinline const char *verdict(int code)
{
	/* String literals used as pointers land in .rodata.str1.1. */
	return code ? "failed" : "ok";
}

SEC("perf_event")
int on_sample(void *ctx)
{
	char buf[8];
	bpf_probe_read_kernel_str(buf, sizeof(buf), verdict(counter));
	return buf[0];
}

SEC("syscall")
int run_syscall(void *ctx)
{
	return global_helper(1, 2);
}
