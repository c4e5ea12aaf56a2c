//! Choosing an engine and running a bare program the way `exec`, the conformance suite
//! and its plugin protocol do: r1 points to a writable copy of the input memory (0 when
//! there is none), r2 is its length, and the same bytes serve as packet for LD_ABS/LD_IND.

use std::fmt;
use std::str::FromStr;

use ebpf_sim_jit::JitProgram;
use ebpf_sim_vm::helpers::conformance_helpers;
use ebpf_sim_vm::{Config, Interpreter, Memory, Program, VmError};

/// An execution engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Interp,
    Jit,
}

impl Default for Engine {
    /// The JIT where this build has one, else the interpreter.
    fn default() -> Self {
        if ebpf_sim_jit::AVAILABLE {
            Engine::Jit
        } else {
            Engine::Interp
        }
    }
}

impl Engine {
    /// The engines this build can run.
    pub fn available() -> Vec<Engine> {
        let mut v = vec![Engine::Interp];
        if ebpf_sim_jit::AVAILABLE {
            v.push(Engine::Jit);
        }
        v
    }
}

impl FromStr for Engine {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "interp" | "interpreter" => Ok(Engine::Interp),
            "jit" => Ok(Engine::Jit),
            other => Err(format!("unknown engine '{other}' (expected interp or jit)")),
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Engine::Interp => "interp",
            Engine::Jit => "jit",
        })
    }
}

/// Why a bare run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Vm(#[from] VmError),
    #[error("the {0} engine is not available in this build")]
    EngineUnavailable(Engine),
    #[error("JIT: {0}")]
    Jit(#[from] ebpf_sim_jit::JitError),
}

/// Runs `program` on a copy of `mem` with the conformance suite's helpers; returns r0.
pub fn run_bare(
    program: &Program,
    mem: &[u8],
    engine: Engine,
    config: Config,
) -> Result<u64, RunError> {
    if !Engine::available().contains(&engine) {
        return Err(RunError::EngineUnavailable(engine));
    }
    let mut data = mem.to_vec();
    let len = data.len() as u64;
    let mut memory = Memory::new();
    let r1 = if data.is_empty() {
        0
    } else {
        memory.set_ctx(&mut data)
    };
    memory.packet_is_ctx();
    let args = [r1, len, 0, 0, 0];
    let helpers = conformance_helpers::<()>();
    Ok(match engine {
        Engine::Interp => Interpreter::new(program, helpers)?
            .with_config(config)
            .run(&mut memory, &mut (), args)?,
        Engine::Jit => JitProgram::compile(program, helpers)?
            .with_config(config)
            .run(&mut memory, &mut (), args)?,
    })
}
