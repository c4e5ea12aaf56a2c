//! The context block JIT code reads through r12, and the Rust functions it calls: helpers
//! (through [`helper_entry`]), `callx` and the slow path of memory accesses.

use std::mem::offset_of;
use std::panic::{catch_unwind, AssertUnwindSafe};

use ebpf_sim_vm::helpers::{self, Callbacks, HelperError, HelperFn, Helpers, TailCallTarget};
use ebpf_sim_vm::isa::MAX_CALL_FRAMES;
use ebpf_sim_vm::memory::{Memory, Region, CODE_REGION, REGION_SHIFT};
use ebpf_sim_vm::VmError;

/// How a run ended, as JIT code records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(crate) enum Status {
    Ok = 0,
    Memory = 1,
    Budget = 2,
    CallDepth = 3,
    /// Rust code called from JIT code stored the error in `JitCtx::error`.
    Error = 4,
}

#[repr(C)]
pub(crate) struct JitCtx {
    // Set per run to values of that run (kept together, so `run` writes them in a row).
    /// The memory's fast region table (`Memory::fast_table_mut`).
    pub fast: *mut Region,
    /// Instructions the budget still allows (negative once exceeded); JIT code keeps it in
    /// rbp and stores it here around calls out.
    pub remaining: i64,
    pub budget: u64,
    /// Host address of the current frame's stack top.
    pub stack_top: u64,
    /// r10 of the current frame.
    pub fp: u64,
    /// `stack_top - fp` (wrapping): a virtual address in the current frame plus this is
    /// its host address.
    pub stack_delta: u64,
    /// Host address minus virtual address in the context region (accesses the verifier
    /// proved inside the context).
    pub ctx_delta: u64,
    pub stack_base: *mut u8,
    // Read only by the Rust functions JIT code calls.
    pub env: *mut (),
    pub mem: *mut (),
    pub helpers: *const (),
    /// The running code's function table (callbacks resolve their function in it).
    pub functions: *const FunctionTable,
    /// The engine's program table for tail calls (`*const JitProgram<C>`).
    pub programs: *const (),
    pub nprograms: usize,
    // Zero at the start of every run (kept together: a few wide stores).
    pub depth: u64,
    pub max_depth: u64,
    pub saved_rsp: u64,
    pub fault_addr: u64,
    pub fault_pc: u64,
    /// Memory faults: size | kind << 8 (0 load, 1 store, 2 atomic).
    pub fault_info: u64,
    pub status: u64,
    pub args: [u64; 5],
    pub saved_r0: u64,
    pub callx_r0: u64,
    pub tail_calls: u32,
    pub error: Option<VmError>,
}

/// Function entries of one compiled program, for `callx` (filled once code is placed).
pub(crate) struct FunctionTable {
    pub entries: Vec<Option<usize>>,
    pub code_base: usize,
    /// Offset of the callback entry stub.
    pub callback_entry: usize,
}

impl FunctionTable {
    /// The code address of the function at virtual address `target`, if it is one.
    fn resolve(&self, target: u64) -> Option<u64> {
        if target >> REGION_SHIFT != CODE_REGION as u64 {
            return None;
        }
        let slot = (target & 0xffff_ffff) as usize;
        let off = (*self.entries.get(slot)?)?;
        Some((self.code_base + off) as u64)
    }
}

macro_rules! offsets {
    ($($name:ident = $field:ident),* $(,)?) => {
        $(pub(crate) const $name: i32 = offset_of!(JitCtx, $field) as i32;)*
    };
}

offsets! {
    FAST = fast, REMAINING = remaining,
    STACK_TOP = stack_top, FP = fp, STACK_DELTA = stack_delta, CTX_DELTA = ctx_delta,
    DEPTH = depth, MAX_DEPTH = max_depth, SAVED_RSP = saved_rsp, FAULT_ADDR = fault_addr,
    FAULT_PC = fault_pc, FAULT_INFO = fault_info, STATUS = status, ARGS = args,
    SAVED_R0 = saved_r0, CALLX_R0 = callx_r0, STACK_BASE = stack_base,
}

