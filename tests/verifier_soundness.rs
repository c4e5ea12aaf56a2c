//! Soundness fuzzing of the verifier-lite: whatever it accepts must run without a memory
//! fault on the interpreter (every access checked), and the JIT compiled with the facts
//! the verdict proves (accesses translated without a bounds check) must give the same r0
//! and context bytes.
//!
//! The generator is biased towards what state pruning gets wrong: bounded loops (backward
//! jumps on counters kept in registers or spilled to the stack with 1/2/4/8-byte stores),
//! values computed in loops that later decide a branch or an offset (also through stack
//! spills and fills and through bpf-to-bpf calls), data-dependent diamonds that give a
//! value different ranges on different paths, variable-offset stack and context accesses
//! (`r10 + masked scalar`, `r1 + masked scalar`, or a scalar bounded only by an earlier
//! branch), and pointer spills (context or stack pointers, different ones on different
//! paths). Programs are verified in raw mode (r1 a writable 64..256-byte block) and as
//! socket filters; each accepted one runs on several contexts (zeros, ones, random bytes)
//! so that different paths are taken.
//!
//! Where the kernel is available, a sample of the programs accepted as socket filters is
//! loaded (privileged, in a forked child) and disagreements are printed, not asserted.
//!
//! A memory fault of an accepted program on the interpreter, a run that exhausts the
//! budget (loops here run a few dozen times at most), or a difference between the
//! interpreter and the proven JIT is a verifier bug: the seed, the mode, the context, the
//! proven slots and the disassembly are printed and the test fails. A verifier bug can
//! also make the unchecked JIT code crash the test process (a pointer of one region
//! proven in another); `EBPF_SIM_SOUNDNESS_TRACE=1` prints each case's index and seed to
//! stderr before it runs, so the last ones name the culprit.
//!
//! `EBPF_SIM_SOUNDNESS_CASES` sets the number of programs (default 3000),
//! `EBPF_SIM_SOUNDNESS_SEED` the seed, `EBPF_SIM_SOUNDNESS_FIRST` the first case index,
//! `EBPF_SIM_SOUNDNESS_KERNEL` the most programs loaded into the kernel (default 40).
//! `EBPF_SIM_SOUNDNESS_CASES=1 EBPF_SIM_SOUNDNESS_SEED=<seed>` replays one case, and
//! `EBPF_SIM_SOUNDNESS_SHOW=1` prints each program with its verdict and proven slots.
//! A long hand run: `EBPF_SIM_SOUNDNESS_CASES=2000000 EBPF_SIM_SOUNDNESS_KERNEL=0 cargo
//! test --release --test verifier_soundness -- --nocapture` (about 2 minutes on 2 cores).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ebpf_sim::vm::isa::Insn;
use ebpf_sim::vm::verifier::{verify, Proven, VerifyOptions};
use ebpf_sim::vm::{Config, Helpers, Interpreter, Memory, Program, VmError};

mod rng;
use rng::Rng;

/// An instruction or a label; jumps and calls are aimed at labels when laid out.
#[derive(Clone, Copy)]
enum Op {
    I(Insn),
    /// A conditional or unconditional jump to a label.
    Jump(Insn, usize),
    /// A bpf-to-bpf call to a label.
    Call(usize),
    Label(usize),
    /// A memory access through a pointer with a variable offset.
    VarAccess(Insn),
}

/// Scalar registers the program keeps values in (callee-saved).
const VALS: [u8; 3] = [7, 8, 9];
/// The context pointer is kept in r6.
const CTX: u8 = 6;
/// Stack bytes below r10 the generator uses.
const FRAME: i16 = 128;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// r1 is a writable block of this many bytes.
    Raw(u32),
    /// A socket filter: r1 is a `__sk_buff`.
    Socket,
}

struct Gen {
    rng: Rng,
    ops: Vec<Op>,
    labels: usize,
    mode: Mode,
    /// Subprograms to emit after the main program's exit.
    subs: Vec<(usize, Vec<Op>)>,
    jumps: usize,
}

const LD: [u8; 4] = [0x79, 0x61, 0x69, 0x71];
const ST: [u8; 4] = [0x7b, 0x63, 0x6b, 0x73];
const STI: [u8; 4] = [0x7a, 0x62, 0x6a, 0x72];
const SIZE: [i16; 4] = [8, 4, 2, 1];

