# The key argument of bpf_map_lookup_elem is not set.
# prog: socket_filter
# map: hash key=4 value=8 entries=16
# expect: reject uninit-reg
# kernel: R2 !read_ok
lddw %r1, map_idx(0, 0)
call 1
mov %r0, 0
exit
