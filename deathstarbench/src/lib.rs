//! DeathStarBench applications for the simulator: socialNetwork, hotelReservation and
//! mediaMicroservices, read from an embedded copy of `shared/topologies/deathstarbench.json`
//! (our encoding of delimitrou/DeathStarBench @ 6ecb097: docker-compose files, handler code,
//! nginx Lua scripts and wrk2 mixes), or from a user file in the same schema.
//!
//! A topology gives services, dependency edges and, per wrk2 workload, the ordered calls of one
//! request (`stage`, `parallel_group`, `condition`). [`build`] turns a topology app into the
//! simulator's [`AppSpec`]: a call tree per workload, and a [`Deployment`] of replicas, cores,
//! worker pools, service times and start-up times per service kind.
//!
//! # Calibration and sources
//!
//! Service times are log-normal with σ = 0.5 and medians chosen from the per-hop latencies
//! published for DeathStarBench (Gan et al., ASPLOS'19: 0.15–1.4 ms per hop, 1–7 ms end to end
//! at low load) and the real Jaeger spans in `traces/testdata/jaeger` (home-timeline server span
//! 0.35–1.36 ms including its downstream calls; redis 0.16 ms; memcached mget 0.58 ms; ReadPosts
//! 0.93 ms with its memcached call): frontend 0.15 ms, stateless service 0.25 ms, cache 0.10 ms,
//! database 0.80 ms of CPU per request, plus 60–120 µs per network hop. A read-home-timeline
//! request then takes about 1.5 ms at the median and 3–4 ms at P99 when caches are warm.
//!
//! Deployment (configurable; DeathStarBench's compose files run one replica of everything):
//! frontends and stateless services run 2 replicas (a production deployment keeps at least two
//! for availability, and drains need a replica to drain to), caches and databases 1. Replicas
//! have 1 core (databases 2) and worker pools of 64 (frontends 512, caches 256). Start-up: 5 s
//! for frontends and caches, 8 s for stateless services, 30 s for databases (MongoDB journal
//! recovery and index load), measured from the kill to readiness. Caches hit 97 % of the time
//! when warm (redis 99 %) and warm with a 30 s time constant.
//!
//! Fault scenarios: drawn from the seed over each fault type's eligible targets and intensity
//! range (`drawn` module, [`scenario_for`]), or fixed — the built-in applications' named table or
//! the fault-target rule for any other topology (`scenarios` module, [`fault_for`]);
//! `docs/faults.md` documents both.
//!
//! Conditions: `… miss` calls happen only when the preceding cache call missed;
//! content-dependent ones (`post contains urls`, `post contains @mentions`) with probability
//! 5/6, since the wrk2 compose-post script draws 0–5 URLs and 0–5 mentions uniformly; any other
//! `observed in N of M calls` (written by `microreboot topology from-traces` for a call seen in
//! only some requests) with probability N/M; any other condition (mediaMicroservices' "5th
//! component arrived") always. A service's `service_time_us`, when given, replaces the per-kind
//! median service time.

use kernel::{EdgeKind, ServiceKind};
use serde::Deserialize;
use sim::spec::{
    AppSpec, CacheSpec, CallNode, Condition, EdgeSpec, PathSpec, ServiceSpec, ServiceTime,
};
use std::collections::BTreeMap;

/// The embedded topology file.
pub const TOPOLOGY_JSON: &str = include_str!("../data/deathstarbench.json");

/// The applications in the embedded topology.
pub const APPS: [&str; 3] = ["socialNetwork", "hotelReservation", "mediaMicroservices"];

/// Probability of a content-dependent call (wrk2 draws 0–5 URLs or mentions uniformly).
pub const CONTENT_PROBABILITY: f64 = 5.0 / 6.0;

/// The topology file's schema.
#[derive(Debug, Deserialize)]
pub struct TopologyFile {
    /// Applications.
    pub apps: Vec<TopologyApp>,
}

/// One application of a topology file.
#[derive(Debug, Deserialize)]
pub struct TopologyApp {
    /// Name.
    pub name: String,
    /// Services.
    pub services: Vec<TopoService>,
    /// Edges.
    pub edges: Vec<TopoEdge>,
    /// wrk2 workloads.
    pub workloads: Vec<TopoWorkload>,
}

