# The last instruction is not exit.
# prog: socket_filter
# expect: reject falls-off-end
# kernel: last insn is not an exit or jmp
mov %r0, 0
