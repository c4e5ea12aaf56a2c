# The reservation is never submitted or discarded.
# prog: kprobe
# map: ringbuf entries=4096
# expect: reject ref-leak
# kernel: would lead to reference leak
lddw %r1, map_idx(0, 0)
mov %r2, 8
mov %r3, 0
call 131
jeq %r0, 0, out
stdw [%r0], 1
out:
mov %r0, 0
exit
