//! Our JIT against native C, the kernel's JIT, rbpf 0.4.1's JIT and the two interpreters,
//! on the same programs and inputs, in one run.
//!
//! Engines, one criterion function each in every program's group:
//! - `native`: the C version of the program (`benches/native/progs.c`), clang `-O2` with
//!   auto-vectorisation and the loop-to-memcpy rewrite off, so it does the same scalar work
//!   as the eBPF code. This is the baseline of every ratio.
//! - `native vec`: the same C at plain `-O2` (only `copy` differs much: it becomes vector code).
//! - `ebpf-sim jit`: `JitProgram::run`, every memory access checked against the region table
//!   (stack accesses at constant offsets from r10 are proven at compile time instead).
//! - `rbpf jit`: `EbpfVmMbuff::jit_compile` + `execute_program_jit` (no memory checks).
//! - `ebpf-sim interp`, `rbpf interp`.
//!
//! The kernel's JIT is measured outside criterion, with `BPF_PROG_TEST_RUN` on an XDP
//! program, in a child process (this bench binary again, with `EBPF_SIM_JITBENCH_KERNEL`
//! set), because the kernel's verifier can crash the process that loads a program. Its
//! figure (the kernel's `duration`, ns per run) is printed before each group and in the
//! summary table at the end.
//!
//! Criterion measures the CPU time of the benchmark thread (`CpuTime` below), not wall time:
//! the machine's cores are shared, and time spent descheduled is not the engine's.
//!
//! Before anything is timed, every engine runs every program on a fresh copy of the input
//! and must return the r0 the C version returns (the kernel: its low 32 bits, as
//! `BPF_PROG_TEST_RUN` reports a u32).
//!
//! The programs use only what rbpf 0.4.1 runs correctly (no cpu v4 instructions, no
//! negative immediates in 64-bit jumps, no reliance on r2) and what the kernel's verifier
//! accepts (loops bounded by a counter, packet accesses at `base + counter` where the
//! counter's range is known).
//!
//! Run: `cargo bench --bench jit -- --warm-up-time 1 --measurement-time 2`.
//! `cargo bench --bench jit -- --test` only runs the checks (and one iteration of each).

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::Criterion;
use ebpf_sim::jit::JitProgram;
use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::isa::{slots_to_bytes, Insn};
use ebpf_sim::vm::verifier::{verify, Facts, Proven, VerifyOptions};
use ebpf_sim::vm::{Config, HelperError, Helpers, Interpreter, Memory, Program, VmError};
use ebpf_sim_bench_native as native;

/// Length of the input buffer the byte-walking programs read.
const LEN: usize = 1500;
/// prime_count counts the primes below this.
const PRIME_N: u64 = 2000;
/// Budget for our engines: every program stays far below it.
const BUDGET: u64 = 100_000_000;
/// Set in the child process that loads one program into the kernel (its value: the name).
const KERNEL_ENV: &str = "EBPF_SIM_JITBENCH_KERNEL";
/// Instructions of the straight-line program whose compile time is measured.
const LARGE_INSNS: usize = 1402;

/// A benchmarked program.
struct Case {
    name: &'static str,
    /// eBPF assembler source of the body (r1 = buffer).
    src: String,
    insns: Vec<Insn>,
    /// The input; the kernel's packet is this buffer too.
    mem: Vec<u8>,
    /// The C version, and the second argument it gets.
    native: &'static str,
    native_arg: u64,
    /// Counted in the geometric means (the `empty` program is not: it measures the fixed
    /// cost of one run of each engine).
    in_mean: bool,
}

/// The helper `calls` calls (id [`MIX`]), as every engine gets it: one multiply.
fn mix(a: u64, b: u64) -> u64 {
    (a ^ b).wrapping_mul(0x100_0000_01b3)
}
const MIX: u32 = 1;

/// Our engines' helpers: only [`mix`].
fn helpers() -> Helpers<()> {
    fn ours(_: &mut (), _: &mut Memory<'_>, a: [u64; 5]) -> Result<u64, HelperError> {
        Ok(mix(a[0], a[1]))
    }
    let mut h = Helpers::new();
    h.register(MIX, "mix", ours);
    h
}

/// rbpf's VM for a program, with [`mix`] registered.
fn rbpf_vm(bytes: &[u8]) -> Result<rbpf::EbpfVmMbuff<'_>, std::io::Error> {
    let mut vm = rbpf::EbpfVmMbuff::new(Some(bytes))?;
    vm.register_helper(MIX, |a, b, _, _, _| mix(a, b))?;
    Ok(vm)
}

