# Past the end of struct xdp_md.
# prog: xdp
# expect: reject ctx-access
# kernel: invalid bpf_context access off=24 size=4
ldxw %r0, [%r1+24]
exit
