//! The loader's output: a plain description of a BPF object that the runtime turns into
//! running state. Nothing here refers back to the ELF file.

use ebpf_sim_vm::isa::Insn;
use serde::Serialize;

use crate::btf::Btf;
use crate::sections::{AttachPoint, ProgramType};

/// A loaded object: programs, maps, global variables and BTF.
#[derive(Debug, Clone)]
pub struct Object {
    /// libbpf's object name (file name up to the first `.`, or the package's `obj_name`).
    pub name: String,
    /// The `license` section, if any.
    pub license: Option<String>,
    pub programs: Vec<Program>,
    /// Every map, in libbpf's order: legacy `maps`, BTF `.maps`, then global data sections.
    /// Instructions refer to maps by index into this list (see [`Program::insns`]).
    pub maps: Vec<MapDef>,
    /// Global variables of the data sections (from BTF `DATASEC`s, else from symbols).
    pub globals: Vec<GlobalVar>,
    pub btf: Option<Btf>,
    /// Source file names recorded in line info, in first-seen order.
    pub source_files: Vec<String>,
    /// Which BTF the CO-RE relocations were resolved against.
    pub core_target: CoreTarget,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CoreTarget {
    /// No BTF at all (no CO-RE relocations possible).
    None,
    /// The object's own BTF: every relocation keeps the compiler's value.
    Local,
    /// A BTF given by the user, e.g. /sys/kernel/btf/vmlinux.
    External(String),
}

/// One program: an entry function with the subprograms it calls appended, as libbpf lays
/// it out for BPF_PROG_LOAD.
#[derive(Debug, Clone)]
pub struct Program {
    pub name: String,
    pub section: String,
    pub prog_type: ProgramType,
    pub attach: AttachPoint,
    /// Instruction slots, relocated:
    /// - `lddw` of a map: `src = pseudo::MAP_IDX`, `imm` = index into [`Object::maps`];
    /// - `lddw` of global data: `src = pseudo::MAP_IDX_VALUE`, `imm` = map index, the second
    ///   slot's `imm` = byte offset into the map's value;
    /// - `lddw` of a function (callback): `src = pseudo::FUNC`, `imm` = slot offset from the
    ///   next instruction (like a call);
    /// - bpf-to-bpf `call`: `src = pseudo::CALL_LOCAL`, `imm` = slot offset from the next
    ///   instruction, pointing into this vector;
    /// - CO-RE relocated fields hold the target's values (or libbpf's poison call
    ///   `call 0xbad2310` where the target lacks the field).
    pub insns: Vec<Insn>,
    /// The functions laid out in `insns`: the entry first, then appended subprograms.
    pub functions: Vec<FuncSpan>,
    /// Source line info, sorted by instruction.
    pub line_info: Vec<LineInfo>,
    /// CO-RE relocations applied to this program's instructions.
    pub core_relocs: Vec<CoreReloc>,
    /// Calls or loads of kernel symbols (`__ksym` externs) left for the runtime.
    pub externs: Vec<ExternRef>,
}

/// A function placed in a program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FuncSpan {
    pub name: String,
    /// First slot in [`Program::insns`].
    pub start: usize,
    /// Number of slots.
    pub len: usize,
    /// Its `FUNC` in the object's BTF (0 if unknown).
    pub btf_type_id: u32,
}

/// Source position of an instruction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineInfo {
    /// Slot index in [`Program::insns`].
    pub insn: usize,
    pub file: String,
    pub line: u32,
    pub column: u32,
    /// The source line's text as clang recorded it.
    pub text: String,
}

/// A reference to a kernel symbol the object declares `extern`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExternRef {
    pub insn: usize,
    pub name: String,
    /// `call` (kfunc) or `lddw` (ksym variable).
    pub is_call: bool,
}

/// One CO-RE relocation and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoreReloc {
    /// Slot index in [`Program::insns`].
    pub insn: usize,
    /// libbpf's name of the relocation kind, e.g. `byte_off`, `field_exists`.
    pub kind: String,
    /// The local type and access path, e.g. `struct task_struct::real_parent (0:8)`.
    pub spec: String,
    /// What the compiler wrote.
    pub local_value: u64,
    /// What was written for the target, or None if the instruction was poisoned.
    pub target_value: Option<u64>,
}

