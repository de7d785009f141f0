//! Where a dependency graph comes from: a trace file, a graph JSON file or a generator.

use super::read_text;
use kernel::DependencyGraph;
use std::path::{Path, PathBuf};
use traces::{Format, IngestOptions, WindowedGraph};

/// A trace format on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Detect from the content.
    Auto,
    /// Alibaba v2021/v2022 call-graph CSV (plain or gzip).
    Alibaba,
    /// Jaeger JSON.
    Jaeger,
    /// Jaeger `/api/dependencies` JSON (a graph: parent, child, callCount).
    JaegerDependencies,
    /// Zipkin v2 JSON.
    Zipkin,
    /// Zipkin v1 JSON (annotations, binaryAnnotations).
    ZipkinV1,
    /// OTLP/JSON (also Grafana Tempo's `batches`, and JSON lines).
    Otlp,
    /// A span table in CSV (see --columns).
    SpanCsv,
}

impl FormatArg {
    pub fn format(self) -> Option<Format> {
        match self {
            FormatArg::Auto => None,
            FormatArg::Alibaba => Some(Format::Alibaba),
            FormatArg::Jaeger => Some(Format::Jaeger),
            FormatArg::JaegerDependencies => Some(Format::JaegerDependencies),
            FormatArg::Zipkin => Some(Format::Zipkin),
            FormatArg::ZipkinV1 => Some(Format::ZipkinV1),
            FormatArg::Otlp => Some(Format::Otlp),
            FormatArg::SpanCsv => Some(Format::SpanCsv),
        }
    }
}

/// A window length in microseconds; `None` keeps every call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(pub Option<u64>);

/// Parses a window length: `60s`, `500ms`, `2m`, `1h`, a bare number of seconds, or `all`.
pub fn parse_window(text: &str) -> Result<Window, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("all") {
        return Ok(Window(None));
    }
    let (number, unit_us) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1_000.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1e6)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60e6)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600e6)
    } else {
        (t, 1e6)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * unit_us < 1e15 => {
            Ok(Window(Some((v * unit_us) as u64)))
        }
        _ => Err(format!(
            "`{text}` is not a window length (examples: 60s, 500ms, 2m, all)"
        )),
    }
}

/// Parses `--columns`.
pub fn parse_columns(text: &str) -> Result<traces::SpanColumns, String> {
    traces::SpanColumns::parse(text)
}

/// Graph sources shared by `infer`, `graph` and `bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct GraphSource {
    /// Build the graph from a trace file (`-`: standard input): Alibaba CSV[.gz], Jaeger
    /// (with or without `data`), Jaeger dependencies, Zipkin v1/v2, OTLP (also Tempo
    /// `batches`, JSON lines) or a span CSV.
    #[arg(long, conflicts_with_all = ["graph", "generate"])]
    pub trace: Option<PathBuf>,
    /// Trace format.
    #[arg(long, value_enum, default_value_t = FormatArg::Auto)]
    pub format: FormatArg,
    /// Columns of a span CSV, e.g. trace=TraceID,span=SpanID,parent=ParentID,service=Svc,
    /// start=StartTime[,end=EndTime][,operation=Op][,kind=Kind][,unit=ns]; `pod=PodName`
    /// instead of `service=` strips Kubernetes `-<replicaset>-<pod>` suffixes. Without it the
    /// columns are found from common header names.
    #[arg(long, value_parser = parse_columns)]
    pub columns: Option<traces::SpanColumns>,
    /// Sliding window of trace time the graph covers, ending at the newest span (e.g. 60s,
    /// 5m, all). Default: the whole input, since a file is an offline export whose older
    /// calls are as much part of the system as its newest.
    #[arg(long, value_parser = parse_window)]
    pub window: Option<Window>,
    /// Skip and count malformed trace records instead of stopping at the first.
    #[arg(long)]
    pub lenient: bool,
    /// Read a dependency graph JSON file (kernel format).
    #[arg(long, conflicts_with = "generate")]
    pub graph: Option<PathBuf>,
    /// Generate an industrial-scale graph: alibaba (5,459 services), meta (392), meta-full
    /// (18,571).
    #[arg(long, value_enum)]
    pub generate: Option<Generated>,
    /// Seed for --generate.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Generated graphs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Generated {
    /// Alibaba-like, 5,459 services / 11,690 edges.
    Alibaba,
    /// Meta-like, 392 services.
    Meta,
    /// Meta-like, all 18,571 services.
    MetaFull,
}

impl Generated {
    /// Builds the graph.
    pub fn build(self, seed: u64) -> DependencyGraph {
        match self {
            Generated::Alibaba => traces::synth::alibaba_like(seed),
            Generated::Meta => traces::synth::meta_like(traces::synth::META_PAPER_SERVICES, seed),
            Generated::MetaFull => {
                traces::synth::meta_like(traces::synth::META_FULL_SERVICES, seed)
            }
        }
    }
}

/// A loaded graph with a description of where it came from.
pub struct Loaded {
    pub graph: DependencyGraph,
    pub description: String,
}

impl GraphSource {
    /// Loads the graph the arguments name.
    pub fn load(&self) -> anyhow::Result<Loaded> {
        if let Some(path) = &self.trace {
            return load_trace(
                path,
                self.format,
                self.window.and_then(|w| w.0),
                self.columns.as_ref(),
                self.lenient,
            );
        }
        if let Some(path) = &self.graph {
            let graph =
                DependencyGraph::from_json_str(&read_text(path)?, &path.display().to_string())?;
            return Ok(Loaded {
                description: format!("{} ({graph})", path.display()),
                graph,
            });
        }
        if let Some(which) = self.generate {
            let graph = which.build(self.seed);
            return Ok(Loaded {
                description: format!(
                    "generated {which:?}-like graph, seed {} ({graph})",
                    self.seed
                ),
                graph,
            });
        }
        anyhow::bail!(
            "name a graph: --trace FILE, --graph FILE.json or --generate alibaba|meta|meta-full"
        )
    }
}

fn load_trace(
    path: &Path,
    format: FormatArg,
    window: Option<u64>,
    columns: Option<&traces::SpanColumns>,
    lenient: bool,
) -> anyhow::Result<Loaded> {
    let name = traces::source_name(path);
    let input = traces::open(path)?;
    // Dependency links carry no times (all at 0), so a window never expires any of them.
    let mut windowed = WindowedGraph::new(window);
    let (format, summary) = traces::ingest_with(
        input,
        &name,
        format.format(),
        IngestOptions { lenient },
        columns,
        &mut |c, n| windowed.ingest_count(c, n),
    )?;
    if summary.records == 0 {
        anyhow::bail!(
            "{name}: no trace records found as {} (is it a trace file? choose the format with --format)",
            format.label()
        );
    }
    let window_text = match window {
        _ if format.is_graph_only() => "a dependency graph (no times, so no window)".to_string(),
        Some(w) => format!("{} s window", w as f64 / 1e6),
        None => "the whole input".to_string(),
    };
    let late = windowed.late();
    let expired = windowed.expired();
    let graph = windowed.into_graph();
    let mut description = format!("{name} ({format}): {summary}; {window_text}");
    if late > 0 {
        description += &format!(", {late} calls older than the window ignored");
    }
    if expired > 0 {
        description +=
            &format!(", {expired} calls expired from the window (--window all keeps every call)");
    }
    description += &format!(" -> graph {graph}");
    Ok(Loaded { graph, description })
}