pub(crate) const REGION_LOAD_LIMIT: i32 = offset_of!(Region, load_limit) as i32;
pub(crate) const REGION_STORE_LIMIT: i32 = offset_of!(Region, store_limit) as i32;
pub(crate) const REGION_DELTA: i32 = offset_of!(Region, delta) as i32;
pub(crate) const REGION_HOST: i32 = offset_of!(Region, host) as i32;

/// A helper call instruction, resolved when the program is compiled: its code passes the
/// site's address to [`helper_entry`], so a call looks nothing up.
pub(crate) struct HelperSite<C> {
    pub func: HelperFn<C>,
    pub name: &'static str,
    pub id: u64,
    pub pc: usize,
}

/// What [`helper_entry`] returns, in rax and rdx (the SysV return of a 16-byte struct).
#[repr(C)]
pub(crate) struct HelperReturn {
    pub r0: u64,
    /// [`CONTINUE`], [`STOP`], or the code address a taken tail call continues at.
    pub action: u64,
}

/// The call returned: continue after it.
pub(crate) const CONTINUE: u64 = 0;
/// The run ends: the status in the context says why.
pub(crate) const STOP: u64 = 1;

/// Runs the helper of `site` with the eBPF argument registers as the native convention
/// passes them (r1..r5 are kept in rdi, rsi, rdx, rcx, r8: JIT code calls this with them in
/// place, the context in r9 and the site on the stack). Never unwinds into JIT code: a
/// panicking helper becomes an error.
pub(crate) extern "C" fn helper_entry<C>(
    r1: u64,
    r2: u64,
    r3: u64,
    r4: u64,
    r5: u64,
    ctx: *mut JitCtx,
    site: *const HelperSite<C>,
) -> HelperReturn {
    // SAFETY: JIT code passes the context `run` set up; it lives for the whole run and no
    // other reference to it is used while a helper runs (callbacks re-enter JIT code only
    // through the raw pointer, below). `site` is one of the calling program's sites, owned
    // by its JitProgram, which outlives the run.
    let (ctx_ref, site) = unsafe { (&mut *ctx, &*site) };
    let args = [r1, r2, r3, r4, r5];
    match call_helper::<C>(ctx_ref, site.func, args) {
        Ok(r0) => HelperReturn {
            r0,
            action: CONTINUE,
        },
        Err(error) => helper_stopped::<C>(ctx, site, args, error),
    }
}

/// What a helper that did not simply return asks for: callbacks, a tail call, or the end
/// of the run. Kept out of `helper_entry`, whose every call pays for its frame.
#[cold]
#[inline(never)]
fn helper_stopped<C>(
    ctx: *mut JitCtx,
    site: &HelperSite<C>,
    args: [u64; 5],
    error: HelperError,
) -> HelperReturn {
    let stop = |ctx: &JitCtx, r0: u64| HelperReturn {
        r0,
        action: if ctx.status == Status::Ok as u64 {
            CONTINUE
        } else {
            STOP
        },
    };
    match error {
        HelperError::Callbacks(plan) => {
            // SAFETY: `functions` is the running code's table, set by `run` and by tail
            // calls, owned by a JitProgram that outlives the run; the reference is gone
            // before run_callbacks re-enters JIT code.
            let table = unsafe { &*(*ctx).functions };
            let r0 = run_callbacks(ctx, table, &plan, site.pc);
            // SAFETY: as in `helper_entry`; run_callbacks dropped its references.
            stop(unsafe { &*ctx }, r0)
        }
        HelperError::TailCall(target) => {
            // SAFETY: as in `helper_entry`.
            let ctx = unsafe { &mut *ctx };
            // A tail call leaves r0 as it was, taken or not; the target runs on the
            // caller's registers, which JIT code reloads from `args`.
            let r0 = ctx.saved_r0;
            match tail_call::<C>(ctx, target, site.pc) {
                None => stop(ctx, r0),
                Some(to) => {
                    ctx.args = args;
                    HelperReturn { r0, action: to }
                }
            }
        }
        error => {
            // SAFETY: as in `helper_entry`.
            fail(
                unsafe { &mut *ctx },
                VmError::Helper {
                    pc: site.pc,
                    id: site.id,
                    name: site.name,
                    error,
                },
            );
            HelperReturn {
                r0: 0,
                action: STOP,
            }
        }
    }
}

