//! A span table in CSV, as RCA datasets publish traces (Nezha, RCAEval, TrainTicket exports):
//! one row per span with trace id, span id, parent span id, service (or the Kubernetes pod it
//! ran in), start time and optionally end time, operation and span kind.
//!
//! The columns are named by a mapping ([`SpanColumns::parse`], the CLI's `--columns
//! trace=TraceID,span=SpanID,parent=ParentID,pod=PodName,start=StartTimeUnixNano`) or found
//! in the header ([`SpanColumns::detect`], case-insensitive, `_`/`-`/spaces ignored):
//! `TraceID`, `SpanID`, `ParentID`/`ParentSpanID`, `ServiceName`/`Service` or else
//! `PodName`/`Pod`, `StartTime`/`StartTimeUnixNano`/`Timestamp`, `EndTime`, `OperationName`,
//! `SpanKind`/`Kind`.
//!
//! - **Pods**: a pod column names a replica, not a service; its Deployment suffix
//!   `-<replicaset hash>-<pod hash>` (`frontend-579b9bff58-t2dbm` → `frontend`) is stripped,
//!   so replicas of one service are one node.
//! - **Roots**: a parent of `root`, empty, `0`, `-1`, `null` or `None` means no parent.
//! - **Times**: epoch timestamps whose unit follows from their size (≥ 1e17 ns, ≥ 1e14 µs,
//!   ≥ 1e11 ms, else s), so ns, µs and ms exports all work without a flag; `unit=ns|us|ms|s`
//!   in the mapping fixes it.
//!
//! Rows need not be grouped by trace, so every span is held until the end of the input, then
//! converted trace by trace with the rules of [`crate::spans`]. Malformed rows (a missing id or
//! service, a time that is no number) are errors naming line and column in strict mode and
//! counted skips in lenient mode.

use crate::spans::{Span, SpanKind, TraceAssembler, TraceHandler, emit_trace, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, Location, TraceError, io_error};
use std::io::BufRead;

/// A time unit for the start column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeUnit {
    /// Chosen from each value's magnitude.
    Auto,
    /// Nanoseconds.
    Ns,
    /// Microseconds.
    Us,
    /// Milliseconds.
    Ms,
    /// Seconds.
    S,
}

/// Which column holds what, by header name (matched case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpanColumns {
    /// Trace id column.
    pub trace: String,
    /// Span id column.
    pub span: String,
    /// Parent span id column.
    pub parent: String,
    /// Service column; `pod` says it holds pod names to strip.
    pub service: String,
    /// The service column holds Kubernetes pod names (`<service>-<rs hash>-<pod hash>`).
    pub pod: bool,
    /// Start time column.
    pub start: String,
    /// End time column (calls need only the start; span durations and topologies the end).
    pub end: Option<String>,
    /// Operation name column.
    pub operation: Option<String>,
    /// Span kind column (`client`, `SERVER`, `SPAN_KIND_CLIENT`, …).
    pub kind: Option<String>,
    /// Unit of the start column.
    pub unit: TimeUnit,
}

const KEYS: &str =
    "trace, span, parent, service or pod, start, and optionally end, operation, kind, unit";

