/* The README's example: new processes with their parent, command and file name, how long
 * each lived, and a count of executions per user. Ring buffer events, a hash map, CO-RE
 * reads of task_struct, a .rodata filter option. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	int pid;
	int ppid;
	unsigned int uid;
	int exit_code;
	unsigned long long duration_ns;
	char comm[16];
	char filename[64];
	unsigned char exited;
};

/* Tells the simulator (and ecc) which struct the ring buffer carries. */
struct event *__eunomia_dummy_event_ptr __attribute__((unused));

/* Only report processes that lived at least this long (0: report all). */
const volatile unsigned long long min_duration_ns = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, int);
	__type(value, unsigned long long);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, unsigned int);
	__type(value, unsigned long long);
} execs_per_uid SEC(".maps");

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned int uid = (unsigned int)bpf_get_current_uid_gid();
	int pid = bpf_get_current_pid_tgid() >> 32;
	unsigned long long now = bpf_ktime_get_ns(), one = 1, *count;
	struct event *e;

	bpf_map_update_elem(&start, &pid, &now, BPF_ANY);
	count = bpf_map_lookup_elem(&execs_per_uid, &uid);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&execs_per_uid, &uid, &one, BPF_NOEXIST);

	if (min_duration_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = uid;
	e->exit_code = 0;
	e->duration_ns = 0;
	e->exited = 0;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	unsigned int off = ctx->__data_loc_filename & 0xffff;
	bpf_probe_read_str(&e->filename, sizeof(e->filename), (void *)ctx + off);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(void *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	unsigned long long id = bpf_get_current_pid_tgid(), *started, duration = 0;
	int pid = id >> 32, tid = (int)id;
	struct event *e;

	if (pid != tid)
		return 0; /* a thread, not the process */
	started = bpf_map_lookup_elem(&start, &pid);
	if (started)
		duration = bpf_ktime_get_ns() - *started;
	bpf_map_delete_elem(&start, &pid);
	if (min_duration_ns && duration < min_duration_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (unsigned int)bpf_get_current_uid_gid();
	e->exit_code = (BPF_CORE_READ(task, exit_code) >> 8) & 0xff;
	e->duration_ns = duration;
	e->exited = 1;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	e->filename[0] = 0;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
