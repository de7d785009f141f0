//! What a simulated application is: services, their dependencies, and the call trees of its
//! user paths. Built by the `deathstarbench` crate from a topology file; nothing here is specific
//! to DeathStarBench.

use kernel::{EdgeKind, ServiceKind};
use serde::{Deserialize, Serialize};

/// A service-time distribution: log-normal with a median and a shape.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTime {
    /// Median CPU time per request, microseconds.
    pub median_us: f64,
    /// Log-normal σ (0.5 ≈ a P99 3.2× the median).
    pub sigma: f64,
}

/// A cache's hit behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSpec {
    /// Hit ratio once warm.
    pub hit_ratio: f64,
    /// Warm-up time constant after a (re)start, seconds: the hit ratio is
    /// `hit_ratio × (1 − e^(−t/τ))`.
    pub warmup_s: f64,
}

/// One service of the application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Replicas at start.
    pub replicas: u32,
    /// Fewest replicas a typed plan may leave.
    pub min_replicas: u32,
    /// Most replicas a typed plan may ask for.
    pub max_replicas: u32,
    /// Requests one replica computes at once (cores).
    pub cores: u32,
    /// Requests one replica holds at once, computing or waiting on dependencies (its worker
    /// threads); more are rejected as overload.
    pub max_inflight: u32,
    /// CPU time per request.
    pub service_time: ServiceTime,
    /// Process start until ready, seconds.
    pub startup_s: f64,
    /// Cache behaviour, for caches.
    pub cache: Option<CacheSpec>,
    /// Services read only at start-up (indices).
    pub startup_deps: Vec<usize>,
    /// Configuration versions known at start, oldest first; the last is running.
    pub config_versions: Vec<String>,
}

/// A dependency between services and how the caller treats it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// Caller index.
    pub from: usize,
    /// Callee index.
    pub to: usize,
    /// Kind.
    pub kind: EdgeKind,
}

/// When a call in a call tree happens.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Always.
    Always,
    /// Only when the caller's latest cache call (in an earlier stage) missed.
    OnMiss,
    /// With this probability (content-dependent branches).
    Probability(f64),
}

/// One node of a call tree: a call to `service` and what that service does to serve it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallNode {
    /// Called service (index).
    pub service: usize,
    /// Operation name (for traces and reports).
    pub op: String,
    /// When the call happens.
    pub condition: Condition,
    /// What the callee does: stages in order, each a set of calls issued in parallel
    /// (indices into the path's node arena).
    pub stages: Vec<Vec<usize>>,
}

/// A user path (a workload request type) and its call tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSpec {
    /// Name.
    pub name: String,
    /// Share of the request mix.
    pub weight: f64,
    /// Node arena; `nodes[0]` is the call from the user to the entry service.
    pub nodes: Vec<CallNode>,
}

/// A whole application.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppSpec {
    /// Name.
    pub name: String,
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// Dependencies (request-time edges; start-up-only ones are in `startup_deps`).
    pub edges: Vec<EdgeSpec>,
    /// User paths.
    pub paths: Vec<PathSpec>,
}

