# The kernel checks stack accesses for alignment on every architecture: a 4-byte store
# at fp-6 is refused.
# prog: socket_filter
# expect: reject misaligned
mov %r1, 0
stxw [%r10-6], %r1
mov %r0, 0
exit
