# lddw as the last slot: the kernel sees a program that does not end in exit.
# prog: socket_filter
# raw: 0x00000000000000b7 0x0000000000000095 0x0000000100000018
# expect: reject falls-off-end
# kernel: last insn is not an exit or jmp
