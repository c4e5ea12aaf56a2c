# data_end marks the end of the packet; it cannot be read through.
# prog: xdp
# expect: reject invalid-mem-access
# kernel: R3 invalid mem access 'pkt_end'
ldxw %r3, [%r1+4]
ldxb %r0, [%r3]
exit
