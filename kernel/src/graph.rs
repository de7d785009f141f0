//! The service dependency graph the kernel validates plans against (DESIGN §2).
//!
//! Nodes are services; a directed edge `caller → callee` carries the kind of dependency
//! ([`EdgeKind`]: synchronous `rpc`, `cache`, `db`, or asynchronous `mq`) and its weight, the
//! number of calls observed in the current window. The graph is built online from traces (crate
//! `traces`) or loaded from JSON, and is backed by a petgraph [`StableDiGraph`] so that service ids
//! stay valid when edges or services come and go.
//!
//! Determinism: services iterate in id order and a service's neighbours in a fixed order that
//! depends only on the sequence of insertions, never on hashing.
//!
//! # JSON format
//!
//! ```json
//! {
//!   "window_s": 60,
//!   "services": [
//!     {"name": "frontend", "kind": "frontend", "replicas": 2, "baseline_rps": 300},
//!     {"name": "geo", "kind": "stateless", "replicas": 3, "min_replicas": 2, "max_replicas": 8,
//!      "config_versions": ["v1", "v2"], "startup_deps": ["mongodb-geo"]},
//!     {"name": "mongodb-geo", "kind": "db"}
//!   ],
//!   "edges": [{"from": "frontend", "to": "geo", "kind": "rpc", "weight": 18000}]
//! }
//! ```
//!
//! Service fields and defaults: `kind` (required: `frontend | stateless | cache | db | infra`),
//! `replicas` (1), `min_replicas` (1, never below 1: there is no scale-to-zero), `max_replicas`
//! (the larger of 10 and `replicas`), `stateful` (true for `cache` and `db`: state lives in the
//! process rather than being externalised), `config_versions` (oldest first, the last one is the
//! running version; default `["v1"]`), `startup_deps` (services read only at start-up; default
//! none), `baseline_rps` (requests per second the service normally serves; default: incoming call
//! weight divided by `window_s`), `unknown` (a placeholder name from a trace such as `(?)`;
//! default false). `window_s` defaults to 60. Edges default to `kind: rpc`, `weight: 1`.
//! Self-calls are dropped; a second edge between the same pair adds its weight to the first.
//! A full example lives in `kernel/examples/graph.json`.

use crate::HUB_FAN_IN;
use crate::input::{InputError, parse_json};
use indexmap::IndexMap;
use petgraph::Direction;
use petgraph::stable_graph::{EdgeIndex, NodeIndex, StableDiGraph};
use petgraph::visit::{EdgeRef, IntoEdgeReferences, NodeIndexable};
use rustc_hash::FxBuildHasher;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Index of a service in a [`DependencyGraph`]; stable while the service exists.
pub type ServiceId = NodeIndex<u32>;

/// Index of an edge in a [`DependencyGraph`]; valid while the edge exists (a removed edge's
/// index may be reused).
pub type EdgeId = EdgeIndex<u32>;

/// Largest graph file [`DependencyGraph::from_json_str`] reads.
pub const MAX_GRAPH_JSON_BYTES: usize = 64 << 20;

/// What a service is, which decides its defaults and how restarts affect it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceKind {
    /// Entry point for user traffic (nginx, API gateway).
    Frontend,
    /// Stateless application service; state is externalised to caches and databases.
    Stateless,
    /// In-memory cache or store (memcached, redis).
    Cache,
    /// Database (mongodb).
    Db,
    /// Infrastructure (registry, tracing) not on request paths.
    Infra,
}

impl ServiceKind {
    /// Whether services of this kind keep state in the process by default.
    pub fn stateful_by_default(self) -> bool {
        matches!(self, ServiceKind::Cache | ServiceKind::Db)
    }

    /// Lower-case name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Frontend => "frontend",
            ServiceKind::Stateless => "stateless",
            ServiceKind::Cache => "cache",
            ServiceKind::Db => "db",
            ServiceKind::Infra => "infra",
        }
    }
}

/// Kind of a dependency edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Synchronous request/response call (Thrift, gRPC, HTTP).
    Rpc,
    /// Synchronous cache access.
    Cache,
    /// Synchronous database access.
    Db,
    /// Asynchronous message queue: the caller does not wait.
    Mq,
}