/// A service entry.
#[derive(Debug, Deserialize)]
pub struct TopoService {
    /// Name.
    pub name: String,
    /// `frontend | stateless | cache | db | infra`.
    pub kind: ServiceKind,
    /// Replicas in the source deployment (DeathStarBench: 1).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Technology (e.g. `redis`, `memcached`).
    #[serde(default)]
    pub tech: Option<String>,
    /// Configuration versions, oldest first (the last one runs). Absent: one version, `v1`.
    /// A service with a history is where the misconfig rule puts its fault.
    #[serde(default)]
    pub config_versions: Option<Vec<String>>,
    /// Median CPU time per request, µs, when measured (`topology from-traces` writes the
    /// median span self time); absent: the deployment's per-kind default.
    #[serde(default)]
    pub service_time_us: Option<f64>,
}

/// An edge entry.
#[derive(Debug, Deserialize)]
pub struct TopoEdge {
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// `rpc | cache | db | registry`.
    pub kind: String,
    /// Read only at start-up.
    #[serde(default)]
    pub startup_only: bool,
}

/// A workload entry.
#[derive(Debug, Deserialize)]
pub struct TopoWorkload {
    /// Name.
    pub name: String,
    /// Share of the mix.
    pub weight: f64,
    /// Entry service.
    pub entry: String,
    /// Calls of one request, in depth-first order.
    pub calls: Vec<TopoCall>,
}

/// One call of a workload.
#[derive(Debug, Deserialize)]
pub struct TopoCall {
    /// Caller (`client` for the user).
    pub from: String,
    /// Callee.
    pub to: String,
    /// Operation.
    #[serde(default)]
    pub op: String,
    /// Logical step; equal stages of one caller run in parallel.
    pub stage: u32,
    /// Named concurrency group.
    #[serde(default)]
    pub parallel_group: Option<String>,
    /// When the call happens only sometimes.
    #[serde(default)]
    pub condition: Option<String>,
}

/// How the application is deployed. Defaults are documented in the [crate docs](crate).
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Deployment {
    /// Replicas per kind: frontend, stateless, cache, db, infra.
    pub replicas: [u32; 5],
    /// Cores per replica per kind.
    pub cores: [u32; 5],
    /// Worker pool per replica per kind.
    pub max_inflight: [u32; 5],
    /// Median CPU time per request per kind, µs.
    pub service_time_us: [f64; 5],
    /// Log-normal σ of service times.
    pub service_time_sigma: f64,
    /// Start-up time per kind, seconds.
    pub startup_s: [f64; 5],
    /// Warm hit ratio of memcached-like caches.
    pub memcached_hit_ratio: f64,
    /// Warm hit ratio of redis-like caches.
    pub redis_hit_ratio: f64,
    /// Cache warm-up time constant, seconds.
    pub cache_warmup_s: f64,
    /// Most replicas a typed plan may scale a service to.
    pub max_replicas: u32,
}

impl Default for Deployment {
    fn default() -> Self {
        Deployment {
            replicas: [2, 2, 1, 1, 1],
            cores: [2, 1, 1, 2, 1],
            max_inflight: [512, 64, 256, 64, 64],
            service_time_us: [150.0, 250.0, 100.0, 800.0, 100.0],
            service_time_sigma: 0.5,
            startup_s: [5.0, 8.0, 5.0, 30.0, 5.0],
            memcached_hit_ratio: 0.97,
            redis_hit_ratio: 0.99,
            cache_warmup_s: 30.0,
            max_replicas: 8,
        }
    }
}

/// The position of `kind` in the per-kind arrays of a [`Deployment`] (frontend, stateless,
/// cache, db, infra).
pub fn kind_index(kind: ServiceKind) -> usize {
    match kind {
        ServiceKind::Frontend => 0,
        ServiceKind::Stateless => 1,
        ServiceKind::Cache => 2,
        ServiceKind::Db => 3,
        ServiceKind::Infra => 4,
    }
}

