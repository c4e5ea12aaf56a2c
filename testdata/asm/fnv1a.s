# FNV-1a (32-bit) hash of the input memory. r1 = data, r2 = its length.
mov32 %r0, 0x811c9dc5
mov %r3, 0
loop:
jge %r3, %r2, done
mov %r4, %r1
add %r4, %r3
ldxb %r5, [%r4]
xor32 %r0, %r5
mul32 %r0, 0x01000193
add %r3, 1
ja loop
done:
exit
