//! Fixtures shared by the kernel's behaviour tests.
#![allow(dead_code)]

use kernel::{DependencyGraph, Plan, RecoveryScope};

pub fn example(name: &str) -> String {
    let path = format!("{}/examples/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub fn graph() -> DependencyGraph {
    DependencyGraph::from_json_str(&example("graph.json"), "graph.json").unwrap()
}

pub fn scope() -> RecoveryScope {
    RecoveryScope::from_json_str(&example("scope.json"), "scope.json").unwrap()
}

/// A plan for the example incident from the JSON text of its stages.
pub fn plan(stages: &str) -> Plan {
    plan_with(stages, "[]")
}

pub fn plan_with(stages: &str, leases: &str) -> Plan {
    let text = format!(r#"{{"incident": "inc-rate-1", "stages": {stages}, "leases": {leases}}}"#);
    Plan::from_json_str(&text, "test-plan").unwrap_or_else(|e| panic!("{e}"))
}

/// `cases` proptest cases from a fixed RNG seed, so CI runs the same cases every time; set
/// `PROPTEST_RNG_SEED` (or `PROPTEST_CASES`) to explore others.
pub fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    let env = proptest::test_runner::Config::default();
    proptest::test_runner::Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            env.cases
        } else {
            cases
        },
        rng_seed: match env.rng_seed {
            proptest::test_runner::RngSeed::Random => {
                proptest::test_runner::RngSeed::Fixed(0x6d69_6372_6f72)
            }
            fixed => fixed,
        },
        failure_persistence: None,
        ..env
    }
}
