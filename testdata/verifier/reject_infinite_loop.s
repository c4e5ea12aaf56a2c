# A loop that never changes anything.
# prog: socket_filter
# expect: reject infinite-loop
# kernel: infinite loop detected at insn 1
mov %r0, 0
loop:
jeq %r0, 0, loop
exit
