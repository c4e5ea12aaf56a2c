# Arithmetic on a lookup result before the NULL check.
# prog: socket_filter
# map: hash key=4 value=8 entries=16
# expect: reject pointer-arith
# kernel: R0 pointer arithmetic on map_value_or_null prohibited, null-check it first
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
add %r0, 4
mov %r0, 0
exit