/// Deterministic pseudo-random input (xorshift64*).
fn input(len: usize) -> Vec<u8> {
    let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            s ^= s >> 12;
            s ^= s << 25;
            s ^= s >> 27;
            (s.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// A 1500-byte Ethernet / IPv4 / TCP frame (HTTPS server to client, ACK|PSH), with a
/// correct IPv4 header checksum.
fn packet() -> Vec<u8> {
    let mut p = Vec::with_capacity(LEN);
    p.extend_from_slice(&[0x02, 0x42, 0xac, 0x11, 0x00, 0x02]); // dst MAC
    p.extend_from_slice(&[0x52, 0x54, 0x00, 0x12, 0x34, 0x56]); // src MAC
    p.extend_from_slice(&[0x08, 0x00]); // IPv4
    let ip_start = p.len();
    p.extend_from_slice(&[0x45, 0x00]); // version 4, IHL 5, DSCP 0
    p.extend_from_slice(&((LEN - 14) as u16).to_be_bytes()); // total length
    p.extend_from_slice(&[0x1c, 0x46, 0x40, 0x00]); // id, DF, fragment offset 0
    p.extend_from_slice(&[64, 6, 0, 0]); // TTL, TCP, checksum (below)
    p.extend_from_slice(&[93, 184, 216, 34]); // src
    p.extend_from_slice(&[192, 168, 1, 23]); // dst
    let sum: u32 = p[ip_start..]
        .chunks_exact(2)
        .map(|w| u16::from_be_bytes([w[0], w[1]]) as u32)
        .sum();
    let sum = (sum & 0xffff) + (sum >> 16);
    let csum = !((sum + (sum >> 16)) as u16);
    p[ip_start + 10..ip_start + 12].copy_from_slice(&csum.to_be_bytes());
    p.extend_from_slice(&443u16.to_be_bytes()); // src port
    p.extend_from_slice(&51514u16.to_be_bytes()); // dst port
    p.extend_from_slice(&0x3b9a_ca07u32.to_be_bytes()); // seq
    p.extend_from_slice(&0x0a1b_2c3du32.to_be_bytes()); // ack
    p.extend_from_slice(&[0x50, 0x18]); // data offset 5, ACK|PSH
    p.extend_from_slice(&502u16.to_be_bytes()); // window
    p.extend_from_slice(&[0x9c, 0x31, 0, 0]); // checksum (not checked), urgent pointer
    let payload = input(LEN - p.len());
    p.extend_from_slice(&payload);
    assert_eq!(p.len(), LEN);
    p
}

/// `for (i = 0; i < LEN; i += step) { BODY }` over the buffer, with r3 = r1 + i.
fn byte_loop(step: usize, body: &str) -> String {
    format!(
        "\
mov %r2, 0
loop:
mov %r3, %r1
add %r3, %r2
{body}
add %r2, {step}
jlt %r2, {LEN}, loop
"
    )
}

fn case(
    name: &'static str,
    src: String,
    mem: Vec<u8>,
    native: &'static str,
    native_arg: u64,
) -> Case {
    let insns = assemble(&src).unwrap_or_else(|e| panic!("{name}: {e}"));
    Case {
        name,
        src,
        insns,
        mem,
        native,
        native_arg,
        in_mean: true,
    }
}

fn cases() -> Vec<Case> {
    let data = input(LEN);
    let mut all = Vec::new();

    let mut empty = case(
        "empty",
        "mov %r0, 0\nexit\n".into(),
        data.clone(),
        "empty",
        LEN as u64,
    );
    empty.in_mean = false;
    all.push(empty);

    // Primes below N by trial division up to the square root: 7 instructions, one of
    // them a 64-bit `mod`, per divisor tried. A divisor that divides falls through to
    // `ja next`: the kernel's verifier explores the fall-through first and pushes the
    // other way, so the pushes pending stay below its limit of 8192 (one per n, not one
    // per divisor). N is small because the verifier walks every divisor of every n.
    all.push(case(
        "prime_count",
        format!(
            "\
mov %r0, 0
mov %r1, 2
outer:
mov %r2, 2
inner:
mov %r3, %r2
mul %r3, %r2
jgt %r3, %r1, prime
mov %r4, %r1
mod %r4, %r2
jne %r4, 0, cont
ja next
cont:
add %r2, 1
ja inner
prime:
add %r0, 1
next:
add %r1, 1
jlt %r1, {PRIME_N}, outer
exit
"
        ),
        data.clone(),
        "prime_count",
        PRIME_N,
    ));

    all.push(case(
        "fnv1a",
        format!(
            "\
lddw %r0, 0xcbf29ce484222325
lddw %r4, 0x100000001b3
{}exit
",
            byte_loop(1, "ldxb %r5, [%r3]\nxor %r0, %r5\nmul %r0, %r4")
        ),
        data.clone(),
        "fnv1a",
        LEN as u64,
    ));

    let mut copy_mem = data.clone();
    copy_mem.resize(2 * LEN, 0);
    all.push(case(
        "copy",
        format!(
            "\
{}ldxdw %r0, [%r1+{LEN}]
ldxdw %r5, [%r1+{}]
xor %r0, %r5
exit
",
            byte_loop(1, &format!("ldxb %r4, [%r3]\nstxb [%r3+{LEN}], %r4")),
            2 * LEN - 8
        ),
        copy_mem,
        "copy",
        LEN as u64,
    ));

    // A state machine: per byte, `(byte + state) & 15` selects one of 9 cases or the
    // default, tested in order by `jne` to the next test (a `jeq` chain makes the
    // kernel's verifier push 9 branches per byte, past its limit of 8192).
    all.push(case(
        "switch",
        format!(
            "\
mov %r0, 0
mov %r6, 0
{}exit
",
            byte_loop(
                1,
                "\
ldxb %r5, [%r3]
mov %r7, %r5
add %r7, %r6
and %r7, 15
jne %r7, 0, t1
add %r6, 1
ja next
t1:
jne %r7, 1, t2
add %r0, %r6
ja next
t2:
jne %r7, 2, t3
xor %r0, %r5
ja next
t3:
jne %r7, 3, t4
xor %r6, 3
ja next
t4:
jne %r7, 4, t5
mul %r0, 3
ja next
t5:
jne %r7, 5, t6
lsh %r5, 2
add %r0, %r5
ja next
t6:
jne %r7, 6, t7
mov %r6, 0
ja next
t7:
jne %r7, 7, t8
sub %r0, %r6
ja next
t8:
jne %r7, 8, default
rsh %r0, 1
ja next
default:
add %r0, 1
next:"
            )
        ),
        data.clone(),
        "switch_sm",
        LEN as u64,
    ));

    // Insertion sort of 64 u64 in the 512-byte stack frame, indexed by byte offsets (so
    // the stack accesses are at r10 + register: checked by our JIT), then a hash.
    all.push(case(
        "sort",
        "\
mov %r2, 0
copy:
mov %r3, %r1
add %r3, %r2
ldxdw %r4, [%r3]
mov %r5, %r10
add %r5, %r2
stxdw [%r5-512], %r4
add %r2, 8
jlt %r2, 512, copy
mov %r2, 8
outer:
mov %r5, %r10
add %r5, %r2
ldxdw %r4, [%r5-512]
mov %r3, %r2
inner:
jeq %r3, 0, place
mov %r5, %r10
add %r5, %r3
ldxdw %r6, [%r5-520]
jle %r6, %r4, place
stxdw [%r5-512], %r6
sub %r3, 8
ja inner
place:
mov %r5, %r10
add %r5, %r3
stxdw [%r5-512], %r4
add %r2, 8
jlt %r2, 512, outer
mov %r0, 0
mov %r2, 0
hash:
mov %r5, %r10
add %r5, %r2
ldxdw %r3, [%r5-512]
mul %r0, 31
add %r0, %r3
add %r2, 8
jlt %r2, 512, hash
exit
"
        .into(),
        data.clone(),
        "sort",
        LEN as u64,
    ));

    // Ethernet (optional 802.1Q) / IPv4 with its header checksum verified / TCP or UDP,
    // every access checked against the end of the packet: a hash of the 5-tuple.
    all.push(case(
        "parse",
        format!(
            "\
mov %r9, %r1
add %r9, {LEN}
mov %r4, %r1
add %r4, 14
jgt %r4, %r9, drop
ldxh %r5, [%r1+12]
mov %r6, 14
jne %r5, 0x81, novlan
mov %r4, %r1
add %r4, 18
jgt %r4, %r9, drop
ldxh %r5, [%r1+16]
mov %r6, 18
novlan:
jne %r5, 0x8, drop
mov %r7, %r1
add %r7, %r6
mov %r4, %r7
add %r4, 20
jgt %r4, %r9, drop
ldxb %r3, [%r7]
mov %r5, %r3
rsh %r5, 4
jne %r5, 4, drop
and %r3, 15
jlt %r3, 5, drop
lsh %r3, 2
mov %r4, %r7
add %r4, %r3
jgt %r4, %r9, drop
mov %r5, 0
mov %r2, 0
csum:
mov %r4, %r7
add %r4, %r2
ldxh %r8, [%r4]
add %r5, %r8
add %r2, 2
jlt %r2, %r3, csum
mov %r4, %r5
rsh %r4, 16
and %r5, 0xffff
add %r5, %r4
mov %r4, %r5
rsh %r4, 16
add %r5, %r4
and %r5, 0xffff
jne %r5, 0xffff, drop
ldxb %r8, [%r7+9]
ldxw %r2, [%r7+12]
ldxw %r6, [%r7+16]
mov %r0, 0
ldxh %r5, [%r7+6]
and %r5, 0xff1f
jne %r5, 0, hash
add %r7, %r3
jeq %r8, 6, tcp
jne %r8, 17, hash
mov %r4, %r7
add %r4, 8
jgt %r4, %r9, drop
ldxw %r0, [%r7]
ja hash
tcp:
mov %r4, %r7
add %r4, 20
jgt %r4, %r9, drop
ldxw %r0, [%r7]
hash:
lsh %r2, 32
or %r2, %r6
lsh %r0, 8
or %r0, %r8
xor %r0, %r2
lddw %r4, 0x9e3779b97f4a7c15
mul %r0, %r4
mov %r4, %r0
rsh %r4, 29
xor %r0, %r4
lddw %r4, 0xbf58476d1ce4e5b9
mul %r0, %r4
mov %r4, %r0
rsh %r4, 32
xor %r0, %r4
exit
drop:
mov %r0, 0
exit
"
        ),
        packet(),
        "parse",
        LEN as u64,
    ));

    all.push(case(
        "csum",
        format!(
            "\
mov %r0, 0
{}mov %r4, %r0
rsh %r4, 16
and %r0, 0xffff
add %r0, %r4
mov %r4, %r0
rsh %r4, 16
add %r0, %r4
and %r0, 0xffff
exit
",
            byte_loop(2, "ldxh %r4, [%r3]\nadd %r0, %r4")
        ),
        data.clone(),
        "csum",
        LEN as u64,
    ));

    // CRC-32, bit by bit without branches (`(crc & 1) * poly`), in 32-bit ALU operations,
    // the 8 bit steps unrolled as clang unrolls them. (The `-(crc & 1) & poly` form makes
    // this kernel's verifier fork at every step and, past 8192 pending forks, oops in
    // maybe_fork_scalars.)
    let bit = "\
mov32 %r5, %r0
and32 %r5, 1
mul32 %r5, 0xedb88320
rsh32 %r0, 1
xor32 %r0, %r5
";
    all.push(case(
        "crc32",
        format!(
            "\
mov32 %r0, 0xffffffff
{}xor32 %r0, 0xffffffff
exit
",
            byte_loop(
                1,
                &format!("ldxb %r4, [%r3]\nxor32 %r0, %r4\n{}", bit.repeat(8))
            )
        ),
        data.clone(),
        "crc32",
        LEN as u64,
    ));

    // A helper call per 8-byte word (187 calls; the helper is one multiply): what a call
    // costs each engine. Native C calls an out-of-line function. Not in the means (the
    // issue's programs make no calls); the kernel has no such helper.
    let mut calls = case(
        "calls",
        format!(
            "\
mov %r6, %r1
mov %r7, 0
mov %r8, 0
loop:
mov %r3, %r6
add %r3, %r7
ldxdw %r2, [%r3]
mov %r1, %r8
call {MIX}
mov %r8, %r0
add %r7, 8
jlt %r7, {}, loop
mov %r0, %r8
exit
",
            LEN - 7
        ),
        data,
        "calls",
        LEN as u64,
    );
    calls.in_mean = false;
    all.push(calls);
    all
}

// ---------------------------------------------------------------------------------------
// Running each engine once (for the checks).

fn run_native(f: native::NativeFn, mem: &[u8], arg: u64) -> u64 {
    let mut buf = mem.to_vec();
    // SAFETY: every native program reads (and `copy` writes) within `buf`, whose length
    // is what each program expects (2 * LEN for copy).
    unsafe { f(buf.as_mut_ptr(), arg) }
}

/// Our JIT's code for a case: with the verifier's proofs where it accepts the program (as
/// `run` compiles verified programs), every access checked otherwise.
fn jit_compile(case: &Case, prog: &Program) -> JitProgram<()> {
    jit_with(prog, &proofs(case))
}

/// The same, from a verdict already at hand.
fn jit_with(prog: &Program, proofs: &Result<Facts, String>) -> JitProgram<()> {
    match proofs {
        Ok(facts) => JitProgram::compile_with_facts(prog, helpers(), facts),
        Err(_) => JitProgram::compile(prog, helpers()),
    }
    .unwrap()
}

/// The verifier's proofs for a program run on its input as a raw block (r1).
fn proofs(case: &Case) -> Result<Facts, String> {
    let opts = VerifyOptions {
        raw_ctx_size: Some(case.mem.len() as u32),
        ..VerifyOptions::default()
    };
    verify(&case.insns, &opts)
        .map(|v| v.facts)
        .map_err(|r| r.to_string())
}

fn ours(case: &Case, budget: u64) -> (Result<u64, VmError>, Result<u64, VmError>) {
    let prog = Program::new(case.insns.clone()).expect("valid program");
    let vm = Interpreter::new(&prog, helpers())
        .unwrap()
        .with_config(Config { budget });
    let jit = jit_compile(case, &prog).with_config(Config { budget });
    let run = |jitted: bool| {
        let mut data = case.mem.clone();
        let mut memory = Memory::new();
        let r1 = memory.set_ctx(&mut data);
        if jitted {
            jit.run(&mut memory, &mut (), [r1, 0, 0, 0, 0])
        } else {
            vm.run(&mut memory, &mut (), [r1, 0, 0, 0, 0])
        }
    };
    (run(false), run(true))
}

fn rbpf_once(case: &Case) -> (u64, u64) {
    let bytes = slots_to_bytes(&case.insns);
    let mut vm =
        rbpf_vm(&bytes).unwrap_or_else(|e| panic!("{}: rbpf refuses the program: {e}", case.name));
    let data = case.mem.clone();
    let interp = vm
        .execute_program(&data, &[])
        .unwrap_or_else(|e| panic!("{}: rbpf interp: {e}", case.name));
    vm.jit_compile()
        .unwrap_or_else(|e| panic!("{}: rbpf jit_compile: {e}", case.name));
    let mut data = case.mem.clone();
    // SAFETY: the program only accesses the buffer r1 points to (the mbuff), within its
    // length, and its stack.
    let jit = unsafe { vm.execute_program_jit(&mut [], &mut data) }.unwrap();
    (interp, jit)
}

/// The smallest budget our interpreter completes the program with: about the number of
/// instructions executed (the budget is checked at backward jumps only).
fn executed(case: &Case) -> u64 {
    if !case.src.contains("loop:") && !case.src.contains("inner:") {
        return case.insns.len() as u64; // straight line (only `empty`)
    }
    let (mut lo, mut hi) = (0u64, BUDGET);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match ours(case, mid).0 {
            Ok(_) => hi = mid,
            Err(VmError::Budget { .. }) => lo = mid + 1,
            Err(e) => panic!("{}: {e}", case.name),
        }
    }
    lo
}

/// Every engine must return what the C version returns.
fn check(case: &Case) -> u64 {
    let expected = run_native(
        native::get(native::SCALAR, case.native),
        &case.mem,
        case.native_arg,
    );
    let vec = run_native(
        native::get(native::VECTOR, case.native),
        &case.mem,
        case.native_arg,
    );
    assert_eq!(vec, expected, "{}: native -O2 vs scalar", case.name);
    let (interp, jit) = ours(case, BUDGET);
    let interp = interp.unwrap_or_else(|e| panic!("{}: ebpf-sim interp: {e}", case.name));
    let jit = jit.unwrap_or_else(|e| panic!("{}: ebpf-sim jit: {e}", case.name));
    assert_eq!(interp, expected, "{}: ebpf-sim interp r0", case.name);
    assert_eq!(jit, expected, "{}: ebpf-sim jit r0", case.name);
    let (rinterp, rjit) = rbpf_once(case);
    assert_eq!(rinterp, expected, "{}: rbpf interp r0", case.name);
    assert_eq!(rjit, expected, "{}: rbpf jit r0", case.name);
    if case.name == "prime_count" {
        let sieve = (2..PRIME_N)
            .filter(|&n| (2..n).take_while(|d| d * d <= n).all(|d| n % d != 0))
            .count() as u64;
        assert_eq!(expected, sieve, "prime_count");
    }
    expected
}

// ---------------------------------------------------------------------------------------
// The kernel's JIT, through bpf(2). Only in the child process.

mod kernel {
    use std::ffi::c_long;

    const BPF_PROG_LOAD: c_long = 5;
    const BPF_PROG_TEST_RUN: c_long = 10;
    const BPF_OBJ_GET_INFO_BY_FD: c_long = 15;
    const BPF_PROG_TYPE_XDP: u32 = 6;

    #[repr(C)]
    #[derive(Default)]
    struct ProgLoad {
        prog_type: u32,
        insn_cnt: u32,
        insns: u64,
        license: u64,
        log_level: u32,
        log_size: u32,
        log_buf: u64,
        kern_version: u32,
        prog_flags: u32,
        prog_name: [u8; 16],
        prog_ifindex: u32,
        expected_attach_type: u32,
        /// The later fields, all zero.
        rest: [u64; 8],
    }

    #[repr(C)]
    #[derive(Default)]
    struct TestRun {
        prog_fd: u32,
        retval: u32,
        data_size_in: u32,
        data_size_out: u32,
        data_in: u64,
        data_out: u64,
        repeat: u32,
        duration: u32,
        ctx_size_in: u32,
        ctx_size_out: u32,
        ctx_in: u64,
        ctx_out: u64,
        flags: u32,
        cpu: u32,
        batch_size: u32,
        pad: u32,
    }

    #[repr(C)]
    #[derive(Default)]
    struct InfoByFd {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }

    /// The first fields of `struct bpf_prog_info`.
    #[repr(C)]
    #[derive(Default)]
    struct ProgInfo {
        prog_type: u32,
        id: u32,
        tag: [u8; 8],
        jited_prog_len: u32,
        xlated_prog_len: u32,
    }

    fn bpf<T>(cmd: c_long, attr: &mut T) -> Result<i64, std::io::Error> {
        // SAFETY: `attr` is a live, zero-padded bpf_attr prefix of the given size.
        let r = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                cmd,
                attr as *mut T,
                std::mem::size_of::<T>() as u32,
            )
        };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    pub struct Loaded {
        fd: u32,
        pub jited_len: u32,
        pub xlated_len: u32,
        /// The verifier's statistics line ("processed N insns ...").
        pub stats: String,
    }

    impl Drop for Loaded {
        fn drop(&mut self) {
            // SAFETY: closing the descriptor BPF_PROG_LOAD returned, once.
            unsafe { libc::close(self.fd as i32) };
        }
    }

    pub fn load(insns: &[u8], name: &str) -> Result<Loaded, String> {
        let license = c"GPL";
        let mut log = vec![0u8; 1 << 20];
        let mut prog_name = [0u8; 16];
        for (d, s) in prog_name.iter_mut().zip(name.bytes().take(15)) {
            *d = s;
        }
        let attempt = |log: &mut Vec<u8>, level: u32| {
            let mut attr = ProgLoad {
                prog_type: BPF_PROG_TYPE_XDP,
                insn_cnt: (insns.len() / 8) as u32,
                insns: insns.as_ptr() as u64,
                license: license.as_ptr() as u64,
                log_level: level,
                log_size: log.len() as u32,
                log_buf: log.as_mut_ptr() as u64,
                prog_name,
                ..Default::default()
            };
            bpf(BPF_PROG_LOAD, &mut attr)
        };
        let text = |log: &[u8]| {
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            String::from_utf8_lossy(&log[..end]).into_owned()
        };
        // Level 4: only the statistics.
        let fd = match attempt(&mut log, 4) {
            Ok(fd) => fd as u32,
            Err(e) => {
                log.fill(0);
                let _ = attempt(&mut log, 1);
                let t = text(&log);
                let tail: String = t
                    .lines()
                    .rev()
                    .take(12)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n    ");
                return Err(format!(
                    "BPF_PROG_LOAD: {e}; verifier log ends:\n    {tail}"
                ));
            }
        };
        let stats = text(&log)
            .lines()
            .find(|l| l.starts_with("processed"))
            .unwrap_or("")
            .to_string();
        let mut info = ProgInfo::default();
        let mut attr = InfoByFd {
            bpf_fd: fd,
            info_len: std::mem::size_of::<ProgInfo>() as u32,
            info: &mut info as *mut ProgInfo as u64,
        };
        let mut loaded = Loaded {
            fd,
            jited_len: 0,
            xlated_len: 0,
            stats,
        };
        bpf(BPF_OBJ_GET_INFO_BY_FD, &mut attr).map_err(|e| format!("get info: {e}"))?;
        loaded.jited_len = info.jited_prog_len;
        loaded.xlated_len = info.xlated_prog_len;
        Ok(loaded)
    }

    /// Runs the program `repeat` times on `data`: (retval, ns per run).
    pub fn test_run(prog: &Loaded, data: &[u8], repeat: u32) -> Result<(u32, u32), String> {
        let mut attr = TestRun {
            prog_fd: prog.fd,
            data_size_in: data.len() as u32,
            data_in: data.as_ptr() as u64,
            repeat,
            ..Default::default()
        };
        bpf(BPF_PROG_TEST_RUN, &mut attr).map_err(|e| format!("BPF_PROG_TEST_RUN: {e}"))?;
        Ok((attr.retval, attr.duration))
    }
}

