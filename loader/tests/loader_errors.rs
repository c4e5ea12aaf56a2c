//! Malformed objects give clear errors naming the file, section and offset; mutated objects
//! never make the loader panic; the committed objects match a fresh build of the sources.

mod common;

use common::{obj_path, OBJECTS};
use ebpf_sim_loader::{load_btf, load_object, package::load_package, ErrorKind, LoadOptions};
use object::read::elf::{ElfFile64, SectionHeader};
use object::{Object, ObjectSection};
use proptest::prelude::*;

fn bytes(name: &str) -> Vec<u8> {
    std::fs::read(obj_path(name)).unwrap()
}

fn load(data: &[u8]) -> Result<ebpf_sim_loader::Object, ebpf_sim_loader::LoadError> {
    load_object(data, "t.bpf.o", &LoadOptions::default())
}

/// File offset and size of a section.
fn section_range(data: &[u8], name: &str) -> (usize, usize) {
    let f = ElfFile64::<object::Endianness>::parse(data).unwrap();
    let s = f.section_by_name(name).unwrap();
    let h = s.elf_section_header();
    (
        h.sh_offset(f.endian()) as usize,
        h.sh_size(f.endian()) as usize,
    )
}

#[test]
fn not_an_elf() {
    let e = load(b"hello world").unwrap_err();
    assert!(matches!(e.kind, ErrorKind::NotElf(_)));
    assert!(e.to_string().starts_with("t.bpf.o: "), "{e}");
    assert!(load(b"").is_err());
}

#[test]
fn wrong_machine() {
    let mut d = bytes("net_v1.bpf.o");
    d[18] = 62; // EM_X86_64
    d[19] = 0;
    let e = load(&d).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotBpf(62));
    assert!(e.to_string().contains("offset 0x12"), "{e}");
}

#[test]
fn big_endian_is_refused() {
    let mut d = bytes("net_v1.bpf.o");
    d[5] = 2;
    assert_eq!(load(&d).unwrap_err().kind, ErrorKind::BigEndian);
}

#[test]
fn truncated_file() {
    let d = bytes("tracing.bpf.o");
    let (off, _) = section_range(&d, "tp/sched/sched_process_exec");
    let e = load(&d[..off + 16]).unwrap_err();
    let msg = e.to_string();
    assert!(msg.starts_with("t.bpf.o"), "{msg}");
    // Either the section table or a section runs past the end.
    assert!(
        matches!(e.kind, ErrorKind::Truncated { .. } | ErrorKind::Elf(_)),
        "{msg}"
    );
}

#[test]
fn relocation_to_missing_symbol() {
    let mut d = bytes("net_v1.bpf.o");
    let (off, _) = section_range(&d, ".relxdp");
    // Elf64_Rel: r_offset (8), r_info (8) = sym << 32 | type.
    d[off + 12..off + 16].copy_from_slice(&0xffffu32.to_le_bytes());
    let e = load(&d).unwrap_err();
    assert_eq!(e.kind, ErrorKind::MissingSymbol(0xffff));
    assert_eq!(e.section.as_deref(), Some("xdp"));
    assert!(e.offset.is_some());
    assert!(e.to_string().contains("section xdp, offset"), "{e}");
}

#[test]
fn bad_btf_is_reported_in_its_section() {
    let mut d = bytes("net_v1.bpf.o");
    let (off, _) = section_range(&d, ".BTF");
    d[off] = 0; // magic
    let e = load(&d).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::Btf(_)), "{e}");
    assert!(e.to_string().contains("section .BTF"), "{e}");

    // A type id out of range: the first type after the 24-byte header is an INT or a PTR;
    // point a PTR at an impossible id.
    let d = bytes("net_v1.bpf.o");
    let (off, size) = section_range(&d, ".BTF");
    let btf = &d[off..off + size];
    let mut found = false;
    let type_off = u32::from_le_bytes(btf[8..12].try_into().unwrap()) as usize + 24;
    let mut patched = btf.to_vec();
    // Find the first PTR record by scanning for info word kind=2, vlen=0.
    let mut pos = type_off;
    while pos + 12 <= patched.len() {
        let info = u32::from_le_bytes(patched[pos + 4..pos + 8].try_into().unwrap());
        if info == 2 << 24 {
            patched[pos + 8..pos + 12].copy_from_slice(&0x7fff_ffffu32.to_le_bytes());
            found = true;
            break;
        }
        pos += 4;
    }
    assert!(found);
    let e = load_btf(&patched).unwrap_err();
    assert!(e.to_string().contains("type id 2147483647"), "{e}");
}

