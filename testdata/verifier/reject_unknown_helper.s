# A helper id the kernel does not have.
# prog: socket_filter
# expect: reject unknown-helper
# kernel: invalid func unknown#999
call 999
mov %r0, 0
exit