impl SpanColumns {
    /// Parses `trace=TraceID,span=SpanID,parent=ParentID,service=Svc,start=Start[,end=End]
    /// [,operation=Op][,kind=Kind][,pod=PodName][,unit=ns]`.
    pub fn parse(spec: &str) -> Result<SpanColumns, String> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("`{part}` is not key=column (keys: {KEYS})"))?;
            pairs.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
        let find = |k: &str| {
            pairs
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        for (k, _) in &pairs {
            if !matches!(
                k.as_str(),
                "trace"
                    | "span"
                    | "parent"
                    | "service"
                    | "pod"
                    | "start"
                    | "end"
                    | "operation"
                    | "kind"
                    | "unit"
            ) {
                return Err(format!("unknown key `{k}` (keys: {KEYS})"));
            }
        }
        let need =
            |k: &str| find(k).ok_or_else(|| format!("`{k}=COLUMN` is missing (keys: {KEYS})"));
        let (service, pod) = match (find("service"), find("pod")) {
            (Some(s), None) => (s, false),
            (None, Some(p)) => (p, true),
            (Some(_), Some(_)) => return Err("give `service=` or `pod=`, not both".into()),
            (None, None) => {
                return Err(format!(
                    "`service=COLUMN` (or `pod=COLUMN`) is missing (keys: {KEYS})"
                ));
            }
        };
        let unit = match find("unit").as_deref() {
            None | Some("auto") => TimeUnit::Auto,
            Some("ns") => TimeUnit::Ns,
            Some("us" | "µs") => TimeUnit::Us,
            Some("ms") => TimeUnit::Ms,
            Some("s") => TimeUnit::S,
            Some(other) => return Err(format!("unit `{other}` is not ns, us, ms, s or auto")),
        };
        Ok(SpanColumns {
            trace: need("trace")?,
            span: need("span")?,
            parent: need("parent")?,
            service,
            pod,
            start: need("start")?,
            end: find("end"),
            operation: find("operation"),
            kind: find("kind"),
            unit,
        })
    }

    /// Finds the columns in a header line by common names; the error says which are missing.
    pub fn detect(header: &str) -> Result<SpanColumns, String> {
        let names: Vec<&str> = header
            .split(',')
            .map(|f| f.trim().trim_start_matches('\u{feff}').trim_matches('"'))
            .collect();
        let key = |n: &str| {
            n.chars()
                .filter(|c| !matches!(c, '_' | '-' | ' ' | '.'))
                .collect::<String>()
                .to_ascii_lowercase()
        };
        let find = |wanted: &[&str]| {
            names
                .iter()
                .find(|n| wanted.contains(&key(n).as_str()))
                .map(|n| n.to_string())
        };
        let trace = find(&["traceid", "trace"]);
        let span = find(&["spanid", "span"]);
        let parent = find(&["parentid", "parentspanid", "parent", "parentspan"]);
        let service = find(&["servicename", "service"]);
        let pod = find(&["podname", "pod"]);
        let start = find(&[
            "starttime",
            "starttimeunixnano",
            "start",
            "starttimestamp",
            "timestamp",
            "startts",
        ]);
        let mut missing = Vec::new();
        for (what, found) in [
            ("trace", &trace),
            ("span", &span),
            ("parent", &parent),
            ("start", &start),
        ] {
            if found.is_none() {
                missing.push(what);
            }
        }
        if service.is_none() && pod.is_none() {
            missing.push("service (or pod)");
        }
        if !missing.is_empty() {
            return Err(format!(
                "the header names no {} (found: {})",
                missing
                    .iter()
                    .map(|m| format!("{m} column"))
                    .collect::<Vec<_>>()
                    .join(", no "),
                names.join(",")
            ));
        }
        let (service, pod) = match service {
            Some(s) => (s, false),
            None => (pod.unwrap_or_default(), true),
        };
        Ok(SpanColumns {
            trace: trace.unwrap_or_default(),
            span: span.unwrap_or_default(),
            parent: parent.unwrap_or_default(),
            service,
            pod,
            start: start.unwrap_or_default(),
            end: find(&["endtime", "endtimeunixnano", "end", "endtimestamp", "endts"]),
            operation: find(&["operationname", "operation", "spanname", "name"]),
            kind: find(&["spankind", "kind"]),
            unit: TimeUnit::Auto,
        })
    }
}

/// The service a Kubernetes pod name belongs to: a Deployment's pods are named
/// `<deployment>-<replicaset hash>-<pod hash>` (hash of 6–10 and suffix of 5 lower-case
/// alphanumerics); anything else is kept whole.
pub fn service_of_pod(pod: &str) -> &str {
    let alnum = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    let Some((rest, suffix)) = pod.rsplit_once('-') else {
        return pod;
    };
    let Some((service, hash)) = rest.rsplit_once('-') else {
        return pod;
    };
    if suffix.len() == 5
        && (6..=10).contains(&hash.len())
        && alnum(suffix)
        && alnum(hash)
        && !service.is_empty()
    {
        service
    } else {
        pod
    }
}

struct Resolved {
    trace: usize,
    span: usize,
    parent: usize,
    service: usize,
    start: usize,
    end: Option<usize>,
    operation: Option<usize>,
    kind: Option<usize>,
}

