//! Fixtures and percentile harnesses for the benchmarks.
//!
//! Criterion (`cargo bench -p microreboot-benches`) reports means and medians with confidence
//! intervals; tail latencies need every call timed on its own, which [`percentiles`] does and
//! `microreboot bench …` prints. Both use the fixtures built here, so the numbers describe the
//! same workload.

use kernel::isa::{
    Action, ConfigVersion, IncidentId, Lease, LeaseSeconds, Plan, Rate, ReplicaCount,
    ReplicaSelector, ServiceName,
};
use kernel::scope::{RestartGroup, ScopeFile};
use kernel::validate::KernelView;
use kernel::{
    DependencyGraph, EdgeKind, Health, RecoveryScope, Service, ServiceHealth, ServiceKind,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

pub mod export;
pub mod flat;

/// A graph, an incident scope in it and a valid plan of [`kernel::MAX_PLAN_STEPS`] steps.
pub struct ValidateFixture {
    /// The graph.
    pub graph: DependencyGraph,
    /// Scope of an incident at service `s0`.
    pub scope: RecoveryScope,
    /// A plan the kernel accepts: restarts in order with hub drains, and every other action.
    pub plan: Plan,
    /// Monitoring's snapshot: every scope service failing (alert, SLO, a failing probe) and
    /// with a recent config change, so the evidence rule (`R18`) checks every step.
    pub health: Health,
}

impl ValidateFixture {
    /// The kernel's view for validation: idle, with the fixture's health snapshot.
    pub fn view(&self) -> KernelView<'_> {
        KernelView {
            health: Some(&self.health),
            ..KernelView::idle()
        }
    }
}

fn name(s: &str) -> ServiceName {
    ServiceName::try_from(s).expect("fixture names are valid")
}

/// Builds a `services`-service graph (edges run from lower to higher ids, callees chosen
/// preferentially among recently popular ones, so hubs emerge) and a full-length valid plan.
pub fn validate_fixture(services: usize, seed: u64) -> ValidateFixture {
    assert!(
        services >= 64,
        "the fixture needs room for a 30-service scope"
    );
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut graph = DependencyGraph::new();
    for i in 0..services {
        let kind = if i == 0 {
            ServiceKind::Frontend
        } else {
            ServiceKind::Stateless
        };
        let mut s = Service::new(format!("s{i}"), kind).with_replicas(3);
        s.max_replicas = 12;
        s.config_versions = vec!["v1".into(), "v2".into(), "v3".into()];
        graph.add_service(s).expect("unique names");
    }
    for i in 0..services - 1 {
        let from = graph.id(&format!("s{i}")).expect("added");
        for _ in 0..rng.random_range(1..4) {
            // Mostly near neighbours, sometimes a popular low-id hub region.
            let j = if rng.random_bool(0.2) {
                rng.random_range(i + 1..services.min(i + 64).max(i + 2))
            } else {
                rng.random_range(i + 1..services)
            };
            let to = graph.id(&format!("s{j}")).expect("added");
            graph.add_calls(from, to, EdgeKind::Rpc, rng.random_range(60..6000));
        }
    }
    // A hub inside the scope: s0 and many others call s1.
    let hub = graph.id("s1").expect("added");
    let root = graph.id("s0").expect("added");
    graph.add_calls(root, hub, EdgeKind::Rpc, 600);
    for i in 2..30 {
        let from = graph.id(&format!("s{}", services - i)).expect("added");
        graph.add_calls(from, hub, EdgeKind::Rpc, 60);
    }
    let scope = bfs_scope(&graph, "s0");
    let plan = full_plan(&graph, &scope);
    let mut health = Health::new();
    for s in scope.services() {
        health.set(
            s,
            ServiceHealth {
                alerting: true,
                failing_replicas: 1,
                slo_violated: true,
                error_rate: 0.2,
                p99_ms: 900.0,
                config_changed: true,
            },
        );
    }
    ValidateFixture {
        graph,
        scope,
        plan,
        health,
    }
}

