# bpf_probe_read_kernel with a size that has no bound.
# prog: kprobe
# expect: reject helper-arg
ldxdw %r2, [%r1+112]
ldxdw %r3, [%r1+104]
mov %r1, %r10
add %r1, -64
call 113
mov %r0, 0
exit
