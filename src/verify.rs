//! Verifying loaded programs: the bridge from the loader's [`Object`] to the verifier's
//! options (maps as [`MapInfo`], the program type's kernel number, BTF line info for
//! messages). `ebpf-sim verify` and the runtime use these.

use ebpf_sim_loader::{MapDef, MapOrigin, Object, Program};
use ebpf_sim_vm::verifier::{verify, InnerMapInfo, MapInfo, Rejection, Verdict, VerifyOptions};

/// `BPF_F_RDONLY_PROG`.
const RDONLY_PROG: u32 = 1 << 7;

/// What the verifier needs to know of an object's maps, indexed like [`Object::maps`].
pub fn map_infos(obj: &Object) -> Vec<MapInfo> {
    let readonly = |m: &MapDef| {
        matches!(m.origin, MapOrigin::GlobalData { readonly: true }) || m.flags & RDONLY_PROG != 0
    };
    obj.maps
        .iter()
        .map(|m| MapInfo {
            map_type: m.map_type,
            key_size: m.key_size,
            value_size: m.value_size,
            max_entries: m.max_entries,
            readonly: readonly(m),
            inner: m.inner.as_deref().map(|i| InnerMapInfo {
                map_type: i.map_type,
                key_size: i.key_size,
                value_size: i.value_size,
                max_entries: i.max_entries,
                readonly: readonly(i),
            }),
        })
        .collect()
}

/// The source line of a slot as `file:line: text`, from BTF line info.
pub fn source_line(prog: &Program, insn: usize) -> Option<String> {
    let l = prog.line_of(insn)?;
    Some(format!("{}:{}: {}", l.file, l.line, l.text.trim()))
}

/// Verifies one program of a loaded object; `log_level` as in [`VerifyOptions`].
pub fn verify_program(obj: &Object, prog: &Program, log_level: u32) -> Result<Verdict, Rejection> {
    let maps = map_infos(obj);
    let line = |i: usize| source_line(prog, i);
    let opts = VerifyOptions {
        prog_type: prog.prog_type.number(),
        maps: &maps,
        source_line: Some(&line),
        log_level,
        ..Default::default()
    };
    verify(&prog.insns, &opts)
}