/// Downstream BFS from `symptom`, first 30 services, singleton groups ordered callees first.
fn bfs_scope(graph: &DependencyGraph, symptom: &str) -> RecoveryScope {
    let start = graph.id(symptom).expect("symptom exists");
    let mut order = vec![start];
    let mut i = 0;
    while i < order.len() && order.len() < kernel::MAX_GROUP_SIZE {
        let mut next: Vec<_> = graph.callees(order[i]).map(|(c, _)| c).collect();
        next.sort();
        for c in next {
            if order.len() < kernel::MAX_GROUP_SIZE && !order.contains(&c) {
                order.push(c);
            }
        }
        i += 1;
    }
    // Edges run from lower to higher ids, so descending id is a callee-first order.
    order.sort_by(|a, b| b.cmp(a));
    let index: BTreeMap<_, _> = order.iter().enumerate().map(|(g, &s)| (s, g)).collect();
    let mut constraints = Vec::new();
    for (&s, &g) in &index {
        for (c, _) in graph.callees(s) {
            if let Some(&gc) = index.get(&c) {
                constraints.push((gc, g));
            }
        }
    }
    constraints.sort();
    let file = ScopeFile {
        incident: IncidentId::try_from("bench-incident").expect("valid id"),
        symptom: symptom.to_string(),
        groups: order
            .iter()
            .map(|&s| RestartGroup {
                members: vec![graph.service(s).name.clone()],
            })
            .collect(),
        order: constraints,
        startup_order: Vec::new(),
        requires_drain: order
            .iter()
            .filter(|&&s| graph.is_hub(s))
            .map(|&s| graph.service(s).name.clone())
            .collect(),
        truncated: Vec::new(),
        truncated_total: None,
        layers: None,
    };
    RecoveryScope::new(file).expect("the fixture scope is consistent")
}

fn full_plan(graph: &DependencyGraph, scope: &RecoveryScope) -> Plan {
    let mut stages: Vec<Vec<Action>> = Vec::new();
    let mut leases = Vec::new();
    let members: Vec<String> = scope.services().map(str::to_string).collect();
    // Eight restarts in callee-first order (the scope lists groups that way); hubs get drained.
    for s in members.iter().take(8) {
        let one = ReplicaSelector::Ids(vec![0]);
        if scope.requires_drain(s) {
            stages.push(vec![Action::Drain {
                service: name(s),
                replicas: one.clone(),
            }]);
            stages.push(vec![Action::Restart {
                service: name(s),
                replicas: one,
            }]);
            stages.push(vec![Action::RestoreTraffic { service: name(s) }]);
        } else {
            stages.push(vec![Action::Restart {
                service: name(s),
                replicas: one,
            }]);
        }
    }
    let mut k = 0;
    while stages.iter().map(Vec::len).sum::<usize>() < kernel::MAX_PLAN_STEPS {
        let s = &members[k % members.len()];
        let id = graph.id(s).expect("in graph");
        let step = stages.iter().map(Vec::len).sum::<usize>();
        let action = match k % 4 {
            0 => Action::RollbackConfig {
                service: name(s),
                version: ConfigVersion::try_from("v2").expect("valid"),
            },
            1 => Action::Scale {
                service: name(s),
                replicas: ReplicaCount::try_from(4).expect("valid"),
            },
            2 => match graph.baseline_rps(id) {
                Some(b) => {
                    leases.push(Lease {
                        step,
                        ttl_s: LeaseSeconds::try_from(120).expect("valid"),
                    });
                    Action::RateLimit {
                        service: name(s),
                        rps: Rate::try_from(b).expect("positive"),
                    }
                }
                None => Action::RollbackConfig {
                    service: name(s),
                    version: ConfigVersion::try_from("v1").expect("valid"),
                },
            },
            _ => {
                let (caller, _) = graph
                    .callers(id)
                    .next()
                    .expect("scope members have callers");
                Action::CircuitBreak {
                    caller: name(&graph.service(caller).name),
                    callee: name(s),
                    duration_s: Some(LeaseSeconds::try_from(60).expect("valid")),
                }
            }
        };
        stages.push(vec![action]);
        k += 1;
    }
    let mut plan = Plan::new(scope.incident().clone(), stages);
    plan.leases = leases;
    plan
}

/// Latency percentiles of a measured operation, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Percentiles {
    /// Calls measured.
    pub count: u64,
    /// Median.
    pub p50_ns: u64,
    /// 99th percentile.
    pub p99_ns: u64,
    /// Maximum.
    pub max_ns: u64,
}

impl std::fmt::Display for Percentiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = |ns: u64| ns as f64 / 1000.0;
        write!(
            f,
            "n={} p50={:.3} µs p99={:.3} µs max={:.3} µs",
            self.count,
            us(self.p50_ns),
            us(self.p99_ns),
            us(self.max_ns)
        )
    }
}

