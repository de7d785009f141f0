//! Zipkin v1 JSON: `POST /api/v1/spans` and `GET /api/v1/trace/{id}` (an array of spans),
//! `GET /api/v1/traces` (an array of traces, each an array of spans), or one span object.
//! One document or several.
//!
//! A v1 span has no kind and no local endpoint: both sides of an RPC report the same span id,
//! and who did what is told by annotations — `cs`/`cr` (client send/receive) carry the
//! caller's `endpoint.serviceName`, `sr`/`ss` the callee's, `ms`/`mr` a message producer's
//! and consumer's — and by the binary annotations `sa` (server address: the callee, even when
//! it runs no tracer), `ca` (client address) and `ma` (message broker). So each v1 span becomes
//! up to two spans: a client (or producer) span in the caller's service, whose peer is `sa`'s
//! (or `ma`'s) service, and a *shared* server (or consumer) span in the callee's service with
//! the same id, which the span-to-call rules merge with the client. A span with neither side
//! is a local span of the service its `lc` binary annotation or any endpoint names.
//!
//! Per span: `traceId`, `id`, `parentId`, `name`, `timestamp` (µs; else the earliest
//! annotation's), `duration` (each side's own from `cs`→`cr` and `sr`→`ss` when annotated; the
//! annotations' `endpoint.ipv4` is the instance), `annotations[]`, `binaryAnnotations[]` (`db.system` and `peer.service` are
//! read as tags).

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, TraceAssembler, TraceHandler, emit_trace, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, TraceError};
use serde::Deserialize;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use std::fmt;
use std::io::BufRead;

#[derive(Deserialize)]
#[serde(untagged)]
enum Element {
    Trace(Vec<V1Span>),
    Span(Box<V1Span>),
}

#[derive(Deserialize)]
struct V1Span {
    #[serde(rename = "traceId", default)]
    trace_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "parentId", default)]
    parent_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(default)]
    annotations: Vec<Annotation>,
    #[serde(rename = "binaryAnnotations", default)]
    binary_annotations: Vec<BinaryAnnotation>,
}

#[derive(Deserialize)]
struct Annotation {
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    endpoint: Option<V1Endpoint>,
}

#[derive(Deserialize)]
struct BinaryAnnotation {
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    value: serde_json::Value,
    #[serde(default)]
    endpoint: Option<V1Endpoint>,
}

#[derive(Deserialize)]
struct V1Endpoint {
    #[serde(rename = "serviceName", default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    port: Option<u64>,
}

/// Reads Zipkin v1 JSON, handing every call to `sink`.
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

/// Reads Zipkin v1 JSON, handing every whole trace's spans to `on_trace`.
pub fn read_traces(
    input: impl BufRead,
    source: &str,
    options: IngestOptions,
    on_trace: &mut TraceHandler<'_>,
) -> Result<IngestSummary, TraceError> {
    let mut docs = Documents::new(input, source);
    let mut summary = IngestSummary::default();
    each_document(&mut docs, options, &mut summary, |docs, summary| {
        let mut state = State {
            source,
            line: docs.line(),
            options,
            summary,
            traces: TraceAssembler::default(),
            index: 0,
            failure: None,
        };
        docs.parse(Top(&mut state))?;
        let State {
            summary,
            mut traces,
            failure,
            ..
        } = state;
        if let Some(e) = failure {
            return Err(e);
        }
        traces.flush(summary, on_trace);
        Ok(())
    })?;
    Ok(summary)
}

struct State<'s> {
    source: &'s str,
    line: u64,
    options: IngestOptions,
    summary: &'s mut IngestSummary,
    traces: TraceAssembler,
    index: usize,
    failure: Option<TraceError>,
}

impl State<'_> {
    fn element(&mut self, element: Element) {
        let at = self.index;
        self.index += 1;
        match element {
            Element::Span(z) => self.span(*z, format!("[{at}]")),
            Element::Trace(zs) => {
                for (i, z) in zs.into_iter().enumerate() {
                    self.span(z, format!("[{at}][{i}]"));
                }
            }
        }
    }

    fn span(&mut self, z: V1Span, path: String) {
        if self.failure.is_some() {
            return;
        }
        match convert(z) {
            Ok(spans) => {
                for span in spans {
                    self.traces.push(span);
                }
            }
            Err((field, message)) => {
                let field = if path.is_empty() {
                    field.to_string()
                } else {
                    format!("{path}.{field}")
                };
                let counted = self.summary.incomplete_span(
                    self.options,
                    self.source,
                    self.line,
                    field,
                    message,
                );
                if let Err(e) = counted {
                    self.failure = Some(e);
                }
            }
        }
    }
}

