//! `microreboot infer`: recovery groups for a symptom (or every service) from traces.

use super::source::GraphSource;
use kernel::groups::{GroupConfig, Inference, Inferred};
use kernel::isa::IncidentId;
use kernel::{DependencyGraph, RecoveryScope};
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: GraphSource,
    /// The symptom service (the deepest service whose own SLO alert fires).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    symptom: Option<String>,
    /// Infer for every service instead of one symptom.
    #[arg(long)]
    all: bool,
    /// Print JSON (one scope object; with --all, one JSON object per line).
    #[arg(long)]
    json: bool,
    /// Incident id written into the scope.
    #[arg(long, default_value = "incident")]
    incident: String,
    /// Largest scope, in services.
    #[arg(long, default_value_t = kernel::MAX_GROUP_SIZE)]
    max_group_size: usize,
    /// Fan-in above which a service needs a drain around its restart.
    #[arg(long, default_value_t = kernel::HUB_FAN_IN)]
    hub_fan_in: usize,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        args.max_group_size > 0,
        "--max-group-size must be at least 1"
    );
    let loaded = args.source.load()?;
    let graph = &loaded.graph;
    let incident = IncidentId::try_from(args.incident.as_str())
        .map_err(|e| anyhow::anyhow!("--incident: {e}"))?;
    let config = GroupConfig {
        max_group_size: args.max_group_size,
        hub_fan_in: args.hub_fan_in,
    };
    if !args.json {
        outln!("{}", loaded.description);
    }
    let mut inference = Inference::new();
    if args.all {
        for (id, service) in graph.services() {
            let r = inference.infer(graph, id, incident.clone(), config);
            if args.json {
                outln!("{}", serde_json::to_string(&scope_json(&r))?);
            } else {
                outln!(
                    "{}: scope {} services, {} groups in {} layers, {} hub(s) to drain{}",
                    service.name,
                    r.scope.len(),
                    r.scope.groups().len(),
                    r.scope.layers().len(),
                    r.scope.hubs().len(),
                    if r.truncated { ", truncated" } else { "" }
                );
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let symptom = args
        .symptom
        .as_deref()
        .expect("clap requires --symptom without --all");
    let Some(id) = graph.id(symptom) else {
        anyhow::bail!(
            "no service `{symptom}` in the graph; {}",
            suggest(graph, symptom)
        );
    };
    let r = inference.infer(graph, id, incident, config);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&scope_json(&r))?);
    } else {
        print_scope(&r.scope, r.truncated)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn scope_json(r: &Inferred) -> serde_json::Value {
    let mut v = serde_json::to_value(r.scope.to_file()).expect("scopes serialise");
    v["is_truncated"] = serde_json::Value::Bool(r.truncated);
    v
}

fn print_scope(scope: &RecoveryScope, truncated: bool) -> anyhow::Result<()> {
    outln!("symptom: {}", scope.symptom());
    outln!(
        "scope: {} services{}",
        scope.len(),
        if truncated {
            " (truncated at the size cap)"
        } else {
            ""
        }
    );
    outln!("restart order (callees first; a layer's groups may restart in parallel):");
    for (i, layer) in scope.layers().iter().enumerate() {
        let groups: Vec<String> = layer
            .iter()
            .map(|&g| format!("[{}]", scope.groups()[g].members.join(", ")))
            .collect();
        outln!("  layer {i}: {}", groups.join(" "));
    }
    let file = scope.to_file();
    if !file.startup_order.is_empty() {
        let pairs: Vec<String> = file
            .startup_order
            .iter()
            .map(|(a, b)| format!("{a} before {b}"))
            .collect();
        outln!("start-up order inside groups: {}", pairs.join("; "));
    }
    if scope.hubs().is_empty() {
        outln!("hubs needing drain: none");
    } else {
        outln!("hubs needing drain: {}", scope.hubs().join(", "));
    }
    if !scope.truncated().is_empty() {
        let total = scope
            .to_file()
            .truncated_total
            .unwrap_or(scope.truncated().len());
        let more = total.saturating_sub(scope.truncated().len());
        let suffix = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        outln!(
            "left out by the cap: {}{suffix}",
            scope.truncated().join(", ")
        );
    }
    Ok(())
}

/// A hint listing services whose names contain the asked-for text.
fn suggest(graph: &DependencyGraph, wanted: &str) -> String {
    let lower = wanted.to_ascii_lowercase();
    let close: Vec<&str> = graph
        .services()
        .map(|(_, s)| s.name.as_str())
        .filter(|n| {
            n.to_ascii_lowercase().contains(&lower) || lower.contains(&n.to_ascii_lowercase())
        })
        .take(8)
        .collect();
    if close.is_empty() {
        format!(
            "it has {} services (try --all to list them)",
            graph.service_count()
        )
    } else {
        format!("did you mean one of: {}?", close.join(", "))
    }
}
