# cgroup_sock programs return 0 or 1.
# prog: cgroup_sock
# expect: reject return-range
# kernel: should have been in [0, 1]
mov %r0, 2
exit
