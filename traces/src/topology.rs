//! A topology from spans: the services, edges, workloads (call trees with stages and weights),
//! service times and replicas of a traced system, in the schema of
//! `deathstarbench/data/deathstarbench.json`, so that the simulator, `scenario` and `eval` can run
//! a twin of it.
//!
//! Each trace is read whole ([`crate::ingest_spans`]); its parent links are resolved as for
//! calls ([`crate::spans`]: shared Zipkin spans merged, loops cut, orphans dropped). Then:
//!
//! - **Calls**: a span's subtree within its own service is one *node* (the service handling one
//!   request); a child span in another service is a call to that service, and an exit span (a
//!   client span with no child in another service, or a DeathStarBench `*_redis_*`-style one) is
//!   a call to the backend it names, classified as for calls (`db.system`, peer tags, operation
//!   names). The call's operation is the callee span's name (for a backend, the exit span's).
//! - **Services**: a root span's service is a `frontend`; a backend is a `cache` (redis,
//!   memcached) or `db`, with its technology in `tech`; every other service is `stateless`.
//! - **Edges**: every caller → callee pair seen, with its kind (`rpc`, `mq`, `cache`, `db`), the
//!   operations called over it and the number of calls.
//! - **Workloads**: one per entry service and root operation; its weight is its share of the
//!   root spans. The call trees of its requests are merged: children of a node are matched by
//!   callee, operation and rank among equal siblings; a child seen in only some of its caller's
//!   observations gets the condition `observed in N of M calls` (probability N/M).
//! - **Stages**: a node's children are ordered by their mean start relative to the node; a child
//!   that starts before every earlier child of the current stage has ended runs in parallel with
//!   them (same stage), otherwise it starts the next stage ([`stages`]).
//! - **Service times**: a node's self time is its root span's duration minus the time covered by
//!   its outgoing calls ([`self_time`]), each measured on the caller's side (the client span
//!   wrapping it, when there is one) so that the network is not counted as CPU; a backend's is
//!   its exit span's duration. Per service and operation the median is listed (`operations`), and
//!   the service's median over all its operations is `service_time_us`, which the simulator uses
//!   instead of the per-kind default.
//! - **Replicas**: the number of distinct instances (Jaeger process `hostname`/`ip`, Zipkin
//!   `localEndpoint` address, OTLP `service.instance.id`, a span CSV's pod) a service's spans ran
//!   on, when the spans name them; absent otherwise.
//!
//! The output is deterministic: the same spans in the same order give the same bytes (every map
//! is ordered; floats are rounded to 0.1 µs and 10⁻⁶).

use crate::IngestSummary;
use crate::spans::{Span, SpanKind, backend_tech, exit_target, is_exit, link_parents};
use kernel::{EdgeKind, ServiceKind};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// The topology file (the schema of `deathstarbench/data/deathstarbench.json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TopologyFile {
    /// What the file is.
    pub schema: String,
    /// Applications (one).
    pub apps: Vec<App>,
}

/// One application.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct App {
    /// Name.
    pub name: String,
    /// Where it came from (the trace files).
    pub source: String,
    /// Services.
    pub services: Vec<Service>,
    /// Edges.
    pub edges: Vec<Edge>,
    /// Workloads.
    pub workloads: Vec<Workload>,
}

/// A service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Service {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Distinct instances seen, when the spans name them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Technology of a backend (`redis`, `memcached`, `mongodb`, a `db.system`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tech: Option<String>,
    /// Median self time over all the service's operations, µs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_time_us: Option<f64>,
    /// The instances seen, sorted.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub instances: Vec<String>,
    /// Per operation: how often it ran and its median self time.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
}

/// One operation of a service.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Operation {
    /// Operation name.
    pub name: String,
    /// Times it ran (with a duration).
    pub count: u64,
    /// Median self time, µs.
    pub self_time_us: f64,
}

/// An edge.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Edge {
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// `rpc | mq | cache | db`.
    pub kind: &'static str,
    /// Operations called over the edge, sorted.
    pub ops: Vec<String>,
    /// Calls seen.
    pub calls: u64,
}

