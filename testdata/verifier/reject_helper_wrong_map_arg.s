# bpf_map_lookup_elem given the context instead of a map.
# prog: socket_filter
# expect: reject helper-arg
# kernel: R1 type=ctx expected=map_ptr
mov %r2, %r10
add %r2, -8
call 1
mov %r0, 0
exit
