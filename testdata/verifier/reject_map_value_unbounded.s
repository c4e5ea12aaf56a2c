# A variable index into a map value without a bound.
# prog: socket_filter
# map: array key=4 value=64 entries=1
# expect: reject mem-bounds
# kernel: R0 unbounded memory access, make sure to bounds check any such access
mov %r6, %r1
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
jeq %r0, 0, out
ldxw %r1, [%r6]
add %r0, %r1
ldxdw %r0, [%r0]
out:
mov %r0, 0
exit
