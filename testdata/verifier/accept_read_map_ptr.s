# As root, fields of struct bpf_map may be read through a map pointer.
# prog: socket_filter
# map: array key=4 value=8 entries=1
# expect: accept
lddw %r1, map_idx(0, 0)
ldxdw %r0, [%r1]
exit
