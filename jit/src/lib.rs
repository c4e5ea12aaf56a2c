//! JIT compilation of eBPF programs to native code (x86_64), with the same memory model,
//! instruction budget, call limits and errors as the interpreter of `ebpf-sim-vm`.
//!
//! Every load and store goes through the region check inline (9 instructions, no call),
//! except stack accesses at constant offsets from r10, which are proven inside the frame
//! when the program is prepared, and, with [`JitProgram::compile_with_facts`], accesses the
//! verifier proves inside the current frame or the context. The budget is charged once per
//! path and checked at backward jumps and calls, exactly where the interpreter checks it
//! (unrolled loops skip checks that could not fail). Code memory is written, then made
//! executable: never both at once.

#[cfg(target_arch = "x86_64")]
mod ctx;
#[cfg(target_arch = "x86_64")]
mod x86_64;

use ebpf_sim_vm::helpers::Helpers;
use ebpf_sim_vm::interp::Config;
use ebpf_sim_vm::memory::{frame_pointer, Access, Memory};
use ebpf_sim_vm::program::Program;
use ebpf_sim_vm::verifier::{Facts, Proven};
use ebpf_sim_vm::VmError;

/// Whether this build has a JIT for the host.
pub const AVAILABLE: bool = cfg!(target_arch = "x86_64");

/// Why a program could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JitError {
    /// Not an architecture the JIT supports.
    Unsupported,
    /// A helper the program calls is not registered.
    Vm(VmError),
    /// The code buffer could not be created.
    Code(String),
}

impl std::fmt::Display for JitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JitError::Unsupported => write!(
                f,
                "no JIT for this architecture ({})",
                std::env::consts::ARCH
            ),
            JitError::Vm(e) => write!(f, "{e}"),
            JitError::Code(e) => write!(f, "JIT code buffer: {e}"),
        }
    }
}

impl std::error::Error for JitError {}

/// A program compiled to native code, with its helpers.
pub struct JitProgram<C> {
    #[cfg(target_arch = "x86_64")]
    compiled: x86_64::Compiled,
    /// Code that trusts the verifier's proofs, and what it needs of the context region.
    #[cfg(target_arch = "x86_64")]
    proven: Option<(x86_64::Compiled, CtxNeeds)>,
    touches_stack: bool,
    helpers: Helpers<C>,
    /// The helper call instructions, resolved; boxed so the addresses the code embeds
    /// stay valid when the program moves. Only generated code reads them.
    #[cfg(target_arch = "x86_64")]
    #[allow(dead_code)]
    sites: Box<[ctx::HelperSite<C>]>,
    config: Config,
}

/// What the context region must offer for code compiled with the verifier's proofs: the
/// verifier assumed r1 points to offset 0 of a context of at least these many bytes.
#[derive(Clone, Copy, Debug)]
struct CtxNeeds {
    load: u64,
    store: u64,
}

impl<C> JitProgram<C> {
    /// Compiles `program`; every helper it calls by id must be in `helpers`.
    pub fn compile(program: &Program, helpers: Helpers<C>) -> Result<Self, JitError> {
        Self::build(program, helpers, None)
    }

    /// Compiles `program` twice: checked as [`Self::compile`] does, and with the accesses
    /// `facts` prove inside the current stack frame or the context translated directly, no
    /// check. A run takes the second when r1 is the context's address and the context
    /// region is as large as the verifier assumed, the first otherwise. `facts` must come
    /// from verifying this very program (`ebpf_sim_vm::verifier::verify`): memory safety
    /// of the proven accesses rests on them.
    pub fn compile_with_facts(
        program: &Program,
        helpers: Helpers<C>,
        facts: &Facts,
    ) -> Result<Self, JitError> {
        Self::build(program, helpers, Some(facts))
    }

