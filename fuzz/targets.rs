//! The bodies of the fuzz targets, shared by cargo-fuzz (`fuzz_targets/*.rs`) and by the corpus
//! replay that runs as an ordinary test (`tests/fuzz_corpus.rs` in the root package), so what CI
//! replays is exactly what the fuzzer explored. Each body must never panic on any input; the
//! assertions inside are the targets' own invariants.

use std::io::{BufReader, Cursor};
use traces::{Format, IngestOptions, ingest};

/// A trace reader in strict and lenient mode: a summary or an error, never a panic, and a read
/// that succeeds accounts for every call it produced.
pub fn trace(format: Format, data: &[u8]) {
    for lenient in [false, true] {
        let input = Box::new(BufReader::new(Cursor::new(data.to_vec())));
        let mut calls = 0u64;
        if let Ok((_, summary)) = ingest(
            input,
            "fuzz",
            Some(format),
            IngestOptions { lenient },
            &mut |_| calls += 1,
        ) {
            assert_eq!(summary.calls, calls);
        }
    }
}

/// The plan parser and, for plans that parse, the validator against the example graph; an
/// accepted verdict never lists a violation.
pub fn plan_json(data: &[u8]) {
    use kernel::validate::{KernelView, validate};
    use kernel::{DependencyGraph, Plan, RecoveryScope};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(plan) = Plan::from_json_str(text, "fuzz") else {
        return;
    };
    let graph =
        DependencyGraph::from_json_str(include_str!("../kernel/examples/graph.json"), "graph.json")
            .expect("the example graph parses");
    let scope =
        RecoveryScope::from_json_str(include_str!("../kernel/examples/scope.json"), "scope.json")
            .expect("the example scope parses");
    let verdict = validate(&plan, &graph, &scope, &KernelView::idle());
    assert_eq!(verdict.accepted(), verdict.violations.is_empty());
}

/// The evaluation configuration (`eval --config FILE`): a configuration that parses prints back
/// as TOML that parses to the same configuration.
pub fn eval_toml(data: &[u8]) {
    use experiments::eval::EvalConfig;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(cfg) = EvalConfig::from_toml(text, "fuzz.toml") {
        let printed = toml::to_string(&cfg).expect("a parsed configuration serialises");
        let back = EvalConfig::from_toml(&printed, "printed.toml")
            .expect("a printed configuration parses");
        assert_eq!(back, cfg);
    }
}

/// A real model's reply: a plan or an error naming why not, never a panic.
pub fn llm_reply(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = agents::real_llm::parse_plan(text);
}

/// A target's cargo-fuzz name and body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by its cargo-fuzz name.
pub const TARGETS: &[Target] = &[
    ("alibaba_csv", |d| trace(Format::Alibaba, d)),
    ("jaeger_json", |d| trace(Format::Jaeger, d)),
    ("zipkin_json", |d| trace(Format::Zipkin, d)),
    ("otlp_json", |d| trace(Format::Otlp, d)),
    ("plan_json", plan_json),
    ("eval_toml", eval_toml),
    ("llm_reply", llm_reply),
];