impl EdgeKind {
    /// Synchronous edges propagate unavailability to the caller; they define recovery scopes.
    pub fn is_sync(self) -> bool {
        !matches!(self, EdgeKind::Mq)
    }

    /// Lower-case name as used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::Rpc => "rpc",
            EdgeKind::Cache => "cache",
            EdgeKind::Db => "db",
            EdgeKind::Mq => "mq",
        }
    }
}

/// A service (node) and the control-plane facts the kernel needs about it.
#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    /// Unique name.
    pub name: String,
    /// What the service is.
    pub kind: ServiceKind,
    /// Current replica count (≥ 1).
    pub replicas: u32,
    /// Fewest replicas a plan may leave (PodDisruptionBudget analogue, ≥ 1).
    pub min_replicas: u32,
    /// Most replicas a plan may ask for.
    pub max_replicas: u32,
    /// True when the process holds state that a restart loses.
    pub stateful: bool,
    /// Known configuration versions, oldest first; the last is the one running. Empty when
    /// the history is unknown (services seen only in traces): no rollback can name a version.
    pub config_versions: Vec<String>,
    /// Requests per second the service normally serves, if known from outside the graph.
    pub baseline_rps: Option<f64>,
    /// A placeholder from a trace (`(?)`, `UNKNOWN`, …), not a real service name.
    pub unknown: bool,
    startup_deps: Vec<ServiceId>,
    fan_in: u32,
}

impl Service {
    /// A service of `kind` with the documented defaults.
    pub fn new(name: impl Into<String>, kind: ServiceKind) -> Self {
        Service {
            name: name.into(),
            kind,
            replicas: 1,
            min_replicas: 1,
            max_replicas: 10,
            stateful: kind.stateful_by_default(),
            config_versions: Vec::new(),
            baseline_rps: None,
            unknown: false,
            startup_deps: Vec::new(),
            fan_in: 0,
        }
    }

    /// Sets the replica count and widens `max_replicas` to hold it.
    pub fn with_replicas(mut self, replicas: u32) -> Self {
        self.replicas = replicas.max(1);
        self.max_replicas = self.max_replicas.max(self.replicas);
        self
    }

    /// Number of distinct callers.
    pub fn fan_in(&self) -> usize {
        self.fan_in as usize
    }

    /// Services this one reads only when it starts (it must restart after them).
    pub fn startup_deps(&self) -> &[ServiceId] {
        &self.startup_deps
    }

    /// The configuration version currently running.
    pub fn current_config(&self) -> Option<&str> {
        self.config_versions.last().map(String::as_str)
    }
}

/// A dependency edge's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// Kind of dependency.
    pub kind: EdgeKind,
    /// Calls observed in the window.
    pub weight: u64,
}

/// Errors building a graph through the API (JSON loading maps them to [`InputError`]s).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GraphError {
    /// Two services share a name.
    #[error("service `{0}` is defined twice")]
    DuplicateService(String),
    /// A name that is not a service of the graph.
    #[error("unknown service `{0}`")]
    UnknownService(String),
    /// Replica bounds that cannot hold.
    #[error(
        "replica bounds must satisfy 1 <= min_replicas <= replicas <= max_replicas, got {min} <= {replicas} <= {max}"
    )]
    BadReplicaBounds {
        /// min_replicas
        min: u32,
        /// replicas
        replicas: u32,
        /// max_replicas
        max: u32,
    },
}

/// The dependency graph. See the [module documentation](self) for semantics and JSON format.
#[derive(Clone, Debug, Default)]
pub struct DependencyGraph {
    graph: StableDiGraph<Service, Dependency, u32>,
    by_name: IndexMap<Box<str>, ServiceId, FxBuildHasher>,
    edge_index: IndexMap<(ServiceId, ServiceId), EdgeIndex<u32>, FxBuildHasher>,
    window_s: f64,
}

impl DependencyGraph {
    /// An empty graph over the default 60 s window.
    pub fn new() -> Self {
        Self::with_window(60.0)
    }