    fn build(
        program: &Program,
        helpers: Helpers<C>,
        facts: Option<&Facts>,
    ) -> Result<Self, JitError> {
        helpers.check_calls(program).map_err(JitError::Vm)?;
        #[cfg(target_arch = "x86_64")]
        {
            let sites = program
                .instructions()
                .iter()
                .filter(|ins| ins.decoded.spec.op == ebpf_sim_vm::isa::Op::Call)
                .filter(|ins| ins.target.is_none())
                .map(|ins| {
                    let id = ins.decoded.insn.imm as u32 as u64;
                    let pc = ins.index;
                    let h = helpers
                        .get(id)
                        .ok_or(JitError::Vm(VmError::UnknownHelper { pc, id }))?;
                    Ok(ctx::HelperSite {
                        func: h.func,
                        name: h.name,
                        id,
                        pc,
                    })
                })
                .collect::<Result<Box<[_]>, JitError>>()?;
            let mut site_of = vec![0u64; program.len()];
            for site in sites.iter() {
                site_of[site.pc] = site as *const ctx::HelperSite<C> as u64;
            }
            let compile = |proven: &[Proven]| {
                x86_64::compile(
                    program,
                    proven,
                    &site_of,
                    ctx::helper_entry::<C> as *const () as u64,
                    ctx::callx_trampoline::<C> as *const () as u64,
                )
                .map_err(JitError::Code)
            };
            let compiled = compile(&[])?;
            let useful = |f: &&Facts| {
                f.proven.len() == program.len()
                    && f.proven
                        .iter()
                        .any(|p| matches!(p, Proven::Frame | Proven::Ctx))
            };
            let proven = match facts.filter(useful) {
                Some(f) => Some((
                    compile(&f.proven)?,
                    CtxNeeds {
                        load: f.ctx_load_extent as u64,
                        store: f.ctx_store_extent as u64,
                    },
                )),
                None => None,
            };
            Ok(JitProgram {
                compiled,
                proven,
                touches_stack: program.touches_stack(),
                helpers,
                sites,
                config: Config::default(),
            })
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (program, helpers, facts);
            Err(JitError::Unsupported)
        }
    }

    /// Whether a proven variant exists (see [`Self::compile_with_facts`]).
    pub fn has_proven_code(&self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            self.proven.is_some()
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    pub fn with_config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Size of the generated code in bytes.
    pub fn code_size(&self) -> usize {
        #[cfg(target_arch = "x86_64")]
        {
            self.compiled.code.len()
        }
        #[cfg(not(target_arch = "x86_64"))]
        0
    }

    /// Runs the program once with r1..r5 set to `args`; returns r0. Tail calls fall
    /// through (there are no other programs).
    pub fn run(&self, mem: &mut Memory<'_>, env: &mut C, args: [u64; 5]) -> Result<u64, VmError> {
        self.run_with_programs(mem, env, args, &[])
    }

    /// Runs the program once; a tail call to program `p` continues in `programs[p]`'s code,
    /// with the interpreter's rules ([`ebpf_sim_vm::Interpreter::run_with_programs`]).
    pub fn run_with_programs(
        &self,
        mem: &mut Memory<'_>,
        env: &mut C,
        args: [u64; 5],
        programs: &[JitProgram<C>],
    ) -> Result<u64, VmError> {
        #[cfg(target_arch = "x86_64")]
        {
            self.run_native(mem, env, args, programs)
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = (mem, env, args, programs);
            Err(VmError::Internal {
                pc: 0,
                what: "no JIT for this architecture",
            })
        }
    }

    /// Where tail calls into this program land.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn body_address(&self) -> u64 {
        self.compiled.body
    }

    #[cfg(target_arch = "x86_64")]
    pub(crate) fn helpers_ptr(&self) -> *const () {
        &self.helpers as *const Helpers<C> as *const ()
    }

