//! Trace ingestion: from distributed-trace files to the kernel's dependency graph.
//!
//! Readers for the formats a user will have — Alibaba's microservice call-graph CSV (v2021
//! `MSCallGraph`, v2022 `CallGraph`, plain or gzip), Jaeger JSON (the query API's `{"data":
//! […]}` or one bare trace object), Jaeger's `/api/dependencies` links, Zipkin v1 and v2 JSON,
//! OTLP/JSON (`resourceSpans` or Grafana Tempo's `batches`, one document or JSON lines) and
//! span tables in CSV with a column mapping ([`SpanColumns`]) — turn records into [`Call`]s
//! (`caller → callee` at a time). [`detect`] picks the format from the first bytes and says
//! why; every error of a detected input carries that reason, and inputs that are no trace
//! (HTML, binary) are named as such. A [`WindowedGraph`] keeps the calls of a sliding window
//! as weighted edges of a [`kernel::DependencyGraph`], expiring old calls incrementally (and
//! counting them), so recovery groups can be inferred online; for a file, read it unbounded.
//! [`synth`] generates Alibaba-scale and Meta-scale graphs, calibrated to published shape
//! statistics, for the offline experiments and the benchmarks, and [`stats`] measures any
//! graph the way the paper does.
//!
//! Spans: [`ingest_spans`] hands each whole trace's spans (with durations and instances) to a
//! sink instead of calls, and [`topology`] builds from them a topology file (services, edges,
//! workloads with staged call trees, service times, replicas) for the simulator.
//!
//! Honest graphs: a span whose parent links loop (a self-parent, a reference cycle) gives no
//! edge and is listed in [`IngestSummary::cycles`]; a Zipkin shared server span is merged with
//! its client, and without one it is an entry point, not an orphan; a dependency file is a
//! graph without spans, and [`Format::lacks`] says what a consumer that needs spans will miss.
//!
//! Errors: in the default strict mode the first malformed record stops ingestion with a
//! [`TraceError`] naming the file, the line (or JSON path) and the field; with
//! [`IngestOptions::lenient`] malformed records are skipped and counted by reason in the
//! [`IngestSummary`]. Nothing here panics on input.
//!
//! Memory: CSV call graphs are read row by row; Jaeger traces one trace at a time; Zipkin one
//! trace array (or one flat document) at a time; OTLP one export request (document or JSON
//! line) at a time, because a trace's spans are spread over a request's resources; span CSVs
//! whole, since their rows need not be grouped by trace.

pub mod alibaba;
mod csv_rows;
pub mod detect;
pub mod jaeger;
pub mod jaeger_deps;
mod json_stream;
pub mod otlp;
pub mod span_csv;
pub mod spans;
pub mod stats;
pub mod synth;
pub mod topology;
pub mod window;
pub mod zipkin;
pub mod zipkin_v1;

pub use detect::{Detection, detect};
pub use span_csv::SpanColumns;
pub use window::WindowedGraph;

use kernel::{EdgeKind, ServiceKind};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// One end of a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// Service name (placeholders are made distinct, e.g. `(?) (caller of MS_3)`).
    pub name: &'a str,
    /// What the service is, as far as the trace tells.
    pub kind: ServiceKind,
    /// A placeholder for a service the trace does not name.
    pub unknown: bool,
}

/// One observed call `caller → callee`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call<'a> {
    /// Trace time, microseconds (the format's own epoch).
    pub time_us: u64,
    /// Calling service.
    pub caller: Endpoint<'a>,
    /// Called service.
    pub callee: Endpoint<'a>,
    /// Kind of dependency.
    pub kind: EdgeKind,
}

/// Ingestion options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IngestOptions {
    /// Skip and count malformed records instead of stopping at the first.
    pub lenient: bool,
}