fn fail(ctx: &mut JitCtx, e: VmError) -> u64 {
    ctx.error = Some(e);
    ctx.status = Status::Error as u64;
    0
}

/// Calls a BPF callback once per argument list, one frame deeper, as the interpreter does:
/// budget and depth checked before each call, stop at the first non-zero return; r0 is
/// the number of calls made.
fn run_callbacks(ctx: *mut JitCtx, table: &FunctionTable, plan: &Callbacks, pc: usize) -> u64 {
    // SAFETY (all derefs of `ctx` and `mem` below): the context and the memory `run` set up
    // outlive the run; references are dropped before JIT code is re-entered.
    let Some(target) = table.resolve(plan.func) else {
        return fail(
            unsafe { &mut *ctx },
            VmError::BadCallx {
                pc,
                target: plan.func,
            },
        );
    };
    let entry: extern "C" fn(*mut JitCtx, u64) -> u64 = {
        let p = (table.code_base + table.callback_entry) as *const u8;
        // SAFETY: the callback entry stub has this signature (x86_64::callback_entry).
        unsafe { std::mem::transmute::<*const u8, extern "C" fn(*mut JitCtx, u64) -> u64>(p) }
    };
    let outer_args = unsafe { (*ctx).args };
    let mut calls = 0u64;
    for i in 0..plan.calls.len() {
        let (depth, budget_hit) = unsafe { ((*ctx).depth as usize, (*ctx).remaining < 0) };
        if budget_hit {
            let budget = unsafe { (*ctx).budget };
            return fail(unsafe { &mut *ctx }, VmError::Budget { pc, budget });
        }
        if depth + 1 >= MAX_CALL_FRAMES {
            return fail(
                unsafe { &mut *ctx },
                VmError::CallDepth {
                    pc,
                    frames: depth + 2,
                },
            );
        }
        unsafe {
            let c = &mut *ctx;
            c.args = plan.calls.args(i);
            c.depth += 1;
            c.max_depth = c.max_depth.max(c.depth);
            c.fp += 1 << REGION_SHIFT;
            (*(c.mem as *mut Memory<'static>)).set_frame_mapped(depth + 1, true);
        }
        let (saved_rsp, saved_top, saved_delta) =
            unsafe { ((*ctx).saved_rsp, (*ctx).stack_top, (*ctx).stack_delta) };
        let r0 = entry(ctx, target);
        unsafe {
            let c = &mut *ctx;
            c.saved_rsp = saved_rsp;
            c.stack_top = saved_top;
            c.stack_delta = saved_delta;
            (*(c.mem as *mut Memory<'static>)).set_frame_mapped(depth + 1, false);
            c.depth -= 1;
            c.fp -= 1 << REGION_SHIFT;
            if c.status != Status::Ok as u64 {
                return 0;
            }
        }
        calls += 1;
        if r0 != 0 {
            break;
        }
    }
    unsafe { (*ctx).args = outer_args };
    calls
}

/// Calls a helper with the run's environment and memory. A panicking helper ends the run
/// with an error ([`helpers::PANICKED`], as in the interpreter): JIT code cannot be
/// unwound through.
///
/// Always inlined, and only r0 leaves `catch_unwind`: a copy of the arguments or of the
/// whole `Result` in between reads 16 bytes at once what was just stored 8 bytes at a
/// time, which the CPU cannot forward (measured: a call took 1.7 times as long).
#[inline(always)]
fn call_helper<C>(ctx: &mut JitCtx, func: HelperFn<C>, args: [u64; 5]) -> Result<u64, HelperError> {
    // SAFETY: `run` stored pointers to the environment and the memory it borrows mutably
    // for the whole run; JIT code touches neither while a helper runs.
    let (env, mem) = unsafe {
        (
            &mut *(ctx.env as *mut C),
            &mut *(ctx.mem as *mut Memory<'static>),
        )
    };
    let mut error = None;
    let r0 = catch_unwind(AssertUnwindSafe(|| match func(env, mem, args) {
        Ok(r0) => r0,
        Err(e) => {
            error = Some(e);
            0
        }
    }));
    match (r0, error) {
        (Ok(r0), None) => Ok(r0),
        (Ok(_), Some(e)) => Err(e),
        (Err(_), _) => Err(HelperError::Other(helpers::PANICKED.into())),
    }
}

/// The slow path of an access the fast table refused (a region beyond it, simulated kernel
/// memory): the host address of its first byte, or 0 (a fault).
pub(crate) extern "C" fn far_trampoline(ctx: *mut JitCtx, addr: u64, info: u64) -> u64 {
    // SAFETY: as in `helper_entry`; only a shared borrow of the memory is taken.
    let mem = unsafe { &*((*ctx).mem as *const Memory<'static>) };
    let access = match info >> 8 {
        0 => ebpf_sim_vm::memory::Access::Load,
        1 => ebpf_sim_vm::memory::Access::Store,
        _ => ebpf_sim_vm::memory::Access::Atomic,
    };
    mem.translate_slow(addr, (info & 0xff) as usize, access)
        .map_or(0, |p| p as u64)
}

/// Applies the kernel's tail call rule ([`TailCallTarget::take`]), as the interpreter does:
/// the code address to continue at if the call is taken (the running program's tables
/// switched to the target's).
fn tail_call<C>(ctx: &mut JitCtx, target: TailCallTarget, pc: usize) -> Option<u64> {
    let p = target.take(&mut ctx.tail_calls)? as usize;
    if p < ctx.nprograms {
        // SAFETY: `programs` points to `nprograms` programs borrowed by `run` for the
        // whole run.
        let prog = unsafe { &*(ctx.programs as *const crate::JitProgram<C>).add(p) };
        ctx.helpers = prog.helpers_ptr();
        ctx.functions = prog.functions_ptr();
        Some(prog.body_address())
    } else {
        fail(
            ctx,
            VmError::Internal {
                pc,
                what: "tail call to a program that is not loaded",
            },
        );
        None
    }
}

/// Resolves a `callx` target: the code address of a function entry, or 0 after running the
/// helper a plain number names (its r0 in `callx_r0`), as the interpreter does.
pub(crate) extern "C" fn callx_trampoline<C>(ctx: *mut JitCtx, target: u64, pc: u64) -> u64 {
    // SAFETY: as in `helper_entry`; `functions` is the running code's table (as there).
    let (ctx, table) = unsafe { (&mut *ctx, &*(*ctx).functions) };
    let pc = pc as usize;
    if target >> REGION_SHIFT == CODE_REGION as u64 {
        if let Some(addr) = table.resolve(target) {
            return addr;
        }
    } else if target >> REGION_SHIFT == 0 {
        // SAFETY: `helpers` is the running program's table, owned by its JitProgram, which
        // outlives the run (set by `run` and by tail calls).
        let helpers = unsafe { &*(ctx.helpers as *const Helpers<C>) };
        if let Some(h) = helpers.get(target) {
            let (func, name) = (h.func, h.name);
            match call_helper::<C>(ctx, func, ctx.args) {
                Ok(v) => ctx.callx_r0 = v,
                Err(HelperError::TailCall(_)) => {
                    fail(
                        ctx,
                        VmError::Internal {
                            pc,
                            what: "tail calls are only taken from a direct call instruction",
                        },
                    );
                }
                Err(error) => {
                    fail(
                        ctx,
                        VmError::Helper {
                            pc,
                            id: target,
                            name,
                            error,
                        },
                    );
                }
            }
            return 0;
        }
    }
    ctx.error = Some(VmError::BadCallx { pc, target });
    ctx.status = Status::Error as u64;
    0
}
