# A store into a map the program may only read.
# prog: socket_filter
# map: array key=4 value=8 entries=1 readonly
# expect: reject mem-bounds
# kernel: write into map forbidden
lddw %r1, map_idx_value(0, 0)
stdw [%r1], 1
mov %r0, 0
exit
