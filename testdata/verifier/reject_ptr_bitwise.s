# Masking a pointer.
# prog: socket_filter
# expect: reject pointer-arith
# kernel: R1 bitwise operator &= on pointer prohibited
and %r1, 7
mov %r0, 0
exit
