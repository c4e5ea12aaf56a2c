# The read is on the branch where data + 14 > data_end.
# prog: xdp
# expect: reject packet-bounds
ldxw %r2, [%r1]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 14
mov %r0, 1
jle %r4, %r3, out
ldxb %r0, [%r2]
out:
exit
