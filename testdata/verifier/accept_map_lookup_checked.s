# Map lookup, NULL check, then a read of the value.
# prog: socket_filter
# map: hash key=4 value=8 entries=16
# expect: accept
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
jeq %r0, 0, out
ldxdw %r0, [%r0]
out:
mov %r0, 0
exit