impl Gen {
    fn label(&mut self) -> usize {
        self.labels += 1;
        self.labels - 1
    }
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) {
        self.ops.push(Op::I(Insn::new(code, dst, src, off, imm)));
    }
    fn val(&mut self) -> u8 {
        self.rng.pick(&VALS)
    }
    fn size(&mut self) -> usize {
        self.rng.below(4) as usize
    }
    fn ctx_size(&self) -> i32 {
        match self.mode {
            Raw(n) => n as i32,
            Socket => 0,
        }
    }
    /// An aligned stack offset in the generator's frame for an access of size `k`.
    fn stack_off(&mut self, k: usize) -> i16 {
        let s = SIZE[k];
        -FRAME + s * self.rng.below((FRAME / s) as u64) as i16
    }
    /// A constant that often sits at a boundary of the frame or of the context.
    fn interesting(&mut self) -> i32 {
        let c = self.ctx_size();
        match self.rng.below(4) {
            0 => self.rng.below(16) as i32,
            1 => self
                .rng
                .pick(&[8, 16, 24, 32, 56, 60, 63, 64, 120, 127, 128, 255, 256]),
            2 => c - self.rng.below(9) as i32,
            _ => self.rng.pick(&[-1, -8, 504, 511, 512, 513, 1 << 20, -512]),
        }
    }

    /// rX = something: a constant, a context byte, arithmetic on another value.
    fn set(&mut self) {
        let d = self.val();
        match self.rng.below(11) {
            0 => {
                let c = self.interesting();
                self.i(0xb7, d, 0, 0, c);
            }
            1 => self.ctx_load(d),
            2 => {
                let m = self.rng.pick(&[1, 3, 7, 15, 31, 63, 0x78, 0xf8, 0x1f8]);
                self.i(0x57, d, 0, 0, m);
            }
            3 => {
                let c = self.rng.pick(&[1, 2, 4, 8, -1, -8, 16]);
                self.i(0x07, d, 0, 0, c);
            }
            4 => {
                let s = self.val();
                self.i(0xbf, d, s, 0, 0);
            }
            5 => {
                let s = self.val();
                let op = self.rng.pick(&[0x0f, 0x1f, 0xaf, 0x5f, 0x4f]);
                self.i(op, d, s, 0, 0);
            }
            6 => {
                let sh = self.rng.pick(&[1, 2, 3, 56, 60]);
                let op = self.rng.pick(&[0x77, 0x67, 0xc7]);
                self.i(op, d, 0, 0, sh);
            }
            7 => {
                // 32-bit operations (zero-extending).
                let op = self
                    .rng
                    .pick(&[0xb4, 0x04, 0x54, 0x14, 0x64, 0x74, 0xc4, 0x24]);
                let c = self.interesting();
                let c = if matches!(op, 0x64 | 0x74 | 0xc4) {
                    c & 31
                } else {
                    c
                };
                self.i(op, d, 0, 0, c);
            }
            8 => {
                // Register operations whose ranges are harder to track.
                let s = self.val();
                let op = self.rng.pick(&[
                    0x2f, 0x3f, 0x9f, 0x6f, 0x7f, 0xcf, 0x1c, 0x0c, 0xac, 0x3c, 0xbc,
                ]);
                self.i(op, d, s, 0, 0);
            }
            9 => match self.rng.below(3) {
                // neg, byte swaps, sign-extending moves.
                0 => self.i(0x87, d, 0, 0, 0),
                1 => {
                    let w = self.rng.pick(&[16, 32, 64]);
                    let op = self.rng.pick(&[0xd4, 0xdc]);
                    self.i(op, d, 0, 0, w);
                }
                _ => {
                    let s = self.val();
                    let bits = self.rng.pick(&[8, 16, 32]);
                    self.i(0xbf, d, s, bits, 0);
                }
            },
            _ => {
                let c = self.interesting();
                let c = if c == 0 { 3 } else { c };
                let op = self.rng.pick(&[0x27, 0x97, 0x37, 0x17]);
                self.i(op, d, 0, 0, c);
            }
        }
    }

    /// rD = a context load at a constant offset.
    fn ctx_load(&mut self, d: u8) {
        match self.mode {
            Raw(n) => {
                let k = self.size();
                let s = SIZE[k];
                let off = s * self.rng.below((n as i16 / s) as u64) as i16;
                self.i(LD[k], d, CTX, off, 0);
            }
            Socket => {
                // len, mark, queue_mapping, protocol, ... and cb[0..5].
                let off = self.rng.pick(&[0i16, 4, 8, 16, 48, 52, 56, 60, 64]);
                self.i(0x61, d, CTX, off, 0);
            }
        }
    }

    /// A data-dependent diamond: a branch on a value, a few assignments on one side.
    fn diamond(&mut self) {
        let end = self.label();
        let v = self.val();
        let op = self.rng.pick(&[
            0x15, 0x55, 0x25, 0xa5, 0x35, 0xb5, 0x45, 0x65, 0xc5, 0x75, 0xd5,
        ]);
        // 64 or 32 bits (class 6), against an immediate or another value.
        let op = if self.rng.chance(30) { op & !7 | 6 } else { op };
        let k = self.interesting();
        let insn = if self.rng.chance(30) {
            let w = self.val();
            Insn::new(op | 8, v, w, 0, 0)
        } else {
            Insn::new(op, v, 0, 0, k)
        };
        self.jumps += 1;
        self.ops.push(Op::Jump(insn, end));
        for _ in 0..1 + self.rng.below(3) {
            self.stmt(1);
        }
        self.ops.push(Op::Label(end));
    }

    /// A bounded loop; the counter in r2..r5 (no calls in the body) or spilled.
    fn lp(&mut self, depth: u32) {
        let head = self.label();
        let bound = 1 + self.rng.below(6) as i32;
        let step = self.rng.pick(&[1, 1, 1, 2, 3]);
        let spilled = self.rng.chance(40);
        let k = if spilled { self.size() } else { 0 };
        // Own counter register and slot per nesting depth, out of the generator's frame.
        let slot = -FRAME - 8 * (1 + depth as i16);
        let c: u8 = if depth == 0 { 4 } else { 5 };
        self.jumps += 1;
        if !spilled && self.rng.chance(30) {
            // A trip count the data decides: c = 1 + (v & 7), counted down.
            let v = self.val();
            self.i(0xbf, c, v, 0, 0);
            self.i(0x57, c, 0, 0, 7);
            self.i(0x07, c, 0, 0, 1);
            self.ops.push(Op::Label(head));
            for _ in 0..1 + self.rng.below(2) {
                self.stmt(depth + 1);
            }
            self.i(0x07, c, 0, 0, -1);
            let op = self.rng.pick(&[0x55, 0x65, 0x25, 0x56, 0x66]);
            self.ops.push(Op::Jump(Insn::new(op, c, 0, 0, 0), head));
            return;
        }
        if spilled {
            self.i(STI[k], 10, 0, slot, 0);
        } else {
            self.i(0xb7, c, 0, 0, 0);
        }
        self.ops.push(Op::Label(head));
        if spilled {
            self.i(LD[k], c, 10, slot, 0);
        }
        // The body: values mixed with the counter, stack stores at offsets it decides.
        for _ in 0..1 + self.rng.below(3) {
            match self.rng.below(6) {
                0 => {
                    let v = self.val();
                    let op = self.rng.pick(&[0x0f, 0xaf, 0x1f]);
                    self.i(op, v, c, 0, 0);
                }
                1 => {
                    // stack[r10 - 64 + counter * 8] = v
                    let v = self.val();
                    self.i(0xbf, 2, c, 0, 0);
                    self.i(0x67, 2, 0, 0, 3);
                    self.i(0x57, 2, 0, 0, 0x38);
                    self.i(0xbf, 0, 10, 0, 0);
                    self.i(0x07, 0, 0, 0, -64);
                    self.i(0x0f, 0, 2, 0, 0);
                    self.ops.push(Op::VarAccess(Insn::new(0x7b, 0, v, 0, 0)));
                }
                _ => self.stmt(depth + 1),
            }
        }
        // The body may have clobbered the counter (a call): reload it when spilled.
        if spilled {
            self.i(LD[k], c, 10, slot, 0);
        }
        self.i(0x07, c, 0, 0, step);
        if spilled {
            self.i(ST[k], 10, c, slot, 0);
        }
        let op = self.rng.pick(&[0xa5, 0xa5, 0x55, 0xb5]);
        let lim = if op == 0x55 { bound * step } else { bound };
        self.ops.push(Op::Jump(Insn::new(op, c, 0, 0, lim), head));
    }

    /// A variable-offset access to the stack or the context.
    fn var_access(&mut self) {
        let v = self.val();
        let k = self.size();
        let write = self.rng.chance(50);
        let stack = matches!(self.mode, Socket) || self.rng.chance(50);
        let guarded = self.rng.chance(35);
        let skip = self.label();
        self.i(0xbf, 2, v, 0, 0);
        if guarded {
            // Bounded by a branch only: unsafe when the bound is a little too large.
            let bound = if stack { FRAME as i32 } else { self.ctx_size() } - SIZE[k] as i32
                + self.rng.below(3) as i32
                - 1;
            self.jumps += 1;
            self.ops
                .push(Op::Jump(Insn::new(0x25, 2, 0, 0, bound), skip));
        } else {
            let mut m = self.rng.pick(&[7, 15, 31, 63, 0x38, 0x78, 0x7f, 0xff]);
            // Mostly aligned to the access size: the kernel refuses misaligned stack
            // accesses (and so do we), which would leave little to run.
            if stack && self.rng.chance(80) {
                m &= !(SIZE[k] as i32 - 1);
            }
            self.i(0x57, 2, 0, 0, m);
        }
        if stack {
            self.i(0xbf, 3, 10, 0, 0);
            self.i(0x07, 3, 0, 0, -(FRAME as i32));
        } else {
            self.i(0xbf, 3, CTX, 0, 0);
        }
        self.i(0x0f, 3, 2, 0, 0);
        let insn = if write {
            Insn::new(ST[k], 3, v, 0, 0)
        } else {
            Insn::new(LD[k], self.val(), 3, 0, 0)
        };
        self.ops.push(Op::VarAccess(insn));
        self.ops.push(Op::Label(skip));
    }

    /// An access at `r10 + v + off` or `r1 + v + off` with v not masked: sound only if
    /// the verifier knows v exactly (a constant, or a loop result).
    fn exact_access(&mut self) {
        let v = self.val();
        let k = self.size();
        let stack = matches!(self.mode, Socket) || self.rng.chance(60);
        let off = if stack {
            -(self.rng.below(FRAME as u64 / 8) as i16 + 1) * 8
        } else {
            8 * self.rng.below(8) as i16
        };
        self.i(0xbf, 3, if stack { 10 } else { CTX }, 0, 0);
        self.i(0x0f, 3, v, 0, 0);
        let insn = if self.rng.chance(50) {
            Insn::new(ST[k], 3, v, off, 0)
        } else {
            Insn::new(LD[k], self.val(), 3, off, 0)
        };
        self.ops.push(Op::VarAccess(insn));
    }

    /// Spill a value (any width) and fill it back, maybe into another register.
    fn spill_fill(&mut self) {
        let k = self.size();
        let off = self.stack_off(k);
        let v = self.val();
        self.i(ST[k], 10, v, off, 0);
        if self.rng.chance(50) {
            self.stmt(3);
        }
        let k2 = if self.rng.chance(80) { k } else { self.size() };
        let off2 = if k2 == k { off } else { self.stack_off(k2) };
        let d = self.val();
        self.i(LD[k2], d, 10, off2, 0);
    }

    /// Spill a pointer (the context, or a stack address), maybe a different one on
    /// another path, then access through the filled pointer.
    fn pointer_spill(&mut self) {
        let slot = -8 * (1 + self.rng.below(FRAME as u64 / 8) as i16);
        let ptr = |g: &mut Gen| {
            if g.rng.chance(50) {
                g.i(0x7b, 10, CTX, slot, 0);
            } else {
                let o = -8 * (1 + g.rng.below(8) as i32);
                g.i(0xbf, 3, 10, 0, 0);
                g.i(0x07, 3, 0, 0, o);
                g.i(0x7b, 10, 3, slot, 0);
            }
        };
        ptr(self);
        if self.rng.chance(50) {
            let end = self.label();
            let v = self.val();
            self.jumps += 1;
            self.ops.push(Op::Jump(Insn::new(0x55, v, 0, 0, 0), end));
            ptr(self);
            self.ops.push(Op::Label(end));
        }
        if self.rng.chance(40) {
            self.stmt(3);
        }
        self.i(0x79, 3, 10, slot, 0);
        let k = self.size();
        let insn = if self.rng.chance(50) {
            Insn::new(LD[k], self.val(), 3, 0, 0)
        } else {
            Insn::new(ST[k], 3, self.val(), 0, 0)
        };
        self.ops.push(Op::VarAccess(insn));
    }

    /// A call to a new subprogram: r1 a value, r2 a pointer (stack or context); the
    /// callee loops or indexes with r1 and returns a value the caller keeps.
    fn call(&mut self) {
        let entry = self.label();
        let v = self.val();
        self.i(0xbf, 1, v, 0, 0);
        let to_stack = matches!(self.mode, Socket) || self.rng.chance(60);
        if to_stack {
            self.i(0xbf, 2, 10, 0, 0);
            self.i(0x07, 2, 0, 0, -64);
        } else {
            self.i(0xbf, 2, CTX, 0, 0);
        }
        self.ops.push(Op::Call(entry));
        let d = self.val();
        self.i(0xbf, d, 0, 0, 0);
        // The callee.
        let saved = std::mem::take(&mut self.ops);
        self.i(0xb7, 0, 0, 0, 0);
        let n = 1 + self.rng.below(3);
        for _ in 0..n {
            match self.rng.below(5) {
                0 => {
                    // r0 += r1 in a loop.
                    let head = self.label();
                    let bound = 1 + self.rng.below(5) as i32;
                    self.i(0xb7, 4, 0, 0, 0);
                    self.ops.push(Op::Label(head));
                    self.i(0x0f, 0, 1, 0, 0);
                    self.i(0x07, 4, 0, 0, 1);
                    self.jumps += 1;
                    self.ops
                        .push(Op::Jump(Insn::new(0xa5, 4, 0, 0, bound), head));
                }
                1 => {
                    // r0 = *(r2 + (r1 & m))
                    let m = self.rng.pick(&[7, 15, 31, 63]);
                    let k = self.size();
                    self.i(0xbf, 3, 1, 0, 0);
                    self.i(0x57, 3, 0, 0, m);
                    self.i(0x0f, 3, 2, 0, 0);
                    self.ops.push(Op::VarAccess(Insn::new(LD[k], 0, 3, 0, 0)));
                }
                2 => {
                    // The callee's own frame, at an offset r1 decides.
                    let k = self.size();
                    self.i(0xbf, 3, 1, 0, 0);
                    self.i(0x57, 3, 0, 0, 0x38);
                    self.i(0xbf, 5, 10, 0, 0);
                    self.i(0x07, 5, 0, 0, -64);
                    self.i(0x0f, 5, 3, 0, 0);
                    self.ops.push(Op::VarAccess(Insn::new(ST[k], 5, 1, 0, 0)));
                    self.ops.push(Op::VarAccess(Insn::new(LD[k], 0, 5, 0, 0)));
                }
                3 => {
                    // A branch on the argument decides the result.
                    let end = self.label();
                    let kk = self.interesting();
                    self.jumps += 1;
                    self.ops.push(Op::Jump(Insn::new(0x25, 1, 0, 0, kk), end));
                    let c = self.interesting();
                    self.i(0xb7, 0, 0, 0, c);
                    self.ops.push(Op::Label(end));
                }
                _ => {
                    // Spill the argument and fill it back.
                    let k = self.size();
                    let off = -8 * (1 + self.rng.below(8) as i16);
                    self.i(ST[k], 10, 1, off, 0);
                    self.i(LD[k], 0, 10, off, 0);
                }
            }
        }
        self.i(0x95, 0, 0, 0, 0);
        let body = std::mem::replace(&mut self.ops, saved);
        self.subs.push((entry, body));
    }

    fn stmt(&mut self, depth: u32) {
        let r = self.rng.below(100);
        if depth < 2 && self.jumps < 10 {
            if r < 14 {
                return self.lp(depth);
            }
            if r < 26 {
                return self.diamond();
            }
            if r < 32 && depth == 0 && self.subs.len() < 2 {
                return self.call();
            }
        }
        match r % 6 {
            0 | 1 => self.set(),
            2 => self.var_access(),
            3 => self.exact_access(),
            4 => self.spill_fill(),
            _ => self.pointer_spill(),
        }
    }
}