/// The XDP program the kernel gets: a prologue that checks the packet is at least as long
/// as the program's buffer and passes data in r1, then the body unchanged.
fn kernel_source(case: &Case) -> String {
    format!(
        "\
ldxw %r2, [%r1]
ldxw %r3, [%r1+4]
mov %r4, %r2
add %r4, {}
jgt %r4, %r3, kernel_short
mov %r1, %r2
{}kernel_short:
mov %r0, 0
exit
",
        case.mem.len(),
        case.src
    )
}

/// The child process: loads one program, runs it, prints one `kernel-result` line.
fn kernel_child(name: &str) {
    let cases = cases();
    let case = cases.iter().find(|c| c.name == name).expect("known case");
    let insns = assemble(&kernel_source(case)).expect("kernel wrapper assembles");
    let prog = match kernel::load(&slots_to_bytes(&insns), case.name) {
        Ok(p) => p,
        Err(e) => {
            println!("kernel-error {e}");
            return;
        }
    };
    // Calibrate, then 5 rounds of about 0.2 s each (at most 10000 runs a round).
    let result = (|| {
        let (_, ns) = kernel::test_run(&prog, &case.mem, 100)?;
        let repeat = (200_000_000 / ns.max(1)).clamp(10, 10_000);
        let mut times = Vec::new();
        let mut retval = 0;
        for _ in 0..5 {
            let (r, ns) = kernel::test_run(&prog, &case.mem, repeat)?;
            retval = r;
            times.push(ns);
        }
        times.sort_unstable();
        Ok::<_, String>((retval, times, repeat))
    })();
    match result {
        Ok((retval, times, repeat)) => println!(
            "kernel-result retval={retval} median={} min={} max={} repeat={repeat} jited={} xlated={} stats={}",
            times[2],
            times[0],
            times[4],
            prog.jited_len,
            prog.xlated_len,
            prog.stats
        ),
        Err(e) => println!("kernel-error {e}"),
    }
}

