# Submitted on one path, leaked on the other.
# prog: kprobe
# map: ringbuf entries=4096
# expect: reject ref-leak
mov %r6, %r1
lddw %r1, map_idx(0, 0)
mov %r2, 8
mov %r3, 0
call 131
jeq %r0, 0, out
ldxdw %r3, [%r6+112]
jeq %r3, 0, out
mov %r1, %r0
mov %r2, 0
call 132
out:
mov %r0, 0
exit