use Mode::{Raw, Socket};

struct Case {
    seed: u64,
    mode: Mode,
    insns: Vec<Insn>,
    /// Slots of variable-offset accesses.
    var_access: Vec<usize>,
    has_loop: bool,
}

fn layout(ops: &[Op]) -> (Vec<Insn>, Vec<usize>, bool) {
    let mut at = BTreeMap::new();
    let mut n = 0;
    for op in ops {
        match op {
            Op::Label(l) => {
                at.insert(*l, n);
            }
            _ => n += 1,
        }
    }
    let (mut out, mut var, mut back) = (Vec::new(), Vec::new(), false);
    for op in ops {
        let pc = out.len() as i64;
        match *op {
            Op::I(i) => out.push(i),
            Op::VarAccess(i) => {
                var.push(out.len());
                out.push(i);
            }
            Op::Jump(mut i, l) => {
                let rel = at[&l] as i64 - pc - 1;
                back |= rel < 0;
                i.off = rel as i16;
                out.push(i);
            }
            Op::Call(l) => out.push(Insn::new(0x85, 0, 1, 0, (at[&l] as i64 - pc - 1) as i32)),
            Op::Label(_) => {}
        }
    }
    (out, var, back)
}

fn case(seed: u64) -> Case {
    let mut rng = Rng(seed);
    let mode = if rng.chance(70) {
        Raw(rng.pick(&[64, 96, 128, 192, 256]))
    } else {
        Socket
    };
    let mut g = Gen {
        rng,
        ops: Vec::new(),
        labels: 0,
        mode,
        subs: Vec::new(),
        jumps: 0,
    };
    g.i(0xbf, CTX, 1, 0, 0);
    for v in VALS {
        if g.rng.chance(60) {
            g.ctx_load(v);
        } else {
            let c = g.interesting();
            g.i(0xb7, v, 0, 0, c);
        }
    }
    // Most of the frame starts written (the stack is read at variable offsets).
    if g.rng.chance(80) {
        for k in 0..FRAME / 8 {
            g.i(0x7a, 10, 0, -8 * (k + 1), 0);
        }
    }
    let n = 2 + g.rng.below(7);
    for _ in 0..n {
        g.stmt(0);
    }
    let v = g.val();
    g.i(0xbf, 0, v, 0, 0);
    g.i(0x95, 0, 0, 0, 0);
    let mut ops = std::mem::take(&mut g.ops);
    for (entry, body) in std::mem::take(&mut g.subs) {
        ops.push(Op::Label(entry));
        ops.extend(body);
    }
    let (insns, var_access, has_loop) = layout(&ops);
    Case {
        seed,
        mode,
        insns,
        var_access,
        has_loop,
    }
}

