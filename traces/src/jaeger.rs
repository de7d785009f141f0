//! Jaeger JSON: the query API's `GET /api/traces…` response and the UI's "Download JSON"
//! export, `{"data": [trace, …]}` with `spans[]` and `processes{}` per trace. One document or
//! several (JSON lines); traces are read and converted one at a time.
//!
//! Per span: `spanID`, `references[]` (the `CHILD_OF` or `FOLLOWS_FROM` reference in the same
//! trace is the parent), `processID` → `processes[id].serviceName` (or an embedded `process`),
//! `startTime` (µs), and the tags `span.kind`, `peer.service`, `db.system`, `server.address`,
//! `net.peer.name`.

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, emit_trace, normalise_id};
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
    #[serde(rename = "spanID")]
    span_id: String,
}

#[derive(Deserialize)]
struct Tag {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

#[derive(Deserialize, Clone)]
struct Process {
    #[serde(rename = "serviceName", default)]
    service_name: Option<String>,
}

/// Reads Jaeger JSON, handing every call to `sink`.
pub fn read(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    sink: &mut dyn FnMut(&Call<'_>),
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
            sink: &mut *sink,
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
    sink: &'s mut dyn FnMut(&Call<'_>),
    index: usize,
    /// A strict-mode error found inside a trace (serde cannot carry it through).
    failure: Option<TraceError>,
}

impl State<'_> {
    fn trace(&mut self, trace: Trace) {
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
                    let path = format!("data[{at}].spans[{i}].{field}");
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
        emit_trace(&mut spans, self.summary, &mut *self.sink);
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
    let service = process
        .service_name
        .filter(|n| !n.is_empty())
        .ok_or(("processID", "the process has no serviceName".to_string()))?;
    let trace_id = s
        .trace_id
        .as_deref()
        .or(trace_id)
        .ok_or(("traceID", "missing".to_string()))?;
    let parent = s
        .references
        .iter()
        .find(|r| matches!(r.ref_type.as_deref(), None | Some("CHILD_OF")))
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
        shared: false,
        peer: tag("peer.service")
            .or_else(|| tag("server.address"))
            .or_else(|| tag("net.peer.name")),
        db_system: tag("db.system").or_else(|| tag("db.type")),
    })
}

/// The top-level object: streams `data[]`, ignores everything else.
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
        f.write_str(r#"a Jaeger document {"data": [traces]}"#)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            if key == "data" {
                map.next_value_seed(Traces(&mut *self.0))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
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
            self.0.trace(trace);
        }
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(()) // "data": null
    }
}
