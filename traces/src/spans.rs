//! Spans to calls, for the span-based formats (Jaeger, Zipkin, OTLP).
//!
//! Within one trace, a span whose parent lives in another service is a call
//! `service(parent) → service(span)` (an `mq` edge when the parent produced or the child
//! consumed a message, `rpc` otherwise). A client or producer span with no child in another
//! service is an exit to an uninstrumented dependency — how caches and databases appear, since
//! they run no tracer. Its peer is named, in order of preference, by `peer.service`,
//! `server.address`, `net.peer.name` or Zipkin's `remoteEndpoint`; its kind by `db.system`
//! (`redis`/`memcached` → cache, anything else → db). DeathStarBench's C++ spans carry none of
//! these tags, so operation names are the fallback: `*redis*` → cache `<svc>-redis`,
//! `*_mmc_*`/`*memcached*` → cache `<svc>-memcached`, `*mongo*` → db `<svc>-mongodb`, where
//! `<svc>` is the calling service without its `-service` suffix (home-timeline-service →
//! home-timeline-redis). A span whose parent is missing from the trace is an orphan (sampling
//! or propagation loss): it contributes no edge and is counted. Parent links that loop (a span
//! its own parent, references leading back to their start) are cut and reported, never
//! followed: following them would invent calls between the services on the loop. A Zipkin
//! shared server span is linked to its client (same id); without one in the file, to the
//! client's parent when present, and otherwise it is where the request entered — not an
//! orphan, since a caller that reports elsewhere or runs no tracer leaves nothing missing.

use crate::{Call, Endpoint, IngestSummary, ParentCycle};
use indexmap::IndexMap;
use kernel::{EdgeKind, ServiceKind};
use rustc_hash::FxBuildHasher;

/// Span kinds across formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SpanKind {
    /// Not stated.
    #[default]
    Unspecified,
    /// In-process.
    Internal,
    /// Handles a request.
    Server,
    /// Issues a request.
    Client,
    /// Sends a message.
    Producer,
    /// Receives a message.
    Consumer,
}

