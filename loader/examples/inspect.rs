//! Prints the loader's summary of a file: `cargo run -p ebpf-sim-loader --example inspect FILE [--json] [--btf PATH] [--disasm PROG]`.
use ebpf_sim_loader::{load_btf_file, load_file, summary, LoadOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        eprintln!("usage: inspect FILE [--json] [--btf PATH] [--disasm PROG]");
        std::process::exit(2);
    };
    let mut opts = LoadOptions::default();
    if let Some(i) = args.iter().position(|a| a == "--btf") {
        let p = &args[i + 1];
        opts.target_btf = Some((
            p.clone(),
            load_btf_file(p).unwrap_or_else(|e| panic!("{e}")),
        ));
    }
    let loaded = match load_file(path, &opts) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    if let Some(i) = args.iter().position(|a| a == "--disasm") {
        let prog = loaded
            .object()
            .program(&args[i + 1])
            .expect("no such program");
        print!(
            "{}",
            summary::disasm_with_source(prog, |insns, i| {
                let x = insns[i];
                format!(
                    "{:02x} dst=r{} src={} off={} imm={}",
                    x.code, x.dst, x.src, x.off, x.imm
                )
            })
        );
    } else if args.iter().any(|a| a == "--json") {
        println!(
            "{}",
            serde_json::to_string_pretty(&summary::inspect_json(&loaded)).unwrap()
        );
    } else {
        print!("{}", summary::inspect_text(&loaded));
    }
}
