# The lookup result is dereferenced before the NULL check.
# prog: socket_filter
# map: hash key=4 value=8 entries=16
# expect: reject null-deref
# kernel: R0 invalid mem access 'map_value_or_null'
stw [%r10-4], 0
mov %r2, %r10
add %r2, -4
lddw %r1, map_idx(0, 0)
call 1
ldxdw %r0, [%r0]
exit
