# A loop counting down from an unknown 32-bit value: too many iterations.
# prog: socket_filter
# expect: reject complexity
# kernel: jumps is too complex
ldxw %r1, [%r1]
mov %r0, 0
loop:
jeq %r1, 0, out
sub %r1, 1
add %r0, 1
ja loop
out:
exit
