# Two frames of 320 bytes each exceed the 512 bytes of stack.
# prog: socket_filter
# expect: reject call-stack
# kernel: combined stack size of 2 calls is
stdw [%r10-320], 0
call local f
mov %r0, 0
exit
f:
stdw [%r10-320], 0
mov %r0, 0
exit
