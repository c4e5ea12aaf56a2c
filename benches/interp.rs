//! Our interpreter against rbpf 0.4.1's, on the same bytecode and the same input.
//!
//! One criterion group per program, with two functions: `ebpf-sim interp` and
//! `rbpf interp`. Before any timing, both VMs run every program once and must return the
//! same r0, equal to the value a Rust model of the program computes; the model also gives
//! the number of instructions executed (printed, and cross-checked against the smallest
//! instruction budget our interpreter accepts), so ns/instruction can be derived.
//!
//! rbpf's interpreter sets r1 to the buffer but leaves r2 at 0, so the programs that walk
//! the buffer load its length as an immediate (`mov %r2, LEN`) instead of trusting r2.
//! Only instructions rbpf 0.4.1 runs correctly are used: no cpu v4 forms, and no negative
//! immediates in 64-bit jumps (rbpf zero-extends them).
//!
//! Run: `cargo bench --bench interp -- --warm-up-time 1 --measurement-time 3`.

use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use ebpf_sim::conformance::ConformanceTest;
use ebpf_sim::jit::JitProgram;
use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::isa::{slots_to_bytes, Insn};
use ebpf_sim::vm::{Config, Helpers, Interpreter, Memory, Program, VmError};

/// Length of the buffer the byte-walking programs read.
const BUF_LEN: usize = 1500;

/// The prime the conformance `prime` test checks instead of its 67.
const PRIME: u64 = 32749;

/// Budget for the benchmark runs of our interpreter: every program stays far below it.
const BUDGET: u64 = 1_000_000;

/// The `-- asm` section of bpf_conformance/tests/prime.data (Apache-2.0, Big Switch
/// Networks), used only when the suite is not checked out beside the repository.
const PRIME_ASM_FALLBACK: &str = "\
mov %r1, 67
mov %r0, 0x1
mov %r2, 0x2
jgt %r1, 0x2, L3
L1:
ja exit
L2:
add %r2, 0x1
mov %r0, 0x1
jge %r2, %r1, exit
L3:
mov %r3, %r1
div %r3, %r2
mul %r3, %r2
mov %r4, %r1
sub %r4, %r3
mov %r0, 0x0
jne %r4, 0x0, L2
exit
";

