# bpf_ringbuf_reserve needs a constant size.
# prog: kprobe
# map: ringbuf entries=4096
# expect: reject helper-arg
ldxdw %r2, [%r1+112]
lddw %r1, map_idx(0, 0)
mov %r3, 0
call 131
mov %r0, 0
exit
