//! Jaeger JSON: the query API's `GET /api/traces…` response and the UI's "Download JSON"
//! export, `{"data": [trace, …]}` with `spans[]` and `processes{}` per trace, or one trace
//! object without the wrapper (`{"traceID", "spans", "processes"}`, what the single-trace view
//! saves and many test fixtures are). One document or several (JSON lines); traces are read
//! and converted one at a time. Error paths are `data[i].spans[j].field`, or
//! `spans[j].field` for a bare trace.
//!
//! Per span: `spanID`, `references[]` (the parent is the first `CHILD_OF` reference in the
//! span's own trace, else its first reference in that trace, else its first reference; a
//! reference into another trace names no span of this one), `processID` → `processes[id].serviceName` (or an embedded `process`),
//! `startTime` and `duration` (µs), the process tags `hostname`/`ip` (the instance), and the tags `span.kind`, `peer.service`, `db.system`, `server.address`,
//! `net.peer.name`.

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, TraceHandler, emit_trace, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, TraceError};
use serde::Deserialize;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

#[derive(Deserialize)]
struct Trace {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(default)]
    spans: Vec<JSpan>,
    #[serde(default)]
    processes: BTreeMap<String, Process>,
}

#[derive(Deserialize)]
struct JSpan {
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanID", default)]
    span_id: Option<String>,
    #[serde(rename = "operationName", default)]
    operation: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(rename = "startTime", default)]
    start_time: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    tags: Vec<Tag>,
    #[serde(rename = "processID", default)]
    process_id: Option<String>,
    #[serde(default)]
    process: Option<Process>,
}

#[derive(Deserialize)]
struct Reference {
    #[serde(rename = "refType", default)]
    ref_type: Option<String>,
    #[serde(rename = "traceID", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize, Clone)]
struct Tag {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize, Clone)]
struct Process {
    #[serde(rename = "serviceName", default)]
    service_name: Option<String>,
    #[serde(default)]
    tags: Vec<Tag>,
}

impl Process {
    /// The instance a process tag names: `hostname`, else `ip`, else the client's
    /// `client-uuid`.
    fn instance(&self) -> Option<String> {
        ["hostname", "ip", "client-uuid"].iter().find_map(|key| {
            self.tags
                .iter()
                .find(|t| t.key == *key)
                .and_then(|t| match &t.value {
                    serde_json::Value::String(v) if !v.is_empty() => Some(v.clone()),
                    serde_json::Value::Null | serde_json::Value::String(_) => None,
                    other => Some(other.to_string()),
                })
        })
    }
}

/// Reads Jaeger JSON, handing every call to `sink`.
pub fn read(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
) -> Result<IngestSummary, TraceError> {
    read_traces(input, source, options, &mut |spans, summary| {
        emit_trace(spans, summary, sink)
    })
}

/// Reads Jaeger JSON, handing every whole trace's spans to `on_trace`.
pub fn read_traces(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    on_trace: &mut TraceHandler<'_>,
) -> Result<IngestSummary, TraceError> {
    let mut docs = Documents::new(input, source);
    let mut summary = IngestSummary::default();
    each_document(&mut docs, options, &mut summary, |docs, summary| {
        let line = docs.line();
        let mut state = State {
            source,
            line,
            options,
            summary,
            on_trace: &mut *on_trace,
            index: 0,
            failure: None,
        };
        docs.parse(Document(&mut state))?;
        match state.failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })?;
    Ok(summary)
}

struct State<'s> {
    source: &'s str,
    line: u64,
    options: IngestOptions,
    summary: &'s mut IngestSummary,
    on_trace: &'s mut TraceHandler<'s>,
    index: usize,
    /// A strict-mode error found inside a trace (serde cannot carry it through).
    failure: Option<TraceError>,
}

impl State<'_> {
    /// Converts one trace; `wrapped` says whether it came from `data[]` (for error paths).
    fn trace(&mut self, trace: Trace, wrapped: bool) {
        let at = self.index;
        self.index += 1;
        if self.failure.is_some() {
            return;
        }
        let mut spans = Vec::with_capacity(trace.spans.len());
        for (i, s) in trace.spans.into_iter().enumerate() {
            match convert(s, &trace.processes, trace.trace_id.as_deref()) {
                Ok(span) => spans.push(span),
                Err((field, message)) => {
                    let path = if wrapped {
                        format!("data[{at}].spans[{i}].{field}")
                    } else {
                        format!("spans[{i}].{field}")
                    };
                    let counted = self.summary.incomplete_span(
                        self.options,
                        self.source,
                        self.line,
                        path,
                        message,
                    );
                    if let Err(e) = counted {
                        self.failure = Some(e);
                        return;
                    }
                }
            }
        }
        (self.on_trace)(&mut spans, self.summary);
    }
}