/// A workload: the requests entering at one service with one root operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Workload {
    /// Name (the root operation).
    pub name: String,
    /// Share of the root requests.
    pub weight: f64,
    /// Entry service.
    pub entry: String,
    /// Root requests seen.
    pub requests: u64,
    /// Calls of one request, depth first.
    pub calls: Vec<WorkloadCall>,
}

/// One call of a workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadCall {
    /// Caller (`client` for the user).
    pub from: String,
    /// Callee.
    pub to: String,
    /// Operation.
    pub op: String,
    /// Stage: equal stages of one caller run in parallel.
    pub stage: u32,
    /// When the call was not seen in every call of its caller.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
}

/// One node of a request: a service handling a call, or a backend called.
#[derive(Clone, Debug)]
struct Node {
    service: String,
    op: String,
    /// Caller-side interval, µs.
    start: u64,
    end: u64,
    children: Vec<Node>,
}

/// A merged node of a workload.
#[derive(Clone, Debug, Default)]
struct Merged {
    service: String,
    op: String,
    /// Observations.
    seen: u64,
    /// Sum of starts relative to the parent's start, and of lengths, µs.
    rel_start_sum: f64,
    length_sum: f64,
    /// Children keyed by (service, op, rank among equal siblings), in first-seen order.
    children: Vec<((String, String, usize), Merged)>,
}

#[derive(Debug, Default)]
struct ServiceAcc {
    frontend: bool,
    backend: Option<ServiceKind>,
    tech: Option<String>,
    instances: BTreeSet<String>,
    /// Self times per operation, µs.
    ops: BTreeMap<String, Vec<u64>>,
}

#[derive(Debug)]
struct EdgeAcc {
    kind: EdgeKind,
    ops: BTreeSet<String>,
    calls: u64,
}

/// Accumulates traces into a topology.
#[derive(Debug, Default)]
pub struct TopologyBuilder {
    services: BTreeMap<String, ServiceAcc>,
    /// Services in first-seen order (the output order: callers before callees).
    order: Vec<String>,
    edges: BTreeMap<(String, String), EdgeAcc>,
    /// Edges in first-seen order.
    edge_order: Vec<(String, String)>,
    workloads: BTreeMap<(String, String), Merged>,
    requests: u64,
    /// Calls not followed because they were nested deeper than [`MAX_DEPTH`].
    too_deep: u64,
}

/// How deep a call tree is followed (service hops from the entry); deeper calls are cut and
/// counted ([`TopologyBuilder::too_deep`]), so that no input can exhaust the stack.
pub const MAX_DEPTH: usize = 128;

impl TopologyBuilder {
    /// Adds one whole trace (its spans in any order).
    pub fn add_trace(&mut self, spans: &mut [Span], summary: &mut IngestSummary) {
        summary.records += spans.len() as u64;
        let parent_of = link_parents(spans, summary);
        let mut children: Vec<Vec<usize>> = vec![Vec::new(); spans.len()];
        for (i, p) in parent_of.iter().enumerate() {
            if let Some(p) = *p {
                children[p].push(i);
            }
        }
        for kids in &mut children {
            kids.sort_by(|&a, &b| {
                (spans[a].start_us, &spans[a].span_id).cmp(&(spans[b].start_us, &spans[b].span_id))
            });
        }
        for (i, s) in spans.iter().enumerate() {
            let root = parent_of[i].is_none() && (s.parent_id.is_none() || s.shared);
            if !root {
                continue;
            }
            let node = self.node(spans, &children, i, (s.start_us, end(s)), 0);
            self.service(&s.service).frontend = true;
            self.requests += 1;
            summary.calls += 1;
            let merged = self
                .workloads
                .entry((node.service.clone(), node.op.clone()))
                .or_default();
            merge(merged, &node, node.start);
        }
        // Instances of the services the requests reached (spans cut off from every request,
        // such as orphans, name no service of the topology).
        for s in spans.iter() {
            if let (Some(instance), Some(acc)) = (&s.instance, self.services.get_mut(&s.service)) {
                acc.instances.insert(instance.clone());
            }
        }
    }

    fn service(&mut self, name: &str) -> &mut ServiceAcc {
        if !self.services.contains_key(name) {
            self.order.push(name.to_string());
        }
        self.services.entry(name.to_string()).or_default()
    }

