# Register 11 does not exist.
# prog: socket_filter
# raw: 0x0000000000000bb7 0x00000000000000b7 0x0000000000000095
# expect: reject invalid-insn
# kernel: R11 is invalid