/// Errors reading a topology.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TopologyError {
    /// The file is not valid topology JSON.
    #[error("{0}")]
    Parse(String),
    /// No such application in the file.
    #[error("no application `{wanted}` in {source_name}; it has: {available}")]
    UnknownApp {
        /// Asked for.
        wanted: String,
        /// File.
        source_name: String,
        /// Names present.
        available: String,
    },
    /// The application is inconsistent.
    #[error("{source_name}: application `{app}`: {message}")]
    Invalid {
        /// File.
        source_name: String,
        /// Application.
        app: String,
        /// What is wrong.
        message: String,
    },
}

/// Parses a topology file (the embedded one's schema).
pub fn parse(text: &str, source_name: &str) -> Result<TopologyFile, TopologyError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        TopologyError::Parse(format!(
            "{source_name}:{}:{}: field `{path}`: {}",
            inner.line(),
            inner.column(),
            inner
                .to_string()
                .split(" at line ")
                .next()
                .unwrap_or_default()
        ))
    })
}

/// The embedded application `app` with `deployment`.
pub fn load(app: &str, deployment: &Deployment) -> Result<AppSpec, TopologyError> {
    let file = parse(TOPOLOGY_JSON, "embedded deathstarbench.json")?;
    select(&file, app, "embedded deathstarbench.json", deployment)
}

