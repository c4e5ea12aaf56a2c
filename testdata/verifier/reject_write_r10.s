# r10 is read-only.
# prog: socket_filter
# expect: reject fp-write
# kernel: frame pointer is read only
mov %r10, 0
mov %r0, 0
exit
