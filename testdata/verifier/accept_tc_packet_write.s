# tc programs may write the packet after the bounds check.
# prog: sched_cls
# expect: accept
ldxw %r2, [%r1+76]
ldxw %r3, [%r1+80]
mov %r4, %r2
add %r4, 4
jgt %r4, %r3, out
stw [%r2], 0
out:
mov %r0, 0
exit