/// Application `app` of a parsed topology file.
pub fn select(
    file: &TopologyFile,
    app: &str,
    source_name: &str,
    deployment: &Deployment,
) -> Result<AppSpec, TopologyError> {
    let topo =
        file.apps
            .iter()
            .find(|a| a.name == app)
            .ok_or_else(|| TopologyError::UnknownApp {
                wanted: app.to_string(),
                source_name: source_name.to_string(),
                available: file
                    .apps
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?;
    build(topo, deployment).map_err(|message| TopologyError::Invalid {
        source_name: source_name.to_string(),
        app: app.to_string(),
        message,
    })
}

/// Builds the simulator's spec of one topology application.
pub fn build(topo: &TopologyApp, d: &Deployment) -> Result<AppSpec, String> {
    let index: BTreeMap<&str, usize> = topo
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    if index.len() != topo.services.len() {
        return Err("a service name appears twice".into());
    }
    let find = |name: &str, what: &str| {
        index
            .get(name)
            .copied()
            .ok_or_else(|| format!("{what} names unknown service `{name}`"))
    };
    let mut services: Vec<ServiceSpec> = topo
        .services
        .iter()
        .map(|s| {
            let k = kind_index(s.kind);
            let tech = s.tech.as_deref().unwrap_or("");
            let cache = (s.kind == ServiceKind::Cache).then(|| CacheSpec {
                hit_ratio: if tech.contains("redis") {
                    d.redis_hit_ratio
                } else {
                    d.memcached_hit_ratio
                },
                warmup_s: d.cache_warmup_s,
            });
            let replicas = d.replicas[k].max(1);
            ServiceSpec {
                name: s.name.clone(),
                kind: s.kind,
                replicas,
                min_replicas: 1,
                max_replicas: d.max_replicas.max(replicas),
                cores: d.cores[k].max(1),
                max_inflight: d.max_inflight[k].max(1),
                service_time: ServiceTime {
                    median_us: s
                        .service_time_us
                        .filter(|t| t.is_finite() && *t > 0.0)
                        .unwrap_or(d.service_time_us[k]),
                    sigma: d.service_time_sigma,
                },
                startup_s: d.startup_s[k],
                cache,
                startup_deps: Vec::new(),
                config_versions: s
                    .config_versions
                    .clone()
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| vec!["v1".into()]),
            }
        })
        .collect();
    let mut edges = Vec::new();
    for e in &topo.edges {
        let from = find(&e.from, "an edge")?;
        let to = find(&e.to, "an edge")?;
        let kind = match e.kind.as_str() {
            "rpc" => EdgeKind::Rpc,
            "cache" => EdgeKind::Cache,
            "db" => EdgeKind::Db,
            "mq" => EdgeKind::Mq,
            "registry" => {
                // The registry is read when a service starts and dials (consul): a start-up
                // dependency, not a request edge.
                services[from].startup_deps.push(to);
                continue;
            }
            other => {
                return Err(format!(
                    "edge {} -> {} has unknown kind `{other}`",
                    e.from, e.to
                ));
            }
        };
        if e.startup_only {
            services[from].startup_deps.push(to);
        } else {
            edges.push(EdgeSpec { from, to, kind });
        }
    }
    let mut paths = Vec::new();
    for w in &topo.workloads {
        paths.push(call_tree(w, &find)?);
    }
    let spec = AppSpec {
        name: topo.name.clone(),
        services,
        edges,
        paths,
    };
    spec.check()?;
    Ok(spec)
}

/// Rebuilds one request's call tree from its depth-first call list: a call's parent is the
/// most recent call, still open, whose callee is this call's caller.
fn call_tree(
    w: &TopoWorkload,
    find: &dyn Fn(&str, &str) -> Result<usize, String>,
) -> Result<PathSpec, String> {
    let entry = find(&w.entry, "a workload entry")?;
    let mut nodes = vec![CallNode {
        service: entry,
        op: w.name.clone(),
        condition: Condition::Always,
        stages: Vec::new(),
    }];
    // Per node: its children with their stage numbers.
    let mut children: Vec<Vec<(u32, usize)>> = vec![Vec::new()];
    let mut open: Vec<usize> = vec![0];
    for (i, c) in w.calls.iter().enumerate() {
        if c.from == "client" {
            if find(&c.to, "a workload call")? != entry {
                return Err(format!(
                    "workload {}: the client calls {}, not the entry {}",
                    w.name, c.to, w.entry
                ));
            }
            continue;
        }
        let from = find(&c.from, "a workload call")?;
        let to = find(&c.to, "a workload call")?;
        while open.last().is_some_and(|&n| nodes[n].service != from) {
            open.pop();
        }
        let Some(&parent) = open.last() else {
            return Err(format!(
                "workload {}: call {i} ({} -> {}) has no caller in the tree",
                w.name, c.from, c.to
            ));
        };
        let condition = match c.condition.as_deref() {
            None => Condition::Always,
            Some(s) if s.contains("miss") => Condition::OnMiss,
            Some(s) if s.contains("contains") => Condition::Probability(CONTENT_PROBABILITY),
            Some(s) if s.starts_with("observed in ") => observed(s).ok_or_else(|| {
                format!(
                    "workload {}: call {i} ({} -> {}): condition `{s}` is not `observed in N of M calls` with 0 < N <= M",
                    w.name, c.from, c.to
                )
            })?,
            Some(_) => Condition::Always,
        };
        nodes.push(CallNode {
            service: to,
            op: c.op.clone(),
            condition,
            stages: Vec::new(),
        });
        children.push(Vec::new());
        let node = nodes.len() - 1;
        children[parent].push((c.stage, node));
        open.push(node);
    }
    for (n, kids) in children.into_iter().enumerate() {
        let mut stages: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (stage, child) in kids {
            stages.entry(stage).or_default().push(child);
        }
        nodes[n].stages = stages.into_values().collect();
    }
    Ok(PathSpec {
        name: w.name.clone(),
        weight: w.weight,
        nodes,
    })
}

/// `observed in N of M calls` (what `topology from-traces` writes for a call seen in only some
/// of its caller's requests): probability N/M.
fn observed(condition: &str) -> Option<Condition> {
    let rest = condition.strip_prefix("observed in ")?;
    let (n, rest) = rest.split_once(" of ")?;
    let m = rest.split_whitespace().next()?;
    let (n, m): (u64, u64) = (n.trim().parse().ok()?, m.parse().ok()?);
    (n > 0 && n <= m).then(|| Condition::Probability(n as f64 / m as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_conditions_are_probabilities() {
        assert_eq!(
            observed("observed in 1 of 4 calls"),
            Some(Condition::Probability(0.25))
        );
        assert_eq!(observed("observed in 0 of 4 calls"), None);
        assert_eq!(observed("observed in 5 of 4 calls"), None);
        assert_eq!(observed("observed in x of 4 calls"), None);
    }

    #[test]
    fn every_embedded_app_builds_and_checks() {
        for app in APPS {
            let spec = load(app, &Deployment::default()).unwrap_or_else(|e| panic!("{app}: {e}"));
            assert!(!spec.paths.is_empty());
            spec.check().unwrap();
        }
    }

    #[test]
    fn social_network_call_trees_follow_the_wrk2_scripts() {
        let spec = load("socialNetwork", &Deployment::default()).unwrap();
        let name = |i: usize| spec.services[i].name.as_str();
        let home = spec
            .paths
            .iter()
            .find(|p| p.name == "read-home-timeline")
            .unwrap();
        let root = &home.nodes[0];
        assert_eq!(name(root.service), "nginx-thrift");
        let ht = &home.nodes[root.stages[0][0]];
        assert_eq!(name(ht.service), "home-timeline-service");
        // home-timeline: redis first, then post-storage.
        assert_eq!(ht.stages.len(), 2);
        let ps = &home.nodes[ht.stages[1][0]];
        assert_eq!(name(ps.service), "post-storage-service");
        // post-storage: memcached, then mongodb and a memcached set only on a miss.
        let conditions: Vec<_> = ps
            .stages
            .iter()
            .flatten()
            .map(|&c| (name(home.nodes[c].service), home.nodes[c].condition))
            .collect();
        assert_eq!(
            conditions,
            [
                ("post-storage-memcached", Condition::Always),
                ("post-storage-mongodb", Condition::OnMiss),
                ("post-storage-memcached", Condition::OnMiss),
            ]
        );
        let compose = spec
            .paths
            .iter()
            .find(|p| p.name == "compose-post")
            .unwrap();
        let cp = &compose.nodes[compose.nodes[0].stages[0][0]];
        assert_eq!(cp.stages.len(), 2, "fanout-1 then fanout-2");
        assert_eq!(
            cp.stages[0].len(),
            4,
            "text, user, media, unique-id in parallel"
        );
        assert_eq!(
            cp.stages[1].len(),
            3,
            "post-storage, user-timeline, home-timeline in parallel"
        );
    }

    #[test]
    fn hotel_start_up_dependencies_and_registry_are_not_request_edges() {
        let spec = load("hotelReservation", &Deployment::default()).unwrap();
        let geo = spec.service_index("geo").unwrap();
        let mongo = spec.service_index("mongodb-geo").unwrap();
        let consul = spec.service_index("consul").unwrap();
        assert!(spec.services[geo].startup_deps.contains(&mongo));
        assert!(spec.services[geo].startup_deps.contains(&consul));
        assert!(
            !spec
                .edges
                .iter()
                .any(|e| e.to == consul || (e.from == geo && e.to == mongo))
        );
    }

    #[test]
    fn bad_topologies_name_the_problem() {
        let err = parse(r#"{"apps": [{"name": 3}]}"#, "t.json").unwrap_err();
        assert!(
            err.to_string().contains("t.json:1:") && err.to_string().contains("apps[0].name"),
            "{err}"
        );
        let file = parse(TOPOLOGY_JSON, "x").unwrap();
        let err = select(&file, "sockShop", "x", &Deployment::default()).unwrap_err();
        assert!(
            err.to_string()
                .contains("socialNetwork, hotelReservation, mediaMicroservices"),
            "{err}"
        );
        let bad = parse(r#"{"apps": [{"name": "a", "services": [{"name": "s", "kind": "stateless"}], "edges": [{"from": "s", "to": "t", "kind": "rpc"}], "workloads": []}]}"#, "b").unwrap();
        let err = select(&bad, "a", "b", &Deployment::default()).unwrap_err();
        assert!(err.to_string().contains("unknown service `t`"), "{err}");
    }
}

mod scenarios;
pub use scenarios::{
    BUILTIN_TARGETS, BuiltinTargets, FaultChoice, TargetSource, Traffic, fault_for, rule_target,
    scenario_fault,
};

pub mod drawn;
pub use drawn::{ScenarioSet, scenario_for};
