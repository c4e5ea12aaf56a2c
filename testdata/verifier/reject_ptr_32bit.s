# 32-bit arithmetic on a pointer.
# prog: socket_filter
# expect: reject pointer-arith
# kernel: R1 32-bit pointer arithmetic prohibited
add32 %r1, 4
mov %r0, 0
exit
