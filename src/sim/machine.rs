//! A loaded object turned into running state: maps created and filled, programs prepared
//! for an engine, and the simulated kernel they share.

use crate::engine::Engine;
use crate::jit::JitProgram;
use crate::loader::{self, MapDef, Object, ProgramType};
use crate::vm::helpers::{HelperError, Helpers};
use crate::vm::isa::{pseudo, Decoded};
use crate::vm::kernel::helpers::kernel_helpers;
use crate::vm::kernel::{map_handle, Kernel, KernelConfig};
use crate::vm::maps::{map_type as ebpf_sim_map_type, MapSpec};
use crate::vm::verifier::Facts;
use crate::vm::{Config, Interpreter, Memory, Program, VmError};

use super::hooks::{ctx_kind, CtxKind, Hook};

/// One program of the object, ready to run.
pub struct SimProgram {
    pub name: std::rc::Rc<str>,
    pub section: String,
    pub prog_type: ProgramType,
    pub hook: Hook,
    pub ctx: CtxKind,
    /// The context buffer, reused from event to event while its size stays the same.
    ctx_buf: std::cell::RefCell<Option<crate::vm::HostBuffer>>,
}

impl SimProgram {
    /// A zeroed context buffer of `len` bytes (the previous one when the size matches).
    pub fn ctx_buffer(&self, len: usize) -> crate::vm::HostBuffer {
        let mut slot = self.ctx_buf.borrow_mut();
        match slot.as_ref() {
            Some(b) if b.len() == len => {
                let _ = b.fill(0, len, 0);
                b.clone()
            }
            _ => {
                let b = crate::vm::HostBuffer::zeroed(len);
                *slot = Some(b.clone());
                b
            }
        }
    }
}

/// The compiled programs, one per object program, in object order (tail calls and prog
/// arrays refer to programs by this index).
enum Compiled {
    Interp(Vec<Interpreter<Kernel>>),
    Jit(Vec<JitProgram<Kernel>>),
}

/// The running state of an object.
pub struct Machine {
    pub kernel: Kernel,
    pub mem: Memory<'static>,
    /// Regions that live as long as the machine (maps); per-event ones come after.
    base_regions: usize,
    pub programs: Vec<SimProgram>,
    /// The programs as prepared for the engines (lddw resolved).
    prepared: Vec<Program>,
    budget: u64,
    compiled: Compiled,
    pub object: Object,
}

/// A map definition as libbpf creates it: perf event arrays get 4-byte keys and values
/// and one entry per CPU when the object leaves them out.
fn map_spec(def: &MapDef, ncpus: u32) -> MapSpec {
    let mut spec = MapSpec {
        name: def.name.clone(),
        map_type: def.map_type,
        key_size: def.key_size,
        value_size: def.value_size,
        max_entries: def.max_entries,
        flags: def.flags,
        map_extra: def.map_extra,
        inner: def.inner.as_deref().map(|i| Box::new(map_spec(i, ncpus))),
    };
    if def.map_type == ebpf_sim_map_type::PERF_EVENT_ARRAY {
        if spec.key_size == 0 {
            spec.key_size = 4;
        }
        if spec.value_size == 0 {
            spec.value_size = 4;
        }
        if spec.max_entries == 0 {
            spec.max_entries = ncpus;
        }
    }
    spec
}

/// libbpf's poison call for unresolved CO-RE relocations.
fn poisoned(_: &mut Kernel, _: &mut Memory<'_>, _: [u64; 5]) -> Result<u64, HelperError> {
    Err(HelperError::Other(
        "this instruction was poisoned: a CO-RE relocation has no match in the target BTF".into(),
    ))
}

/// The helpers a loaded program gets: the kernel's, plus libbpf's poison marker.
pub fn helpers() -> Helpers<Kernel> {
    let mut h = kernel_helpers();
    h.register(
        loader::POISON_HELPER as u32,
        "libbpf_co_re_poison",
        poisoned,
    );
    h
}

/// Whether prog array `map` may hold program `prog`: the kernel gives a prog array an
/// owner, the type of the first program loaded that uses it, and refuses programs of
/// another type in its slots (`bpf_prog_map_compatible`: `EINVAL`), since a tail call
/// keeps the caller's context.
pub fn prog_array_accepts(object: &Object, map: usize, prog: usize) -> Result<(), String> {
    let Some(target) = object.programs.get(prog) else {
        return Err(format!("program {prog} does not exist"));
    };
    let owner = object.programs.iter().find(|p| {
        p.insns.iter().any(|i| {
            i.code == 0x18
                && matches!(i.src, pseudo::MAP_IDX | pseudo::MAP_FD)
                && i.imm as u32 as usize == map
        })
    });
    match owner {
        Some(o) if o.prog_type != target.prog_type => Err(format!(
            "program {} ({}) cannot go into a prog array used by {} ({}): the kernel \
             refuses programs of another type (EINVAL)",
            target.name,
            target.prog_type.name(),
            o.name,
            o.prog_type.name()
        )),
        _ => Ok(()),
    }
}

