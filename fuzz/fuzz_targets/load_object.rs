//! Any bytes as an ELF object (ELF, BTF, BTF.ext, relocations, CO-RE) or as raw BTF:
//! the loader returns Ok or Err, never panics.
#![no_main]

use ebpf_sim_loader::{load_btf, load_object, summary, LoadOptions, Loaded};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = load_object(data, "fuzz.bpf.o", &LoadOptions::default()) {
        // Whatever loads must also print.
        let loaded = Loaded::Object(obj);
        let _ = summary::inspect_text(&loaded);
        let _ = summary::inspect_json(&loaded);
        for p in &loaded.object().programs {
            let _ = summary::disasm_with_source(p, |insns, i| format!("{:?}", insns[i]));
        }
    }
    if let Ok(btf) = load_btf(data) {
        for (id, _) in btf.types() {
            let _ = btf.type_name(id);
            let _ = btf.size_of(id);
        }
    }
});
