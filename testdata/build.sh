#!/bin/sh
# Rebuilds the committed test objects from testdata/src. Usage: testdata/build.sh [OUTDIR]
# (OUTDIR defaults to testdata/obj; the loader's tests build into a temporary directory
# and compare bytes with the committed objects.)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/obj}
mkdir -p "$out"
CLANG=${CLANG:-clang-22}
# Build from inside src/ with relative paths so the recorded file names do not depend
# on where the checkout lives.
cd "$here/src"
build() {
	src=$1
	shift
	"$CLANG" -O2 -g -target bpf -ffile-prefix-map="$here/src"=. -D__TARGET_ARCH_x86 -I/usr/include/x86_64-linux-gnu \
		"$@" -c "$src" -o "$out/${src%.c}.o"
}
build tracing.bpf.c
build net_v1.bpf.c -mcpu=v1
build alu_v4.bpf.c -mcpu=v4
build kfunc.bpf.c
build execsnoop.bpf.c
build bench_run.bpf.c
build rt_packet.bpf.c
build rt_maps.bpf.c
build rt_tail.bpf.c
build rt_output.bpf.c
build rt_task.bpf.c
build rt_strings.bpf.c
build rt_net.bpf.c
build rt_netadj.bpf.c
build rt_ktail.bpf.c
build rt_kprintk.bpf.c
build rt_kasraw.bpf.c
build rt_kcore.bpf.c
