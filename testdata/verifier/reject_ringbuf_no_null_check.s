# A ring buffer record written before the NULL check.
# prog: kprobe
# map: ringbuf entries=4096
# expect: reject null-deref
lddw %r1, map_idx(0, 0)
mov %r2, 8
mov %r3, 0
call 131
stdw [%r0], 1
mov %r1, %r0
mov %r2, 0
call 132
mov %r0, 0
exit
