# xdp_md fields are 4 bytes; an 8-byte read is refused.
# prog: xdp
# expect: reject ctx-access
# kernel: invalid bpf_context access off=0 size=8
ldxdw %r0, [%r1]
exit
