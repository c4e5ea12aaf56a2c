# A jump into the second half of lddw skips its first half, which the kernel reports.
# prog: socket_filter
# expect: reject unreachable
# kernel: unreachable insn 2
mov %r0, 0
ja +1
lddw %r1, 5
exit
