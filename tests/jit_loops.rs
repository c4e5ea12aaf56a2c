//! Random loop-shaped programs on the JIT and the interpreter, each run with a random
//! instruction budget: the same r0 or error (with the instruction it names) and the same
//! memory. The shapes are the ones the JIT compiles specially: one-block loops (unrolled
//! while the budget allows, counted loops without their inner exit tests), loops with the
//! test at the top (repeated at the back edge), chains of equality tests (a jump table),
//! reductions (accumulator and counter steps folded in the copies), forward branches
//! inside loops (counts handed over or charged on the way out), and stack traffic. Each
//! program also runs as code compiled with the verifier's proofs when it verifies.
//!
//! `EBPF_SIM_LOOP_CASES` sets the number of programs (default 2,000), `EBPF_SIM_LOOP_SEED`
//! the first seed; a failure prints its seed and listing.

use ebpf_sim::vm::asm::assemble;
use ebpf_sim::vm::Program;

mod engines;
mod rng;
use rng::Rng;

const INPUT: usize = 64;

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Registers the body may change (r6 is each loop's counter, r1 the buffer).
const WORK: [u8; 5] = [0, 2, 3, 4, 5];

fn alu(rng: &mut Rng) -> String {
    let d = rng.pick(&WORK);
    let op = rng.pick(&[
        "add", "sub", "xor", "or", "and", "mul", "lsh", "rsh", "mov", "arsh",
    ]);
    let w = if rng.chance(25) { "32" } else { "" };
    if rng.chance(50) {
        let s = rng.pick(&[0, 2, 3, 4, 5, 6, 10]);
        let s = if matches!(op, "lsh" | "rsh" | "arsh") && s == 10 {
            6
        } else {
            s
        };
        format!("{op}{w} %r{d}, %r{s}")
    } else {
        let imm: i64 = match op {
            "lsh" | "rsh" | "arsh" => rng.below(if w.is_empty() { 64 } else { 32 }) as i64,
            _ => rng.below(41) as i64 - 20,
        };
        format!("{op}{w} %r{d}, {imm}")
    }
}

/// A load or store in the buffer (now and then just past it: a fault).
fn access(rng: &mut Rng) -> String {
    let size = rng.pick(&[("b", 1), ("h", 2), ("w", 4), ("dw", 8)]);
    let limit = if rng.chance(3) {
        INPUT + 8
    } else {
        INPUT - size.1 + 1
    };
    let off = rng.below(limit as u64);
    let r = rng.pick(&WORK);
    if rng.chance(50) {
        format!("ldx{} %r{r}, [%r1+{off}]", size.0)
    } else {
        format!("stx{} [%r1+{off}], %r{r}", size.0)
    }
}

/// `min` to `min + spread - 1` random instructions.
fn straight(rng: &mut Rng, min: u64, spread: u64) -> String {
    let n = min + rng.below(spread);
    (0..n)
        .map(|_| {
            let line = match rng.below(10) {
                0..=2 => access(rng),
                3 => {
                    let r = rng.pick(&WORK);
                    format!("mov %r{r}, %r10\nadd %r{r}, -8")
                }
                _ => alu(rng),
            };
            line + "\n"
        })
        .collect()
}

/// One loop of a random shape, its labels made unique by `n`.
fn shape(rng: &mut Rng, n: usize) -> String {
    let start = rng.below(6);
    let bound = start + 1 + rng.below(30);
    match rng.below(7) {
        // One block, counted (now and then the counter steps twice), the counter read as
        // an index (`r = r1; r += counter`, then a load or store through r) before or after
        // its step, or read otherwise.
        0 => {
            let index = |rng: &mut Rng| {
                let r = rng.pick(&WORK);
                let (a, b) = if rng.chance(50) { ("r1", "r6") } else { ("r6", "r1") };
                let access = if rng.chance(50) {
                    format!("ldxb %r{}, [%r{r}+{}]", rng.pick(&WORK), rng.below(8))
                } else {
                    format!("stxb [%r{r}+{}], %r{}", rng.below(8), rng.pick(&WORK))
                };
                format!("mov %r{r}, %{a}\nadd %r{r}, %{b}\n{access}\n")
            };
            let before = if rng.chance(40) { index(rng) } else { String::new() };
            let after = if rng.chance(40) { index(rng) } else { String::new() };
            let other = match rng.below(10) {
                0 => "xor %r0, %r6\n".to_string(),
                1 | 2 => {
                    let r = rng.pick(&WORK);
                    format!("mov %r{r}, %r6\nadd %r{r}, %r{r}\nadd %r0, %r{r}\n")
                }
                _ => String::new(),
            };
            format!(
                "mov %r6, {start}\nl{n}:\n{before}{}{}{other}add %r6, {}\n{after}jlt %r6, {bound}, l{n}\n",
                straight(rng, 1, 7),
                if rng.chance(20) { "add %r6, 2\n" } else { "" },
                1 + rng.below(3)
            )
        }
        // One block, another exit test on the counter or on a work register.
        1 => format!(
            "mov %r6, {bound}\nl{n}:\n{}sub %r6, 1\n{} %r6, {}, l{n}\n",
            straight(rng, 1, 7),
            rng.pick(&["jne", "jsgt", "jgt", "jset"]),
            rng.below(3)
        ),
        // The test at the top (now and then the body is also entered from before the loop).
        2 => format!(
            "mov %r6, {bound}\n{}l{n}:\njeq %r6, {start}, o{n}\nb{n}:\n{}sub %r6, 1\nja l{n}\no{n}:\n",
            if rng.chance(30) {
                format!("jeq %r{}, {}, b{n}\n", rng.pick(&WORK), rng.below(4))
            } else {
                String::new()
            },
            straight(rng, 0, 6)
        ),
        // A chain of tests on a small value (cases on the jumps or on the fall-throughs),
        // inside a counted loop.
        3 => {
            let keys = 4 + rng.below(5);
            let form_eq = rng.chance(50);
            let mut s = format!(
                "mov %r6, 0\nl{n}:\nmov %r7, %r6\nadd %r7, %r{}\nand %r7, {}\n",
                rng.pick(&WORK),
                rng.pick(&[7, 15, 31])
            );
            let key = |rng: &mut Rng| rng.below(12);
            // Now and then another (never taken) jump reaches into the chain, so a case
            // or the default is also reached from elsewhere: the chain must end earlier.
            let into = rng.chance(30).then(|| rng.below(keys + 1));
            if into.is_some() {
                s += &format!("jgt %r7, 1000, x{n}\n");
            }
            let mark = |i: u64| if into == Some(i) { format!("x{n}:\n") } else { String::new() };
            if form_eq {
                let ks: Vec<u64> = (0..keys).map(|_| key(rng)).collect();
                for (i, k) in ks.iter().enumerate() {
                    // Now and then a case shared by two keys.
                    let case = if rng.chance(30) { rng.below(keys) as usize } else { i };
                    s += &format!("{}jeq %r7, {k}, c{n}_{case}\n", mark(i as u64));
                }
                s += &format!("{}{}ja j{n}\n", mark(keys), straight(rng, 1, 1));
                for i in 0..ks.len() {
                    s += &format!("c{n}_{i}:\n{}ja j{n}\n", straight(rng, 1, 2));
                }
            } else {
                for i in 0..keys {
                    s += &format!(
                        "t{n}_{i}:\njne %r7, {}, t{n}_{}\n{}{}ja j{n}\n",
                        key(rng),
                        i + 1,
                        mark(i),
                        straight(rng, 1, 2)
                    );
                }
                s += &format!("t{n}_{keys}:\n{}{}", mark(keys), straight(rng, 1, 1));
            }
            s + &format!("j{n}:\nadd %r6, 1\njlt %r6, {bound}, l{n}\n")
        }
        // A reduction over the buffer, as checksums and hashes are written: the counter read
        // only to form the address (the JIT folds its steps into the copies), and an
        // accumulator only folded into (the copies fold into a spare register first).
        4 => {
            let size = rng.pick(&["b", "h", "w", "dw"]);
            // `sub` does not fold: no accumulator lanes, which leaves a spare register for
            // the address sum.
            let op = rng.pick(&["add", "xor", "or", "and", "mul", "sub", "sub"]);
            let w = if rng.chance(25) { "32" } else { "" };
            // The address from r1, or from a copy of it that the loop moves too (then
            // not invariant: its sum with the counter cannot be kept across copies).
            let moving = rng.chance(25);
            let b = if moving { "r2" } else { "r1" };
            let address = match rng.below(3) {
                0 => format!("mov %r3, %{b}\nadd %r3, %r6\n"),
                1 => format!("mov %r3, %r6\nadd %r3, %{b}\n"),
                _ => format!("mov %r3, %r6\nadd %r3, {}\nadd %r3, %{b}\n", rng.below(5)),
            };
            let value = if rng.chance(80) {
                "%r4".to_string()
            } else {
                (rng.below(41) as i64 - 20).to_string()
            };
            // Now and then another use of the accumulator or the counter: no folding.
            let extra = match rng.below(8) {
                0 => "add %r5, %r7\n",
                1 => "xor %r5, %r6\n",
                _ => "",
            };
            // Now and then a read through the address of the iteration before, first.
            let early = if rng.chance(25) {
                format!("ldxb %r5, [%r3+{}]\nsub %r0, %r5\n", rng.below(4))
            } else {
                String::new()
            };
            // Now and then past the end of the buffer: a fault inside the copies.
            let off = if rng.chance(10) { rng.below(40) } else { rng.below(4) };
            let (step, bound) = if moving {
                (1, start + 1 + rng.below(24))
            } else {
                (1 + rng.below(3), start + 1 + rng.below(52))
            };
            format!(
                "mov %r7, {}\nmov %r2, %r1\nmov %r3, %r1\nmov %r6, {start}\nl{n}:\n{early}{address}ldx{size} %r4, [%r3+{off}]\n{extra}{op}{w} %r7, {value}\n{}add %r6, {step}\njlt %r6, {bound}, l{n}\nadd %r0, %r7\n",
                1 + rng.below(7),
                if moving { "add %r2, 1\n" } else { "" },
            )
        }
        // Forward branches inside the loop: a skipped block, an early exit.
        5 => format!(
            "mov %r6, 0\nl{n}:\n{}jset %r{}, 1, s{n}\n{}s{n}:\njgt %r{}, {}, o{n}\n{}add %r6, 1\njlt %r6, {bound}, l{n}\no{n}:\n",
            straight(rng, 1, 3),
            rng.pick(&WORK),
            straight(rng, 1, 3),
            rng.pick(&WORK),
            rng.below(1000),
            straight(rng, 0, 3)
        ),
        // Stack traffic: a store through a pointer into the frame moved by the counter,
        // a slot at a constant offset from r10 written and read back, and the bytes
        // stored read again after the loop (with the verifier's proofs these accesses
        // are unchecked, through the frame's displacement).
        6 => {
            let slot = 8 * (1 + rng.below(4));
            format!(
                "mov %r6, 0\nl{n}:\nmov %r3, %r1\nadd %r3, %r6\nldxb %r4, [%r3]\n\
                 mov %r5, %r10\nadd %r5, %r6\nstxb [%r5-{}], %r4\nstxdw [%r10-{slot}], %r0\n\
                 {}ldxdw %r2, [%r10-{slot}]\nadd %r0, %r2\nadd %r6, 1\njlt %r6, {bound}, l{n}\n\
                 ldxb %r2, [%r10-{}]\nadd %r0, %r2\n",
                64 + 8 * rng.below(4),
                straight(rng, 0, 3),
                64 + 8 * rng.below(4) - rng.below(4),
            )
        }
        _ => unreachable!(),
    }
}

fn program(rng: &mut Rng) -> String {
    let mut src = String::from("mov %r0, 0\nmov %r2, 1\nmov %r3, 2\nmov %r4, 3\nmov %r5, 5\n");
    for n in 0..1 + rng.below(3) as usize {
        src += &shape(rng, n);
    }
    src + "exit\n"
}

#[test]
fn loops_match_the_interpreter_under_any_budget() {
    let cases = env("EBPF_SIM_LOOP_CASES", 2_000);
    let first = env("EBPF_SIM_LOOP_SEED", 1);
    let input: Vec<u8> = (0..INPUT as u8).map(|b| b.wrapping_mul(37)).collect();
    let mut proven = 0;
    for seed in first..first + cases {
        let mut rng = Rng(seed);
        let src = program(&mut rng);
        let slots = assemble(&src).unwrap_or_else(|e| panic!("{e}\n{src}"));
        let prog = Program::new(slots.clone()).unwrap_or_else(|e| panic!("{e}\n{src}"));
        // Small budgets end inside the loops; large ones let them finish.
        let budget = match rng.below(3) {
            0 => 1 + rng.below(60),
            1 => 1 + rng.below(400),
            _ => 100_000,
        };
        let [interp, jit] = engines::with_budget(&prog, budget, &input);
        assert_eq!(interp, jit, "seed {seed}, budget {budget}:\n{src}");
        // The code compiled with the verifier's proofs too, where it accepts the program.
        if let Some([interp, jit]) = engines::proven_with_budget(&slots, budget, &input) {
            proven += 1;
            assert_eq!(
                interp, jit,
                "proven code, seed {seed}, budget {budget}:\n{src}"
            );
        }
    }
    // The verifier accepts a good share of these programs (the rest fault or loop too
    // long for it); those runs are the ones that check the proven code.
    assert!(
        proven * 10 >= cases,
        "only {proven} of {cases} programs verified"
    );
}
