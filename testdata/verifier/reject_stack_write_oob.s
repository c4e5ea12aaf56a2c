# A store above the frame pointer.
# prog: socket_filter
# expect: reject stack-bounds
stdw [%r10+8], 0
mov %r0, 0
exit