    /// An empty graph whose edge weights count calls over `window_s` seconds.
    pub fn with_window(window_s: f64) -> Self {
        DependencyGraph {
            window_s: if window_s.is_finite() && window_s > 0.0 {
                window_s
            } else {
                60.0
            },
            ..Default::default()
        }
    }

    /// Length of the window edge weights count over, in seconds.
    pub fn window_s(&self) -> f64 {
        self.window_s
    }

    /// Adds a service; its name must be new and its replica bounds consistent.
    pub fn add_service(&mut self, mut service: Service) -> Result<ServiceId, GraphError> {
        if self.by_name.contains_key(service.name.as_str()) {
            return Err(GraphError::DuplicateService(service.name));
        }
        if !(1 <= service.min_replicas
            && service.min_replicas <= service.replicas
            && service.replicas <= service.max_replicas)
        {
            return Err(GraphError::BadReplicaBounds {
                min: service.min_replicas,
                replicas: service.replicas,
                max: service.max_replicas,
            });
        }
        service.fan_in = 0;
        service.startup_deps.clear();
        let name: Box<str> = service.name.as_str().into();
        let id = self.graph.add_node(service);
        self.by_name.insert(name, id);
        Ok(id)
    }

    /// The id of `name`, adding a service of `kind` with default settings if it is new.
    pub fn ensure_service(&mut self, name: &str, kind: ServiceKind) -> ServiceId {
        if let Some(&id) = self.by_name.get(name) {
            return id;
        }
        let id = self.graph.add_node(Service::new(name, kind));
        self.by_name.insert(name.into(), id);
        id
    }

    /// The id of the service called `name`.
    pub fn id(&self, name: &str) -> Option<ServiceId> {
        self.by_name.get(name).copied()
    }

    /// The service with id `id`. Panics if `id` is not a service of this graph (a caller bug).
    pub fn service(&self, id: ServiceId) -> &Service {
        &self.graph[id]
    }

    /// Mutable access to a service's settings (fan-in and start-up deps stay graph-managed).
    pub fn service_mut(&mut self, id: ServiceId) -> &mut Service {
        &mut self.graph[id]
    }

    /// The service called `name`.
    pub fn service_by_name(&self, name: &str) -> Option<&Service> {
        self.id(name).map(|id| &self.graph[id])
    }

    /// Whether `id` is a live service id of this graph.
    pub fn contains(&self, id: ServiceId) -> bool {
        self.graph.contains_node(id)
    }

    /// Records that `dependent` reads `dependency` only at start-up.
    pub fn add_startup_dep(&mut self, dependent: ServiceId, dependency: ServiceId) {
        if dependent == dependency {
            return;
        }
        let deps = &mut self.graph[dependent].startup_deps;
        if !deps.contains(&dependency) {
            deps.push(dependency);
        }
    }

    /// Adds `calls` observed calls `from → to`. Self-calls are ignored (in-process calls, such as
    /// Alibaba's `.0` rows). When the pair already has an edge its weight grows; a synchronous kind
    /// replaces an asynchronous one, since a synchronous dependency is the one that propagates
    /// failure.
    ///
    /// Returns the edge's id (`None` for a self-call), which [`add_calls_on`] and
    /// [`remove_calls_on`] accept to skip the pair lookup on hot paths.
    ///
    /// [`add_calls_on`]: DependencyGraph::add_calls_on
    /// [`remove_calls_on`]: DependencyGraph::remove_calls_on
    pub fn add_calls(
        &mut self,
        from: ServiceId,
        to: ServiceId,
        kind: EdgeKind,
        calls: u64,
    ) -> Option<EdgeId> {
        if from == to {
            return None;
        }
        if let Some(&e) = self.edge_index.get(&(from, to)) {
            self.add_calls_on(e, kind, calls);
            return Some(e);
        }
        let e = self.graph.add_edge(
            from,
            to,
            Dependency {
                kind,
                weight: calls,
            },
        );
        self.edge_index.insert((from, to), e);
        self.graph[to].fan_in += 1;
        Some(e)
    }

