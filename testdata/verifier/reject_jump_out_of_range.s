# A jump past the end of the program.
# prog: socket_filter
# expect: reject jump-range
# kernel: jump out of range from insn 1 to 10
mov %r0, 0
ja +8
exit
