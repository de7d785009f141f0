//! `microreboot validate`: one plan, one verdict.

use super::read_text;
use kernel::validate::{KernelView, validate};
use kernel::{DependencyGraph, Plan, RecoveryScope};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Dependency graph (JSON; see kernel/examples/graph.json).
    #[arg(long)]
    graph: PathBuf,
    /// The incident's recovery scope (JSON; see kernel/examples/scope.json).
    #[arg(long)]
    scope: PathBuf,
    /// The plan to validate (JSON; see kernel/examples/plan-*.json).
    #[arg(long)]
    plan: PathBuf,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when accepted, 1 when rejected; input errors propagate (exit 2).
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let name = |p: &PathBuf| p.display().to_string();
    let graph = DependencyGraph::from_json_str(&read_text(&args.graph)?, &name(&args.graph))?;
    let scope = RecoveryScope::from_json_str(&read_text(&args.scope)?, &name(&args.scope))?;
    let plan = Plan::from_json_str(&read_text(&args.plan)?, &name(&args.plan))?;
    let verdict = validate(&plan, &graph, &scope, &KernelView::idle());
    if args.json {
        let out = serde_json::json!({
            "accepted": verdict.accepted(),
            "incident": verdict.incident,
            "violations": verdict.violations,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        outln!("{verdict}");
    }
    Ok(if verdict.accepted() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
