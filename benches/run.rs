//! Events per second of `run`: a tracepoint program doing a hash map update and a ring
//! buffer output per event, replayed through the simulator (contexts, tasks, helpers,
//! records) on each engine, with and without formatting the output.

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ebpf_sim::engine::Engine;
use ebpf_sim::loader::{load_file, LoadOptions};
use ebpf_sim::sim::machine::Machine;
use ebpf_sim::sim::output::{OutputInfo, Plain};
use ebpf_sim::sim::run::replay;
use ebpf_sim::sim::trace::Trace;
use ebpf_sim::vm::kernel::KernelConfig;

const EVENTS: usize = 10_000;

fn trace() -> Trace {
    let mut events = Vec::with_capacity(EVENTS);
    for i in 0..EVENTS {
        let pid = 1000 + (i % 64);
        events.push(format!(
            r#"{{"hook": "tp/syscalls/sys_enter_write", "time_ns": {}, "cpu": {}, "task": {pid}, "args": [1, 0, {}]}}"#,
            1_000 + i * 1_000,
            i % 2,
            i % 512
        ));
    }
    let tasks: Vec<String> = (0..64)
        .map(|i| format!(r#"{{"pid": {}, "comm": "writer{i}"}}"#, 1000 + i))
        .collect();
    let text = format!(
        r#"{{"tasks": [{}], "events": [{}]}}"#,
        tasks.join(","),
        events.join(",")
    );
    Trace::parse(&text, "bench").unwrap()
}

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/obj/bench_run.bpf.o");
    let loaded = load_file(&path, &LoadOptions::default()).unwrap();
    let trace = trace();
    let mut group = c.benchmark_group("run_events");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.sample_size(10);
    for engine in Engine::available() {
        let mut machine = Machine::new(
            loaded.object().clone(),
            KernelConfig::default(),
            engine,
            1_000_000,
        )
        .unwrap();
        let attached = vec![true; machine.programs.len()];
        // Sanity: one record per event plus one return each.
        let r = replay(&mut machine, &trace, &attached, &[]);
        assert!(r.error.is_none());
        assert_eq!(r.records.len(), 2 * EVENTS);
        group.bench_function(BenchmarkId::new("replay", engine), |b| {
            b.iter(|| black_box(replay(&mut machine, &trace, &attached, &[]).records.len()))
        });
        let object = machine.object.clone();
        group.bench_function(BenchmarkId::new("replay+plain output", engine), |b| {
            b.iter(|| {
                let r = replay(&mut machine, &trace, &attached, &[]);
                let mut plain = Plain::new(OutputInfo::new(&object, None, 0, false));
                let n: usize = r.records.iter().map(|rec| plain.record(rec).len()).sum();
                black_box(n)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
