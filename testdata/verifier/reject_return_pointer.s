# cgroup programs must return a number.
# prog: cgroup_sock
# expect: reject return-pointer
# kernel: At program exit the register R0 is not a known value (fp)
mov %r0, %r10
exit
