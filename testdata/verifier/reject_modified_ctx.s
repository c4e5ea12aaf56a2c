# The context pointer may not be moved before a load.
# prog: socket_filter
# expect: reject ctx-access
# kernel: dereference of modified ctx ptr R1 off=4 disallowed
add %r1, 4
ldxw %r0, [%r1]
exit
