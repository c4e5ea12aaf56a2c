# An instruction no path reaches.
# prog: socket_filter
# expect: reject unreachable
# kernel: unreachable insn 2
mov %r0, 0
exit
mov %r0, 1
exit