/// Reads a span CSV with `columns` (or the mapping found in its header), handing every call to
/// `sink`.
pub fn read(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    columns: Option<&SpanColumns>,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<IngestSummary, TraceError> {
    read_traces(input, source, options, columns, &mut |spans, summary| {
        emit_trace(spans, summary, sink)
    })
}

/// Reads a span CSV, handing every whole trace's spans to `on_trace`.
pub fn read_traces(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    columns: Option<&SpanColumns>,
    on_trace: &mut TraceHandler<'_>,
) -> Result<IngestSummary, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(input);
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            if let csv::ErrorKind::Io(io) = e.kind() {
                return Err(io_error(source, io));
            }
            return Err(TraceError::new(
                source,
                Location::Line(1),
                ".",
                "bad header",
                format!("CSV error: {e}"),
            ));
        }
    };
    let header_line: Vec<&str> = header.iter().collect();
    if header_line.iter().all(|h| h.trim().is_empty()) {
        return Err(TraceError::new(
            source,
            Location::Input,
            ".",
            "empty input",
            "the input is empty",
        ));
    }
    let detected;
    let columns = match columns {
        Some(c) => c,
        None => {
            detected = SpanColumns::detect(&header_line.join(",")).map_err(|m| {
                TraceError::new(source, Location::Line(1), ".", "bad header", format!("{m}; name the columns with a mapping (--columns trace=…,span=…,parent=…,service=…,start=…)"))
            })?;
            &detected
        }
    };
    let position = |name: &str, what: &str| {
        header_line
            .iter()
            .position(|h| {
                h.trim()
                    .trim_start_matches('\u{feff}')
                    .eq_ignore_ascii_case(name)
            })
            .ok_or_else(|| {
                TraceError::new(
                    source,
                    Location::Line(1),
                    name,
                    "bad header",
                    format!(
                        "the {what} column `{name}` is not in the header (found: {})",
                        header_line.join(",")
                    ),
                )
            })
    };
    let cols = Resolved {
        trace: position(&columns.trace, "trace")?,
        span: position(&columns.span, "span")?,
        parent: position(&columns.parent, "parent")?,
        service: position(
            &columns.service,
            if columns.pod { "pod" } else { "service" },
        )?,
        start: position(&columns.start, "start")?,
        end: columns
            .end
            .as_deref()
            .map(|c| position(c, "end"))
            .transpose()?,
        operation: columns
            .operation
            .as_deref()
            .map(|c| position(c, "operation"))
            .transpose()?,
        kind: columns
            .kind
            .as_deref()
            .map(|c| position(c, "kind"))
            .transpose()?,
    };
    let name = |i: usize| header_line[i].to_string();
    let mut summary = IngestSummary::default();
    let mut traces = TraceAssembler::default();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                if let csv::ErrorKind::Io(io) = e.kind() {
                    return Err(io_error(source, io));
                }
                summary.records += 1;
                let line = e
                    .position()
                    .map_or(Location::Input, |p| Location::Line(p.line()));
                let reason = if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    "not UTF-8"
                } else {
                    "unparsable row"
                };
                summary.malformed(
                    options,
                    TraceError::new(source, line, ".", reason, format!("CSV error: {e}")),
                )?;
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).map(str::trim);
        let problem = |i: usize, message: &str| {
            TraceError::new(
                source,
                Location::Line(line),
                name(i),
                "incomplete span",
                message,
            )
        };
        let required = |i: usize| match field(i) {
            None => Err(problem(i, "missing (the row is too short)")),
            Some("") => Err(problem(i, "empty")),
            Some(v) => Ok(v),
        };
        let row = (|| {
            let trace = required(cols.trace)?;
            let span = required(cols.span)?;
            let service = required(cols.service)?;
            let start_text = required(cols.start)?;
            let start_us = to_us(start_text, columns.unit).ok_or_else(|| {
                TraceError::new(
                    source,
                    Location::Line(line),
                    name(cols.start),
                    "bad time",
                    format!("`{start_text}` is not a time"),
                )
            })?;
            let end_us = match cols.end.and_then(field).filter(|e| !e.is_empty()) {
                None => None,
                Some(end_text) => Some(to_us(end_text, columns.unit).ok_or_else(|| {
                    TraceError::new(
                        source,
                        Location::Line(line),
                        name(cols.end.unwrap_or(cols.start)),
                        "bad time",
                        format!("`{end_text}` is not a time"),
                    )
                })?),
            };
            let parent = field(cols.parent).filter(|p| {
                !matches!(
                    *p,
                    "" | "root" | "0" | "-1" | "null" | "None" | "nan" | "NaN"
                )
            });
            let (service, instance) = if columns.pod {
                (service_of_pod(service), Some(service.to_string()))
            } else {
                (service, None)
            };
            Ok(Span {
                trace_id: normalise_id(trace),
                span_id: normalise_id(span),
                parent_id: parent.map(normalise_id),
                service: service.to_string(),
                name: cols
                    .operation
                    .and_then(field)
                    .unwrap_or_default()
                    .to_string(),
                kind: cols
                    .kind
                    .and_then(field)
                    .map_or(SpanKind::Unspecified, SpanKind::parse),
                start_us,
                duration_us: end_us.map(|end| end.saturating_sub(start_us)),
                instance,
                ..Span::default()
            })
        })();
        match row {
            Ok(span) => traces.push(span),
            Err(e) => {
                summary.records += 1;
                summary.malformed(options, e)?;
            }
        }
    }
    traces.flush(&mut summary, on_trace);
    Ok(summary)
}

