# XDP: packet read without a data_end check.
# prog: xdp
# expect: reject packet-bounds
# kernel: offset is outside of the packet
ldxw %r2, [%r1]
ldxb %r0, [%r2]
exit
