# Adding two pointers.
# prog: socket_filter
# expect: reject pointer-arith
# kernel: R1 pointer += pointer prohibited
mov %r1, %r10
add %r1, %r10
mov %r0, 0
exit
