# kprobe: reading pt_regs fields (di at 112, ip at 128).
# prog: kprobe
# expect: accept
ldxdw %r2, [%r1+112]
ldxdw %r3, [%r1+128]
mov %r0, 0
exit
