/* CO-RE against the running kernel: a raw tracepoint reads the current task's pid and
 * tgid through bpf_get_current_task() with BPF_CORE_READ and compares them with
 * bpf_get_current_pid_tgid(). The local task_struct has the two fields at offsets 0 and
 * 4: only relocations resolved against the kernel's own BTF find them in the real
 * task_struct. The simulator lays its task_struct out from this object's BTF. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct task_struct {
	int pid;
	int tgid;
} __attribute__((preserve_access_index));

SEC("raw_tp/kcore")
int kc_task(unsigned long long *ctx)
{
	struct task_struct *t = (void *)bpf_get_current_task();
	__u64 id = bpf_get_current_pid_tgid();
	int pid = BPF_CORE_READ(t, pid);
	int tgid = BPF_CORE_READ(t, tgid);

	/* 3 when both match. */
	return (pid == (int)(__u32)id) + 2 * (tgid == (int)(id >> 32));
}
