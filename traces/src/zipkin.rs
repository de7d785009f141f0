//! Zipkin v2 JSON: an array of spans (`POST /api/v2/spans`, `GET /api/v2/trace/{id}`) or an
//! array of traces, each an array of spans (`GET /api/v2/traces`). One document or several.
//! Nested trace arrays are converted one at a time; a flat span array is grouped by `traceId`
//! and converted at the end of its document.
//!
//! Per span: `traceId`, `id`, `parentId`, `kind`, `name`, `timestamp` and `duration` (µs),
//! `localEndpoint.serviceName` (and its `ipv4`/`ipv6`/`port`: the instance), `remoteEndpoint.serviceName` (the only trace of an
//! uninstrumented dependency), `shared` (B3 shared server spans), and the tags `db.system`,
//! `peer.service`.

use crate::json_stream::{Documents, each_document};
use crate::spans::{Span, SpanKind, TraceAssembler, TraceHandler, emit_trace, normalise_id};
use crate::{Call, IngestOptions, IngestSummary, TraceError};
use serde::Deserialize;
use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use std::io::BufRead;

#[derive(Deserialize)]
#[serde(untagged)]
enum Element {
    Trace(Vec<ZSpan>),
    Span(Box<ZSpan>),
}

#[derive(Deserialize)]
struct ZSpan {
    #[serde(rename = "traceId", default)]
    trace_id: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(rename = "parentId", default)]
    parent_id: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    timestamp: Option<u64>,
    #[serde(default)]
    duration: Option<u64>,
    #[serde(rename = "localEndpoint", default)]
    local: Option<ZEndpoint>,
    #[serde(rename = "remoteEndpoint", default)]
    remote: Option<ZEndpoint>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    shared: Option<bool>,
}

#[derive(Deserialize)]
struct ZEndpoint {
    #[serde(rename = "serviceName", default)]
    service_name: Option<String>,
    #[serde(default)]
    ipv4: Option<String>,
    #[serde(default)]
    ipv6: Option<String>,
    #[serde(default)]
    port: Option<u64>,
}

impl ZEndpoint {
    /// The instance the endpoint names: its address, with the port when given.
    fn instance(&self) -> Option<String> {
        let ip = self
            .ipv4
            .as_deref()
            .or(self.ipv6.as_deref())
            .filter(|a| !a.is_empty())?;
        Some(match self.port {
            Some(port) => format!("{ip}:{port}"),
            None => ip.to_string(),
        })
    }
}

/// Reads Zipkin v2 JSON, handing every call to `sink`.
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

/// Reads Zipkin v2 JSON, handing every whole trace's spans to `on_trace`.
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
            on_trace: &mut *on_trace,
            flat: TraceAssembler::default(),
            index: 0,
            failure: None,
        };
        docs.parse(Elements(&mut state))?;
        let State {
            summary,
            on_trace,
            mut flat,
            failure,
            ..
        } = state;
        if let Some(e) = failure {
            return Err(e);
        }
        flat.flush(summary, on_trace);
        Ok(())
    })?;
    Ok(summary)
}

struct State<'s> {
    source: &'s str,
    line: u64,
    options: IngestOptions,
    summary: &'s mut IngestSummary,
    on_trace: &'s mut TraceHandler<'s>,
    flat: TraceAssembler,
    index: usize,
    failure: Option<TraceError>,
}

impl State<'_> {
    fn element(&mut self, element: Element) {
        let at = self.index;
        self.index += 1;
        if self.failure.is_some() {
            return;
        }
        match element {
            Element::Span(z) => {
                if let Some(span) = self.convert(*z, format!("[{at}]")) {
                    self.flat.push(span);
                }
            }
            Element::Trace(zs) => {
                let mut spans = Vec::with_capacity(zs.len());
                for (i, z) in zs.into_iter().enumerate() {
                    if let Some(span) = self.convert(z, format!("[{at}][{i}]")) {
                        spans.push(span);
                    }
                }
                (self.on_trace)(&mut spans, self.summary);
            }
        }
    }

    fn convert(&mut self, z: ZSpan, path: String) -> Option<Span> {
        let problem = |field: &str, message: &str| (format!("{path}.{field}"), message.to_string());
        let result = (|| {
            let trace_id = z.trace_id.ok_or_else(|| problem("traceId", "missing"))?;
            let span_id = z.id.ok_or_else(|| problem("id", "missing"))?;
            let instance = z.local.as_ref().and_then(ZEndpoint::instance);
            let service = z
                .local
                .and_then(|e| e.service_name)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| problem("localEndpoint.serviceName", "missing"))?;
            let peer = z.tags.get("peer.service").cloned().or_else(|| {
                z.remote
                    .and_then(|e| e.service_name)
                    .filter(|n| !n.is_empty())
            });
            Ok(Span {
                trace_id: normalise_id(&trace_id),
                span_id: normalise_id(&span_id),
                parent_id: z.parent_id.as_deref().map(normalise_id),
                service,
                name: z.name.unwrap_or_default(),
                kind: z
                    .kind
                    .as_deref()
                    .map_or(SpanKind::Unspecified, SpanKind::parse),
                start_us: z.timestamp.unwrap_or(0),
                duration_us: z.duration,
                instance,
                shared: z.shared.unwrap_or(false),
                peer,
                db_system: z.tags.get("db.system").cloned(),
            })
        })();
        match result {
            Ok(span) => Some(span),
            Err((field, message)) => {
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
                None
            }
        }
    }
}

struct Elements<'a, 's>(&'a mut State<'s>);

impl<'de> DeserializeSeed<'de> for Elements<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Elements<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Zipkin v2 array of spans or of traces")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(element) = seq.next_element::<Element>()? {
            self.0.element(element);
        }
        Ok(())
    }
}
