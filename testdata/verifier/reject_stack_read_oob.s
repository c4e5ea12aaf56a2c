# A load below the 512-byte frame.
# prog: socket_filter
# expect: reject stack-bounds
ldxdw %r0, [%r10-520]
exit
