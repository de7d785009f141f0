//! OTLP/JSON: `ExportTraceServiceRequest` documents, one per file or one per line (the
//! OpenTelemetry Collector's file exporter), and Grafana Tempo's trace-by-id answer, which is
//! the same with the resource list named `batches` (error paths then start with `batches[i]`).
//! A trace's spans are spread over the request's resources (one per service), so each request
//! is grouped by trace and converted at its end.
//!
//! Ids are hex as the OTLP/JSON specification says, or base64 as Tempo (and protobuf's
//! generic JSON mapping) writes them: a 12- or 24-character id that decodes as base64 to 8 or
//! 16 bytes is turned into hex, so `parentSpanId` and `spanId` match whichever way they came.
//!
//! Per span: `traceId`, `spanId`, `parentSpanId` (hex, any case; empty on roots), `kind` (enum
//! number or `SPAN_KIND_*` name), `name`, `startTimeUnixNano` and `endTimeUnixNano` (string or number), and the
//! attributes `peer.service`, `server.address`, `net.peer.name`, `db.system`; the service is the
//! resource attribute `service.name`, the instance `service.instance.id` (else `k8s.pod.name`,
//! `host.name`). Pre-1.0 `instrumentationLibrarySpans` is accepted.

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, TraceAssembler, TraceHandler, emit_trace, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, TraceError};
use serde::Deserialize;
use std::io::BufRead;

#[derive(Deserialize)]
struct Request {
    #[serde(rename = "resourceSpans", alias = "resource_spans", default)]
    resource_spans: Vec<ResourceSpans>,
    /// Tempo's name for `resourceSpans`.
    #[serde(default)]
    batches: Vec<ResourceSpans>,
}

#[derive(Deserialize)]
#[serde(from = "RawResourceSpans")]
struct ResourceSpans {
    resource: Option<Resource>,
    scope_spans: Vec<ScopeSpans>,
    /// The scope list had its pre-1.0 name, `instrumentationLibrarySpans` (for error paths).
    legacy: bool,
}

#[derive(Deserialize)]
struct RawResourceSpans {
    #[serde(default)]
    resource: Option<Resource>,
    #[serde(rename = "scopeSpans", alias = "scope_spans", default)]
    scope_spans: Option<Vec<ScopeSpans>>,
    /// Pre-1.0 name (Tempo 1.x and old collectors).
    #[serde(rename = "instrumentationLibrarySpans", default)]
    library_spans: Option<Vec<ScopeSpans>>,
}

impl From<RawResourceSpans> for ResourceSpans {
    fn from(raw: RawResourceSpans) -> Self {
        let (scope_spans, legacy) = match (raw.scope_spans, raw.library_spans) {
            (Some(s), _) => (s, false),
            (None, Some(l)) => (l, true),
            (None, None) => (Vec::new(), false),
        };
        ResourceSpans {
            resource: raw.resource,
            scope_spans,
            legacy,
        }
    }
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
    #[serde(rename = "endTimeUnixNano", default)]
    end: Option<serde_json::Value>,
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
    read_traces(input, source, options, &mut |spans, summary| {
        emit_trace(spans, summary, sink)
    })
}

/// Reads OTLP/JSON, handing every whole trace's spans to `on_trace`.
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
        let request: Request = docs.parse(std::marker::PhantomData)?;
        let mut traces = TraceAssembler::default();
        let resources = request
            .resource_spans
            .into_iter()
            .enumerate()
            .map(|(r, rs)| ("resourceSpans", r, rs))
            .chain(
                request
                    .batches
                    .into_iter()
                    .enumerate()
                    .map(|(r, rs)| ("batches", r, rs)),
            );
        for (list, r, rs) in resources {
            let service = rs
                .resource
                .as_ref()
                .and_then(|res| attribute(&res.attributes, "service.name"));
            let instance = rs.resource.as_ref().and_then(|res| {
                ["service.instance.id", "k8s.pod.name", "host.name"]
                    .iter()
                    .find_map(|k| attribute(&res.attributes, k).filter(|v| !v.is_empty()))
            });
            let legacy = rs.legacy;
            for (s, ss) in rs.scope_spans.into_iter().enumerate() {
                for (i, o) in ss.spans.into_iter().enumerate() {
                    let scopes = if legacy {
                        "instrumentationLibrarySpans"
                    } else {
                        "scopeSpans"
                    };
                    let path = format!("{list}[{r}].{scopes}[{s}].spans[{i}]");
                    match convert(o, service.as_deref()) {
                        Ok(mut span) => {
                            span.instance.clone_from(&instance);
                            traces.push(span);
                        }
                        Err((field, message)) => {
                            let path = format!("{path}.{field}");
                            summary.incomplete_span(options, source, line, path, message)?;
                        }
                    }
                }
            }
        }
        traces.flush(summary, &mut *on_trace);
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
    let start_ns = nanos(o.start.as_ref(), "startTimeUnixNano")?.unwrap_or(0);
    let end_ns = nanos(o.end.as_ref(), "endTimeUnixNano")?;
    let attr = |k: &str| attribute(&o.attributes, k);
    Ok(Span {
        trace_id: otlp_id(&trace_id),
        span_id: otlp_id(&span_id),
        parent_id: o
            .parent_span_id
            .filter(|p| !p.is_empty())
            .map(|p| otlp_id(&p)),
        service: service.to_string(),
        name: o.name.unwrap_or_default(),
        kind,
        start_us: start_ns / 1000,
        duration_us: end_ns.map(|end| end.saturating_sub(start_ns) / 1000),
        instance: None,
        shared: false,
        peer: attr("peer.service")
            .or_else(|| attr("server.address"))
            .or_else(|| attr("net.peer.name")),
        db_system: attr("db.system"),
    })
}

/// A time in nanoseconds, written as a string or a number (`None` when absent).
fn nanos(
    value: Option<&serde_json::Value>,
    field: &'static str,
) -> Result<Option<u64>, (&'static str, String)> {
    match value {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| (field, format!("`{s}` is not a number of nanoseconds"))),
        Some(serde_json::Value::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or((field, format!("`{n}` is not a number of nanoseconds"))),
        Some(other) => Err((field, format!("`{other}` is not a time"))),
    }
}

/// An id as hex: hex ids are normalised, base64 ids of 8 or 16 bytes (12 or 24 characters,
/// never a hex id's length) are decoded, anything else is kept as written.
fn otlp_id(id: &str) -> String {
    let id = id.trim();
    if matches!(id.len(), 12 | 24)
        && let Some(bytes) = base64(id)
        && matches!(bytes.len(), 8 | 16)
    {
        return bytes.iter().map(|b| format!("{b:02x}")).collect();
    }
    normalise_id(id)
}

/// Standard base64 (with padding) to bytes; `None` if `text` is not base64.
fn base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    if !text.len().is_multiple_of(4) || text.len() - body.len() > 2 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in body.as_bytes() {
        acc = (acc << 6) | value(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_ids_become_hex_and_hex_ids_stay() {
        // Tempo's rendering of trace 5b8efff798038103d269b633813fc700, span eee19b7ec3c1b100.
        assert_eq!(
            otlp_id("W47/95gDgQPSabYzgT/HAA=="),
            "5b8efff798038103d269b633813fc700"
        );
        assert_eq!(otlp_id("7uGbfsPBsQA="), "eee19b7ec3c1b100");
        assert_eq!(otlp_id("EEE19B7EC3C1B100"), "eee19b7ec3c1b100");
        assert_eq!(otlp_id("span-1"), "span-1");
    }
}