    /// Adds `calls` calls to the live edge `edge` (see [`add_calls`](DependencyGraph::add_calls)).
    pub fn add_calls_on(&mut self, edge: EdgeId, kind: EdgeKind, calls: u64) {
        let dep = &mut self.graph[edge];
        dep.weight = dep.weight.saturating_add(calls);
        if !dep.kind.is_sync() && kind.is_sync() {
            dep.kind = kind;
        }
    }

    /// Removes `calls` calls from the live edge `edge` (see
    /// [`remove_calls`](DependencyGraph::remove_calls)).
    pub fn remove_calls_on(&mut self, edge: EdgeId, calls: u64) -> bool {
        let Some(dep) = self.graph.edge_weight_mut(edge) else {
            return false;
        };
        dep.weight = dep.weight.saturating_sub(calls);
        if dep.weight > 0 {
            return false;
        }
        let (from, to) = self
            .graph
            .edge_endpoints(edge)
            .expect("the edge exists: its weight was just read");
        self.graph.remove_edge(edge);
        self.edge_index.swap_remove(&(from, to));
        self.graph[to].fan_in -= 1;
        true
    }

    /// Removes every service and edge, keeping the allocated capacity (for rebuilds).
    pub fn clear(&mut self) {
        self.graph.clear();
        self.by_name.clear();
        self.edge_index.clear();
    }

    /// An empty graph with room for `services` services and `edges` edges.
    pub fn with_capacity(window_s: f64, services: usize, edges: usize) -> Self {
        let mut g = Self::with_window(window_s);
        g.graph.reserve_nodes(services);
        g.graph.reserve_edges(edges);
        g.by_name.reserve(services);
        g.edge_index.reserve(edges);
        g
    }

    /// Removes `calls` calls from the edge `from → to`; the edge disappears at weight zero and the
    /// callee's fan-in drops. Returns whether the edge was removed.
    pub fn remove_calls(&mut self, from: ServiceId, to: ServiceId, calls: u64) -> bool {
        let Some(&e) = self.edge_index.get(&(from, to)) else {
            return false;
        };
        let dep = &mut self.graph[e];
        dep.weight = dep.weight.saturating_sub(calls);
        if dep.weight > 0 {
            return false;
        }
        self.graph.remove_edge(e);
        self.edge_index.swap_remove(&(from, to));
        self.graph[to].fan_in -= 1;
        true
    }

    /// The edge `from → to`, if any.
    pub fn edge(&self, from: ServiceId, to: ServiceId) -> Option<&Dependency> {
        self.edge_index.get(&(from, to)).map(|&e| &self.graph[e])
    }

