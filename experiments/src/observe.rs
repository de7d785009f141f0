//! What the operator side sees of a running simulation: a dependency graph derived from its
//! traces, SLO alerts from its metrics, and the failure evidence the kernel judges plans by.

use kernel::{DependencyGraph, EdgeKind, Health, ServiceHealth, VirtualTime};
use sim::metrics::{SLO_ERROR_RATE, SLO_P99_MS};
use sim::spec::AppSpec;
use sim::{Network, ReplicaState, ScopeKind, SecondStats, Sim, SpanRecord};
use traces::{Call, Endpoint, WindowedGraph};

/// The dependency graph as traces show it: calls of the last window, with the control plane's
/// facts (kinds, replica counts and bounds, config histories, start-up dependencies) attached —
/// what an operator assembles from Jaeger and the orchestrator's API.
pub struct TraceGraph {
    window: WindowedGraph,
    names: Vec<String>,
    kinds: Vec<kernel::ServiceKind>,
    /// Edge kind by (caller, callee) index.
    edge_kind: Vec<Vec<Option<EdgeKind>>>,
    spans: Vec<SpanRecord>,
}

impl TraceGraph {
    /// A trace graph of `spec` over a window of `window_s` seconds.
    pub fn new(spec: &AppSpec, window_s: u64) -> Self {
        let n = spec.services.len();
        let mut edge_kind = vec![vec![None; n]; n];
        for e in &spec.edges {
            edge_kind[e.from][e.to] = Some(e.kind);
        }
        TraceGraph {
            window: WindowedGraph::with_capacity(Some(window_s * 1_000_000), n, spec.edges.len()),
            names: spec.services.iter().map(|s| s.name.clone()).collect(),
            kinds: spec.services.iter().map(|s| s.kind).collect(),
            edge_kind,
            spans: Vec::new(),
        }
    }

    /// Ingests the spans `sim` recorded since the last call.
    pub fn ingest<N: Network>(&mut self, sim: &mut Sim<N>) {
        sim.drain_spans(&mut self.spans);
        for span in self.spans.drain(..) {
            let Some(caller) = span.caller else { continue };
            let (from, to) = (caller as usize, span.callee as usize);
            let kind = self.edge_kind[from][to].unwrap_or(EdgeKind::Rpc);
            let endpoint = |i: usize| Endpoint {
                name: &self.names[i],
                kind: self.kinds[i],
                unknown: false,
            };
            self.window.ingest(&Call {
                time_us: span.time.as_micros(),
                caller: endpoint(from),
                callee: endpoint(to),
                kind,
            });
        }
        self.window.advance_to(sim.now().as_micros());
    }

    /// The graph now: traced edges and weights plus the control plane's facts.
    pub fn snapshot<N: Network>(&self, sim: &Sim<N>) -> DependencyGraph {
        let control = sim.dependency_graph();
        let mut g = self.window.graph().clone();
        for (_, s) in control.services() {
            let id = g.ensure_service(&s.name, s.kind);
            let svc = g.service_mut(id);
            svc.kind = s.kind;
            svc.replicas = s.replicas;
            svc.min_replicas = s.min_replicas;
            svc.max_replicas = s.max_replicas;
            svc.stateful = s.stateful;
            svc.config_versions = s.config_versions.clone();
        }
        for (cid, s) in control.services() {
            let id = g.id(&s.name).expect("ensured above");
            // Entry services have no traced callers: their rate comes from the load balancer.
            if g.callers(id).next().is_none() {
                g.service_mut(id).baseline_rps = s.baseline_rps;
            }
            for &dep in control.service(cid).startup_deps() {
                let dep = g.id(&control.service(dep).name).expect("ensured above");
                g.add_startup_dep(id, dep);
            }
        }
        g
    }
}

/// Per-service SLO alerting: a service alerts once its SLO has been violated for
/// `alert_after_s` consecutive seconds, and stops when a second is good again.
pub struct Monitor {
    names: Vec<String>,
    bad_for: Vec<u32>,
    good_for: Vec<u32>,
    errors: Vec<u64>,
    alert_after_s: u32,
    next_second: u32,
}

impl Monitor {
    /// A monitor over `spec`'s services.
    pub fn new(spec: &AppSpec, alert_after_s: u32) -> Self {
        let n = spec.services.len();
        Monitor {
            names: spec.services.iter().map(|s| s.name.clone()).collect(),
            bad_for: vec![0; n],
            good_for: vec![0; n],
            errors: vec![0; n],
            alert_after_s: alert_after_s.max(1),
            next_second: 0,
        }
    }

    /// Reads the rows of seconds not seen yet.
    pub fn update(&mut self, rows: &[SecondStats]) {
        for r in rows
            .iter()
            .filter(|r| r.second >= self.next_second && r.kind == ScopeKind::Service)
        {
            let Some(i) = self.names.iter().position(|n| *n == r.name) else {
                continue;
            };
            if r.slo_ok() {
                self.bad_for[i] = 0;
                self.good_for[i] += 1;
                self.errors[i] = 0;
            } else {
                self.good_for[i] = 0;
                self.bad_for[i] += 1;
                self.errors[i] += r.errors();
            }
        }
        if let Some(last) = rows.last() {
            self.next_second = self.next_second.max(last.second + 1);
        }
    }

    /// Whether every service marked in `services` has held its SLO for `hold_s` seconds.
    pub fn held(&self, services: &[bool], hold_s: u32) -> bool {
        services
            .iter()
            .zip(&self.good_for)
            .all(|(&watch, &good)| !watch || good >= hold_s)
    }

