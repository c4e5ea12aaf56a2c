# mov r0, 0 with a non-zero src field.
# prog: socket_filter
# raw: 0x00000000000010b7 0x0000000000000095
# expect: reject invalid-insn
# kernel: BPF_MOV uses reserved fields