    fn edge(&mut self, from: &str, to: &str, kind: EdgeKind, op: &str) {
        let key = (from.to_string(), to.to_string());
        if !self.edges.contains_key(&key) {
            self.edge_order.push(key.clone());
        }
        let e = self.edges.entry(key).or_insert(EdgeAcc {
            kind,
            ops: BTreeSet::new(),
            calls: 0,
        });
        e.ops.insert(op.to_string());
        e.calls += 1;
    }

    /// The node rooted at span `r`, measured on the caller's side over `interval`.
    fn node(
        &mut self,
        spans: &[Span],
        children: &[Vec<usize>],
        r: usize,
        interval: (u64, u64),
        depth: usize,
    ) -> Node {
        let root = &spans[r];
        self.service(&root.service);
        let mut calls: Vec<Node> = Vec::new();
        let mut group = vec![r];
        let mut name = String::new();
        while let Some(x) = group.pop() {
            let span = &spans[x];
            let remote: Vec<usize> = children[x]
                .iter()
                .copied()
                .filter(|&c| spans[c].service != span.service)
                .collect();
            for &c in &remote {
                if depth >= MAX_DEPTH {
                    self.too_deep += 1;
                    continue;
                }
                let child = &spans[c];
                // Measured on the caller's side: the span wrapping only this call, if any.
                let wrapper = x != r
                    && children[x].len() == 1
                    && !matches!(span.kind, SpanKind::Server | SpanKind::Consumer);
                let at = if wrapper { span } else { child };
                let kind = if span.kind == SpanKind::Producer || child.kind == SpanKind::Consumer {
                    EdgeKind::Mq
                } else {
                    EdgeKind::Rpc
                };
                self.edge(&span.service, &child.service, kind, &child.name);
                let node = self.node(spans, children, c, (at.start_us, end(at)), depth + 1);
                calls.push(node);
            }
            if remote.is_empty()
                && is_exit(span)
                && let Some((edge, kind)) = exit_target(span, &mut name)
            {
                let backend = self.service(&name);
                backend.backend = Some(kind);
                if backend.tech.is_none() {
                    backend.tech = backend_tech(span);
                }
                if let Some(d) = span.duration_us {
                    backend.ops.entry(span.name.clone()).or_default().push(d);
                }
                let (service, op) = (name.clone(), span.name.clone());
                self.edge(&span.service, &service, edge, &op);
                calls.push(Node {
                    service,
                    op,
                    start: span.start_us,
                    end: end(span),
                    children: Vec::new(),
                });
                if x != r {
                    continue;
                }
            }
            for &c in children[x].iter().rev() {
                if spans[c].service == span.service {
                    group.push(c);
                }
            }
        }
        calls.sort_by(|a, b| (a.start, &a.service, &a.op).cmp(&(b.start, &b.service, &b.op)));
        let self_time = root.duration_us.map(|d| {
            let covered: Vec<(u64, u64)> = calls.iter().map(|c| (c.start, c.end)).collect();
            self_time(root.start_us, d, &covered)
        });
        if let Some(t) = self_time {
            self.service(&root.service)
                .ops
                .entry(root.name.clone())
                .or_default()
                .push(t);
        }
        Node {
            service: root.service.clone(),
            op: root.name.clone(),
            start: interval.0,
            end: interval.1,
            children: calls,
        }
    }

    /// Calls not followed because they were nested deeper than [`MAX_DEPTH`] service hops.
    pub fn too_deep(&self) -> u64 {
        self.too_deep
    }

    /// Whether any trace gave a request.
    pub fn is_empty(&self) -> bool {
        self.requests == 0
    }

