# A number is not a pointer.
# prog: socket_filter
# expect: reject invalid-mem-access
# kernel: R1 invalid mem access 'scalar'
mov %r1, 4096
ldxdw %r0, [%r1]
exit