    /// Alerting services with the errors they showed while alerting, in service order.
    pub fn alerting(&self) -> Vec<(usize, u64)> {
        (0..self.names.len())
            .filter(|&i| self.bad_for[i] >= self.alert_after_s)
            .map(|i| (i, self.errors[i]))
            .collect()
    }
}

/// The symptom among alerting services: the deepest (no alerting service downstream of it), most
/// erroring one, ties broken by name. What an on-call engineer pages on first.
pub fn symptom(spec: &AppSpec, alerting: &[(usize, u64)]) -> Option<usize> {
    let downstream_alerting = |s: usize| {
        let below = downstream(spec, s);
        alerting.iter().any(|&(a, _)| a != s && below[a])
    };
    alerting
        .iter()
        .filter(|(s, _)| !downstream_alerting(*s))
        .max_by(|a, b| {
            a.1.cmp(&b.1)
                .then_with(|| spec.services[b.0].name.cmp(&spec.services[a.0].name))
        })
        .map(|(s, _)| *s)
}

/// Services reachable downstream of `s`, `s` included.
pub fn downstream(spec: &AppSpec, s: usize) -> Vec<bool> {
    let mut seen = vec![false; spec.services.len()];
    seen[s] = true;
    let mut stack = vec![s];
    while let Some(u) = stack.pop() {
        for e in spec.edges.iter().filter(|e| e.from == u) {
            if !seen[e.to] {
                seen[e.to] = true;
                stack.push(e.to);
            }
        }
    }
    seen
}

/// Seconds of metrics the evidence snapshot looks back over: what an on-call dashboard's
/// "last 10 s" panel shows. Long enough to smooth one bad second, short enough that a service
/// that recovered a minute ago no longer counts as failing.
pub const EVIDENCE_WINDOW_S: u32 = 10;

/// How recent a configuration change must be for a rollback to count as evidence-backed: the
/// "what changed in the last 10 minutes" question every incident review starts with.
pub const CONFIG_CHANGE_WINDOW_S: u64 = 600;

/// The failure evidence monitoring hands the kernel (`R18`, DESIGN §5): per service its SLO
/// alert, replicas failing probes, the last [`EVIDENCE_WINDOW_S`] seconds' error rate and P99
/// against the SLO, and whether its running configuration changed within
/// [`CONFIG_CHANGE_WINDOW_S`] (the orchestrator's rollout history, polled). Only what a
/// monitoring system sees: no cause tags, no ground truth.
pub struct Evidence {
    names: Vec<String>,
    running_config: Vec<String>,
    config_changed_at: Vec<Option<VirtualTime>>,
}

impl Evidence {
    /// Starts watching `sim`'s services.
    pub fn new<N: Network>(sim: &Sim<N>) -> Self {
        let names: Vec<String> = sim.spec().services.iter().map(|s| s.name.clone()).collect();
        let running_config = names
            .iter()
            .map(|n| sim.config_versions(n).map(|(_, r)| r).unwrap_or_default())
            .collect();
        Evidence {
            config_changed_at: vec![None; names.len()],
            names,
            running_config,
        }
    }

    /// Polls the running configuration of every service (a rollout watch).
    pub fn poll<N: Network>(&mut self, sim: &Sim<N>) {
        for (i, n) in self.names.iter().enumerate() {
            if let Ok((_, running)) = sim.config_versions(n)
                && running != self.running_config[i]
            {
                self.running_config[i] = running;
                self.config_changed_at[i] = Some(sim.now());
            }
        }
    }

    /// The snapshot at `sim.now()`.
    pub fn snapshot<N: Network>(&self, sim: &Sim<N>, monitor: &Monitor) -> Health {
        let now = sim.now();
        let rows = sim.metrics().rows();
        let since = (now.as_micros() / 1_000_000).saturating_sub(u64::from(EVIDENCE_WINDOW_S));
        let recent: Vec<&SecondStats> = rows
            .iter()
            .rev()
            .take_while(|r| u64::from(r.second) >= since)
            .filter(|r| r.kind == ScopeKind::Service)
            .collect();
        let alerting = monitor.alerting();
        // One pass over the window's rows; rows name services in spec order, so look the index
        // up once per distinct name.
        let mut totals = vec![(0u64, 0u64, 0f64); self.names.len()];
        let mut last: Option<(&str, usize)> = None;
        for r in recent {
            let i = match last {
                Some((n, i)) if n == r.name => i,
                _ => match self.names.iter().position(|n| *n == r.name) {
                    Some(i) => {
                        last = Some((&r.name, i));
                        i
                    }
                    None => continue,
                },
            };
            let t = &mut totals[i];
            t.0 += r.count;
            t.1 += r.errors();
            t.2 = t.2.max(r.p99_ms);
        }
        let mut health = Health::new();
        for (i, name) in self.names.iter().enumerate() {
            let (count, errors, p99) = totals[i];
            let error_rate = if count == 0 {
                0.0
            } else {
                errors as f64 / count as f64
            };
            let failing_replicas = sim.replicas(name).map_or(0, |rs| {
                rs.iter()
                    .filter(|r| r.probe_failures > 0 || r.state == ReplicaState::Down)
                    .count() as u32
            });
            let config_changed = self.config_changed_at[i].is_some_and(|t| {
                now.since(t) <= std::time::Duration::from_secs(CONFIG_CHANGE_WINDOW_S)
            });
            health.set(
                name.clone(),
                ServiceHealth {
                    alerting: alerting.iter().any(|&(a, _)| a == i),
                    failing_replicas,
                    slo_violated: error_rate >= SLO_ERROR_RATE || p99 >= SLO_P99_MS,
                    error_rate,
                    p99_ms: p99,
                    config_changed,
                },
            );
        }
        health
    }
}