#[test]
fn bad_btf_ext_is_reported() {
    let mut d = bytes("net_v1.bpf.o");
    let (off, size) = section_range(&d, ".BTF.ext");
    // Claim a func_info block far past the end.
    d[off + 12..off + 16].copy_from_slice(&(size as u32 * 4).to_le_bytes());
    let e = load(&d).unwrap_err();
    assert!(matches!(e.kind, ErrorKind::BtfExt(_)), "{e}");
    assert!(e.to_string().contains("section .BTF.ext"), "{e}");
}

#[test]
fn code_section_not_whole_instructions() {
    // Shrinking a code section's size by 4 leaves half an instruction.
    let mut d = bytes("net_v1.bpf.o");
    let f = ElfFile64::<object::Endianness>::parse(&*d).unwrap();
    let idx = f.section_by_name("socket").unwrap().index().0;
    let shoff = u64::from_le_bytes(d[0x28..0x30].try_into().unwrap()) as usize;
    let size_at = shoff + idx * 64 + 32;
    let size = u64::from_le_bytes(d[size_at..size_at + 8].try_into().unwrap());
    d[size_at..size_at + 8].copy_from_slice(&(size - 4).to_le_bytes());
    let e = load(&d).unwrap_err();
    assert_eq!(e.section.as_deref(), Some("socket"), "{e}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Bit flips and truncations of the real objects: Ok or Err, never a panic.
    #[test]
    fn mutated_objects_never_panic(
        which in 0..OBJECTS.len(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let mut d = bytes(OBJECTS[which]);
        for (i, bit) in flips {
            let i = i.index(d.len());
            d[i] ^= 1 << bit;
        }
        if let Some(c) = cut {
            let c = c.index(d.len());
            d.truncate(c);
        }
        let _ = load(&d);
        let _ = load_btf(&d);
    }

    /// Mutations aimed at the BTF and BTF.ext sections, where the parsers are our own.
    #[test]
    fn mutated_btf_never_panics(
        which in 0..OBJECTS.len(),
        ext in any::<bool>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut d = bytes(OBJECTS[which]);
        let (off, size) = section_range(&d, if ext { ".BTF.ext" } else { ".BTF" });
        for (i, v) in flips {
            let i = off + i.index(size);
            d[i] = v;
        }
        let _ = load(&d);
    }

    /// Arbitrary words written into the symbol table, a relocation table or the map
    /// definitions, where offsets and sizes feed the loader's arithmetic.
    #[test]
    fn mutated_tables_never_panic(
        which in 0..OBJECTS.len(),
        table in 0usize..3,
        pos in any::<prop::sample::Index>(),
        value in any::<u64>(),
    ) {
        let mut d = bytes(OBJECTS[which]);
        let f = ElfFile64::<object::Endianness>::parse(&*d).unwrap();
        let want = |n: &str| match table {
            0 => n == ".symtab",
            1 => n.starts_with(".rel") && !n.contains("debug"),
            _ => n == ".maps" || n == "maps" || n == ".BTF",
        };
        let ranges: Vec<(usize, usize)> = f
            .sections()
            .filter(|s| s.name().is_ok_and(want))
            .map(|s| {
                let h = s.elf_section_header();
                (h.sh_offset(f.endian()) as usize, h.sh_size(f.endian()) as usize)
            })
            .filter(|&(_, size)| size >= 8)
            .collect();
        drop(f);
        if let Some(&(off, size)) = ranges.get(pos.index(ranges.len().max(1))) {
            let at = off + pos.index(size - 7) / 4 * 4;
            d[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let _ = load(&d);
    }

    /// Arbitrary bytes as a package never panic.
    #[test]
    fn garbage_packages_never_panic(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = load_package(&data, "x.json", &LoadOptions::default());
    }
}

#[test]
fn committed_objects_match_a_fresh_build() {
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang-22".into());
    if std::process::Command::new(&clang)
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: {clang} is not installed");
        return;
    }
    let out = std::env::temp_dir().join(format!("ebpf-sim-testdata-{}", std::process::id()));
    let script = common::testdata().join("build.sh");
    let status = std::process::Command::new("sh")
        .arg(&script)
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "build.sh failed");
    for name in OBJECTS {
        let fresh = std::fs::read(out.join(name)).unwrap();
        assert!(
            fresh == bytes(name),
            "{name} differs from a fresh build: run testdata/build.sh"
        );
    }
    let _ = std::fs::remove_dir_all(&out);
}