fn options(mode: Mode) -> VerifyOptions<'static> {
    VerifyOptions {
        raw_ctx_size: match mode {
            Raw(n) => Some(n),
            Socket => None,
        },
        ..VerifyOptions::new(1, &[])
    }
}

/// Context contents a case runs on: different bytes take different paths.
fn contexts(mode: Mode, seed: u64) -> Vec<Vec<u8>> {
    let n = match mode {
        Raw(n) => n as usize,
        // __sk_buff, as the other socket filter tests give it.
        Socket => 192,
    };
    let mut rng = Rng(seed ^ 0x5eed);
    vec![
        vec![0; n],
        vec![0xff; n],
        (0..n).map(|_| rng.next() as u8).collect(),
        (0..n).map(|_| rng.below(72) as u8).collect(),
    ]
}

fn listing(insns: &[Insn]) -> String {
    ebpf_sim::vm::disasm::disassemble_listing(insns)
        .map(|l| {
            l.iter()
                .map(|(i, s)| format!("  {i:3}: {s}\n"))
                .collect::<String>()
        })
        .unwrap_or_else(|e| format!("  (no disassembly: {e})\n"))
}

#[derive(Default)]
struct Stats {
    cases: usize,
    accepted: usize,
    accepted_loops: usize,
    accepted_raw: usize,
    accepted_socket: usize,
    with_proven: usize,
    proven_var: usize,
    proven_var_in_loop_programs: usize,
    runs: usize,
    jit_compared: usize,
    /// Per class: how many, and the first seed.
    rejections: BTreeMap<String, (usize, u64)>,
    failures: Vec<String>,
    /// Socket filter programs we accepted, for the kernel.
    for_kernel: Vec<(u64, Vec<Insn>)>,
}

