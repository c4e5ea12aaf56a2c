# A loop whose counter lives in a 4-byte stack slot: a 4-byte store of a scalar at an
# 8-byte boundary is a (narrow) spill and a 4-byte load there gives it back, so the
# counter stays known and the loop ends.
# prog: socket_filter
# expect: accept
stw [%r10-8], 1
loop:
ldxw %r1, [%r10-8]
add %r1, 1
stxw [%r10-8], %r1
jlt %r1, 10, loop
mov %r0, 0
exit
