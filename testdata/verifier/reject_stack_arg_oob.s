# A 16-byte buffer at fp-8 runs past the frame.
# prog: kprobe
# expect: reject stack-bounds
mov %r1, %r10
add %r1, -8
mov %r2, 16
mov %r3, 0
call 113
mov %r0, 0
exit
