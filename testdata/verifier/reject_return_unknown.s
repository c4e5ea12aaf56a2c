# An unbounded value returned from a cgroup_skb program.
# prog: cgroup_skb
# expect: reject return-range
ldxw %r0, [%r1]
exit
