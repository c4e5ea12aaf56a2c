# An opcode that does not exist.
# prog: socket_filter
# raw: 0x00000000000000ff 0x0000000000000095
# expect: reject invalid-insn
# kernel: unknown opcode ff