    /// The function table of the code tail calls land in.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn functions_ptr(&self) -> *const ctx::FunctionTable {
        &*self.compiled.functions
    }

    #[cfg(target_arch = "x86_64")]
    fn run_native(
        &self,
        mem: &mut Memory<'_>,
        env: &mut C,
        args: [u64; 5],
        programs: &[JitProgram<C>],
    ) -> Result<u64, VmError> {
        use ctx::{JitCtx, Status};
        use ebpf_sim_vm::memory::{vaddr, CTX_REGION};
        mem.reset_stack();
        let base = vaddr(CTX_REGION, 0);
        let (code, ctx_delta) = match mem.region(CTX_REGION as usize) {
            Some(r) => {
                let code = match &self.proven {
                    Some((code, needs))
                        if args[0] == base
                            && r.load_limit > base + needs.load
                            && (needs.store == 0 || r.store_limit > base + needs.store) =>
                    {
                        code
                    }
                    _ => &self.compiled,
                };
                (code, r.delta)
            }
            None => (&self.compiled, 0),
        };
        let stack_base = mem.stack_base(0);
        let stack_top = stack_base as u64 + ebpf_sim_vm::isa::STACK_SIZE as u64;
        let fp = frame_pointer(0);
        let mut ctx = JitCtx {
            fast: mem.fast_table_mut(),
            remaining: self.config.budget.min(i64::MAX as u64) as i64,
            budget: self.config.budget,
            stack_top,
            fp,
            stack_delta: stack_top.wrapping_sub(fp),
            ctx_delta,
            depth: 0,
            max_depth: 0,
            saved_rsp: 0,
            fault_addr: 0,
            fault_pc: 0,
            fault_info: 0,
            status: Status::Ok as u64,
            args: [0; 5],
            saved_r0: 0,
            callx_r0: 0,
            stack_base,
            env: env as *mut C as *mut (),
            mem: mem as *mut Memory<'_> as *mut (),
            helpers: self.helpers_ptr(),
            functions: &*code.functions,
            programs: programs.as_ptr() as *const (),
            nprograms: programs.len(),
            tail_calls: 0,
            error: None,
        };
        let entry = code.entry;
        // Generated code only touches memory through the region table (checked accesses)
        // or the current frame's stack (proven accesses), and calls back only through the
        // Rust functions of `ctx`, which use the pointers stored above.
        let r0 = entry(&mut ctx, &args);
        // Frames left mapped by a fault stay so, as in the interpreter, until the next
        // run's reset: the fault is explained against the state it happened in.
        mem.note_frames_used(ctx.max_depth as usize + 1);
        if !self.touches_stack {
            mem.stack_untouched();
        }
        if ctx.status == Status::Ok as u64 {
            return Ok(r0);
        }
        Err(self.stop_error(&mut ctx, mem))
    }

    /// The error a run that did not end normally stopped with (kept out of `run_native`,
    /// whose normal path is the fixed cost of every run).
    #[cfg(target_arch = "x86_64")]
    #[cold]
    #[inline(never)]
    fn stop_error(&self, ctx: &mut ctx::JitCtx, mem: &Memory<'_>) -> VmError {
        use ctx::Status;
        let pc = ctx.fault_pc as usize;
        match ctx.status {
            s if s == Status::Memory as u64 => {
                let size = (ctx.fault_info & 0xff) as usize;
                let access = match ctx.fault_info >> 8 {
                    0 => Access::Load,
                    1 => Access::Store,
                    _ => Access::Atomic,
                };
                VmError::Memory {
                    pc,
                    fault: mem.fault(ctx.fault_addr, size, access),
                }
            }
            s if s == Status::Budget as u64 => VmError::Budget {
                pc,
                budget: self.config.budget,
            },
            s if s == Status::CallDepth as u64 => VmError::CallDepth {
                pc,
                frames: ctx.depth as usize + 2,
            },
            _ => ctx.error.take().unwrap_or(VmError::Internal {
                pc,
                what: "JIT code stopped without an error",
            }),
        }
    }
}
