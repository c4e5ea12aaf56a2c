# Every path releases the reservation: submit on one, discard on the other.
# prog: kprobe
# map: ringbuf entries=4096
# expect: accept
mov %r6, %r1
lddw %r1, map_idx(0, 0)
mov %r2, 8
mov %r3, 0
call 131
jeq %r0, 0, out
mov %r1, %r0
mov %r2, 0
ldxdw %r3, [%r6+112]
jeq %r3, 0, discard
call 132
ja out
discard:
call 133
out:
mov %r0, 0
exit
