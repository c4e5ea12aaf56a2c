# r2 is read before it is written.
# prog: socket_filter
# expect: reject uninit-reg
# kernel: R2 !read_ok
mov %r0, %r2
exit
