# Scalars whose values decide nothing (bit masks that are only printed) do not keep
# otherwise equal states apart, like the kernel's imprecise scalars: without that, three
# loops setting bits on random conditions make 2^24 paths.
# prog: kprobe
# expect: accept
mov %r6, 0
mov %r7, 0
mov %r8, 0
mov %r9, 0
a:
call 7
jeq %r0, 0, a_next
mov %r1, 1
lsh %r1, %r9
or %r6, %r1
a_next:
add %r9, 1
jlt %r9, 8, a
mov %r9, 0
b:
call 7
jeq %r0, 0, b_next
mov %r1, 1
lsh %r1, %r9
or %r7, %r1
b_next:
add %r9, 1
jlt %r9, 8, b
mov %r9, 0
c:
call 7
jeq %r0, 0, c_next
mov %r1, 1
lsh %r1, %r9
or %r8, %r1
c_next:
add %r9, 1
jlt %r9, 8, c
stdw [%r10-8], 0
mov %r1, %r10
add %r1, -8
mov %r2, 8
mov %r3, %r6
mov %r4, %r7
mov %r5, %r8
call 6
mov %r0, 0
exit
