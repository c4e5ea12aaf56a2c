# A loop over a constant bound converges.
# prog: socket_filter
# expect: accept
mov %r0, 0
mov %r1, 0
loop:
add %r0, %r1
add %r1, 1
jlt %r1, 100, loop
exit
