# r0 is not set at exit.
# prog: socket_filter
# expect: reject uninit-reg
# kernel: R0 !read_ok
exit