/// Times `op` on its own `calls` times (after `calls / 10` warm-up calls) and returns the
/// percentiles. Wall-clock timing is the point here, so this is one of the few places that may
/// read `Instant::now`.
#[allow(clippy::disallowed_methods)]
pub fn percentiles(calls: u64, mut op: impl FnMut()) -> Percentiles {
    for _ in 0..calls / 10 {
        op();
    }
    let mut hist = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .expect("valid bounds");
    for _ in 0..calls {
        let start = std::time::Instant::now();
        op();
        let ns = start.elapsed().as_nanos() as u64;
        hist.saturating_record(ns.max(1));
    }
    Percentiles {
        count: hist.len(),
        p50_ns: hist.value_at_quantile(0.5),
        p99_ns: hist.value_at_quantile(0.99),
        max_ns: hist.max(),
    }
}

/// Times `op` on its own `calls` times (after `calls / 10` warm-up calls); returns every sample,
/// nanoseconds, sorted — for latency CDFs.
#[allow(clippy::disallowed_methods)]
pub fn samples_ns(calls: u64, mut op: impl FnMut()) -> Vec<u64> {
    for _ in 0..calls / 10 {
        op();
    }
    let mut out: Vec<u64> = (0..calls)
        .map(|_| {
            let start = std::time::Instant::now();
            op();
            start.elapsed().as_nanos() as u64
        })
        .collect();
    out.sort_unstable();
    out
}

/// An industrial graph with query symptoms and a window of calls to rebuild it from.
pub struct InferFixture {
    /// Label.
    pub name: &'static str,
    /// The maintained graph.
    pub graph: DependencyGraph,
    /// Symptoms to query, drawn uniformly (seeded).
    pub symptoms: Vec<kernel::ServiceId>,
    /// One window of calls, time-ordered, as a span reader would deliver them.
    pub window: WindowSpans,
}

/// A window of calls with their service names laid out contiguously, the way a reader
/// delivers them from its input buffer (so that replaying them measures the graph, not the
/// harness).
pub struct WindowSpans {
    names: String,
    calls: Vec<SpanCall>,
}

/// One call of a [`WindowSpans`]: time, caller and callee name ranges, edge and service kinds.
struct SpanCall {
    time_us: u64,
    caller: (u32, u32),
    callee: (u32, u32),
    kind: EdgeKind,
    caller_kind: ServiceKind,
    callee_kind: ServiceKind,
}

impl WindowSpans {
    fn new(
        graph: &DependencyGraph,
        calls: &[(u64, kernel::ServiceId, kernel::ServiceId, EdgeKind)],
    ) -> Self {
        let mut names = String::new();
        let mut out = Vec::with_capacity(calls.len());
        let push = |names: &mut String, id: kernel::ServiceId| {
            let start = names.len() as u32;
            names.push_str(&graph.service(id).name);
            (start, names.len() as u32)
        };
        for &(t, a, b, kind) in calls {
            let ra = push(&mut names, a);
            let rb = push(&mut names, b);
            out.push(SpanCall {
                time_us: t,
                caller: ra,
                callee: rb,
                kind,
                caller_kind: graph.service(a).kind,
                callee_kind: graph.service(b).kind,
            });
        }
        WindowSpans { names, calls: out }
    }

    /// Number of calls.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }
}

/// The two industrial graphs of the paper's evaluation: Alibaba-like (5,459 services) and
/// Meta-like (392), each with `queries` symptoms and a 60 s window of about `window_calls`
/// calls spread over its edges in proportion to their weights (at least one per edge).
pub fn infer_fixtures(queries: usize, window_calls: usize) -> Vec<InferFixture> {
    let graphs = [
        ("alibaba-5459", traces::synth::alibaba_like(1)),
        (
            "meta-392",
            traces::synth::meta_like(traces::synth::META_PAPER_SERVICES, 1),
        ),
    ];
    graphs
        .into_iter()
        .map(|(name, graph)| {
            let mut rng = ChaCha8Rng::seed_from_u64(99);
            let ids: Vec<_> = graph.services().map(|(id, _)| id).collect();
            let symptoms = (0..queries)
                .map(|_| ids[rng.random_range(0..ids.len())])
                .collect();
            let total: u64 = graph.edges().map(|(_, _, d)| d.weight).sum();
            let scale = window_calls as f64 / total.max(1) as f64;
            let calls = traces::synth::call_stream(&graph, scale, WINDOW_US, 7);
            let window = WindowSpans::new(&graph, &calls);
            InferFixture {
                name,
                graph,
                symptoms,
                window,
            }
        })
        .collect()
}

