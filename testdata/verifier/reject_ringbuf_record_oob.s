# A write past the end of an 8-byte ring buffer record.
# prog: kprobe
# map: ringbuf entries=4096
# expect: reject mem-bounds
# kernel: R0 min value is outside of the allowed memory range
lddw %r1, map_idx(0, 0)
mov %r2, 8
mov %r3, 0
call 131
jeq %r0, 0, out
stdw [%r0+8], 1
mov %r1, %r0
mov %r2, 0
call 132
out:
mov %r0, 0
exit
