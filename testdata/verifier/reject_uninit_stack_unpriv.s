# Without CAP_PERFMON, uninitialised stack may not be read.
# prog: socket_filter
# privileged: no
# expect: reject uninit-stack
# kernel: invalid read from stack R10 off=-8 size=8
ldxdw %r0, [%r10-8]
exit
