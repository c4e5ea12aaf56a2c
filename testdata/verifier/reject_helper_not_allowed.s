# Socket filters may not call bpf_xdp_adjust_head.
# prog: socket_filter
# expect: reject helper-not-allowed
mov %r2, 0
call 44
mov %r0, 0
exit