/// What ingestion read, used and skipped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestSummary {
    /// Records read (CSV rows, spans).
    pub records: u64,
    /// Calls produced.
    pub calls: u64,
    /// Records that produced no call by design, by reason (self calls, duplicates, …).
    pub dropped: BTreeMap<&'static str, u64>,
    /// Malformed records skipped in lenient mode, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
    /// Where the first skipped record of each reason was.
    pub first_skip: BTreeMap<&'static str, String>,
    /// Spans whose parent links loop (self-parents and reference cycles), in the order found:
    /// their parent links are ignored, so no edge is invented from a loop. At most
    /// [`MAX_REPORTED_CYCLES`] are kept; [`Self::cycles_total`] counts all.
    pub cycles: Vec<ParentCycle>,
    /// Parent loops found, including those beyond [`MAX_REPORTED_CYCLES`].
    pub cycles_total: u64,
}

/// How many parent loops an [`IngestSummary`] lists by span id.
pub const MAX_REPORTED_CYCLES: usize = 8;

/// A loop of parent links in one trace: a span that is its own parent, or spans whose
/// references lead back to themselves. Real tracers never produce one; a broken client or a
/// hand-edited file can, and following it would invent edges between the spans' services.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParentCycle {
    /// Trace id.
    pub trace_id: String,
    /// Span ids in parent order, starting anywhere on the loop (one id for a self-parent).
    pub span_ids: Vec<String>,
}

impl fmt::Display for ParentCycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.span_ids.as_slice() {
            [one] => write!(f, "trace {}: span {one} is its own parent", self.trace_id),
            ids => write!(
                f,
                "trace {}: spans {} → {}",
                self.trace_id,
                ids.join(" → "),
                ids[0]
            ),
        }
    }
}

impl IngestSummary {
    pub(crate) fn drop(&mut self, reason: &'static str) {
        *self.dropped.entry(reason).or_default() += 1;
    }

    /// Records a malformed record: an error in strict mode, a counted skip in lenient mode.
    pub(crate) fn malformed(
        &mut self,
        options: IngestOptions,
        error: TraceError,
    ) -> Result<(), TraceError> {
        if !options.lenient {
            return Err(error);
        }
        let reason = error.reason;
        *self.skipped.entry(reason).or_default() += 1;
        self.first_skip
            .entry(reason)
            .or_insert_with(|| error.to_string());
        Ok(())
    }

    /// Records a span, in the JSON document that starts on `line`, that lacks what `field` (its
    /// JSON path) should hold: it counts as a record, then as [`Self::malformed`].
    pub(crate) fn incomplete_span(
        &mut self,
        options: IngestOptions,
        source: &str,
        line: u64,
        field: String,
        message: String,
    ) -> Result<(), TraceError> {
        self.records += 1;
        let error = TraceError::new(
            source,
            Location::Line(line),
            field,
            "incomplete span",
            message,
        );
        self.malformed(options, error)
    }

    /// Total malformed records skipped.
    pub fn skipped_total(&self) -> u64 {
        self.skipped.values().sum()
    }

    pub(crate) fn cycle(&mut self, cycle: ParentCycle) {
        self.cycles_total += 1;
        if self.cycles.len() < MAX_REPORTED_CYCLES {
            self.cycles.push(cycle);
        }
    }
}

impl fmt::Display for IngestSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} records, {} calls", self.records, self.calls)?;
        for (reason, n) in &self.dropped {
            write!(f, "; {n} dropped ({reason})")?;
        }
        if !self.skipped.is_empty() {
            write!(f, "; {} malformed skipped:", self.skipped_total())?;
            for (reason, n) in &self.skipped {
                write!(f, " {n} {reason}")?;
                if let Some(first) = self.first_skip.get(reason) {
                    write!(f, " (first: {first})")?;
                }
                write!(f, ";")?;
            }
        }
        if self.cycles_total > 0 {
            let s = if self.cycles_total == 1 { "" } else { "s" };
            write!(
                f,
                "; {} parent loop{s} ignored (no edge taken from them): ",
                self.cycles_total
            )?;
            let listed: Vec<String> = self.cycles.iter().map(ToString::to_string).collect();
            write!(f, "{}", listed.join("; "))?;
            let more = self.cycles_total - self.cycles.len() as u64;
            if more > 0 {
                write!(f, "; and {more} more")?;
            }
        }
        Ok(())
    }
}

