/* The event-rate benchmark's program: per event, a hash map update and a ring buffer
 * record. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	int pid;
	int fd;
	unsigned long long writes;
	unsigned long long bytes;
};

struct event *__eunomia_dummy_event_ptr __attribute__((unused));

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, int);
	__type(value, unsigned long long);
} writes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_write")
int count_write(struct trace_event_raw_sys_enter *ctx)
{
	int pid = bpf_get_current_pid_tgid() >> 32;
	unsigned long long one = 1, *n = bpf_map_lookup_elem(&writes, &pid);
	struct event *e;

	if (n)
		*n += 1;
	else
		bpf_map_update_elem(&writes, &pid, &one, BPF_ANY);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = pid;
	e->fd = ctx->args[0];
	e->writes = n ? *n : 1;
	e->bytes = ctx->args[2];
	bpf_ringbuf_submit(e, 0);
	return 0;
}
