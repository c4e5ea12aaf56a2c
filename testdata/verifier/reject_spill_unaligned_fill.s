# Only a fill at a spill's own offset gives the spilled value back: the upper half of a
# spilled 4, read alone, is an unknown 32-bit number, too large to index a map value.
# prog: socket_filter
# map: array key=4 value=8 entries=1
# expect: reject mem-bounds
# kernel: R0 unbounded memory access
mov %r6, 4
stxdw [%r10-16], %r6
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
jeq %r0, 0, out
ldxw %r1, [%r10-12]
add %r0, %r1
ldxb %r0, [%r0]
out:
mov %r0, 0
exit
