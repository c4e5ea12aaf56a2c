# XDP: read the Ethernet header after the data + 14 > data_end check.
# prog: xdp
# expect: accept
ldxw %r2, [%r1]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, 14
mov %r0, 1
jgt %r4, %r3, out
ldxh %r0, [%r2+12]
ldxb %r5, [%r2+13]
mov %r0, 2
out:
exit
