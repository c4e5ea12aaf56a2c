//! The `ebpf-sim` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use ebpf_sim::engine::Engine;

mod commands;

/// A userspace eBPF virtual machine and simulator: run, inspect and check eBPF programs
/// without a kernel.
#[derive(Parser)]
#[command(name = "ebpf-sim", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// How a program file is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Guess: assembler text if the file is text, else raw bytecode.
    Auto,
    /// Assembler text in the bpf_conformance syntax.
    Asm,
    /// Raw little-endian bytecode, 8 bytes per instruction.
    Raw,
    /// Raw bytecode written as hex digits (whitespace ignored).
    Hex,
}

/// Where `run` runs programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    /// The simulator (no kernel).
    Sim,
    /// The real kernel, through BPF_PROG_TEST_RUN.
    Kernel,
}

/// What `--kernel-as` runs programs the kernel cannot test-run as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelAs {
    /// BPF_PROG_TYPE_RAW_TRACEPOINT, with the context bytes the simulator builds.
    #[value(name = "raw_tp")]
    RawTp,
}

#[derive(Subcommand)]
enum Command {
    /// Assemble eBPF assembler text (bpf_conformance syntax) into bytecode.
    ///
    /// Syntax: `mov %r0, 1`, `ldxw %r2, [%r1+4]`, `jeq %r1, 0x10, label`, `call 5`,
    /// `call local fn`, `lock fetch add [%r10-8], %r1`, `lddw %r1, 0x1122334455667788`, `exit`.
    Asm {
        /// Assembler source file (`-` for standard input).
        input: PathBuf,
        /// Write the bytecode here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Write hex text (one instruction per line) instead of raw bytes.
        #[arg(long)]
        hex: bool,
    },
    /// Disassemble a program: bytecode into assembler text that `asm` turns back into the
    /// same bytes, or the programs of a BPF object or eunomia package with their C source
    /// lines interleaved (like `llvm-objdump -S`).
    Disasm {
        /// Bytecode file, `.bpf.o` object or `package.json` (`-` for standard input).
        input: PathBuf,
        /// How the input is written (objects and packages are recognised by `auto`).
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
        /// Prefix each line with its instruction index (bytecode input).
        #[arg(long)]
        numbered: bool,
        /// Only this program of an object or package.
        #[arg(long, value_name = "NAME")]
        prog: Option<String>,
        /// Resolve CO-RE relocations against this BTF (e.g. /sys/kernel/btf/vmlinux).
        #[arg(long, value_name = "PATH")]
        btf: Option<PathBuf>,
    },
    /// Run an object or eunomia package against a trace of kernel events, with no kernel,
    /// and print what its programs emit (ecli-style), deterministically.
    ///
    /// Each event of the trace (docs/trace-format.md) runs every attached program of its
    /// hook. Without --trace, a built-in synthetic workload drives each hook. Package
    /// options (its global variables, e.g. `--pid 42`) follow the file and ebpf-sim's own
    /// options.
    Run {
        /// A `.bpf.o` object or an eunomia `package.json`.
        file: PathBuf,
        /// The trace of events to replay (JSON).
        #[arg(long, value_name = "FILE")]
        trace: Option<PathBuf>,
        /// Print one JSON object per record instead of the table.
        #[arg(long)]
        json: bool,
        /// Also write the JSON records to this file.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        /// Print every map's contents at the end.
        #[arg(long)]
        dump_maps: bool,
        /// Execution engine (the JIT by default where built).
        #[arg(long, default_value_t = Engine::default())]
        engine: Engine,
        /// Most instructions one program run may execute.
        #[arg(long, default_value_t = ebpf_sim::vm::interp::DEFAULT_BUDGET)]
        budget: u64,
        /// Resolve CO-RE relocations against this BTF (e.g. /sys/kernel/btf/vmlinux).
        #[arg(long, value_name = "PATH")]
        btf: Option<PathBuf>,
        /// Preload a map entry: NAME:KEY=VALUE, with integers (little-endian, sized to the
        /// map) or hex:BYTES; a prog array takes a program name as its value. Repeatable.
        #[arg(long = "map", value_name = "NAME:KEY=VALUE")]
        maps: Vec<String>,
        /// Only attach these programs (repeatable); default: the package's list, or all.
        #[arg(long = "prog", value_name = "NAME")]
        progs: Vec<String>,
        /// Also print program return values, other helper effects and events no program
        /// handled.
        #[arg(short, long)]
        verbose: bool,
        /// Where programs run: the simulator, or the real kernel (BPF_PROG_TEST_RUN:
        /// xdp, tc, socket filter, cgroup_skb and raw_tp programs; needs root).
        #[arg(long, value_enum, default_value = "sim")]
        backend: Backend,
        /// With --backend kernel: load tracepoint, kprobe, tracing and lsm programs'
        /// instructions as this test-runnable type and run them with the context bytes
        /// the simulator builds for each event (helpers that read the current task, time
        /// or kernel memory see the test runner's world; the kernel verifies by raw_tp
        /// rules and may refuse the program).
        #[arg(long, value_enum, value_name = "TYPE")]
        kernel_as: Option<KernelAs>,
        /// Skip the verifier (by default every attached program is verified first and a
        /// program the kernel would reject is not run). Runtime checks still hold.
        #[arg(long)]
        no_verify: bool,
        /// The package's own options, e.g. `--pid 42` (after every ebpf-sim option).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "PACKAGE OPTIONS"
        )]
        package_args: Vec<String>,
    },
    /// Show what a BPF object or eunomia package contains: programs (section, type,
    /// attach point, size), maps, global variables with their values, exported event types
    /// with their layout, and the source files named in its BTF.
    Inspect {
        /// A `.bpf.o` object or an eunomia `package.json`.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Resolve CO-RE relocations against this BTF (e.g. /sys/kernel/btf/vmlinux).
        #[arg(long, value_name = "PATH")]
        btf: Option<PathBuf>,
    },
    /// Run a bare program once and print r0.
    ///
    /// r1 points to a writable copy of the memory given with --mem (0 when there is none)
    /// and r2 holds its length, as in the bpf_conformance suite; helper 5 returns its
    /// first argument.
    Exec {
        /// Program file: assembler text or raw bytecode (`-` for standard input).
        program: PathBuf,
        /// Input memory as hex bytes, e.g. "00 01 02 ff".
        #[arg(long, value_name = "HEX", conflicts_with = "mem_file")]
        mem: Option<String>,
        /// Input memory read from a file, byte for byte.
        #[arg(long, value_name = "FILE")]
        mem_file: Option<PathBuf>,
        /// How the program file is written.
        #[arg(long, value_enum, default_value = "auto")]
        format: Format,
        /// Execution engine.
        #[arg(long, default_value = "interp")]
        engine: Engine,
        /// Most instructions the run may execute before it is stopped.
        #[arg(long, default_value_t = ebpf_sim::vm::interp::DEFAULT_BUDGET)]
        budget: u64,
    },
    /// Run a trace through the simulator and the real kernel (BPF_PROG_TEST_RUN) and
    /// show where they differ: return values, packets, ring buffer records and final map
    /// contents. Exits non-zero on a difference. Needs root.
    #[cfg(feature = "kernel-backend")]
    Parity {
        /// A `.bpf.o` object or an eunomia `package.json`.
        file: PathBuf,
        /// The trace of events to replay (JSON).
        #[arg(long, value_name = "FILE")]
        trace: PathBuf,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
        /// The simulator's engine.
        #[arg(long, default_value_t = Engine::default())]
        engine: Engine,
        /// Most instructions one simulated program run may execute.
        #[arg(long, default_value_t = ebpf_sim::vm::interp::DEFAULT_BUDGET)]
        budget: u64,
        /// Resolve CO-RE relocations against this BTF.
        #[arg(long, value_name = "PATH")]
        btf: Option<PathBuf>,
        /// Only attach these programs (repeatable).
        #[arg(long = "prog", value_name = "NAME")]
        progs: Vec<String>,
        /// Write NAME:KEY=VALUE into a map on both sides before the runs (as `run --map`;
        /// a prog array takes a program name). Repeatable.
        #[arg(long = "map", value_name = "NAME:KEY=VALUE")]
        maps: Vec<String>,
        /// Load tracepoint, kprobe, tracing and lsm programs' instructions as this
        /// test-runnable type in the kernel, with the context bytes the simulator builds
        /// for each event; the report is labelled "run as raw_tp" and compares return
        /// values, maps, ring buffer records and printk lines.
        #[arg(long, value_enum, value_name = "TYPE")]
        kernel_as: Option<KernelAs>,
    },
    /// Tell whether the kernel's verifier would load each program of an object or package,
    /// with the kernel's message, the instruction and its source line when it would not.
    /// Exits non-zero if any program would be rejected.
    Verify {
        /// A BPF ELF object (`.bpf.o`) or an eunomia package (`package.json`).
        file: PathBuf,
        /// Verify only this program.
        #[arg(long)]
        prog: Option<String>,
        /// Print the register states at every instruction, like the kernel's verbose log.
        #[arg(long)]
        log: bool,
        /// BTF to resolve CO-RE relocations against (e.g. /sys/kernel/btf/vmlinux).
        #[arg(long)]
        btf: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Asm { input, output, hex } => commands::asm(&input, output.as_deref(), hex),
        Command::Disasm {
            input,
            format,
            numbered,
            prog,
            btf,
        } => commands::disasm_any(&input, format, numbered, prog.as_deref(), btf.as_deref()),
        Command::Inspect { file, json, btf } => commands::inspect(&file, json, btf.as_deref()),
        Command::Run {
            file,
            trace,
            json,
            output,
            dump_maps,
            engine,
            budget,
            btf,
            maps,
            progs,
            verbose,
            backend,
            kernel_as,
            no_verify,
            package_args,
        } => commands::run(commands::RunArgs {
            file,
            trace,
            json,
            output,
            dump_maps,
            engine,
            budget,
            btf,
            maps,
            verbose,
            progs,
            verify: !no_verify && backend == Backend::Sim,
            kernel: backend == Backend::Kernel,
            as_raw_tp: kernel_as == Some(KernelAs::RawTp),
            package_args,
        }),
        #[cfg(feature = "kernel-backend")]
        Command::Parity {
            file,
            trace,
            json,
            engine,
            budget,
            btf,
            progs,
            maps,
            kernel_as,
        } => commands::parity(commands::ParityArgs {
            file,
            trace,
            json,
            engine,
            budget,
            btf,
            progs,
            maps,
            as_raw_tp: kernel_as == Some(KernelAs::RawTp),
        }),
        Command::Exec {
            program,
            mem,
            mem_file,
            format,
            engine,
            budget,
        } => commands::exec(
            &program,
            mem.as_deref(),
            mem_file.as_deref(),
            format,
            engine,
            budget,
        ),
        Command::Verify {
            file,
            prog,
            log,
            btf,
        } => commands::verify(&file, prog.as_deref(), log, btf.as_deref()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