/// Where in an input a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// 1-based line.
    Line(u64),
    /// 1-based line and column.
    LineColumn(u64, u64),
    /// Nowhere in particular (the whole input).
    Input,
}

/// A malformed record or unreadable input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// File name or label.
    pub source_name: String,
    /// Where.
    pub location: Location,
    /// Offending field or JSON path (`.` for none).
    pub field: String,
    /// Short, stable reason used to count skips (`bad rt`, `wrong field count`, …).
    pub reason: &'static str,
    /// Full explanation.
    pub message: String,
}

impl TraceError {
    pub(crate) fn new(
        source_name: &str,
        location: Location,
        field: impl Into<String>,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        TraceError {
            source_name: source_name.to_string(),
            location,
            field: field.into(),
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source_name)?;
        match self.location {
            Location::Line(l) => write!(f, ":{l}")?,
            Location::LineColumn(l, c) => write!(f, ":{l}:{c}")?,
            Location::Input => {}
        }
        if self.field != "." && !self.field.is_empty() {
            write!(f, ": field `{}`", self.field)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for TraceError {}

/// Trace formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    /// Alibaba v2021/v2022 call-graph CSV (plain or gzip).
    Alibaba,
    /// Jaeger query-API / UI export JSON, with or without the `data` wrapper.
    Jaeger,
    /// Jaeger's `/api/dependencies` output: caller → callee links with call counts.
    JaegerDependencies,
    /// Zipkin v2 JSON.
    Zipkin,
    /// Zipkin v1 JSON (annotations and binary annotations).
    ZipkinV1,
    /// OTLP/JSON (`ExportTraceServiceRequest` or Grafana Tempo's `batches`, one document or
    /// JSON lines).
    Otlp,
    /// A span table in CSV with a column mapping ([`SpanColumns`]).
    SpanCsv,
}

impl Format {
    /// Every format, in the order of [`Format::as_str`]'s documentation.
    pub const ALL: [Format; 7] = [
        Format::Alibaba,
        Format::Jaeger,
        Format::JaegerDependencies,
        Format::Zipkin,
        Format::ZipkinV1,
        Format::Otlp,
        Format::SpanCsv,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Alibaba => "alibaba",
            Format::Jaeger => "jaeger",
            Format::JaegerDependencies => "jaeger-dependencies",
            Format::Zipkin => "zipkin",
            Format::ZipkinV1 => "zipkin-v1",
            Format::Otlp => "otlp",
            Format::SpanCsv => "span-csv",
        }
    }

    /// Name for messages.
    pub fn label(self) -> &'static str {
        match self {
            Format::Alibaba => "Alibaba call-graph CSV",
            Format::Jaeger => "Jaeger JSON",
            Format::JaegerDependencies => "Jaeger dependencies JSON",
            Format::Zipkin => "Zipkin v2 JSON",
            Format::ZipkinV1 => "Zipkin v1 JSON",
            Format::Otlp => "OTLP JSON",
            Format::SpanCsv => "span CSV",
        }
    }

