# As root (CAP_PERFMON) the kernel lets programs read uninitialised stack.
# prog: socket_filter
# expect: accept
ldxdw %r0, [%r10-8]
exit
