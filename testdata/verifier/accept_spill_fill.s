# A map value pointer spilled to the stack and filled back keeps its type.
# prog: socket_filter
# map: array key=4 value=16 entries=1
# expect: accept
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
jeq %r0, 0, out
stxdw [%r10-16], %r0
ldxdw %r1, [%r10-16]
ldxdw %r0, [%r1+8]
out:
mov %r0, 0
exit