    /// What the format cannot tell, for consumers that need more than a weighted graph (a
    /// topology built from traces needs operations, span kinds, timings and call trees).
    /// `None` for the span formats, which carry all of it.
    pub fn lacks(self) -> Option<&'static str> {
        match self {
            Format::JaegerDependencies => Some(
                "it is an aggregated dependency graph, not spans: it has caller → callee \
                 edges with call counts, but no operations, span kinds, timings, call trees \
                 or instances, and no times (windows do not apply)",
            ),
            Format::Alibaba => Some(
                "it has calls (caller, callee, rpc type, response time) but no span kinds \
                 or operation timings per span",
            ),
            _ => None,
        }
    }

    /// Whether the input is an aggregated graph rather than timed calls, so that a sliding
    /// window means nothing for it.
    pub fn is_graph_only(self) -> bool {
        self == Format::JaegerDependencies
    }

    /// Guesses the format from the first bytes of the (decompressed) input (see [`detect`]);
    /// inputs that are no trace fall back to [`Format::Alibaba`].
    pub fn sniff(head: &[u8]) -> Format {
        match detect(head) {
            Detection::Format(f, _) => f,
            _ => Format::Alibaba,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| format!("unknown trace format `{s}`"))
    }
}

/// Opens `path`, decompressing gzip transparently (detected by magic bytes). `-` is standard
/// input.
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, TraceError> {
    if path.as_os_str() == "-" {
        return reader(Box::new(std::io::stdin()), "<stdin>");
    }
    let name = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|e| {
        TraceError::new(
            &name,
            Location::Input,
            ".",
            "unreadable",
            format!("cannot open: {e}"),
        )
    })?;
    reader(Box::new(file), &name)
}

/// Wraps any byte stream (a file, standard input, a socket), decompressing gzip
/// transparently.
pub fn reader(input: Box<dyn Read>, name: &str) -> Result<Box<dyn BufRead>, TraceError> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let head = reader.fill_buf().map_err(|e| {
        TraceError::new(
            name,
            Location::Input,
            ".",
            "unreadable",
            format!("cannot read: {e}"),
        )
    })?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let gz = flate2::bufread::MultiGzDecoder::new(reader);
        Ok(Box::new(BufReader::with_capacity(1 << 16, gz)))
    } else {
        Ok(Box::new(reader))
    }
}

