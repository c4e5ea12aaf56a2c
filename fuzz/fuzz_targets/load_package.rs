//! Any bytes as an eunomia package (JSON, base64, zlib, then the object): Ok or Err.
#![no_main]

use ebpf_sim_loader::{package::load_package, LoadOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = load_package(data, "fuzz.package.json", &LoadOptions::default());
});