/// A benchmarked program with its input and what running it must give.
struct Case {
    name: String,
    insns: Vec<Insn>,
    mem: Vec<u8>,
    /// r0 the Rust model computes.
    expected: u64,
    /// Instructions executed, by the Rust model (an `lddw` counts once).
    executed: u64,
    /// Most instructions that may follow the last backward jump (for the budget check).
    tail: u64,
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

fn asm(name: &str, src: &str) -> Vec<Insn> {
    assemble(src).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// 1. The conformance `prime` test, checking a large prime: ~10 instructions per divisor.
fn prime_case() -> Case {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/conformance/bpf_conformance/tests/prime.data");
    let original = match std::fs::read_to_string(&path) {
        Ok(text) => {
            let t = ConformanceTest::parse(&text).expect("prime.data parses");
            assert_eq!(t.result, Some(1), "prime.data expects 1 (67 is prime)");
            t.asm.expect("prime.data has an asm section")
        }
        Err(_) => {
            eprintln!(
                "note: {} not found, using the embedded copy",
                path.display()
            );
            PRIME_ASM_FALLBACK.to_string()
        }
    };
    assert_eq!(original.matches("mov %r1, 67").count(), 1);
    let src = original.replace("mov %r1, 67", &format!("mov %r1, {PRIME}"));
    let is_prime = (2..PRIME).all(|i| !PRIME.is_multiple_of(i));
    Case {
        name: format!("prime_{PRIME}"),
        insns: asm("prime", &src),
        mem: Vec::new(),
        expected: is_prime as u64,
        // 4 to enter the loop, 10 per divisor 2..P-1, then exit.
        executed: 4 + 10 * (PRIME - 2) + 1,
        tail: 4,
    }
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0100_0000_01b3;

/// 2. FNV-1a (64-bit) over every byte of the buffer: 5 instructions per byte.
fn fnv_case(mem: &[u8]) -> Case {
    let src = format!(
        "\
mov %r2, {len}
lddw %r0, {FNV_OFFSET:#x}
lddw %r4, {FNV_PRIME:#x}
mov %r3, %r1
add %r3, %r2
jge %r1, %r3, done
loop:
ldxb %r5, [%r1]
xor %r0, %r5
mul %r0, %r4
add %r1, 1
jlt %r1, %r3, loop
done:
exit
",
        len = mem.len()
    );
    let expected = mem
        .iter()
        .fold(FNV_OFFSET, |h, &b| (h ^ b as u64).wrapping_mul(FNV_PRIME));
    Case {
        name: format!("fnv1a_{}B", mem.len()),
        insns: asm("fnv", &src),
        mem: mem.to_vec(),
        expected,
        executed: 6 + 5 * mem.len() as u64 + 1,
        // the last iteration (its `jlt` falls through) and exit
        tail: 5 + 1,
    }
}

/// 3. A state machine over the buffer: per byte, dispatch on `(byte + state) & 15` through
///    a chain of 9 `jeq` (cases 0..8, default for 9..15).
fn switch_case(mem: &[u8]) -> Case {
    let src = format!(
        "\
mov %r2, {len}
mov %r0, 0
mov %r6, 0
mov %r3, %r1
add %r3, %r2
jge %r1, %r3, done
loop:
ldxb %r5, [%r1]
mov %r7, %r5
add %r7, %r6
and %r7, 15
jeq %r7, 0, c0
jeq %r7, 1, c1
jeq %r7, 2, c2
jeq %r7, 3, c3
jeq %r7, 4, c4
jeq %r7, 5, c5
jeq %r7, 6, c6
jeq %r7, 7, c7
jeq %r7, 8, c8
add %r0, 1
ja next
c0:
add %r6, 1
ja next
c1:
add %r0, %r6
ja next
c2:
xor %r0, %r5
ja next
c3:
xor %r6, 3
ja next
c4:
mul %r0, 3
ja next
c5:
lsh %r5, 2
add %r0, %r5
ja next
c6:
mov %r6, 0
ja next
c7:
sub %r0, %r6
ja next
c8:
rsh %r0, 1
next:
add %r1, 1
jlt %r1, %r3, loop
done:
exit
",
        len = mem.len()
    );
    // The model: r0, state, and the instructions each byte costs (4 to classify, the
    // jeqs up to the taken one, the case body with its `ja`, 2 to advance).
    let (mut r0, mut s, mut n) = (0u64, 0u64, 6 + 1);
    for &b in mem {
        let b = b as u64;
        let c = b.wrapping_add(s) & 15;
        let (jeqs, body) = match c {
            0 => {
                s = s.wrapping_add(1);
                (1, 2)
            }
            1 => {
                r0 = r0.wrapping_add(s);
                (2, 2)
            }
            2 => {
                r0 ^= b;
                (3, 2)
            }
            3 => {
                s ^= 3;
                (4, 2)
            }
            4 => {
                r0 = r0.wrapping_mul(3);
                (5, 2)
            }
            5 => {
                r0 = r0.wrapping_add(b << 2);
                (6, 3)
            }
            6 => {
                s = 0;
                (7, 2)
            }
            7 => {
                r0 = r0.wrapping_sub(s);
                (8, 2)
            }
            8 => {
                r0 >>= 1;
                (9, 1)
            }
            _ => {
                r0 = r0.wrapping_add(1);
                (9, 2)
            }
        };
        n += 4 + jeqs + body + 2;
    }
    Case {
        name: format!("switch_{}B", mem.len()),
        insns: asm("switch", &src),
        mem: mem.to_vec(),
        expected: r0,
        executed: n,
        // at most one whole iteration and exit
        tail: 4 + 9 + 3 + 2 + 1,
    }
}

/// Number of u64 the stack program sorts.
const SORT_N: usize = 32;

/// 4. Bubble sort of 32 u64 on the stack, every access at a constant offset from r10:
///    copy the first 256 bytes of the buffer to [r10-256..r10), 31 passes of 31
///    compare-exchanges (each pass unrolled, the passes a loop), then hash the result.
fn sort_case(mem: &[u8]) -> Case {
    let off = |i: usize| 8 * (SORT_N - i); // element i is at [r10 - off(i)]
    let mut src = String::new();
    for i in 0..SORT_N {
        writeln!(src, "ldxdw %r3, [%r1+{}]", 8 * i).unwrap();
        writeln!(src, "stxdw [%r10-{}], %r3", off(i)).unwrap();
    }
    writeln!(src, "mov %r6, {}", SORT_N - 1).unwrap();
    writeln!(src, "pass:").unwrap();
    for j in 0..SORT_N - 1 {
        writeln!(src, "ldxdw %r3, [%r10-{}]", off(j)).unwrap();
        writeln!(src, "ldxdw %r4, [%r10-{}]", off(j + 1)).unwrap();
        writeln!(src, "jle %r3, %r4, s{j}").unwrap();
        writeln!(src, "stxdw [%r10-{}], %r4", off(j)).unwrap();
        writeln!(src, "stxdw [%r10-{}], %r3", off(j + 1)).unwrap();
        writeln!(src, "s{j}:").unwrap();
    }
    writeln!(src, "sub %r6, 1").unwrap();
    writeln!(src, "jne %r6, 0, pass").unwrap();
    writeln!(src, "mov %r0, 0").unwrap();
    for i in 0..SORT_N {
        writeln!(src, "ldxdw %r3, [%r10-{}]", off(i)).unwrap();
        writeln!(src, "mul %r0, 31").unwrap();
        writeln!(src, "add %r0, %r3").unwrap();
    }
    writeln!(src, "exit").unwrap();

    let mut v: Vec<u64> = mem[..8 * SORT_N]
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    let mut swaps = 0u64;
    for _ in 0..SORT_N - 1 {
        for j in 0..SORT_N - 1 {
            if v[j] > v[j + 1] {
                v.swap(j, j + 1);
                swaps += 1;
            }
        }
    }
    let expected = v
        .iter()
        .fold(0u64, |h, &x| h.wrapping_mul(31).wrapping_add(x));
    let passes = (SORT_N - 1) as u64;
    let executed = 2 * SORT_N as u64 // copy
        + 1
        + passes * (3 * (SORT_N as u64 - 1) + 2)
        + 2 * swaps
        + 1
        + 3 * SORT_N as u64 // hash
        + 1;
    Case {
        name: format!("bubble_sort_{SORT_N}xu64_stack"),
        insns: asm("sort", &src),
        mem: mem.to_vec(),
        expected,
        executed,
        // at most one whole pass, then the hash and exit
        tail: 5 * (SORT_N as u64 - 1) + 2 + 1 + 3 * SORT_N as u64 + 1,
    }
}

fn cases() -> Vec<Case> {
    let mem = input(BUF_LEN);
    vec![
        prime_case(),
        fnv_case(&mem),
        switch_case(&mem),
        sort_case(&mem),
    ]
}

/// One run of our interpreter on a fresh memory.
fn run_ours(insns: &[Insn], mem: &[u8], budget: u64) -> Result<u64, VmError> {
    let prog = Program::new(insns.to_vec()).map_err(VmError::Program)?;
    let vm = Interpreter::new(&prog, Helpers::<()>::new())?.with_config(Config { budget });
    let mut data = mem.to_vec();
    let len = data.len() as u64;
    let mut memory = Memory::new();
    let r1 = if data.is_empty() {
        0
    } else {
        memory.set_ctx(&mut data)
    };
    vm.run(&mut memory, &mut (), [r1, len, 0, 0, 0])
}

/// The smallest budget our interpreter completes the program with: the instruction count
/// at the last backward jump (the budget is only checked at backward jumps and calls).
fn min_budget(case: &Case) -> u64 {
    let (mut lo, mut hi) = (0u64, 4 * case.executed + 16);
    assert!(run_ours(&case.insns, &case.mem, hi).is_ok());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match run_ours(&case.insns, &case.mem, mid) {
            Ok(_) => hi = mid,
            Err(VmError::Budget { .. }) => lo = mid + 1,
            Err(e) => panic!("{}: {e}", case.name),
        }
    }
    lo
}

/// Both VMs must agree with the model before anything is timed.
fn check(case: &Case) {
    let ours = run_ours(&case.insns, &case.mem, BUDGET)
        .unwrap_or_else(|e| panic!("{}: ebpf-sim: {e}", case.name));
    let bytes = slots_to_bytes(&case.insns);
    let vm = rbpf::EbpfVmMbuff::new(Some(&bytes))
        .unwrap_or_else(|e| panic!("{}: rbpf refuses the program: {e}", case.name));
    let theirs = vm
        .execute_program(&case.mem, &[])
        .unwrap_or_else(|e| panic!("{}: rbpf: {e}", case.name));
    assert_eq!(ours, case.expected, "{}: ebpf-sim r0", case.name);
    assert_eq!(theirs, case.expected, "{}: rbpf r0", case.name);
    let floor = min_budget(case);
    assert!(
        floor <= case.executed && case.executed - floor <= case.tail,
        "{}: model says {} instructions, but the budget floor is {floor}",
        case.name,
        case.executed
    );
    println!(
        "{}: r0 = {:#x} (both VMs), {} slots, {} instructions executed",
        case.name,
        ours,
        case.insns.len(),
        case.executed
    );
}

fn bench(c: &mut Criterion) {
    for case in cases() {
        check(&case);
        let mut group = c.benchmark_group(&case.name);

        let prog = Program::new(case.insns.clone()).unwrap();
        let vm = Interpreter::new(&prog, Helpers::<()>::new())
            .unwrap()
            .with_config(Config { budget: BUDGET });
        let mut data = case.mem.clone();
        let len = data.len() as u64;
        let mut memory = Memory::new();
        let r1 = if data.is_empty() {
            0
        } else {
            memory.set_ctx(&mut data)
        };
        group.bench_function("ebpf-sim interp", |b| {
            b.iter(|| {
                let r0 = vm
                    .run(&mut memory, &mut (), black_box([r1, len, 0, 0, 0]))
                    .unwrap();
                debug_assert_eq!(r0, case.expected);
                r0
            })
        });

        let jit = JitProgram::compile(&prog, Helpers::<()>::new())
            .unwrap()
            .with_config(Config { budget: BUDGET });
        let r0 = jit.run(&mut memory, &mut (), [r1, len, 0, 0, 0]).unwrap();
        assert_eq!(r0, case.expected, "{}: ebpf-sim jit r0", case.name);
        group.bench_function("ebpf-sim jit", |b| {
            b.iter(|| {
                let r0 = jit
                    .run(&mut memory, &mut (), black_box([r1, len, 0, 0, 0]))
                    .unwrap();
                debug_assert_eq!(r0, case.expected);
                r0
            })
        });

        let bytes = slots_to_bytes(&case.insns);
        let rvm = rbpf::EbpfVmMbuff::new(Some(&bytes)).unwrap();
        group.bench_function("rbpf interp", |b| {
            b.iter(|| {
                let r0 = rvm.execute_program(black_box(&case.mem), &[]).unwrap();
                debug_assert_eq!(r0, case.expected);
                r0
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
