# Past the end of struct pt_regs (168 bytes).
# prog: kprobe
# expect: reject ctx-access
# kernel: invalid bpf_context access off=168 size=8
ldxdw %r0, [%r1+168]
exit