    /// The topology of everything added, as application `name` from `source`.
    pub fn build(&self, name: &str, source: &str) -> TopologyFile {
        let services = self
            .order
            .iter()
            .map(|n| {
                let s = &self.services[n];
                let kind = if s.frontend {
                    ServiceKind::Frontend
                } else {
                    s.backend.unwrap_or(ServiceKind::Stateless)
                };
                let all: Vec<u64> = s.ops.values().flatten().copied().collect();
                Service {
                    name: n.clone(),
                    kind,
                    replicas: (!s.instances.is_empty())
                        .then(|| u32::try_from(s.instances.len()).unwrap_or(u32::MAX)),
                    tech: s.tech.clone(),
                    service_time_us: median(&all).map(round_us),
                    instances: s.instances.iter().cloned().collect(),
                    operations: s
                        .ops
                        .iter()
                        .filter_map(|(op, times)| {
                            Some(Operation {
                                name: op.clone(),
                                count: times.len() as u64,
                                self_time_us: round_us(median(times)?),
                            })
                        })
                        .collect(),
                }
            })
            .collect();
        let edges = self
            .edge_order
            .iter()
            .map(|key| {
                let e = &self.edges[key];
                Edge {
                    from: key.0.clone(),
                    to: key.1.clone(),
                    kind: edge_kind(e.kind),
                    ops: e.ops.iter().cloned().collect(),
                    calls: e.calls,
                }
            })
            .collect();
        let mut workloads: Vec<Workload> = self
            .workloads
            .iter()
            .map(|((entry, op), root)| {
                let mut calls = vec![WorkloadCall {
                    from: "client".into(),
                    to: entry.clone(),
                    op: op.clone(),
                    stage: 0,
                    condition: None,
                }];
                let mut next_stage = 0;
                flatten(root, &mut next_stage, &mut calls);
                Workload {
                    name: op.clone(),
                    weight: round_share(root.seen as f64 / self.requests.max(1) as f64),
                    entry: entry.clone(),
                    requests: root.seen,
                    calls,
                }
            })
            .collect();
        // Most requested first; ties by entry and name (the map's order, kept by a stable sort).
        workloads.sort_by_key(|w| std::cmp::Reverse(w.requests));
        // Two entry services with the same root operation would give two workloads of one name.
        let mut names: BTreeMap<String, u32> = BTreeMap::new();
        for w in &mut workloads {
            let n = names.entry(w.name.clone()).or_default();
            *n += 1;
            if *n > 1 {
                w.name = format!("{} ({})", w.name, w.entry);
            }
        }
        TopologyFile {
            schema: "microreboot topology: services, edges and workloads (built by `microreboot \
                     topology from-traces`)"
                .into(),
            apps: vec![App {
                name: name.to_string(),
                source: source.to_string(),
                services,
                edges,
                workloads,
            }],
        }
    }
}

/// End of a span, µs (its start when it has no duration).
fn end(s: &Span) -> u64 {
    s.start_us.saturating_add(s.duration_us.unwrap_or(0))
}

fn merge(into: &mut Merged, node: &Node, parent_start: u64) {
    into.service.clone_from(&node.service);
    into.op.clone_from(&node.op);
    into.seen += 1;
    into.rel_start_sum += node.start.saturating_sub(parent_start) as f64;
    into.length_sum += node.end.saturating_sub(node.start) as f64;
    let mut rank: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for child in &node.children {
        let r = rank
            .entry((child.service.as_str(), child.op.as_str()))
            .or_default();
        let key = (child.service.clone(), child.op.clone(), *r);
        *r += 1;
        let at = match into.children.iter().position(|(k, _)| *k == key) {
            Some(at) => at,
            None => {
                into.children.push((key, Merged::default()));
                into.children.len() - 1
            }
        };
        merge(&mut into.children[at].1, child, node.start);
    }
}

/// Emits `node`'s children depth first, numbering stages from `next_stage`.
fn flatten(node: &Merged, next_stage: &mut u32, out: &mut Vec<WorkloadCall>) {
    let mut kids: Vec<&Merged> = node.children.iter().map(|(_, m)| m).collect();
    let interval = |m: &Merged| {
        let n = m.seen.max(1) as f64;
        (m.rel_start_sum / n, (m.rel_start_sum + m.length_sum) / n)
    };
    kids.sort_by(|a, b| {
        interval(a)
            .0
            .total_cmp(&interval(b).0)
            .then_with(|| (&a.service, &a.op).cmp(&(&b.service, &b.op)))
    });
    let intervals: Vec<(f64, f64)> = kids.iter().map(|m| interval(m)).collect();
    let groups = stages(&intervals);
    let base = *next_stage;
    *next_stage += groups.iter().copied().max().map_or(0, |g| g + 1);
    for (kid, group) in kids.iter().zip(&groups) {
        out.push(WorkloadCall {
            from: node.service.clone(),
            to: kid.service.clone(),
            op: kid.op.clone(),
            stage: base + group + 1,
            condition: (kid.seen < node.seen)
                .then(|| format!("observed in {} of {} calls", kid.seen, node.seen)),
        });
        flatten(kid, next_stage, out);
    }
}