fn convert(
    s: JSpan,
    processes: &BTreeMap<String, Process>,
    trace_id: Option<&str>,
) -> Result<Span, (&'static str, String)> {
    let span_id = s.span_id.ok_or(("spanID", "missing".to_string()))?;
    let process = match (&s.process, &s.process_id) {
        (Some(p), _) => p.clone(),
        (None, Some(pid)) => processes.get(pid).cloned().ok_or((
            "processID",
            format!("`{pid}` is not in the trace's processes"),
        ))?,
        (None, None) => return Err(("processID", "missing".to_string())),
    };
    let instance = process.instance();
    let service = process
        .service_name
        .filter(|n| !n.is_empty())
        .ok_or(("processID", "the process has no serviceName".to_string()))?;
    let trace_id = s
        .trace_id
        .as_deref()
        .or(trace_id)
        .ok_or(("traceID", "missing".to_string()))?;
    let same_trace = |r: &&Reference| r.trace_id.as_deref().is_none_or(|t| same_id(t, trace_id));
    let parent = s
        .references
        .iter()
        .filter(same_trace)
        .find(|r| matches!(r.ref_type.as_deref(), None | Some("CHILD_OF")))
        .or_else(|| s.references.iter().find(same_trace))
        .or_else(|| s.references.first())
        .map(|r| normalise_id(&r.span_id));
    let tag = |key: &str| {
        s.tags
            .iter()
            .find(|t| t.key == key)
            .and_then(|t| match &t.value {
                serde_json::Value::String(v) => Some(v.clone()),
                serde_json::Value::Null => None,
                other => Some(other.to_string()),
            })
    };
    Ok(Span {
        trace_id: normalise_id(trace_id),
        span_id: normalise_id(&span_id),
        parent_id: parent,
        service,
        name: s.operation.unwrap_or_default(),
        kind: tag("span.kind").map_or(SpanKind::Unspecified, |k| SpanKind::parse(&k)),
        start_us: s.start_time.unwrap_or(0),
        duration_us: s.duration,
        instance,
        shared: false,
        peer: tag("peer.service")
            .or_else(|| tag("server.address"))
            .or_else(|| tag("net.peer.name")),
        db_system: tag("db.system").or_else(|| tag("db.type")),
    })
}

/// Whether two hex ids are the same id (case and leading zeros aside: clients pad 64-bit
/// trace ids to 16 or 32 digits, or not at all).
fn same_id(a: &str, b: &str) -> bool {
    let a = a.trim().trim_start_matches('0');
    let b = b.trim().trim_start_matches('0');
    a.eq_ignore_ascii_case(b)
}

/// The top-level object: streams `data[]`; a bare trace's `traceID`, `spans` and `processes`
/// are collected and converted at the end of the object (its processes may follow its
/// spans); everything else is ignored.
struct Document<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Document<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(r#"a Jaeger document {"data": [traces]} or one trace {"traceID", "spans", "processes"}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut bare: Option<Trace> = None;
        fn bare_part(bare: &mut Option<Trace>) -> &mut Trace {
            bare.get_or_insert_with(|| Trace {
                trace_id: None,
                spans: Vec::new(),
                processes: BTreeMap::new(),
            })
        }
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "data" => map.next_value_seed(Traces(&mut *self.0))?,
                "traceID" => bare_part(&mut bare).trace_id = map.next_value()?,
                "spans" => bare_part(&mut bare).spans = map.next_value()?,
                "processes" => bare_part(&mut bare).processes = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(trace) = bare {
            self.0.trace(trace, false);
        }
        Ok(())
    }
}

struct Traces<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Traces<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Traces<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of Jaeger traces")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(trace) = seq.next_element::<Trace>()? {
            self.0.trace(trace, true);
        }
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // "data": null
    }
}
