//! `microreboot topology …`: topology files (the schema of `deathstarbench/data/deathstarbench.json`)
//! from traces, for `sim`, `scenario` and `eval --topology`.

use super::source::{FormatArg, parse_columns};
use std::path::PathBuf;
use std::process::ExitCode;
use traces::IngestOptions;
use traces::topology::TopologyBuilder;

#[derive(Debug, clap::Subcommand)]
pub enum Topology {
    /// Build a topology (services and kinds, edges, workloads with weights, staged call trees,
    /// service times, replicas) from Jaeger, Zipkin, OTLP or span-CSV traces, for `sim`,
    /// `scenario` and `eval --topology` (see docs/topology.md).
    FromTraces(FromTraces),
}

#[derive(Debug, clap::Args)]
pub struct FromTraces {
    /// A trace file (`-`: standard input); repeat for several. Spans are needed: a Jaeger
    /// dependencies file or an Alibaba call graph is refused with what it lacks.
    #[arg(long = "trace", required = true, value_name = "FILE")]
    traces: Vec<PathBuf>,
    /// Trace format (of every file).
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    format: FormatArg,
    /// Columns of a span CSV, as for `infer` (start= and end= give the durations).
    #[arg(long, value_parser = parse_columns)]
    columns: Option<traces::SpanColumns>,
    /// Skip and count malformed spans instead of stopping at the first.
    #[arg(long)]
    lenient: bool,
    /// Name of the application in the topology (what `--app` then selects).
    #[arg(long, default_value = "twin")]
    app: String,
    /// Output topology JSON.
    #[arg(long)]
    out: PathBuf,
}

pub fn run(cmd: Topology) -> anyhow::Result<ExitCode> {
    match cmd {
        Topology::FromTraces(args) => from_traces(args),
    }
}

fn from_traces(args: FromTraces) -> anyhow::Result<ExitCode> {
    let mut builder = TopologyBuilder::default();
    let mut sources = Vec::new();
    let mut read = Vec::new();
    for path in &args.traces {
        let name = traces::source_name(path);
        let input = traces::open(path)?;
        let (format, summary) = traces::ingest_spans(
            input,
            &name,
            args.format.format(),
            IngestOptions {
                lenient: args.lenient,
            },
            args.columns.as_ref(),
            &mut |spans, summary| builder.add_trace(spans, summary),
        )?;
        if summary.records == 0 {
            anyhow::bail!(
                "{name}: no spans found as {} (is it a trace file? choose the format with --format)",
                format.label()
            );
        }
        read.push(format!(
            "{name} ({format}): {} spans, {} requests",
            summary.records, summary.calls
        ));
        let mut notes = Vec::new();
        for (reason, n) in &summary.dropped {
            notes.push(format!("{n} {reason}"));
        }
        if summary.skipped_total() > 0 {
            notes.push(format!("{} malformed skipped", summary.skipped_total()));
        }
        if summary.cycles_total > 0 {
            notes.push(format!("{} parent loops ignored", summary.cycles_total));
        }
        if !notes.is_empty() {
            let last = read.len() - 1;
            read[last] += &format!(" ({})", notes.join(", "));
        }
        sources.push(name);
    }
    if builder.is_empty() {
        anyhow::bail!(
            "no request found: no trace has a root span (a span without a parent, or a shared \
             server span without a caller); spans whose parent is missing are orphans, cut off \
             from their request. Read: {}",
            read.join("; ")
        );
    }
    let file = builder.build(&args.app, &format!("traces: {}", sources.join(", ")));
    let mut text = serde_json::to_string_pretty(&file)?;
    text.push('\n');
    // The file must load as a topology the simulator can run.
    let out_name = args.out.display().to_string();
    let parsed = deathstarbench::parse(&text, &out_name)?;
    let spec = deathstarbench::select(
        &parsed,
        &args.app,
        &out_name,
        &deathstarbench::Deployment::default(),
    )?;
    std::fs::write(&args.out, &text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    for line in &read {
        outln!("{line}");
    }
    if builder.too_deep() > 0 {
        outln!(
            "note: {} calls nested deeper than {} service hops were cut",
            builder.too_deep(),
            traces::topology::MAX_DEPTH
        );
    }
    let app = &file.apps[0];
    outln!(
        "wrote {}: application `{}`, {} services, {} edges, {} workloads ({})",
        args.out.display(),
        args.app,
        spec.services.len(),
        app.edges.len(),
        app.workloads.len(),
        app.workloads
            .iter()
            .map(|w| format!("{} {:.0} %", w.name, w.weight * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}