/// Stage of each of a node's children, given their `(start, end)` intervals sorted by start:
/// a child that starts before the children of the current stage have all ended overlaps them
/// and runs in the same stage; one that starts after starts the next stage. Stages count from 0.
pub fn stages(intervals: &[(f64, f64)]) -> Vec<u32> {
    let mut out = Vec::with_capacity(intervals.len());
    let mut stage = 0;
    let mut stage_end = f64::NEG_INFINITY;
    for (i, &(start, end)) in intervals.iter().enumerate() {
        if i > 0 && start >= stage_end {
            stage += 1;
            stage_end = f64::NEG_INFINITY;
        }
        stage_end = stage_end.max(end);
        out.push(stage);
    }
    out
}

/// A span's self time: its `duration` from `start` minus the time its children's intervals
/// cover within it (overlapping children counted once), never below 0.
pub fn self_time(start: u64, duration: u64, children: &[(u64, u64)]) -> u64 {
    let stop = start.saturating_add(duration);
    let mut clipped: Vec<(u64, u64)> = children
        .iter()
        .map(|&(a, b)| (a.clamp(start, stop), b.clamp(start, stop)))
        .filter(|(a, b)| b > a)
        .collect();
    clipped.sort_unstable();
    let mut covered = 0;
    let mut open: Option<(u64, u64)> = None;
    for (a, b) in clipped {
        match &mut open {
            Some((_, e)) if a <= *e => *e = (*e).max(b),
            _ => {
                if let Some((s, e)) = open {
                    covered += e - s;
                }
                open = Some((a, b));
            }
        }
    }
    if let Some((s, e)) = open {
        covered += e - s;
    }
    duration.saturating_sub(covered)
}

fn median(values: &[u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    })
}