impl Stats {
    fn merge(&mut self, o: Stats) {
        self.cases += o.cases;
        self.accepted += o.accepted;
        self.accepted_loops += o.accepted_loops;
        self.accepted_raw += o.accepted_raw;
        self.accepted_socket += o.accepted_socket;
        self.with_proven += o.with_proven;
        self.proven_var += o.proven_var;
        self.proven_var_in_loop_programs += o.proven_var_in_loop_programs;
        self.runs += o.runs;
        self.jit_compared += o.jit_compared;
        for (k, (v, seed)) in o.rejections {
            self.rejections.entry(k).or_insert((0, seed)).0 += v;
        }
        self.failures.extend(o.failures);
        self.for_kernel.extend(o.for_kernel);
    }
}

type Outcome = (Result<u64, String>, Vec<u8>);

fn check(c: &Case, st: &mut Stats, kernel_sample: usize) {
    st.cases += 1;
    let opts = options(c.mode);
    let verdict = match verify(&c.insns, &opts) {
        Ok(v) => v,
        Err(r) => {
            if std::env::var_os("EBPF_SIM_SOUNDNESS_SHOW").is_some() {
                println!(
                    "seed {:#x} ({:?}) rejected: {r}\n{}",
                    c.seed,
                    c.mode,
                    listing(&c.insns)
                );
            }
            let e = st.rejections.entry(r.class.name().to_string());
            e.or_insert((0, c.seed)).0 += 1;
            return;
        }
    };
    st.accepted += 1;
    st.accepted_loops += c.has_loop as usize;
    match c.mode {
        Raw(_) => st.accepted_raw += 1,
        Socket => {
            st.accepted_socket += 1;
            if st.for_kernel.len() < kernel_sample {
                st.for_kernel.push((c.seed, c.insns.clone()));
            }
        }
    }
    let facts = &verdict.facts;
    if std::env::var_os("EBPF_SIM_SOUNDNESS_SHOW").is_some() {
        println!(
            "seed {:#x} ({:?}) accepted; proven {:?}\n{}",
            c.seed,
            c.mode,
            facts
                .proven
                .iter()
                .enumerate()
                .filter(|(_, p)| **p != Proven::No)
                .collect::<Vec<_>>(),
            listing(&c.insns)
        );
    }
    let proven = |i: usize| matches!(facts.proven.get(i), Some(Proven::Frame | Proven::Ctx));
    if (0..c.insns.len()).any(proven) {
        st.with_proven += 1;
    }
    if c.var_access.iter().any(|&i| proven(i)) {
        st.proven_var += 1;
        if c.has_loop {
            st.proven_var_in_loop_programs += 1;
        }
    }
    let prog = Program::new(c.insns.clone()).expect("verified programs prepare");
    let config = Config { budget: 1_000_000 };
    let interp = Interpreter::new(&prog, Helpers::<()>::new())
        .expect("interpreter")
        .with_config(config);
    #[cfg(target_arch = "x86_64")]
    let jit = ebpf_sim::jit::JitProgram::compile_with_facts(&prog, Helpers::<()>::new(), facts)
        .expect("JIT compiles verified programs")
        .with_config(config);
    for ctx in contexts(c.mode, c.seed) {
        st.runs += 1;
        let run = |jitted: bool| -> (Result<u64, VmError>, Vec<u8>) {
            let mut data = ctx.clone();
            let mut mem = Memory::new();
            let r1 = mem.set_ctx(&mut data);
            let r = if jitted {
                #[cfg(target_arch = "x86_64")]
                {
                    jit.run(&mut mem, &mut (), [r1, 0, 0, 0, 0])
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!()
            } else {
                interp.run(&mut mem, &mut (), [r1, 0, 0, 0, 0])
            };
            drop(mem);
            (r, data)
        };
        let (ir, idata) = run(false);
        let fail = |what: String| {
            format!(
                "seed {:#x} ({:?}): {what}\ncontext in: {}\nproven: {:?}\n{}",
                c.seed,
                c.mode,
                hex(&ctx),
                facts
                    .proven
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| **p != Proven::No)
                    .map(|(i, p)| format!("{i}:{p:?}"))
                    .collect::<Vec<_>>(),
                listing(&c.insns)
            )
        };
        if let Err(e @ VmError::Budget { .. }) = &ir {
            // Loops run at most a few dozen times: an accepted program that does not
            // stop within the budget got past the loop checks.
            st.failures
                .push(fail(format!("accepted program does not terminate: {e}")));
            return;
        }
        if let Err(e) = &ir {
            if matches!(e, VmError::Memory { .. }) {
                st.failures.push(fail(format!(
                    "accepted program faults on the interpreter: {e}"
                )));
                // Do not run the unchecked JIT code: it would corrupt this process.
                return;
            }
        }
        #[cfg(target_arch = "x86_64")]
        {
            let (jr, jdata) = run(true);
            st.jit_compared += 1;
            let a: Outcome = (ir.map_err(|e| e.to_string()), idata);
            let b: Outcome = (jr.map_err(|e| e.to_string()), jdata);
            if a != b {
                st.failures.push(fail(format!(
                    "interpreter and proven JIT differ: {:x?} vs {:x?}\nctx out interp {}\n\
                     ctx out jit    {}",
                    a.0,
                    b.0,
                    hex(&a.1),
                    hex(&b.1)
                )));
                return;
            }
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    match v.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v.parse().ok(),
    }
}

fn seed_of(base: u64, i: u64) -> u64 {
    base.wrapping_add(i.wrapping_mul(0x2545_f491_4f6c_dd1d))
}

#[test]
fn accepted_programs_are_memory_safe_and_the_proven_jit_agrees() {
    let n = env_u64("EBPF_SIM_SOUNDNESS_CASES").unwrap_or(3000);
    let base = env_u64("EBPF_SIM_SOUNDNESS_SEED").unwrap_or(0x736f_756e_6421);
    // Cases before this index are skipped (to replay the end of a long run).
    let first = env_u64("EBPF_SIM_SOUNDNESS_FIRST").unwrap_or(0);
    let kernel_sample = env_u64("EBPF_SIM_SOUNDNESS_KERNEL").unwrap_or(40) as usize;
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(16) as u64;
    let started = std::time::Instant::now();
    let mut stats = Stats::default();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut st = Stats::default();
                    // Each seed before it runs: a crash (unchecked JIT access) names it.
                    let trace = std::env::var_os("EBPF_SIM_SOUNDNESS_TRACE").is_some();
                    let per = kernel_sample.div_ceil(threads as usize);
                    let mut i = first + t;
                    while i < n {
                        // A single case replays its seed as given.
                        let seed = if n == 1 { base } else { seed_of(base, i) };
                        if trace {
                            eprintln!("case {i} {seed:#x}");
                        }
                        check(&case(seed), &mut st, per);
                        i += threads;
                    }
                    st
                })
            })
            .collect();
        for h in handles {
            stats.merge(h.join().expect("worker"));
        }
    });
    let st = &stats;
    println!(
        "verifier soundness (seed {base:#x}): {} programs in {:.1?}, {} accepted ({} raw, {} \
         socket filter; {} with loops), {} with proven frame/context accesses, {} with proven \
         variable-offset accesses ({} of them with loops); {} runs, {} compared with the \
         proven JIT; {} failures",
        st.cases,
        started.elapsed(),
        st.accepted,
        st.accepted_raw,
        st.accepted_socket,
        st.accepted_loops,
        st.with_proven,
        st.proven_var,
        st.proven_var_in_loop_programs,
        st.runs,
        st.jit_compared,
        st.failures.len()
    );
    for (why, (k, seed)) in &st.rejections {
        println!("  rejected ×{k}: {why} (e.g. seed {seed:#x})");
    }
    for f in st.failures.iter().take(5) {
        println!("{f}");
    }
    assert!(
        st.failures.is_empty(),
        "{} accepted programs fault or differ (the first ones are printed above)",
        st.failures.len()
    );
    if n >= 500 {
        assert!(
            st.accepted * 100 > st.cases * 20,
            "only {} of {} programs accepted: the generator has drifted",
            st.accepted,
            st.cases
        );
        assert!(
            st.accepted_loops * 100 > st.accepted * 20,
            "only {} accepted programs have loops",
            st.accepted_loops
        );
        assert!(
            st.proven_var_in_loop_programs * 100 > st.accepted,
            "only {} accepted programs have proven variable-offset accesses after loops",
            st.proven_var_in_loop_programs
        );
    }
    kernel_check(&st.for_kernel);
}