    /// Callees of `id` with their edges.
    pub fn callees(&self, id: ServiceId) -> impl Iterator<Item = (ServiceId, &Dependency)> + '_ {
        self.graph
            .edges_directed(id, Direction::Outgoing)
            .map(|e| (e.target(), e.weight()))
    }

    /// Callers of `id` with their edges.
    pub fn callers(&self, id: ServiceId) -> impl Iterator<Item = (ServiceId, &Dependency)> + '_ {
        self.graph
            .edges_directed(id, Direction::Incoming)
            .map(|e| (e.source(), e.weight()))
    }

    /// `id` and every service that calls it, transitively, breadth first (`id` first): the
    /// services whose SLOs a change to `id` may move.
    pub fn upstream(&self, id: ServiceId) -> Vec<ServiceId> {
        let mut seen = vec![false; self.graph.node_bound()];
        seen[id.index()] = true;
        let mut order = vec![id];
        let mut i = 0;
        while i < order.len() {
            for (caller, _) in self.callers(order[i]) {
                if !std::mem::replace(&mut seen[caller.index()], true) {
                    order.push(caller);
                }
            }
            i += 1;
        }
        order
    }

    /// Number of distinct callers of `id`.
    pub fn fan_in(&self, id: ServiceId) -> usize {
        self.graph[id].fan_in()
    }

    /// Whether `id` has more than [`HUB_FAN_IN`] callers (restarting it needs a drain).
    pub fn is_hub(&self, id: ServiceId) -> bool {
        self.fan_in(id) > HUB_FAN_IN
    }

    /// Requests per second `id` normally serves: its declared baseline, or else the calls into it
    /// over the window. `None` when neither is known (no baseline and no callers).
    pub fn baseline_rps(&self, id: ServiceId) -> Option<f64> {
        let service = &self.graph[id];
        if let Some(rps) = service.baseline_rps {
            return Some(rps);
        }
        let calls: u64 = self.callers(id).map(|(_, d)| d.weight).sum();
        (calls > 0).then(|| calls as f64 / self.window_s)
    }

    /// Number of services.
    pub fn service_count(&self) -> usize {
        self.graph.node_count()
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.graph.edge_count()
    }

    /// One more than the largest service id ever used: size for per-service scratch buffers.
    pub fn id_bound(&self) -> usize {
        self.graph.node_bound()
    }

    /// All services in id order.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &Service)> + '_ {
        self.graph
            .node_indices()
            .map(move |id| (id, &self.graph[id]))
    }

    /// All edges in edge-id order.
    pub fn edges(&self) -> impl Iterator<Item = (ServiceId, ServiceId, &Dependency)> + '_ {
        self.graph
            .edge_references()
            .map(|e| (e.source(), e.target(), e.weight()))
    }

    /// The underlying petgraph graph, for algorithms.
    pub fn petgraph(&self) -> &StableDiGraph<Service, Dependency, u32> {
        &self.graph
    }

    /// Reads a graph from its JSON form (see the [module documentation](self)).
    pub fn from_json_str(text: &str, source_name: &str) -> Result<Self, InputError> {
        let file: GraphFile = parse_json(text, source_name, "graph", MAX_GRAPH_JSON_BYTES)?;
        Self::from_file(file, source_name)
    }

    /// Builds a graph from its parsed file form, checking names and bounds.
    pub fn from_file(file: GraphFile, source_name: &str) -> Result<Self, InputError> {
        let mut graph = DependencyGraph::with_window(file.window_s);
        if !(file.window_s.is_finite() && file.window_s > 0.0) {
            return Err(InputError::invalid(
                source_name,
                "window_s",
                "must be a positive number of seconds",
            ));
        }
        for (i, s) in file.services.iter().enumerate() {
            let path = |field: &str| format!("services[{i}].{field}");
            if s.name.is_empty() {
                return Err(InputError::invalid(
                    source_name,
                    path("name"),
                    "must not be empty",
                ));
            }
            let replicas = s.replicas.unwrap_or(1);
            let mut service = Service::new(s.name.clone(), s.kind).with_replicas(replicas);
            service.replicas = replicas;
            service.min_replicas = s.min_replicas.unwrap_or(1);
            service.max_replicas = s.max_replicas.unwrap_or(10.max(replicas));
            service.stateful = s.stateful.unwrap_or(s.kind.stateful_by_default());
            service.unknown = s.unknown;
            service.config_versions = match &s.config_versions {
                Some(versions) if versions.is_empty() => {
                    return Err(InputError::invalid(
                        source_name,
                        path("config_versions"),
                        "needs at least the running version",
                    ));
                }
                Some(versions) => versions.clone(),
                None => vec!["v1".to_string()],
            };
            if let Some(rps) = s.baseline_rps {
                if !(rps.is_finite() && rps >= 0.0) {
                    return Err(InputError::invalid(
                        source_name,
                        path("baseline_rps"),
                        "must be a finite, non-negative rate",
                    ));
                }
                service.baseline_rps = Some(rps);
            }
            graph.add_service(service).map_err(|e| {
                let field = match e {
                    GraphError::DuplicateService(_) => "name",
                    _ => "replicas",
                };
                InputError::invalid(source_name, path(field), e.to_string())
            })?;
        }
        for (i, s) in file.services.iter().enumerate() {
            let id = graph.id(&s.name).expect("added above");
            for (j, dep) in s.startup_deps.iter().enumerate() {
                let Some(dep_id) = graph.id(dep) else {
                    return Err(InputError::invalid(
                        source_name,
                        format!("services[{i}].startup_deps[{j}]"),
                        format!("unknown service `{dep}`"),
                    ));
                };
                graph.add_startup_dep(id, dep_id);
            }
        }
        for (i, e) in file.edges.iter().enumerate() {
            let resolve = |name: &str, field: &str| {
                graph.id(name).ok_or_else(|| {
                    InputError::invalid(
                        source_name,
                        format!("edges[{i}].{field}"),
                        format!("unknown service `{name}`"),
                    )
                })
            };
            let from = resolve(&e.from, "from")?;
            let to = resolve(&e.to, "to")?;
            graph.add_calls(from, to, e.kind, e.weight);
        }
        Ok(graph)
    }

    /// The graph's JSON file form, services in id order and edges in edge order.
    pub fn to_file(&self) -> GraphFile {
        GraphFile {
            window_s: self.window_s,
            services: self
                .services()
                .map(|(_, s)| ServiceEntry {
                    name: s.name.clone(),
                    kind: s.kind,
                    replicas: Some(s.replicas),
                    min_replicas: Some(s.min_replicas),
                    max_replicas: Some(s.max_replicas),
                    stateful: Some(s.stateful),
                    config_versions: (!s.config_versions.is_empty())
                        .then(|| s.config_versions.clone()),
                    startup_deps: s
                        .startup_deps
                        .iter()
                        .map(|&d| self.graph[d].name.clone())
                        .collect(),
                    baseline_rps: s.baseline_rps,
                    unknown: s.unknown,
                })
                .collect(),
            edges: self
                .edges()
                .map(|(from, to, d)| EdgeEntry {
                    from: self.graph[from].name.clone(),
                    to: self.graph[to].name.clone(),
                    kind: d.kind,
                    weight: d.weight,
                })
                .collect(),
        }
    }
}