/// The spans one v1 span stands for (see the [module documentation](self)).
fn convert(z: V1Span) -> Result<Vec<Span>, (&'static str, String)> {
    let trace_id = z.trace_id.ok_or(("traceId", "missing".to_string()))?;
    let span_id = z.id.ok_or(("id", "missing".to_string()))?;
    let service_of = |values: &[&str]| {
        z.annotations
            .iter()
            .filter(|a| a.value.as_deref().is_some_and(|v| values.contains(&v)))
            .find_map(|a| named(a.endpoint.as_ref()))
    };
    let address = |key: &str| {
        z.binary_annotations
            .iter()
            .filter(|b| b.key.as_deref() == Some(key))
            .find_map(|b| named(b.endpoint.as_ref()))
    };
    let tag = |key: &str| {
        z.binary_annotations
            .iter()
            .find(|b| b.key.as_deref() == Some(key))
            .and_then(|b| b.value.as_str().map(str::to_string))
    };
    let start = z
        .timestamp
        .or_else(|| z.annotations.iter().filter_map(|a| a.timestamp).min());
    let at = |value: &str| {
        z.annotations
            .iter()
            .find(|a| a.value.as_deref() == Some(value))
            .and_then(|a| a.timestamp)
    };
    // One side's time: from its own annotations (cs→cr, sr→ss), else the span's duration.
    let side = |open: &str, close: &str| match (at(open), at(close)) {
        (Some(a), Some(b)) if b >= a => (Some(a), Some(b - a)),
        _ => (None, z.duration),
    };
    let instance_of = |values: &[&str]| {
        z.annotations
            .iter()
            .filter(|a| a.value.as_deref().is_some_and(|v| values.contains(&v)))
            .find_map(|a| {
                let e = a.endpoint.as_ref()?;
                let ip = e.ipv4.as_deref().filter(|ip| !ip.is_empty())?;
                Some(match e.port {
                    Some(port) => format!("{ip}:{port}"),
                    None => ip.to_string(),
                })
            })
    };
    let base = Span {
        trace_id: normalise_id(&trace_id),
        span_id: normalise_id(&span_id),
        parent_id: z.parent_id.as_deref().map(normalise_id),
        name: z.name.clone().unwrap_or_default(),
        start_us: start.unwrap_or(0),
        duration_us: z.duration,
        db_system: tag("db.system"),
        ..Span::default()
    };
    let client = service_of(&["cs", "cr"]);
    let server = service_of(&["sr", "ss"]);
    let producer = service_of(&["ms"]);
    let consumer = service_of(&["mr"]);
    let mut out = Vec::with_capacity(2);
    let mut caller = |service: String, kind: SpanKind, remote: Option<String>| {
        let (start, duration) = side("cs", "cr");
        out.push(Span {
            service,
            kind,
            peer: tag("peer.service").or(remote),
            start_us: start.unwrap_or(base.start_us),
            duration_us: duration,
            instance: instance_of(&["cs", "cr", "ms"]),
            ..base.clone()
        });
    };
    match (client, producer) {
        (Some(c), _) => caller(c, SpanKind::Client, address("sa")),
        (None, Some(p)) => caller(p, SpanKind::Producer, address("ma")),
        (None, None) => {}
    }
    let (server_start, server_duration) = side("sr", "ss");
    let callee = match (server, consumer) {
        (Some(s), _) => Some((s, SpanKind::Server)),
        (None, Some(c)) => Some((c, SpanKind::Consumer)),
        (None, None) => None,
    };
    if let Some((service, kind)) = callee {
        // Both sides of a v1 RPC share the span id, so the callee's side is a shared span
        // whether or not the caller's side is in this file.
        out.push(Span {
            service,
            kind,
            shared: true,
            start_us: server_start.unwrap_or(base.start_us),
            duration_us: server_duration,
            instance: instance_of(&["sr", "ss", "mr"]),
            ..base.clone()
        });
    }
    if out.is_empty() {
        let local = address("lc")
            .or_else(|| {
                z.annotations
                    .iter()
                    .find_map(|a| named(a.endpoint.as_ref()))
            })
            .or_else(|| {
                z.binary_annotations
                    .iter()
                    .find_map(|b| named(b.endpoint.as_ref()))
            })
            .ok_or((
                "annotations",
                "no annotation or binary annotation names an `endpoint.serviceName`".to_string(),
            ))?;
        out.push(Span {
            service: local,
            ..base
        });
    }
    Ok(out)
}

fn named(endpoint: Option<&V1Endpoint>) -> Option<String> {
    endpoint?
        .service_name
        .as_deref()
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

/// The top level: an array of spans or traces, or one span object.
struct Top<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Top<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Zipkin v1 array of spans or of traces, or one span")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<Element>()? {
            self.0.element(element);
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let span = V1Span::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
        self.0.span(span, String::new());
        Ok(())
    }
}