/// Loads programs we accept as socket filters into the kernel (privileged, each in a
/// forked child) and prints where it disagrees. Not asserted: the kernel is the
/// reference for acceptance, and differences that are not memory-safety issues are
/// reported for the verifier's maintainers.
fn kernel_check(programs: &[(u64, Vec<Insn>)]) {
    use ebpf_sim_kernel::{load_in_child, Judgement, LoadRequest};
    if let Err(e) = ebpf_sim_kernel::availability() {
        println!("kernel comparison SKIPPED: {e}");
        return;
    }
    let (mut agree, mut rejects, mut unjudged) = (0, 0, 0);
    let mut why: BTreeMap<String, (usize, u64, String)> = BTreeMap::new();
    for (seed, insns) in programs {
        let req = LoadRequest {
            prog_type: 1,
            insns: ebpf_sim::vm::isa::slots_to_bytes(insns),
            log_level: 1,
            ..Default::default()
        };
        match load_in_child(&req) {
            Judgement::Accepted { .. } => agree += 1,
            j @ Judgement::Rejected { .. } => {
                rejects += 1;
                let line = j.error_line().unwrap_or("").to_string();
                let e = why
                    .entry(line)
                    .or_insert_with(|| (0, *seed, listing(insns)));
                e.0 += 1;
            }
            Judgement::CouldNotJudge(_) => unjudged += 1,
        }
    }
    println!(
        "kernel: of {} socket filter programs ebpf-sim accepts, the kernel accepts {agree}, \
         rejects {rejects}, could not judge {unjudged}",
        programs.len()
    );
    let mut out = String::new();
    for (line, (count, seed, l)) in &why {
        let _ = writeln!(
            out,
            "  kernel rejects ×{count}: {line}\n  e.g. seed {seed:#x}:\n{l}"
        );
    }
    print!("{out}");
}

/// The generator's programs are well formed and its accesses are where it says.
#[test]
fn generated_programs_are_well_formed() {
    for i in 0..300 {
        let c = case(seed_of(1, i));
        assert!(Program::new(c.insns.clone()).is_ok(), "seed {i}");
        for &a in &c.var_access {
            let cls = c.insns[a].code & 7;
            assert!(
                (1..=3).contains(&cls),
                "slot {a} of seed {i} is not an access"
            );
        }
    }
}