/// A map definition (the runtime creates the map).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MapDef {
    /// libbpf's map name (`obj.rodata` style for global data).
    pub name: String,
    /// Where it was defined: `.maps`, `maps` or a global data section name.
    pub section: String,
    pub origin: MapOrigin,
    /// `BPF_MAP_TYPE_*` number.
    pub map_type: u32,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    pub flags: u32,
    /// BTF type ids of key and value, where the definition gives types.
    pub key_type_id: Option<u32>,
    pub value_type_id: Option<u32>,
    /// The inner map template of a map-in-map.
    pub inner: Option<Box<MapDef>>,
    /// Initial slots of a map-in-map: (slot index, index into [`Object::maps`]); of a prog
    /// array (`.values = { [1] = &prog }`): (slot index, index into [`Object::programs`]).
    pub init_slots: Vec<(u32, usize)>,
    pub numa_node: u32,
    pub map_extra: u64,
    /// Initial contents of a global data map's single value (zeros for `.bss`).
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MapOrigin {
    /// A BTF-defined map in `.maps`.
    Btf,
    /// A `struct bpf_map_def` in the legacy `maps` section.
    Legacy,
    /// Global data (`.data*`, `.rodata*`, `.bss`), an array of one value.
    GlobalData { readonly: bool },
}

/// A global variable inside a data map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GlobalVar {
    pub name: String,
    /// The data section, e.g. `.rodata`.
    pub section: String,
    /// Index into [`Object::maps`].
    pub map: usize,
    pub offset: u32,
    pub size: u32,
    /// The variable's type in the object's BTF (0 without BTF).
    pub type_id: u32,
    /// Its C spelling, e.g. `unsigned long long`, `char[16]`.
    pub type_name: String,
}

pub mod map_type {
    pub const HASH: u32 = 1;
    pub const ARRAY: u32 = 2;
    pub const PROG_ARRAY: u32 = 3;
    pub const PERF_EVENT_ARRAY: u32 = 4;
    pub const RINGBUF: u32 = 27;
}

pub mod map_flags {
    pub const NO_PREALLOC: u32 = 1;
    pub const RDONLY_PROG: u32 = 1 << 7;
    pub const MMAPABLE: u32 = 1 << 10;
}

/// The kernel's name for a map type number (`hash`, `ringbuf`, ...).
pub fn map_type_name(t: u32) -> &'static str {
    const NAMES: [&str; 34] = [
        "unspec",
        "hash",
        "array",
        "prog_array",
        "perf_event_array",
        "percpu_hash",
        "percpu_array",
        "stack_trace",
        "cgroup_array",
        "lru_hash",
        "lru_percpu_hash",
        "lpm_trie",
        "array_of_maps",
        "hash_of_maps",
        "devmap",
        "sockmap",
        "cpumap",
        "xskmap",
        "sockhash",
        "cgroup_storage",
        "reuseport_sockarray",
        "percpu_cgroup_storage",
        "queue",
        "stack",
        "sk_storage",
        "devmap_hash",
        "struct_ops",
        "ringbuf",
        "inode_storage",
        "task_storage",
        "bloom_filter",
        "user_ringbuf",
        "cgrp_storage",
        "arena",
    ];
    NAMES.get(t as usize).copied().unwrap_or("unknown")
}

impl Object {
    pub fn program(&self, name: &str) -> Option<&Program> {
        self.programs.iter().find(|p| p.name == name)
    }

    pub fn map(&self, name: &str) -> Option<&MapDef> {
        self.maps.iter().find(|m| m.name == name)
    }

    pub fn map_index(&self, name: &str) -> Option<usize> {
        self.maps.iter().position(|m| m.name == name)
    }

    /// The data map of a global data section (`.rodata`, `.bss`, ...).
    pub fn data_map(&self, section: &str) -> Option<usize> {
        self.maps
            .iter()
            .position(|m| matches!(m.origin, MapOrigin::GlobalData { .. }) && m.section == section)
    }

    pub fn global(&self, name: &str) -> Option<&GlobalVar> {
        self.globals.iter().find(|g| g.name == name)
    }

    /// The current bytes of a global variable.
    pub fn global_bytes(&self, name: &str) -> Option<&[u8]> {
        let g = self.global(name)?;
        let data = &self.maps.get(g.map)?.data;
        data.get(g.offset as usize..(g.offset as usize).checked_add(g.size as usize)?)
    }
}

impl Program {
    /// The source line of an instruction: the nearest line info at or before it.
    pub fn line_of(&self, insn: usize) -> Option<&LineInfo> {
        let i = self.line_info.partition_point(|l| l.insn <= insn);
        i.checked_sub(1).and_then(|i| self.line_info.get(i))
    }

    /// The function containing an instruction.
    pub fn function_of(&self, insn: usize) -> Option<&FuncSpan> {
        self.functions
            .iter()
            .find(|f| insn >= f.start && insn < f.start + f.len)
    }
}
