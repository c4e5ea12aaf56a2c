# The first 8 bytes of a tracepoint record are not readable.
# prog: tracepoint
# expect: reject ctx-access
# kernel: invalid bpf_context access off=0 size=8
ldxdw %r0, [%r1]
exit
