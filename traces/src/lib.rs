//! Trace ingestion: from distributed-trace files to the kernel's dependency graph.
//!
//! Readers for the formats a user will have — Alibaba's microservice call-graph CSV (v2021
//! `MSCallGraph`, v2022 `CallGraph`, plain or gzip), Jaeger JSON, Zipkin v2 JSON and OTLP/JSON —
//! turn records into [`Call`]s (`caller → callee` at a time). A [`WindowedGraph`] keeps the
//! calls of a sliding window (default 60 s of trace time) as weighted edges of a
//! [`kernel::DependencyGraph`], expiring old calls incrementally, so recovery groups can be
//! inferred online. [`synth`] generates Alibaba-scale and Meta-scale graphs, calibrated to
//! published shape statistics, for the offline experiments and the benchmarks, and [`stats`]
//! measures any graph the way the paper does.
//!
//! Errors: in the default strict mode the first malformed record stops ingestion with a
//! [`TraceError`] naming the file, the line (or JSON path) and the field; with
//! [`IngestOptions::lenient`] malformed records are skipped and counted by reason in the
//! [`IngestSummary`]. Nothing here panics on input.
//!
//! Memory: CSV is read row by row; Jaeger traces one trace at a time; Zipkin one trace array
//! (or one flat document) at a time; OTLP one export request (document or JSON line) at a time,
//! because a trace's spans are spread over a request's resources.

pub mod alibaba;
pub mod jaeger;
mod json_stream;
pub mod otlp;
pub mod spans;
pub mod stats;
pub mod synth;
pub mod window;
pub mod zipkin;

pub use window::WindowedGraph;

use kernel::{EdgeKind, ServiceKind};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{BufRead, BufReader};
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
    /// Jaeger query-API / UI export JSON.
    Jaeger,
    /// Zipkin v2 JSON.
    Zipkin,
    /// OTLP/JSON (`ExportTraceServiceRequest`, one document or JSON lines).
    Otlp,
}

impl Format {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Alibaba => "alibaba",
            Format::Jaeger => "jaeger",
            Format::Zipkin => "zipkin",
            Format::Otlp => "otlp",
        }
    }

    /// Guesses the format from the first bytes of the (decompressed) input: `{"data"` is
    /// Jaeger, `{"resourceSpans"` OTLP, `[` Zipkin, anything else CSV.
    pub fn sniff(head: &[u8]) -> Format {
        let text = String::from_utf8_lossy(head);
        let trimmed = text.trim_start_matches('\u{feff}').trim_start();
        if trimmed.starts_with('[') {
            Format::Zipkin
        } else if trimmed.starts_with('{') {
            if trimmed.contains("resourceSpans") || trimmed.contains("resource_spans") {
                Format::Otlp
            } else {
                Format::Jaeger
            }
        } else {
            Format::Alibaba
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Opens `path`, decompressing gzip transparently (detected by magic bytes).
pub fn open(path: &Path) -> Result<Box<dyn BufRead>, TraceError> {
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
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let head = reader.fill_buf().map_err(|e| {
        TraceError::new(
            &name,
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
    mut input: Box<dyn BufRead>,
    source_name: &str,
    format: Option<Format>,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<(Format, IngestSummary), TraceError> {
    let format = match format {
        Some(f) => f,
        None => {
            let head = input.fill_buf().map_err(|e| io_error(source_name, &e))?;
            if head.is_empty() {
                return Err(TraceError::new(
                    source_name,
                    Location::Input,
                    ".",
                    "empty input",
                    "the input is empty",
                ));
            }
            Format::sniff(head)
        }
    };
    let summary = match format {
        Format::Alibaba => alibaba::read(input, source_name, options, sink)?,
        Format::Jaeger => jaeger::read(input, source_name, options, sink)?,
        Format::Zipkin => zipkin::read(input, source_name, options, sink)?,
        Format::Otlp => otlp::read(input, source_name, options, sink)?,
    };
    Ok((format, summary))
}

/// Reads the file at `path` (see [`ingest`]).
pub fn ingest_path(
    path: &Path,
    format: Option<Format>,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<(Format, IngestSummary), TraceError> {
    let name = path.display().to_string();
    ingest(open(path)?, &name, format, options, sink)
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