impl SpanKind {
    /// From a name as the formats spell it (`client`, `CLIENT`, `SPAN_KIND_CLIENT`).
    pub fn parse(s: &str) -> SpanKind {
        let s = s.trim_start_matches("SPAN_KIND_").to_ascii_lowercase();
        match s.as_str() {
            "internal" => SpanKind::Internal,
            "server" => SpanKind::Server,
            "client" => SpanKind::Client,
            "producer" => SpanKind::Producer,
            "consumer" => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// From OTLP's enum number.
    pub fn from_otlp(n: i64) -> SpanKind {
        match n {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }
}

/// A span reduced to what graph building needs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// Trace id (lower-case).
    pub trace_id: String,
    /// Span id (lower-case).
    pub span_id: String,
    /// Parent span id, if any.
    pub parent_id: Option<String>,
    /// Service the span ran in.
    pub service: String,
    /// Operation name.
    pub name: String,
    /// Kind.
    pub kind: SpanKind,
    /// Start, microseconds since the Unix epoch.
    pub start_us: u64,
    /// Duration, microseconds, when the format gives it (Jaeger `duration`, Zipkin `duration`,
    /// OTLP end − start, a span CSV's end − start).
    pub duration_us: Option<u64>,
    /// The instance (replica) the span ran on, when the format names it: Jaeger process tags
    /// (`hostname`, `ip`), Zipkin `localEndpoint` (`ipv4`, `ipv6`, `port`), OTLP
    /// `service.instance.id` (or `host.name`, `k8s.pod.name`), a span CSV's pod name.
    pub instance: Option<String>,
    /// Zipkin B3 shared span: a server span reusing its client's id.
    pub shared: bool,
    /// Peer named by tags or the remote endpoint.
    pub peer: Option<String>,
    /// `db.system` tag.
    pub db_system: Option<String>,
}

/// Normalises a hex id: lower-case, leading zeros kept.
pub fn normalise_id(id: &str) -> String {
    id.trim().to_ascii_lowercase()
}

/// What a reader does with each whole trace: the call-level readers hand it to [`emit_trace`],
/// the span-level ones ([`crate::ingest_spans`]) to their own sink.
pub type TraceHandler<'a> = dyn FnMut(&mut [Span], &mut IngestSummary) + 'a;

/// Groups spans by trace until the caller flushes them.
#[derive(Debug, Default)]
pub struct TraceAssembler {
    traces: IndexMap<String, Vec<Span>, FxBuildHasher>,
}

impl TraceAssembler {
    /// Adds a span to its trace.
    pub fn push(&mut self, span: Span) {
        self.traces
            .entry(span.trace_id.clone())
            .or_default()
            .push(span);
    }

    /// Hands every trace held to `on_trace`, in arrival order, and forgets them.
    pub fn flush(&mut self, summary: &mut IngestSummary, on_trace: &mut TraceHandler<'_>) {
        for (_, mut spans) in self.traces.drain(..) {
            on_trace(&mut spans, summary);
        }
    }
}

/// Resolves the parent links of one trace's spans: for each span, the index of its parent in
/// `spans` (`None` for roots, orphans and spans on a parent loop). Shared server spans are
/// linked to their client; loops are cut and reported, orphans counted, in `summary`.
pub fn link_parents(spans: &[Span], summary: &mut IngestSummary) -> Vec<Option<usize>> {
    // Index by span id; a shared (B3) server span points at its client's id, so the client
    // keeps the id and the server span is linked to it explicitly.
    let mut by_id: IndexMap<&str, usize, FxBuildHasher> = IndexMap::default();
    let mut shared_by_id: IndexMap<&str, usize, FxBuildHasher> = IndexMap::default();
    for (i, s) in spans.iter().enumerate() {
        let map = if s.shared {
            &mut shared_by_id
        } else {
            &mut by_id
        };
        map.entry(s.span_id.as_str()).or_insert(i);
    }
    let mut parent_of: Vec<Option<usize>> = spans
        .iter()
        .enumerate()
        .map(|(i, s)| {
            if s.shared {
                // Merged with its client when the file has it; otherwise the client's parent
                // (the caller's own span) stands in for it, as the call came from there.
                return by_id
                    .get(s.span_id.as_str())
                    .copied()
                    .filter(|&p| p != i)
                    .or_else(|| by_id.get(s.parent_id.as_deref()?).copied());
            }
            let p = s.parent_id.as_deref()?;
            // A child of a shared id running in the server's service belongs to the server.
            match shared_by_id.get(p) {
                Some(&server) if spans[server].service == s.service => Some(server),
                _ => by_id.get(p).copied(),
            }
        })
        .collect();
    let in_cycle = break_cycles(spans, &mut parent_of, summary);
    for ((s, parent), looped) in spans.iter().zip(&parent_of).zip(&in_cycle) {
        // A shared server span without its client lost nothing: the request came from a
        // caller that reported elsewhere (or not at all), so it is where the request entered.
        if parent.is_none() && s.parent_id.is_some() && !s.shared && !looped {
            summary.drop("orphan span");
        }
    }
    parent_of
}

/// Emits the calls of one trace's spans (see the [module documentation](self)).
pub fn emit_trace(
    spans: &mut [Span],
    summary: &mut IngestSummary,
    sink: &mut dyn FnMut(&Call<'_>),
) {
    summary.records += spans.len() as u64;
    let parent_of = link_parents(spans, summary);
    // The services of root spans (and of shared server spans without a caller in the file)
    // are where requests enter: frontends.
    let entry: Vec<&str> = spans
        .iter()
        .zip(&parent_of)
        .filter(|(s, p)| (s.parent_id.is_none() && !s.shared) || (s.shared && p.is_none()))
        .map(|(s, _)| s.service.as_str())
        .collect();
    let mut has_remote_child = vec![false; spans.len()];
    for (i, s) in spans.iter().enumerate() {
        let Some(p) = parent_of[i] else { continue };
        let parent = &spans[p];
        if parent.service == s.service {
            continue;
        }
        has_remote_child[p] = true;
        let kind = if parent.kind == SpanKind::Producer || s.kind == SpanKind::Consumer {
            EdgeKind::Mq
        } else {
            EdgeKind::Rpc
        };
        summary.calls += 1;
        sink(&Call {
            time_us: s.start_us,
            caller: endpoint(&parent.service, entry.contains(&parent.service.as_str())),
            callee: Endpoint {
                name: &s.service,
                kind: ServiceKind::Stateless,
                unknown: false,
            },
            kind,
        });
    }
    let mut name_buf = String::new();
    for (i, s) in spans.iter().enumerate() {
        if has_remote_child[i] {
            continue;
        }
        if !is_exit(s) {
            continue;
        }
        let Some((edge, callee_kind)) = exit_target(s, &mut name_buf) else {
            summary.drop("exit span without a named peer");
            continue;
        };
        summary.calls += 1;
        sink(&Call {
            time_us: s.start_us,
            caller: endpoint(&s.service, entry.contains(&s.service.as_str())),
            callee: Endpoint {
                name: &name_buf,
                kind: callee_kind,
                unknown: false,
            },
            kind: edge,
        });
    }
}

/// Finds loops in the parent links (a span that is its own parent, or references that lead
/// back to where they started), reports each in `summary`, and cuts the links of every span on
/// a loop, so that no edge is invented from it. Returns which spans were on a loop.
fn break_cycles(
    spans: &[Span],
    parent_of: &mut [Option<usize>],
    summary: &mut IngestSummary,
) -> Vec<bool> {
    const UNSEEN: u8 = 0;
    const ON_PATH: u8 = 1;
    const DONE: u8 = 2;
    let mut state = vec![UNSEEN; spans.len()];
    let mut in_cycle = vec![false; spans.len()];
    let mut self_parents: Vec<usize> = (0..spans.len())
        .filter(|&i| {
            !spans[i].shared && spans[i].parent_id.as_deref() == Some(spans[i].span_id.as_str())
        })
        .collect();
    let mut path = Vec::new();
    for start in 0..spans.len() {
        if state[start] != UNSEEN {
            continue;
        }
        path.clear();
        let mut at = Some(start);
        while let Some(i) = at {
            match state[i] {
                UNSEEN => {
                    state[i] = ON_PATH;
                    path.push(i);
                    at = parent_of[i];
                }
                ON_PATH => {
                    let from = path.iter().position(|&p| p == i).unwrap_or(0);
                    let mut ids: Vec<usize> = path[from..].to_vec();
                    // Report in parent order: child, its parent, … back to the child.
                    for &j in &ids {
                        in_cycle[j] = true;
                    }
                    self_parents.retain(|&j| !ids.contains(&j));
                    ids.dedup();
                    summary.cycle(ParentCycle {
                        trace_id: spans[i].trace_id.clone(),
                        span_ids: ids.iter().map(|&j| spans[j].span_id.clone()).collect(),
                    });
                    break;
                }
                _ => break,
            }
        }
        for &j in &path {
            state[j] = DONE;
        }
    }
    // A self-parent whose id also names another span links to that span instead (the id is
    // reused), but it is still a span claiming itself as parent: report it.
    for i in self_parents {
        in_cycle[i] = true;
        summary.cycle(ParentCycle {
            trace_id: spans[i].trace_id.clone(),
            span_ids: vec![spans[i].span_id.clone()],
        });
    }
    for (i, looped) in in_cycle.iter().enumerate() {
        if *looped {
            parent_of[i] = None;
        }
    }
    in_cycle
}

/// Whether a span without a child in another service leaves its service: a client or producer
/// span, or an unkinded span named like a backend call (DeathStarBench's `*_redis_*`).
pub(crate) fn is_exit(s: &Span) -> bool {
    matches!(s.kind, SpanKind::Client | SpanKind::Producer)
        || (s.kind == SpanKind::Unspecified && backend_pattern(&s.name).is_some())
}

fn endpoint(service: &str, entry: bool) -> Endpoint<'_> {
    Endpoint {
        name: service,
        kind: if entry {
            ServiceKind::Frontend
        } else {
            ServiceKind::Stateless
        },
        unknown: false,
    }
}

/// The dependency an exit span calls: edge kind and callee kind, with its name in `name`.
pub(crate) fn exit_target(s: &Span, name: &mut String) -> Option<(EdgeKind, ServiceKind)> {
    let from_system = s.db_system.as_deref().map(|sys| {
        let sys = sys.to_ascii_lowercase();
        let kind = if matches!(sys.as_str(), "redis" | "memcached" | "memcache") {
            ServiceKind::Cache
        } else {
            ServiceKind::Db
        };
        (kind, sys)
    });
    let (kind, suffix) = match from_system
        .or_else(|| backend_pattern(&s.name).map(|(kind, suffix)| (kind, suffix.to_string())))
    {
        Some(found) => found,
        None => {
            // A plain client call to a named, uninstrumented peer.
            let peer = s.peer.as_deref()?;
            name.clear();
            name.push_str(peer);
            let edge = if s.kind == SpanKind::Producer {
                EdgeKind::Mq
            } else {
                EdgeKind::Rpc
            };
            return Some((edge, ServiceKind::Stateless));
        }
    };
    name.clear();
    match s.peer.as_deref() {
        Some(peer) => name.push_str(peer),
        None => {
            name.push_str(s.service.strip_suffix("-service").unwrap_or(&s.service));
            name.push('-');
            name.push_str(&suffix);
        }
    }
    let edge = if kind == ServiceKind::Cache {
        EdgeKind::Cache
    } else {
        EdgeKind::Db
    };
    Some((edge, kind))
}

/// The technology of the backend an exit span calls: its `db.system`, else what its operation
/// name says (`redis`, `memcached`, `mongodb`).
pub(crate) fn backend_tech(s: &Span) -> Option<String> {
    s.db_system
        .as_deref()
        .map(str::to_ascii_lowercase)
        .or_else(|| backend_pattern(&s.name).map(|(_, tech)| tech.to_string()))
}

/// Backend kind and name suffix from a DeathStarBench-style operation name.
fn backend_pattern(operation: &str) -> Option<(ServiceKind, &'static str)> {
    let op = operation.to_ascii_lowercase();
    if op.contains("redis") {
        Some((ServiceKind::Cache, "redis"))
    } else if op.contains("memcached") || op.contains("_mmc_") || op.starts_with("mmc_") {
        Some((ServiceKind::Cache, "memcached"))
    } else if op.contains("mongo") {
        Some((ServiceKind::Db, "mongodb"))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(id: &str, parent: Option<&str>, service: &str, name: &str, kind: SpanKind) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            service: service.into(),
            name: name.into(),
            kind,
            ..Span::default()
        }
    }

    fn emit(mut spans: Vec<Span>) -> (Vec<String>, IngestSummary) {
        let mut out = Vec::new();
        let mut summary = IngestSummary::default();
        emit_trace(&mut spans, &mut summary, &mut |c| {
            out.push(format!("{}>{}:{:?}", c.caller.name, c.callee.name, c.kind))
        });
        (out, summary)
    }

    #[test]
    fn cross_service_children_and_named_backends() {
        let (calls, summary) = emit(vec![
            span("1", None, "nginx", "GET /", SpanKind::Server),
            span("2", Some("1"), "nginx", "read_client", SpanKind::Client),
            span(
                "3",
                Some("2"),
                "home-timeline-service",
                "read_server",
                SpanKind::Server,
            ),
            span(
                "4",
                Some("3"),
                "home-timeline-service",
                "read_home_timeline_redis_find_client",
                SpanKind::Client,
            ),
            span(
                "5",
                Some("3"),
                "post-storage-service",
                "read_posts_server",
                SpanKind::Server,
            ),
            span(
                "6",
                Some("5"),
                "post-storage-service",
                "post_storage_mmc_mget_client",
                SpanKind::Unspecified,
            ),
            span(
                "7",
                Some("5"),
                "post-storage-service",
                "post_storage_mongo_find_client",
                SpanKind::Client,
            ),
            span("8", Some("99"), "ghost", "lost", SpanKind::Server),
        ]);
        assert_eq!(
            calls,
            [
                "nginx>home-timeline-service:Rpc",
                "home-timeline-service>post-storage-service:Rpc",
                "home-timeline-service>home-timeline-redis:Cache",
                "post-storage-service>post-storage-memcached:Cache",
                "post-storage-service>post-storage-mongodb:Db",
            ]
        );
        assert_eq!(summary.dropped["orphan span"], 1);
        assert_eq!(summary.records, 8);
    }

    #[test]
    fn tags_name_the_peer_and_shared_spans_link_to_their_client() {
        let mut db = span("2", Some("1"), "api", "SELECT", SpanKind::Client);
        db.db_system = Some("postgresql".into());
        db.peer = Some("orders-db".into());
        let mut shared = span("3", Some("1"), "worker", "handle", SpanKind::Server);
        shared.shared = true;
        let client = span("3", Some("1"), "api", "call", SpanKind::Client);
        let mut producer = span("4", Some("1"), "api", "publish", SpanKind::Producer);
        producer.peer = Some("events".into());
        let (calls, _) = emit(vec![
            span("1", None, "api", "GET", SpanKind::Server),
            db,
            client,
            shared,
            producer,
        ]);
        assert_eq!(
            calls,
            ["api>worker:Rpc", "api>orders-db:Db", "api>events:Mq"]
        );
    }
}
