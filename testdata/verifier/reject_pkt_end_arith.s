# data_end cannot be moved.
# prog: xdp
# expect: reject pointer-arith
# kernel: R3 pointer arithmetic on pkt_end prohibited
ldxw %r3, [%r1+4]
add %r3, -4
mov %r0, 0
exit
