# r1-r5 are scratched by a helper call.
# prog: socket_filter
# expect: reject uninit-reg
# kernel: R1 !read_ok
call 7
mov %r0, %r1
exit
