//! Fuzz the plan parser and, for plans that parse, the validator against the example graph.
#![no_main]

use kernel::validate::{KernelView, validate};
use kernel::{DependencyGraph, Plan, RecoveryScope};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(plan) = Plan::from_json_str(text, "fuzz") else { return };
    let graph = DependencyGraph::from_json_str(include_str!("../../kernel/examples/graph.json"), "g").unwrap();
    let scope = RecoveryScope::from_json_str(include_str!("../../kernel/examples/scope.json"), "s").unwrap();
    let _ = validate(&plan, &graph, &scope, &KernelView::idle());
});
