# A loop whose body branches on data still converges (states pruned at the join).
# prog: socket_filter
# expect: accept
mov %r6, %r1
mov %r0, 0
mov %r7, 0
loop:
ldxw %r2, [%r6]
jgt %r2, 10, skip
add %r0, 1
skip:
add %r7, 1
jlt %r7, 50, loop
exit
