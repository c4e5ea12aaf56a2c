# The second slot of lddw must have opcode 0.
# prog: socket_filter
# raw: 0x0000000100000018 0x00000000000000b7 0x0000000000000095
# expect: reject invalid-insn
# kernel: invalid bpf_ld_imm64 insn
