# A bpf-to-bpf call; the callee returns a scalar.
# prog: socket_filter
# expect: accept
mov %r1, 5
call local double
exit
double:
mov %r0, %r1
add %r0, %r1
exit
