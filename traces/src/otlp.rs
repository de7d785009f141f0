//! OTLP/JSON: `ExportTraceServiceRequest` documents, one per file or one per line (the
//! OpenTelemetry Collector's file exporter). A trace's spans are spread over the request's
//! resources (one per service), so each request is grouped by trace and converted at its end.
//!
//! Per span: `traceId`, `spanId`, `parentSpanId` (hex, any case; empty on roots), `kind` (enum
//! number or `SPAN_KIND_*` name), `name`, `startTimeUnixNano` (string or number), and the
//! attributes `peer.service`, `server.address`, `net.peer.name`, `db.system`; the service is the
//! resource attribute `service.name`. Pre-1.0 `instrumentationLibrarySpans` is accepted.

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, TraceAssembler, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, TraceError};
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "resourceSpans", alias = "resource_spans", default)]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
struct ResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(rename = "scopeSpans", alias = "instrumentationLibrarySpans", default)]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Deserialize)]
struct Resource {
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct ScopeSpans {
    #[serde(default)]
    spans: Vec<OSpan>,
}

#[derive(Deserialize)]
struct OSpan {
    #[serde(rename = "traceId", default)]
    trace_id: Option<String>,
    #[serde(rename = "spanId", default)]
    span_id: Option<String>,
    #[serde(rename = "parentSpanId", default)]
    parent_span_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    kind: Option<serde_json::Value>,
    #[serde(rename = "startTimeUnixNano", default)]
    start: Option<serde_json::Value>,
    #[serde(default)]
    attributes: Vec<KeyValue>,
}

#[derive(Deserialize)]
struct KeyValue {
    key: String,
    #[serde(default)]
    value: serde_json::Value,
}

fn attribute(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = &attrs.iter().find(|a| a.key == key)?.value;
    ["stringValue", "intValue", "doubleValue", "boolValue"]
        .iter()
        .find_map(|k| v.get(k))
        .map(|x| match x {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
}

/// Reads OTLP/JSON, handing every call to `sink`.
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
        let request: Request = docs.parse(std::marker::PhantomData)?;
        let mut traces = TraceAssembler::default();
        for (r, rs) in request.resource_spans.into_iter().enumerate() {
            let service = rs
                .resource
                .as_ref()
                .and_then(|res| attribute(&res.attributes, "service.name"));
            for (s, ss) in rs.scope_spans.into_iter().enumerate() {
                for (i, o) in ss.spans.into_iter().enumerate() {
                    let path = format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                    match convert(o, service.as_deref()) {
                        Ok(span) => traces.push(span),
                        Err((field, message)) => {
                            let path = format!("{path}.{field}");
                            summary.incomplete_span(options, source, line, path, message)?;
                        }
                    }
                }
            }
        }
        traces.flush(summary, &mut *sink);
        Ok(())
    })?;
    Ok(summary)
}

fn convert(o: OSpan, service: Option<&str>) -> Result<Span, (&'static str, String)> {
    let service = service
        .filter(|s| !s.is_empty())
        .ok_or(("resource", "no service.name attribute".to_string()))?;
    let trace_id = o
        .trace_id
        .filter(|t| !t.is_empty())
        .ok_or(("traceId", "missing".to_string()))?;
    let span_id = o
        .span_id
        .filter(|t| !t.is_empty())
        .ok_or(("spanId", "missing".to_string()))?;
    let kind = match &o.kind {
        None | Some(serde_json::Value::Null) => SpanKind::Unspecified,
        Some(serde_json::Value::Number(n)) => SpanKind::from_otlp(n.as_i64().unwrap_or(0)),
        Some(serde_json::Value::String(s)) => SpanKind::parse(s),
        Some(other) => return Err(("kind", format!("`{other}` is not a span kind"))),
    };
    let start_ns: u64 = match &o.start {
        None | Some(serde_json::Value::Null) => 0,
        Some(serde_json::Value::String(s)) => s.parse().map_err(|_| {
            (
                "startTimeUnixNano",
                format!("`{s}` is not a number of nanoseconds"),
            )
        })?,
        Some(serde_json::Value::Number(n)) => n.as_u64().ok_or((
            "startTimeUnixNano",
            format!("`{n}` is not a number of nanoseconds"),
        ))?,
        Some(other) => return Err(("startTimeUnixNano", format!("`{other}` is not a time"))),
    };
    let attr = |k: &str| attribute(&o.attributes, k);
    Ok(Span {
        trace_id: normalise_id(&trace_id),
        span_id: normalise_id(&span_id),
        parent_id: o
            .parent_span_id
            .filter(|p| !p.is_empty())
            .map(|p| normalise_id(&p)),
        service: service.to_string(),
        name: o.name.unwrap_or_default(),
        kind,
        start_us: start_ns / 1000,
        shared: false,
        peer: attr("peer.service")
            .or_else(|| attr("server.address"))
            .or_else(|| attr("net.peer.name")),
        db_system: attr("db.system"),
    })
}
