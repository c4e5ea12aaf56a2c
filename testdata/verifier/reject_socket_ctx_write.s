# __sk_buff->len is read-only.
# prog: socket_filter
# expect: reject ctx-access
# kernel: invalid bpf_context access off=0 size=4
mov %r2, 1
stxw [%r1], %r2
mov %r0, 0
exit
