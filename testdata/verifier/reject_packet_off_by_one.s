# The check proves 14 bytes; the read touches the 15th.
# prog: xdp
# expect: reject packet-bounds
# kernel: offset is outside of the packet
ldxw %r2, [%r1]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 14
mov %r0, 1
jgt %r4, %r3, out
ldxb %r0, [%r2+14]
out:
exit