/// A start time in microseconds.
fn to_us(text: &str, unit: TimeUnit) -> Option<u64> {
    let v: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite() && *v >= 0.0)?;
    let unit = match unit {
        TimeUnit::Auto if v >= 1e17 => TimeUnit::Ns,
        TimeUnit::Auto if v >= 1e14 => TimeUnit::Us,
        TimeUnit::Auto if v >= 1e11 => TimeUnit::Ms,
        TimeUnit::Auto => TimeUnit::S,
        u => u,
    };
    // Integers are converted exactly (f64 would round nanosecond timestamps).
    if let Ok(n) = text.parse::<u64>() {
        return Some(match unit {
            TimeUnit::Ns => n / 1000,
            TimeUnit::Us | TimeUnit::Auto => n,
            TimeUnit::Ms => n.saturating_mul(1000),
            TimeUnit::S => n.saturating_mul(1_000_000),
        });
    }
    let scale = match unit {
        TimeUnit::Ns => 1e-3,
        TimeUnit::Us | TimeUnit::Auto => 1.0,
        TimeUnit::Ms => 1e3,
        TimeUnit::S => 1e6,
    };
    Some((v * scale) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_suffixes_are_stripped_only_when_they_look_like_a_deployment_pod() {
        assert_eq!(service_of_pod("frontend-579b9bff58-t2dbm"), "frontend");
        assert_eq!(
            service_of_pod("ts-order-service-5b67c48447-fj8b7"),
            "ts-order-service"
        );
        assert_eq!(
            service_of_pod("currencyservice-cf787dd48-vpjrd"),
            "currencyservice"
        );
        assert_eq!(service_of_pod("redis-cart"), "redis-cart");
        assert_eq!(service_of_pod("mysql-0"), "mysql-0");
    }

    #[test]
    fn mappings_parse_and_headers_are_detected() {
        let c = SpanColumns::parse("trace=T,span=S,parent=P,pod=Pod,start=Begin,unit=ms").unwrap();
        assert!(c.pod);
        assert_eq!(c.unit, TimeUnit::Ms);
        assert!(
            SpanColumns::parse("trace=T,span=S,service=X")
                .unwrap_err()
                .contains("`parent=COLUMN` is missing")
        );
        assert!(
            SpanColumns::parse("trace=T,spam=S")
                .unwrap_err()
                .contains("unknown key `spam`")
        );
        let d = SpanColumns::detect(
            "traceId,spanId,parentSpanId,serviceName,startTime,endTime,operationName",
        )
        .unwrap();
        assert_eq!(
            (d.service.as_str(), d.pod, d.operation.as_deref()),
            ("serviceName", false, Some("operationName"))
        );
        assert!(
            SpanColumns::detect("a,b,c")
                .unwrap_err()
                .starts_with("the header names no trace column, no span column")
        );
    }

    #[test]
    fn time_units_follow_the_magnitude() {
        assert_eq!(
            to_us("1661273974730641486", TimeUnit::Auto),
            Some(1_661_273_974_730_641)
        );
        assert_eq!(
            to_us("1661273974730641", TimeUnit::Auto),
            Some(1_661_273_974_730_641)
        );
        assert_eq!(
            to_us("1661273974730", TimeUnit::Auto),
            Some(1_661_273_974_730_000)
        );
        assert_eq!(to_us("12", TimeUnit::Ms), Some(12_000));
        assert_eq!(to_us("x", TimeUnit::Auto), None);
    }
}