impl fmt::Display for DependencyGraph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} services, {} edges",
            self.service_count(),
            self.edge_count()
        )
    }
}

fn default_window_s() -> f64 {
    60.0
}

fn default_weight() -> u64 {
    1
}

fn default_edge_kind() -> EdgeKind {
    EdgeKind::Rpc
}

/// JSON file form of a [`DependencyGraph`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphFile {
    /// Window the edge weights count over, in seconds.
    #[serde(default = "default_window_s")]
    pub window_s: f64,
    /// The services.
    pub services: Vec<ServiceEntry>,
    /// The edges.
    #[serde(default)]
    pub edges: Vec<EdgeEntry>,
}

/// One service in a [`GraphFile`]; absent fields take the documented defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceEntry {
    /// Unique name.
    pub name: String,
    /// Kind.
    pub kind: ServiceKind,
    /// Replica count (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Minimum replicas (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<u32>,
    /// Maximum replicas (default max(10, replicas)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_replicas: Option<u32>,
    /// Whether the process holds state (default: by kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stateful: Option<bool>,
    /// Config versions, oldest first (default `["v1"]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_versions: Option<Vec<String>>,
    /// Services read only at start-up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub startup_deps: Vec<String>,
    /// Normal request rate, requests per second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_rps: Option<f64>,
    /// Placeholder name from a trace.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unknown: bool,
}

