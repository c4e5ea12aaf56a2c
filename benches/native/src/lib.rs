//! Native C versions of the programs of the JIT benchmark (`benches/jit.rs` of the root
//! package), compiled by `build.rs` with the system C compiler at `-O2`.
//!
//! Each program exists twice: [`SCALAR`] is `-O2` without auto-vectorisation and without
//! the loop-to-`memcpy` rewrite (the same scalar work as the eBPF code), [`VECTOR`] is
//! plain `-O2`. Every function is `extern "C" fn(buf, len) -> u64`; `prime_count` takes
//! its bound in `len`.

/// The signature of every native program.
pub type NativeFn = unsafe extern "C" fn(*mut u8, u64) -> u64;

/// The compiler `cc` used (its `--version` line).
pub const COMPILER: &str = env!("NATIVE_CC_VERSION");

unsafe extern "C" {
    fn sca_empty(p: *mut u8, len: u64) -> u64;
    fn sca_prime_count(p: *mut u8, len: u64) -> u64;
    fn sca_fnv1a(p: *mut u8, len: u64) -> u64;
    fn sca_copy(p: *mut u8, len: u64) -> u64;
    fn sca_switch_sm(p: *mut u8, len: u64) -> u64;
    fn sca_sort(p: *mut u8, len: u64) -> u64;
    fn sca_parse(p: *mut u8, len: u64) -> u64;
    fn sca_csum(p: *mut u8, len: u64) -> u64;
    fn sca_crc32(p: *mut u8, len: u64) -> u64;
    fn sca_calls(p: *mut u8, len: u64) -> u64;
    fn vec_empty(p: *mut u8, len: u64) -> u64;
    fn vec_prime_count(p: *mut u8, len: u64) -> u64;
    fn vec_fnv1a(p: *mut u8, len: u64) -> u64;
    fn vec_copy(p: *mut u8, len: u64) -> u64;
    fn vec_switch_sm(p: *mut u8, len: u64) -> u64;
    fn vec_sort(p: *mut u8, len: u64) -> u64;
    fn vec_parse(p: *mut u8, len: u64) -> u64;
    fn vec_csum(p: *mut u8, len: u64) -> u64;
    fn vec_crc32(p: *mut u8, len: u64) -> u64;
    fn vec_calls(p: *mut u8, len: u64) -> u64;
}

/// The programs compiled with `-O2 -fno-tree-vectorize -fno-tree-loop-distribute-patterns`, by name.
pub const SCALAR: &[(&str, NativeFn)] = &[
    ("empty", sca_empty),
    ("prime_count", sca_prime_count),
    ("fnv1a", sca_fnv1a),
    ("copy", sca_copy),
    ("switch_sm", sca_switch_sm),
    ("sort", sca_sort),
    ("parse", sca_parse),
    ("csum", sca_csum),
    ("crc32", sca_crc32),
    ("calls", sca_calls),
];

/// The programs compiled with plain `-O2`, by name.
pub const VECTOR: &[(&str, NativeFn)] = &[
    ("empty", vec_empty),
    ("prime_count", vec_prime_count),
    ("fnv1a", vec_fnv1a),
    ("copy", vec_copy),
    ("switch_sm", vec_switch_sm),
    ("sort", vec_sort),
    ("parse", vec_parse),
    ("csum", vec_csum),
    ("crc32", vec_crc32),
    ("calls", vec_calls),
];

/// The function called `name` in `table`.
pub fn get(table: &[(&str, NativeFn)], name: &str) -> NativeFn {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no native program {name}"))
        .1
}
