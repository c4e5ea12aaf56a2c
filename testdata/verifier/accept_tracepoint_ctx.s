# tracepoint: fields after the 8 bytes of common fields are readable.
# prog: tracepoint
# expect: accept
ldxdw %r2, [%r1+16]
ldxw %r3, [%r1+8]
mov %r0, 0
exit
