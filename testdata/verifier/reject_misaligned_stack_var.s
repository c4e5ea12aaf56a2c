# A variable stack offset must keep the access aligned for all its values: fp-128 plus
# skb->len masked to 0..63 can be odd, so an 8-byte load through it is refused.
# prog: socket_filter
# expect: reject misaligned
ldxw %r2, [%r1+0]
and %r2, 63
mov %r3, %r10
add %r3, -128
add %r3, %r2
ldxdw %r0, [%r3+0]
exit