/// Reads `input` in `format` (or sniffs it), handing every call to `sink`.
pub fn ingest(
    input: Box<dyn BufRead>,
    source_name: &str,
    format: Option<Format>,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<(Format, IngestSummary), TraceError> {
    ingest_with(input, source_name, format, options, None, &mut |call, n| {
        for _ in 0..n {
            sink(call);
        }
    })
}

/// Like [`ingest`], with a span-CSV column mapping (`None`: detect it from the header) and a
/// sink that receives each call with the number of calls it stands for: 1 for a span or a
/// CSV row, `callCount` for a dependency link (which would be too many to repeat).
pub fn ingest_with(
    mut input: Box<dyn BufRead>,
    source_name: &str,
    format: Option<Format>,
    options: IngestOptions,
    columns: Option<&SpanColumns>,
    sink: &mut dyn FnMut(&Call<'_>, u64),
) -> Result<(Format, IngestSummary), TraceError> {
    let (format, why) = detect_format(&mut input, source_name, format)?;
    let result = match format {
        Format::JaegerDependencies => jaeger_deps::read(input, source_name, options, sink),
        _ => {
            let one = &mut |c: &Call<'_>| sink(c, 1);
            match format {
                Format::Alibaba => alibaba::read(input, source_name, options, one),
                Format::Jaeger => jaeger::read(input, source_name, options, one),
                Format::Zipkin => zipkin::read(input, source_name, options, one),
                Format::ZipkinV1 => zipkin_v1::read(input, source_name, options, one),
                Format::Otlp => otlp::read(input, source_name, options, one),
                Format::SpanCsv => span_csv::read(input, source_name, options, columns, one),
                Format::JaegerDependencies => unreachable!("handled above"),
            }
        }
    };
    match (result, why) {
        (Ok(summary), _) => Ok((format, summary)),
        (Err(e), None) => Err(e),
        (Err(mut e), Some(why)) => {
            e.message = format!(
                "{} (detected as {} because {why})",
                e.message,
                format.label()
            );
            Err(e)
        }
    }
}

/// Like [`ingest_with`], but hands each whole trace's spans to `on_trace` instead of calls (for
/// consumers that need operations, timings, instances and call trees, such as
/// [`topology`]). The spans of one trace arrive together; `on_trace` may resolve their parents
/// with [`spans::link_parents`]. Formats without spans ([`Format::lacks`]: Alibaba call graphs,
/// Jaeger dependency links) are refused with an error saying what they lack.
pub fn ingest_spans(
    mut input: Box<dyn BufRead>,
    source_name: &str,
    format: Option<Format>,
    options: IngestOptions,
    columns: Option<&SpanColumns>,
    on_trace: &mut spans::TraceHandler<'_>,
) -> Result<(Format, IngestSummary), TraceError> {
    let (format, why) = detect_format(&mut input, source_name, format)?;
    let result = match format {
        Format::Jaeger => jaeger::read_traces(input, source_name, options, on_trace),
        Format::Zipkin => zipkin::read_traces(input, source_name, options, on_trace),
        Format::ZipkinV1 => zipkin_v1::read_traces(input, source_name, options, on_trace),
        Format::Otlp => otlp::read_traces(input, source_name, options, on_trace),
        Format::SpanCsv => span_csv::read_traces(input, source_name, options, columns, on_trace),
        Format::Alibaba | Format::JaegerDependencies => {
            let what = format.lacks().unwrap_or("it has no spans");
            let why = why
                .map(|w| format!(" (detected because {w})"))
                .unwrap_or_default();
            return Err(TraceError::new(
                source_name,
                Location::Input,
                ".",
                "no spans",
                format!(
                    "this is {}{why}, which has no spans: {what}; a topology needs spans \
                     (export Jaeger, Zipkin or OTLP JSON, or a span CSV)",
                    format.label()
                ),
            ));
        }
    };
    match (result, why) {
        (Ok(summary), _) => Ok((format, summary)),
        (Err(e), None) => Err(e),
        (Err(mut e), Some(why)) => {
            e.message = format!(
                "{} (detected as {} because {why})",
                e.message,
                format.label()
            );
            Err(e)
        }
    }
}

/// The given format, or the detected one with the reason it was chosen.
fn detect_format(
    input: &mut Box<dyn BufRead>,
    source_name: &str,
    format: Option<Format>,
) -> Result<(Format, Option<String>), TraceError> {
    Ok(match format {
        Some(f) => (f, None),
        None => {
            let head = input.fill_buf().map_err(|e| io_error(source_name, &e))?;
            match detect(head) {
                Detection::Format(f, why) => (f, Some(why.to_string())),
                Detection::Empty => {
                    return Err(TraceError::new(
                        source_name,
                        Location::Input,
                        ".",
                        "empty input",
                        "the input is empty",
                    ));
                }
                Detection::NotATrace(what) => {
                    return Err(TraceError::new(
                        source_name,
                        Location::Line(1),
                        ".",
                        "not a trace",
                        what,
                    ));
                }
            }
        }
    })
}

/// Reads the file at `path` (see [`ingest`]); `-` is standard input.
pub fn ingest_path(
    path: &Path,
    format: Option<Format>,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<(Format, IngestSummary), TraceError> {
    let name = source_name(path);
    ingest(open(path)?, &name, format, options, sink)
}

/// The name errors use for `path` (`<stdin>` for `-`).
pub fn source_name(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    }
}

pub(crate) fn io_error(source_name: &str, e: &std::io::Error) -> TraceError {
    TraceError::new(
        source_name,
        Location::Input,
        ".",
        "unreadable",
        format!("read error (truncated or corrupt input?): {e}"),
    )
}

/// Placeholder names real traces use for services they could not name (DESIGN §2): they never
/// merge into one node.
pub fn is_placeholder(name: &str) -> bool {
    matches!(
        name,
        "" | "(?)" | "?" | "UNKNOWN" | "UNAVAILABLE" | "USER" | "NaN" | "nan" | "null" | "None"
    )
}
