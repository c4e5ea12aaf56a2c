# An 8-byte value read at offset 4.
# prog: socket_filter
# map: array key=4 value=8 entries=1
# expect: reject mem-bounds
# kernel: R0 min value is outside of the allowed memory range
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
jeq %r0, 0, out
ldxdw %r0, [%r0+4]
out:
mov %r0, 0
exit
