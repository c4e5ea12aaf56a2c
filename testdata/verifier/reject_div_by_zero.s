# Division by a zero constant.
# prog: socket_filter
# expect: reject invalid-alu
# kernel: div by zero
mov %r0, 1
div %r0, 0
exit