/// The fixtures' window, microseconds: every window of calls spans it.
pub const WINDOW_US: u64 = 60_000_000;

/// A windowed graph sized for `names`, to rebuild into with [`rebuild`].
pub fn rebuild_target(names: &DependencyGraph) -> traces::WindowedGraph {
    traces::WindowedGraph::with_capacity(Some(WINDOW_US), names.service_count(), names.edge_count())
}

/// Rebuilds `w` from `window`: everything is forgotten and the
/// window's calls ingested again, reusing `w`'s allocations as an online deployment that
/// recomputes its graph would.
pub fn rebuild(w: &mut traces::WindowedGraph, window: &WindowSpans) {
    w.clear();
    replay(w, window, 0, 0..window.len());
}

/// Ingests calls `range` of `window` into the maintained window `w`, `shift_us` later than
/// recorded. Replaying the window shifted by whole window lengths is a steady stream: each
/// call arrives as its copy of one window earlier expires, so the graph keeps its shape and
/// every update pays for its share of the expiry.
pub fn replay(
    w: &mut traces::WindowedGraph,
    window: &WindowSpans,
    shift_us: u64,
    range: std::ops::Range<usize>,
) {
    for c in &window.calls[range] {
        let end = |(start, end): (u32, u32), kind| traces::Endpoint {
            name: &window.names[start as usize..end as usize],
            kind,
            unknown: false,
        };
        w.ingest(&traces::Call {
            time_us: c.time_us + shift_us,
            caller: end(c.caller, c.caller_kind),
            callee: end(c.callee, c.callee_kind),
            kind: c.kind,
        });
    }
}

/// `rows` rows of synthetic Alibaba v2022 `CallGraph` CSV drawn from `graph`'s edges, with
/// 20 % of calls logged twice (the UM/DM-side duplicates of the real trace), for ingestion
/// throughput measurements.
pub fn alibaba_csv(graph: &DependencyGraph, rows: usize, seed: u64) -> Vec<u8> {
    use std::io::Write;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let edges: Vec<_> = graph.edges().collect();
    let mut out = Vec::with_capacity(rows * 120);
    out.extend_from_slice(
        b"timestamp,traceid,service,rpc_id,rpctype,um,uminstanceid,interface,dm,dminstanceid,rt\n",
    );
    let mut written = 0;
    let mut t = 0u64;
    while written < rows {
        let (a, b, d) = edges[rng.random_range(0..edges.len())];
        t += rng.random_range(0..2);
        let um = &graph.service(a).name;
        let dm = &graph.service(b).name;
        let rpctype = match d.kind {
            EdgeKind::Cache => "mc",
            EdgeKind::Db => "db",
            EdgeKind::Mq => "mq",
            EdgeKind::Rpc => "rpc",
        };
        let trace = rng.random_range(0..1_000_000u64);
        let rpc = rng.random_range(1..40u32);
        let copies = if rng.random_bool(0.2) { 2 } else { 1 };
        for _ in 0..copies {
            writeln!(
                out,
                "{t},T_{trace},S_{},0.{rpc}.1,{rpctype},{um},{um}_POD_{},Xq3{rpc:07},{dm},{dm}_POD_{},{}.0",
                trace % 977,
                rpc % 17,
                rpc % 13,
                rpc % 9
            )
            .expect("writing to memory");
            written += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use kernel::validate::validate;

    #[test]
    fn the_fixture_plan_is_full_length_and_accepted() {
        let f = validate_fixture(5000, 7);
        assert_eq!(f.graph.service_count(), 5000);
        assert_eq!(f.plan.step_count(), kernel::MAX_PLAN_STEPS);
        assert_eq!(f.scope.len(), kernel::MAX_GROUP_SIZE);
        assert!(!f.scope.hubs().is_empty(), "the plan exercises hub drains");
        let verdict = validate(&f.plan, &f.graph, &f.scope, &f.view());
        assert!(verdict.accepted(), "{verdict}");
        // The evidence rule runs on every step: with no failure anywhere, nothing passes it.
        let healthy = kernel::Health::new();
        let view = KernelView {
            health: Some(&healthy),
            ..KernelView::idle()
        };
        let verdict = validate(&f.plan, &f.graph, &f.scope, &view);
        assert!(
            verdict.rules().contains(&kernel::Rule::NoFailureEvidence),
            "{verdict}"
        );
    }
}
