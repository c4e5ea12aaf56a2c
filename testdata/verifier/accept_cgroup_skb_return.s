# cgroup_skb returns 0 or 1.
# prog: cgroup_skb
# expect: accept
ldxw %r2, [%r1]
mov %r0, 1
jgt %r2, 100, out
mov %r0, 0
out:
exit