impl Machine {
    /// Builds the machine: creates every map (global data with its initial contents),
    /// maps their storage into program memory, and prepares every program.
    pub fn new(
        object: Object,
        config: KernelConfig,
        engine: Engine,
        budget: u64,
    ) -> Result<Machine, String> {
        let specs: Vec<MapSpec> = object
            .maps
            .iter()
            .map(|d| map_spec(d, config.ncpus))
            .collect();
        let mut kernel = Kernel::with_specs(config, &specs)?;
        for (i, def) in object.maps.iter().enumerate() {
            if !def.data.is_empty() {
                kernel.maps[i]
                    .update(&0u32.to_le_bytes(), &def.data, 0, 0)
                    .map_err(|e| format!("map {}: initial data: {e}", def.name))?;
            }
            for &(slot, inner) in &def.init_slots {
                if def.map_type == ebpf_sim_map_type::PROG_ARRAY {
                    prog_array_accepts(&object, i, inner)
                        .map_err(|e| format!("map {}: initial slot {slot}: {e}", def.name))?;
                }
                kernel.maps[i]
                    .update(&slot.to_le_bytes(), &(inner as u32).to_le_bytes(), 0, 0)
                    .map_err(|e| format!("map {}: initial slot {slot}: {e}", def.name))?;
            }
        }
        let mut mem = Memory::new();
        kernel.map_into(&mut mem);
        let base_regions = mem.region_count();

        let nmaps = object.maps.len();
        let map_addrs = kernel.map_addrs.clone();
        let resolve = |d: &Decoded| -> Result<u64, String> {
            let index = d.insn.imm as u32 as usize;
            if index >= nmaps {
                return Err(format!("map index {index} is out of range ({nmaps} maps)"));
            }
            match d.insn.src {
                pseudo::MAP_IDX | pseudo::MAP_FD => Ok(map_handle(index)),
                pseudo::MAP_IDX_VALUE | pseudo::MAP_VALUE => {
                    Ok(map_addrs[index].wrapping_add(d.imm_hi as u32 as u64))
                }
                src => Err(format!(
                    "lddw of {} is not supported by the simulator",
                    crate::vm::program::pseudo_name(src)
                )),
            }
        };
        let mut programs = Vec::new();
        let mut prepared = Vec::new();
        for p in &object.programs {
            let prog = Program::with_resolver(p.insns.clone(), &resolve)
                .map_err(|e| format!("program {}: {e}", p.name))?;
            prepared.push(prog);
            programs.push(SimProgram {
                name: p.name.as_str().into(),
                ctx_buf: Default::default(),
                section: p.section.clone(),
                prog_type: p.prog_type,
                hook: Hook::of_section(&p.section),
                ctx: ctx_kind(p.prog_type),
            });
        }
        let vm_err = |name: &str, e: VmError| format!("program {name}: {e}");
        let cfg = Config { budget };
        let compiled = match engine {
            Engine::Interp => Compiled::Interp(
                prepared
                    .iter()
                    .zip(&programs)
                    .map(|(p, s)| {
                        Interpreter::new(p, helpers())
                            .map(|i| i.with_config(cfg))
                            .map_err(|e| vm_err(&s.name, e))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Engine::Jit => Compiled::Jit(
                prepared
                    .iter()
                    .zip(&programs)
                    .map(|(p, s)| {
                        JitProgram::compile(p, helpers())
                            .map(|j| j.with_config(cfg))
                            .map_err(|e| format!("program {}: {e}", s.name))
                    })
                    .collect::<Result<_, _>>()?,
            ),
        };
        Ok(Machine {
            kernel,
            mem,
            base_regions,
            programs,
            prepared,
            budget,
            compiled,
            object,
        })
    }

    /// Recompiles program `index` for the JIT with the verifier's proofs, so the accesses
    /// they prove inside the stack frame or the context run without the runtime check.
    /// `facts` must come from verifying this program (`crate::verify::verify_program`).
    /// The interpreter checks every access regardless.
    pub fn use_proofs(&mut self, index: usize, facts: &Facts) -> Result<(), String> {
        if let Compiled::Jit(progs) = &mut self.compiled {
            let name = &self.programs[index].name;
            progs[index] = JitProgram::compile_with_facts(&self.prepared[index], helpers(), facts)
                .map_err(|e| format!("program {name}: {e}"))?
                .with_config(Config {
                    budget: self.budget,
                });
        }
        Ok(())
    }

    /// Drops the previous event's context, packet and regions (simulated kernel and user
    /// memory persist across events).
    pub fn reset_event_memory(&mut self) {
        self.mem.truncate_regions(self.base_regions);
        self.mem.clear_ctx_and_packet();
        self.mem.unmap_far(super::hooks::PACKET_BASE);
    }

    /// Runs program `index` with r1 = `ctx`.
    pub fn run(&mut self, index: usize, ctx: u64) -> Result<u64, VmError> {
        self.kernel.prog_type = self.programs[index].prog_type.number();
        self.kernel.tail_calls = 0;
        let args = [ctx, 0, 0, 0, 0];
        match &self.compiled {
            Compiled::Interp(progs) => {
                progs[index].run_with_programs(&mut self.mem, &mut self.kernel, args, progs)
            }
            Compiled::Jit(progs) => {
                progs[index].run_with_programs(&mut self.mem, &mut self.kernel, args, progs)
            }
        }
    }

    /// The object's program index by name.
    pub fn program_index(&self, name: &str) -> Option<usize> {
        self.programs.iter().position(|p| &*p.name == name)
    }
}