/// The kernel's figure for one program.
struct KernelFigure {
    ns: f64,
    min: f64,
    max: f64,
    repeat: u64,
    jited: u64,
    xlated: u64,
    stats: String,
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    let start = line
        .find(&format!("{key}="))
        .map(|i| i + key.len() + 1)
        .unwrap_or(line.len());
    let rest = &line[start..];
    if key == "stats" {
        rest
    } else {
        rest.split(' ').next().unwrap_or("")
    }
}

/// Loads and runs `case` in the kernel, in a child process.
fn kernel_measure(case: &Case, expected: u64) -> Result<KernelFigure, String> {
    if case.src.contains("call ") {
        return Err("the program calls the benchmark's own helper, which the kernel lacks".into());
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(
            "not root: BPF_PROG_LOAD of an XDP program needs CAP_BPF and CAP_NET_ADMIN".into(),
        );
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(exe)
        .env(KERNEL_ENV, case.name)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the loader process: {e}"))?;
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("the loader process did not finish in 120 s (killed)".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    child.stdout.take().unwrap().read_to_string(&mut out).ok();
    child.stderr.take().unwrap().read_to_string(&mut err).ok();
    if let Some(line) = out.lines().find(|l| l.starts_with("kernel-result")) {
        let retval: u64 = field(line, "retval").parse().unwrap();
        if retval != expected & 0xffff_ffff {
            return Err(format!(
                "the kernel returned {retval:#x}, not {:#x} (low 32 bits of r0)",
                expected & 0xffff_ffff
            ));
        }
        let num = |k: &str| field(line, k).parse::<f64>().unwrap();
        return Ok(KernelFigure {
            ns: num("median"),
            min: num("min"),
            max: num("max"),
            repeat: num("repeat") as u64,
            jited: num("jited") as u64,
            xlated: num("xlated") as u64,
            stats: field(line, "stats").to_string(),
        });
    }
    if let Some(line) = out.lines().find(|l| l.starts_with("kernel-error")) {
        let rest: String = out[out.find(line).unwrap()..].to_string();
        return Err(rest
            .trim_start_matches("kernel-error ")
            .trim_end()
            .to_string());
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match status.signal() {
        Some(sig) => format!("the loader process died of signal {sig} (the verifier crashed it)"),
        None => format!(
            "the loader process exited with {status} without a result: {}",
            err.trim()
        ),
    })
}

// ---------------------------------------------------------------------------------------
// Criterion.

/// Criterion measurement: CPU time of this thread (`CLOCK_THREAD_CPUTIME_ID`), not wall
/// time, so that time spent descheduled (this machine's 2 cores are shared with other
/// work) is not counted, as the kernel's BPF_PROG_TEST_RUN timer does not count it.
struct CpuTime;

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec to write to.
    let r = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(r, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

impl criterion::measurement::Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        thread_cpu_ns()
    }
    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(thread_cpu_ns() - start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, v: &Duration) -> f64 {
        v.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn criterion::measurement::ValueFormatter {
        static WALL: criterion::measurement::WallTime = criterion::measurement::WallTime;
        criterion::measurement::Measurement::formatter(&WALL)
    }
}

const ENGINES: [&str; 6] = [
    "native",
    "native vec",
    "ebpf-sim jit",
    "rbpf jit",
    "ebpf-sim interp",
    "rbpf interp",
];

fn bench_case(c: &mut Criterion<CpuTime>, case: &Case, expected: u64) {
    let mut group = c.benchmark_group(case.name);

    for (engine, table) in [("native", native::SCALAR), ("native vec", native::VECTOR)] {
        let f = native::get(table, case.native);
        let mut buf = case.mem.clone();
        let p = buf.as_mut_ptr();
        let arg = case.native_arg;
        group.bench_function(engine, |b| {
            // SAFETY: as in `run_native`: the program stays within `buf`.
            b.iter(|| unsafe { f(black_box(p), black_box(arg)) })
        });
        // SAFETY: as above.
        assert_eq!(unsafe { f(p, arg) }, expected);
    }

    let prog = Program::new(case.insns.clone()).unwrap();
    let mut data = case.mem.clone();
    let mut memory = Memory::new();
    let r1 = memory.set_ctx(&mut data);

    let jit = jit_compile(case, &prog).with_config(Config { budget: BUDGET });
    group.bench_function("ebpf-sim jit", |b| {
        b.iter(|| {
            jit.run(&mut memory, &mut (), black_box([r1, 0, 0, 0, 0]))
                .unwrap()
        })
    });

    let bytes = slots_to_bytes(&case.insns);
    let mut rvm = rbpf_vm(&bytes).unwrap();
    rvm.jit_compile().unwrap();
    let mut rdata = case.mem.clone();
    let (rp, rlen) = (rdata.as_mut_ptr(), rdata.len());
    group.bench_function("rbpf jit", |b| {
        b.iter(|| {
            // SAFETY: a fresh view of `rdata`, which outlives the loop and is used by
            // nothing else meanwhile; the program stays within it and its stack.
            let mbuff = unsafe { std::slice::from_raw_parts_mut(black_box(rp), rlen) };
            unsafe { rvm.execute_program_jit(&mut [], mbuff) }.unwrap()
        })
    });

    let vm = Interpreter::new(&prog, helpers())
        .unwrap()
        .with_config(Config { budget: BUDGET });
    group.bench_function("ebpf-sim interp", |b| {
        b.iter(|| {
            vm.run(&mut memory, &mut (), black_box([r1, 0, 0, 0, 0]))
                .unwrap()
        })
    });

    let ivm = rbpf_vm(&bytes).unwrap();
    group.bench_function("rbpf interp", |b| {
        b.iter(|| {
            // SAFETY: as for the JIT: rbpf's interpreter writes through r1 for `copy`.
            let mem = unsafe { std::slice::from_raw_parts(black_box(rp), rlen) };
            ivm.execute_program(mem, &[]).unwrap()
        })
    });
    group.finish();
}

/// Compile time of the largest program: criterion, plus a direct median per instruction.
fn bench_compile(c: &mut Criterion<CpuTime>, case: &Case) -> (f64, f64, f64) {
    let prog = Program::new(case.insns.clone()).unwrap();
    let bytes = slots_to_bytes(&case.insns);
    let n = case.insns.len() as f64;
    let mut group = c.benchmark_group(format!("compile_{}", case.name));
    group.bench_function("ebpf-sim jit", |b| {
        b.iter(|| JitProgram::compile(black_box(&prog), helpers()).unwrap())
    });
    let mut rvm = rbpf_vm(&bytes).unwrap();
    group.bench_function("rbpf jit", |b| b.iter(|| rvm.jit_compile().unwrap()));
    group.finish();

    // A long straight-line program (1,402 instructions, one checked load in every 7),
    // where the fixed cost of a compile (code buffer mapping, protection changes) is
    // spread over many instructions. rbpf 0.4.1 cannot take it: its JIT writes into one
    // 4 KiB page.
    let mut src = String::from("mov32 %r0, 0\n");
    for i in 0..200 {
        let _ = write!(
            src,
            "ldxb %r4, [%r1+{}]\nxor32 %r0, %r4\nmov32 %r5, %r0\nand32 %r5, 1\nmul32 %r5, 0xedb88320\nrsh32 %r0, 1\nxor32 %r0, %r5\n",
            i % LEN
        );
    }
    src.push_str("exit\n");
    let large = Program::new(assemble(&src).unwrap()).unwrap();
    assert_eq!(large.len(), LARGE_INSNS);
    let large_n = large.len() as f64;
    let mut group = c.benchmark_group(format!("compile_large_{}", large.len()));
    group.bench_function("ebpf-sim jit", |b| {
        b.iter(|| JitProgram::compile(black_box(&large), helpers()).unwrap())
    });
    group.finish();

    let median = |f: &mut dyn FnMut()| {
        let mut t: Vec<f64> = (0..301)
            .map(|_| {
                let s = Instant::now();
                f();
                s.elapsed().as_nanos() as f64
            })
            .collect();
        t.sort_by(f64::total_cmp);
        t[150]
    };
    let ours = median(&mut || {
        black_box(JitProgram::compile(black_box(&prog), helpers()).unwrap());
    });
    let theirs = median(&mut || rvm.jit_compile().unwrap());
    let ours_large = median(&mut || {
        black_box(JitProgram::compile(black_box(&large), helpers()).unwrap());
    });
    (ours / n, theirs / n, ours_large / large_n)
}

/// Criterion's estimate for one function (its slope where it has one, else its mean), ns.
fn estimate(group: &str, function: &str) -> Option<f64> {
    let dir = std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR").map(|d| PathBuf::from(d).join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from("target/criterion"));
    let text = std::fs::read_to_string(
        dir.join(group)
            .join(function)
            .join("new")
            .join("estimates.json"),
    )
    .ok()?;
    let pick = |key: &str| -> Option<f64> {
        let at = text.find(&format!("\"{key}\":{{"))?;
        let rest = &text[at..];
        let p = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
        rest[p..].split([',', '}']).next()?.trim().parse().ok()
    };
    pick("slope").or_else(|| pick("mean"))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

/// Executable anonymous mappings of this process: (start, end).
fn exec_mappings() -> Vec<(usize, usize)> {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let anon = f.len() < 6 || f[5].starts_with("[anon");
            if f.len() < 5 || !f[1].starts_with("r-x") || f[4] != "0" || !anon {
                return None;
            }
            let (a, b) = f[0].split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

/// Paired mode: native C, our JIT and rbpf's JIT timed in alternation, 20 ms of thread CPU
/// time each per round, every round with freshly compiled code and fresh buffers. This
/// machine's speed drifts by up to 2x over seconds and each process's code placement
/// changes a loop's speed by up to 25%: ratios taken within a round, then their median
/// over many rounds, are stable where criterion's one-engine-after-the-other figures are
/// not (see BENCHMARKS.md).
fn paired(rounds: usize) {
    fn cpu_time_per_run(mut f: impl FnMut()) -> f64 {
        // Batches of about 20 µs, so reading the clock (tens of ns) is lost in the noise
        // even for the shortest programs.
        let probe = thread_cpu_ns();
        for _ in 0..16 {
            f();
        }
        let each = ((thread_cpu_ns() - probe) / 16).max(1);
        let batch = (20_000 / each).clamp(1, 100_000);
        let start = thread_cpu_ns();
        let mut runs = 0u64;
        while thread_cpu_ns() - start < 20_000_000 {
            for _ in 0..batch {
                f();
            }
            runs += batch;
        }
        (thread_cpu_ns() - start) as f64 / runs as f64
    }
    fn quartiles(mut v: Vec<f64>) -> [f64; 3] {
        v.sort_by(f64::total_cmp);
        let at = |q: usize| v[(v.len() - 1) * q / 4];
        [at(1), at(2), at(3)]
    }
    let mut medians = Vec::new();
    // EBPF_SIM_JITBENCH_ONLY=a,b: only these programs (those outside the means, `empty`
    // and `calls`, only when named).
    let only = std::env::var("EBPF_SIM_JITBENCH_ONLY")
        .ok()
        .filter(|l| !l.is_empty());
    let chosen = |case: &Case| match &only {
        Some(list) => list.split(',').any(|n| n == case.name),
        None => case.in_mean,
    };
    for case in cases().iter().filter(|c| chosen(c)) {
        let prog = Program::new(case.insns.clone()).unwrap();
        let bytes = slots_to_bytes(&case.insns);
        let native_fn = native::get(native::SCALAR, case.native);
        let (mut ours, mut rbpf, mut versus) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            let jit = jit_compile(case, &prog).with_config(Config { budget: BUDGET });
            let mut data = case.mem.clone();
            let mut memory = Memory::new();
            let r1 = memory.set_ctx(&mut data);
            let mut rvm = rbpf_vm(&bytes).unwrap();
            rvm.jit_compile().unwrap();
            let mut rdata = case.mem.clone();
            let (rp, rlen) = (rdata.as_mut_ptr(), rdata.len());
            let mut nbuf = case.mem.clone();
            let np = nbuf.as_mut_ptr();
            let n = cpu_time_per_run(|| {
                // SAFETY: as in `run_native`: the program stays within `nbuf`.
                black_box(unsafe { native_fn(black_box(np), black_box(case.native_arg)) });
            });
            let o = cpu_time_per_run(|| {
                black_box(
                    jit.run(&mut memory, &mut (), black_box([r1, 0, 0, 0, 0]))
                        .unwrap(),
                );
            });
            let r = cpu_time_per_run(|| {
                // SAFETY: as in `bench_case`: a fresh view of `rdata`, used by nothing
                // else meanwhile; the program stays within it and its stack.
                let mbuff = unsafe { std::slice::from_raw_parts_mut(black_box(rp), rlen) };
                black_box(unsafe { rvm.execute_program_jit(&mut [], mbuff) }.unwrap());
            });
            ours.push(o / n);
            rbpf.push(r / n);
            versus.push(o / r);
        }
        let [o, r, v] = [ours, rbpf, versus].map(quartiles);
        println!(
            "{:12} ours/native {:.2} ({:.2}-{:.2})  rbpf/native {:.2} ({:.2}-{:.2})  ours/rbpf {:.3} ({:.3}-{:.3})",
            case.name, o[1], o[0], o[2], r[1], r[0], r[2], v[1], v[0], v[2]
        );
        medians.push((o[1], r[1], v[1]));
    }
    let geo = |f: fn(&(f64, f64, f64)) -> f64| {
        (medians.iter().map(|m| f(m).ln()).sum::<f64>() / medians.len() as f64).exp()
    };
    println!(
        "geometric mean of the medians: ours/native {:.2}, rbpf/native {:.2}, ours/rbpf {:.3} ({rounds} rounds)",
        geo(|m| m.0),
        geo(|m| m.1),
        geo(|m| m.2)
    );
}

/// Profiling mode: runs our JIT on one program for a few seconds, after writing the
/// generated code to `<dir>/jit-<address>.bin` (see BENCHMARKS.md, "Profiling").
fn profile(name: &str) {
    let secs: u64 = std::env::var("EBPF_SIM_JITBENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = std::env::var("EBPF_SIM_JITBENCH_DUMP").unwrap_or_else(|_| ".".into());
    let cases = cases();
    let case = cases.iter().find(|c| c.name == name).expect("known case");
    let prog = Program::new(case.insns.clone()).unwrap();
    let before = exec_mappings();
    let jit = jit_compile(case, &prog).with_config(Config { budget: BUDGET });
    for (start, end) in exec_mappings() {
        if !before.contains(&(start, end)) {
            // SAFETY: an executable (so readable) mapping that `jit` keeps alive.
            let code = unsafe { std::slice::from_raw_parts(start as *const u8, end - start) };
            let path = format!("{dir}/jit-{start:x}.bin");
            std::fs::write(&path, code).expect("write the code dump");
            println!("{path}: {} bytes at {start:#x}", end - start);
        }
    }
    let mut data = case.mem.clone();
    let mut memory = Memory::new();
    let r1 = memory.set_ctx(&mut data);
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < Duration::from_secs(secs) {
        for _ in 0..100 {
            black_box(
                jit.run(&mut memory, &mut (), black_box([r1, 0, 0, 0, 0]))
                    .unwrap(),
            );
        }
        runs += 100;
    }
    println!(
        "{name}: {runs} runs, {:.1} ns each",
        start.elapsed().as_nanos() as f64 / runs as f64
    );
}

fn main() {
    if let Ok(name) = std::env::var(KERNEL_ENV) {
        kernel_child(&name);
        return;
    }
    if std::env::var("EBPF_SIM_JITBENCH_PROOFS").is_ok() {
        for case in &cases() {
            match proofs(case) {
                Ok(f) => {
                    let count = |p: Proven| f.proven.iter().filter(|&&x| x == p).count();
                    println!(
                        "{}: verified; proven accesses: {} frame, {} ctx, {} elsewhere, {} unproven",
                        case.name,
                        count(Proven::Frame),
                        count(Proven::Ctx),
                        count(Proven::Elsewhere),
                        case.insns.iter().filter(|i| matches!(i.code & 7, 1..=3)).count()
                            - f.proven.iter().filter(|&&x| x != Proven::No).count()
                    )
                }
                Err(e) => println!("{}: rejected: {e}", case.name),
            }
        }
        return;
    }
    if let Ok(rounds) = std::env::var("EBPF_SIM_JITBENCH_PAIRED") {
        paired(rounds.parse().unwrap_or(41).max(1));
        return;
    }
    if let Ok(name) = std::env::var("EBPF_SIM_JITBENCH_PROFILE") {
        profile(&name);
        return;
    }
    let mut c = Criterion::default()
        .with_measurement(CpuTime)
        .configure_from_args();
    let cases = cases();
    println!(
        "native: {}; rbpf 0.4.1; kernel {}",
        native::COMPILER,
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
    );

    let mut results = Vec::new();
    for case in &cases {
        let expected = check(case);
        let executed = executed(case);
        let kernel = kernel_measure(case, expected);
        let verdict = proofs(case);
        let jit = jit_with(&Program::new(case.insns.clone()).unwrap(), &verdict);
        let proofs = match verdict {
            Ok(_) if jit.has_proven_code() => "with the verifier's proofs".to_string(),
            Ok(_) => "verified, nothing to prove".to_string(),
            Err(e) => format!("every access checked (our verifier refuses it: {e})"),
        };
        println!(
            "{}: r0 = {expected:#x} on every engine; {} slots; ~{executed} instructions executed; ebpf-sim jit: {} B of x86, {proofs}",
            case.name,
            case.insns.len(),
            jit.code_size()
        );
        match &kernel {
            Ok(k) => println!(
                "{}: kernel JIT (XDP, BPF_PROG_TEST_RUN, repeat {}): {} per run (median of 5 rounds, {} – {}); {} B of x86, {} B xlated; verifier: {}",
                case.name,
                k.repeat,
                fmt_ns(k.ns),
                fmt_ns(k.min),
                fmt_ns(k.max),
                k.jited,
                k.xlated,
                k.stats
            ),
            Err(e) => println!("{}: kernel JIT skipped: {e}", case.name),
        }
        bench_case(&mut c, case, expected);
        results.push((case, executed, kernel));
    }

    let largest = cases.iter().max_by_key(|c| c.insns.len()).unwrap();
    let (ours_ns, rbpf_ns, large_ns) = bench_compile(&mut c, largest);
    c.final_summary();

    // The summary, from criterion's saved estimates.
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n| Program | insns executed | {} | kernel jit |",
        ENGINES.join(" | ")
    );
    let _ = writeln!(out, "|---|---:|{}---:|", "---:|".repeat(ENGINES.len()));
    let mut logs = vec![Vec::new(); ENGINES.len() + 1];
    for (case, executed, kernel) in &results {
        let base = estimate(case.name, "native");
        let mut row = format!("| {} | {executed} |", case.name);
        let mut ratio_cell = |t: Option<f64>, i: usize| match (t, base) {
            (Some(t), Some(b)) => {
                if case.in_mean {
                    logs[i].push((t / b).ln());
                }
                format!(" {} ({:.2}×) |", fmt_ns(t), t / b)
            }
            (Some(t), None) => format!(" {} |", fmt_ns(t)),
            _ => " – |".to_string(),
        };
        for (i, e) in ENGINES.iter().enumerate() {
            row += &ratio_cell(estimate(case.name, e), i);
        }
        row += &ratio_cell(kernel.as_ref().ok().map(|k| k.ns), ENGINES.len());
        let _ = writeln!(out, "{row}");
    }
    let mut row = "| **geometric mean / native** | |".to_string();
    for l in &logs {
        if l.is_empty() {
            row += " – |";
        } else {
            let _ = write!(
                row,
                " **{:.2}×** ({}) |",
                (l.iter().sum::<f64>() / l.len() as f64).exp(),
                l.len()
            );
        }
    }
    let _ = writeln!(out, "{row}");
    let _ = writeln!(
        out,
        "\ncompile time of `{}` ({} slots), median of 301: ebpf-sim jit {ours_ns:.1} ns/insn, rbpf jit {rbpf_ns:.1} ns/insn",
        largest.name,
        largest.insns.len()
    );
    let _ = writeln!(
        out,
        "compile time of a {LARGE_INSNS}-instruction program, median of 301: ebpf-sim jit {large_ns:.1} ns/insn"
    );
    for (g, f, n) in [
        (
            format!("compile_{}", largest.name),
            "ebpf-sim jit",
            largest.insns.len(),
        ),
        (
            format!("compile_{}", largest.name),
            "rbpf jit",
            largest.insns.len(),
        ),
        (
            format!("compile_large_{LARGE_INSNS}"),
            "ebpf-sim jit",
            LARGE_INSNS,
        ),
    ] {
        if let Some(t) = estimate(&g, f) {
            let _ = writeln!(
                out,
                "criterion {g}/{f}: {} = {:.1} ns/insn",
                fmt_ns(t),
                t / n as f64
            );
        }
    }
    println!("{out}");
}