/// One edge in a [`GraphFile`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeEntry {
    /// Caller.
    pub from: String,
    /// Callee.
    pub to: String,
    /// Kind (default `rpc`).
    #[serde(default = "default_edge_kind")]
    pub kind: EdgeKind,
    /// Calls in the window (default 1).
    #[serde(default = "default_weight")]
    pub weight: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> DependencyGraph {
        DependencyGraph::from_json_str(
            r#"{
              "services": [
                {"name": "fe", "kind": "frontend", "replicas": 2, "baseline_rps": 100},
                {"name": "api", "kind": "stateless", "replicas": 3, "config_versions": ["v1", "v2"]},
                {"name": "db", "kind": "db", "startup_deps": []},
                {"name": "loader", "kind": "stateless", "startup_deps": ["db"]}
              ],
              "edges": [
                {"from": "fe", "to": "api", "weight": 600},
                {"from": "api", "to": "db", "kind": "db", "weight": 300},
                {"from": "api", "to": "api", "weight": 5}
              ]
            }"#,
            "sample.json",
        )
        .unwrap()
    }

    #[test]
    fn loads_defaults_fan_in_and_baselines() {
        let g = sample();
        assert_eq!(g.service_count(), 4);
        assert_eq!(g.edge_count(), 2, "self-call dropped");
        let api = g.id("api").unwrap();
        let db = g.id("db").unwrap();
        assert_eq!(g.fan_in(api), 1);
        assert_eq!(g.service(db).replicas, 1);
        assert!(g.service(db).stateful);
        assert!(!g.service(api).stateful);
        assert_eq!(g.service(api).current_config(), Some("v2"));
        assert_eq!(g.baseline_rps(api), Some(10.0));
        assert_eq!(g.baseline_rps(g.id("fe").unwrap()), Some(100.0));
        assert_eq!(g.baseline_rps(g.id("loader").unwrap()), None);
        let loader = g.id("loader").unwrap();
        assert_eq!(g.service(loader).startup_deps(), &[db]);
    }

    #[test]
    fn weights_accumulate_and_edges_expire() {
        let mut g = sample();
        let fe = g.id("fe").unwrap();
        let api = g.id("api").unwrap();
        g.add_calls(fe, api, EdgeKind::Rpc, 10);
        assert_eq!(g.edge(fe, api).unwrap().weight, 610);
        assert!(!g.remove_calls(fe, api, 600));
        assert!(g.remove_calls(fe, api, 10));
        assert_eq!(g.fan_in(api), 0);
        assert!(g.edge(fe, api).is_none());
        g.add_calls(fe, api, EdgeKind::Mq, 1);
        g.add_calls(fe, api, EdgeKind::Rpc, 1);
        assert_eq!(
            g.edge(fe, api).unwrap().kind,
            EdgeKind::Rpc,
            "sync wins over mq"
        );
    }

    #[test]
    fn json_round_trip_is_lossless() {
        let g = sample();
        let text = serde_json::to_string(&g.to_file()).unwrap();
        let back = DependencyGraph::from_json_str(&text, "rt").unwrap();
        assert_eq!(
            serde_json::to_string(&back.to_file()).unwrap(),
            text,
            "second round trip identical"
        );
    }

    #[test]
    fn bad_files_name_the_field() {
        let cases = [
            (
                r#"{"services": [{"name": "a", "kind": "db"}, {"name": "a", "kind": "db"}]}"#,
                "services[1].name",
            ),
            (
                r#"{"services": [{"name": "a", "kind": "db"}], "edges": [{"from": "a", "to": "b"}]}"#,
                "edges[0].to",
            ),
            (
                r#"{"services": [{"name": "a", "kind": "db", "min_replicas": 3}]}"#,
                "services[0].replicas",
            ),
            (
                r#"{"services": [{"name": "a", "kind": "dbx"}]}"#,
                "services[0].kind",
            ),
            (
                r#"{"services": [{"name": "a", "kind": "db", "colour": 1}]}"#,
                "services[0]",
            ),
            (
                r#"{"services": [{"name": "a", "kind": "db", "startup_deps": ["zz"]}]}"#,
                "services[0].startup_deps[0]",
            ),
        ];
        for (text, path) in cases {
            let err = DependencyGraph::from_json_str(text, "g.json").unwrap_err();
            assert!(err.path.starts_with(path), "{path}: got {err}");
        }
    }

    #[test]
    fn hub_flag_follows_fan_in() {
        let mut g = DependencyGraph::new();
        let hub = g.ensure_service("hub", ServiceKind::Stateless);
        for i in 0..=HUB_FAN_IN {
            let caller = g.ensure_service(&format!("c{i}"), ServiceKind::Stateless);
            g.add_calls(caller, hub, EdgeKind::Rpc, 1);
            assert_eq!(g.is_hub(hub), i + 1 > HUB_FAN_IN);
        }
    }
}