impl AppSpec {
    /// The index of the service called `name`.
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.services.iter().position(|s| s.name == name)
    }

    /// Checks internal consistency: indices in range, call trees acyclic and every call on a
    /// declared edge, positive weights and times.
    pub fn check(&self) -> Result<(), String> {
        let n = self.services.len();
        if n == 0 {
            return Err("the application has no services".into());
        }
        for s in &self.services {
            if s.replicas == 0 || s.cores == 0 || s.max_inflight == 0 {
                return Err(format!(
                    "{}: replicas, cores and max_inflight must be positive",
                    s.name
                ));
            }
            if !(s.min_replicas >= 1
                && s.min_replicas <= s.replicas
                && s.replicas <= s.max_replicas)
            {
                return Err(format!(
                    "{}: replica bounds must satisfy 1 <= min <= replicas <= max",
                    s.name
                ));
            }
            if !(s.service_time.median_us > 0.0
                && s.service_time.sigma >= 0.0
                && s.startup_s >= 0.0)
            {
                return Err(format!(
                    "{}: service time and start-up time must be positive",
                    s.name
                ));
            }
            if s.startup_deps.iter().any(|&d| d >= n) {
                return Err(format!("{}: start-up dependency out of range", s.name));
            }
        }
        for e in &self.edges {
            if e.from >= n || e.to >= n {
                return Err(format!("edge {} -> {} out of range", e.from, e.to));
            }
        }
        if self.paths.is_empty() {
            return Err("the application has no user paths".into());
        }
        for p in &self.paths {
            if !(p.weight.is_finite() && p.weight > 0.0) {
                return Err(format!("path {}: weight must be positive", p.name));
            }
            if p.nodes.is_empty() {
                return Err(format!("path {}: empty call tree", p.name));
            }
            for (i, node) in p.nodes.iter().enumerate() {
                if node.service >= n {
                    return Err(format!(
                        "path {}: node {i} calls an unknown service",
                        p.name
                    ));
                }
                for &child in node.stages.iter().flatten() {
                    if child <= i || child >= p.nodes.len() {
                        return Err(format!(
                            "path {}: node {i} has child {child}; children must come later in the arena",
                            p.name
                        ));
                    }
                    let to = p.nodes[child].service;
                    if !self
                        .edges
                        .iter()
                        .any(|e| e.from == node.service && e.to == to)
                    {
                        return Err(format!(
                            "path {}: {} calls {} without a declared edge",
                            p.name, self.services[node.service].name, self.services[to].name
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The kernel's dependency graph of this application: services with their replica bounds
    /// and config histories, edges weighted by the calls the path mix makes per second at
    /// `rate_rps` (expected value, one-minute window), and each service's baseline rate.
    pub fn dependency_graph(&self, rate_rps: f64) -> kernel::DependencyGraph {
        let expected = self.expected_calls_per_request();
        let total_weight: f64 = self.paths.iter().map(|p| p.weight).sum();
        let mut g = kernel::DependencyGraph::new();
        let mut served = vec![0.0f64; self.services.len()];
        let mut edge_rate = vec![0.0f64; self.edges.len()];
        for (p, per_edge) in self.paths.iter().zip(&expected) {
            let share = rate_rps * p.weight / total_weight;
            for (e, calls) in per_edge.iter().enumerate() {
                edge_rate[e] += share * calls;
            }
            served[p.nodes[0].service] += share;
        }
        for (e, rate) in self.edges.iter().zip(&edge_rate) {
            served[e.to] += rate;
        }
        for (i, s) in self.services.iter().enumerate() {
            let mut svc = kernel::Service::new(s.name.clone(), s.kind).with_replicas(s.replicas);
            svc.min_replicas = s.min_replicas;
            svc.max_replicas = s.max_replicas;
            svc.config_versions = s.config_versions.clone();
            svc.baseline_rps = Some(served[i]);
            g.add_service(svc).expect("service names are unique");
        }
        let ids: Vec<_> = self
            .services
            .iter()
            .map(|s| g.id(&s.name).expect("added"))
            .collect();
        for (i, s) in self.services.iter().enumerate() {
            for &d in &s.startup_deps {
                g.add_startup_dep(ids[i], ids[d]);
            }
        }
        for (e, rate) in self.edges.iter().zip(&edge_rate) {
            let calls = (rate * g.window_s()).round().max(1.0) as u64;
            g.add_calls(ids[e.from], ids[e.to], e.kind, calls);
        }
        g
    }

    /// Expected calls per request on each edge, per path (conditions taken at face value:
    /// `OnMiss` at the warm miss ratio of the cache it follows, probabilities as given).
    pub fn expected_calls_per_request(&self) -> Vec<Vec<f64>> {
        self.paths
            .iter()
            .map(|p| {
                let mut per_edge = vec![0.0; self.edges.len()];
                let mut reach = vec![0.0f64; p.nodes.len()];
                reach[0] = 1.0;
                for (i, node) in p.nodes.iter().enumerate() {
                    let mut miss = 0.0;
                    for stage in &node.stages {
                        let mut stage_miss = miss;
                        for &c in stage {
                            let child = &p.nodes[c];
                            let prob = match child.condition {
                                Condition::Always => 1.0,
                                Condition::OnMiss => miss,
                                Condition::Probability(x) => x,
                            };
                            reach[c] = reach[i] * prob;
                            if let Some(e) = self
                                .edges
                                .iter()
                                .position(|e| e.from == node.service && e.to == child.service)
                            {
                                per_edge[e] += reach[c];
                            }
                            if let Some(cache) = &self.services[child.service].cache {
                                stage_miss = 1.0 - cache.hit_ratio;
                            }
                        }
                        miss = stage_miss;
                    }
                }
                per_edge
            })
            .collect()
    }
}