fn round_us(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round_share(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

fn edge_kind(kind: EdgeKind) -> &'static str {
    match kind {
        EdgeKind::Rpc => "rpc",
        EdgeKind::Mq => "mq",
        EdgeKind::Cache => "cache",
        EdgeKind::Db => "db",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_children_share_a_stage_and_sequential_ones_do_not() {
        // A, B overlap; C starts after both ended; D overlaps C; E starts exactly when D ends.
        let intervals = [
            (0.0, 10.0),
            (5.0, 12.0),
            (12.0, 20.0),
            (15.0, 30.0),
            (30.0, 31.0),
        ];
        assert_eq!(stages(&intervals), [0, 0, 1, 1, 2]);
        // Strictly sequential calls: one stage each.
        assert_eq!(stages(&[(0.0, 1.0), (2.0, 3.0), (4.0, 5.0)]), [0, 1, 2]);
        // A long call overlapping two short sequential ones: all parallel.
        assert_eq!(stages(&[(0.0, 100.0), (1.0, 2.0), (3.0, 4.0)]), [0, 0, 0]);
        // Calls without durations (zero length) are sequential.
        assert_eq!(stages(&[(1.0, 1.0), (1.0, 1.0)]), [0, 1]);
        assert!(stages(&[]).is_empty());
    }

    #[test]
    fn self_time_subtracts_the_union_of_children() {
        assert_eq!(self_time(0, 100, &[]), 100);
        assert_eq!(self_time(0, 100, &[(10, 30), (50, 60)]), 70);
        // Parallel children are counted once.
        assert_eq!(self_time(0, 100, &[(10, 50), (20, 60)]), 50);
        // Children reaching outside the span (clock skew) are clipped.
        assert_eq!(self_time(100, 50, &[(90, 120), (140, 200)]), 20);
        // Never negative.
        assert_eq!(self_time(0, 10, &[(0, 10), (0, 10)]), 0);
    }

    fn span(id: &str, parent: Option<&str>, service: &str, name: &str, at: (u64, u64)) -> Span {
        Span {
            trace_id: "t".into(),
            span_id: id.into(),
            parent_id: parent.map(str::to_string),
            service: service.into(),
            name: name.into(),
            start_us: at.0,
            duration_us: Some(at.1),
            instance: Some(format!("{service}-1")),
            ..Span::default()
        }
    }

    #[test]
    fn a_trace_becomes_services_edges_and_a_staged_call_tree() {
        let mut spans = vec![
            span("1", None, "web", "GET /", (0, 100)),
            span("2", Some("1"), "web", "call_api", (10, 80)),
            span("3", Some("2"), "api", "Handle", (15, 70)),
            // Two parallel calls, then a sequential one.
            span("4", Some("3"), "api", "read_redis_get", (20, 10)),
            span("5", Some("3"), "auth", "Check", (22, 10)),
            span("6", Some("3"), "api", "read_mongo_find", (40, 20)),
        ];
        let mut b = TopologyBuilder::default();
        let mut summary = IngestSummary::default();
        b.add_trace(&mut spans, &mut summary);
        let app = &b.build("twin", "t").apps[0];
        let kinds: Vec<(&str, ServiceKind)> = app
            .services
            .iter()
            .map(|s| (s.name.as_str(), s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                ("web", ServiceKind::Frontend),
                ("api", ServiceKind::Stateless),
                ("auth", ServiceKind::Stateless),
                ("api-redis", ServiceKind::Cache),
                ("api-mongodb", ServiceKind::Db),
            ]
        );
        let edges: Vec<String> = app
            .edges
            .iter()
            .map(|e| format!("{}>{}:{}", e.from, e.to, e.kind))
            .collect();
        assert_eq!(
            edges,
            [
                "web>api:rpc",
                "api>auth:rpc",
                "api>api-redis:cache",
                "api>api-mongodb:db"
            ]
        );
        let w = &app.workloads[0];
        assert_eq!((w.name.as_str(), w.weight), ("GET /", 1.0));
        let calls: Vec<String> = w
            .calls
            .iter()
            .map(|c| format!("{}>{}@{}", c.from, c.to, c.stage))
            .collect();
        assert_eq!(
            calls,
            [
                "client>web@0",
                "web>api@1",
                "api>api-redis@2",
                "api>auth@2",
                "api>api-mongodb@3"
            ]
        );
        // api: 70 µs minus redis [20,30) ∪ auth [22,32) ∪ mongo [40,60) = 70 - 12 - 20.
        let api = app.services.iter().find(|s| s.name == "api").unwrap();
        assert_eq!(api.service_time_us, Some(38.0));
        assert_eq!(api.replicas, Some(1));
        // web: 100 µs minus the client span wrapping its call (80 µs).
        let web = app.services.iter().find(|s| s.name == "web").unwrap();
        assert_eq!(web.service_time_us, Some(20.0));
    }

    #[test]
    fn a_call_chain_deeper_than_the_limit_is_cut_not_followed() {
        let n = MAX_DEPTH + 10;
        let mut spans: Vec<Span> = (0..n)
            .map(|i| {
                let parent = (i > 0).then(|| (i - 1).to_string());
                let service = format!("s{}", i % 2);
                span(
                    &i.to_string(),
                    parent.as_deref(),
                    &service,
                    "op",
                    (i as u64, 1),
                )
            })
            .collect();
        let mut b = TopologyBuilder::default();
        b.add_trace(&mut spans, &mut IngestSummary::default());
        assert_eq!(b.too_deep(), 1);
        assert_eq!(
            b.build("t", "t").apps[0].workloads[0].calls.len(),
            MAX_DEPTH + 1,
            "the client's call and MAX_DEPTH hops"
        );
    }

    #[test]
    fn calls_missing_from_some_requests_get_a_condition() {
        let mut b = TopologyBuilder::default();
        let mut summary = IngestSummary::default();
        for (t, with_cache) in [("a", true), ("b", false)] {
            let mut spans = vec![
                span("1", None, "web", "GET /", (0, 100)),
                span("2", Some("1"), "api", "Handle", (10, 50)),
            ];
            if with_cache {
                spans.push(span("3", Some("2"), "api", "mmc_get", (20, 10)));
            }
            for s in &mut spans {
                s.trace_id = t.into();
            }
            b.add_trace(&mut spans, &mut summary);
        }
        let w = &b.build("twin", "t").apps[0].workloads[0];
        assert_eq!(w.requests, 2);
        assert_eq!(
            w.calls[2].condition.as_deref(),
            Some("observed in 1 of 2 calls")
        );
        assert_eq!(w.calls[1].condition, None);
    }
}
