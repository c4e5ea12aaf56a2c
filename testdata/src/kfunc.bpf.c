/* Kernel symbols (kfunc calls and a __ksym variable) and more BTF-attached program kinds. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

extern struct task_struct *bpf_task_acquire(struct task_struct *p) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern const int bpf_prog_active __ksym;

SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct task_struct *t = bpf_task_acquire(next);
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	if (t)
		bpf_task_release(t);
	return *active;
}

SEC("fmod_ret/security_file_open")
int BPF_PROG(fmod_open, struct file *file)
{
	return 0;
}

SEC("iter/task")
int dump_task(void *ctx)
{
	return 0;
}

SEC("struct_ops/my_init")
int BPF_PROG(my_init)
{
	return 0;
}
