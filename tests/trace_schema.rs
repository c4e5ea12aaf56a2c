//! docs/trace.schema.json and the trace parser agree: every trace in testdata/ is valid
//! under the schema and parses; broken traces fail both, naming the event.

use std::path::Path;

use ebpf_sim::sim::trace::Trace;

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/trace.schema.json"),
    )
    .unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is valid JSON Schema")
}

fn traces(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            traces(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") {
            out.push(p);
        }
    }
}

#[test]
fn every_testdata_trace_is_valid_and_parses() {
    let v = schema();
    let mut files = Vec::new();
    traces(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/traces"),
        &mut files,
    );
    assert!(files.len() >= 10, "found only {} traces", files.len());
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = v.iter_errors(&json).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {}", f.display(), errors.join("; "));
        Trace::parse(&text, &f.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
    }
    println!("{} traces valid under docs/trace.schema.json", files.len());
}

#[test]
fn broken_traces_fail_the_schema_and_the_parser() {
    let v = schema();
    for (text, message) in [
        (r#"[{"time_ns": 5}]"#, "event 0: missing field `hook`"),
        (
            r#"[{"hook": "xdp", "tim_ns": 5}]"#,
            "event 0: unknown field `tim_ns`",
        ),
        (
            r#"{"events": [{"hook": "xdp"}, {"hook": "xdp", "cpu": "one"}]}"#,
            "event 1: invalid type",
        ),
        (
            r#"{"events": [], "tasks": [{"comm": "x"}]}"#,
            "missing field `pid`",
        ),
    ] {
        let json: serde_json::Value = serde_json::from_str(text).unwrap();
        assert!(!v.is_valid(&json), "the schema accepts {text}");
        let e = Trace::parse(text, "t.json").unwrap_err().to_string();
        assert!(e.contains(message), "{text}: '{e}' lacks '{message}'");
    }
}
