//! The simulation core: a time-ordered event queue driving replicas, calls and user requests.
//!
//! # Model
//!
//! - **Arrivals**: one open-loop Poisson process at `rate_rps`; each request picks a user path
//!   by weight and calls the path's entry service.
//! - **Replicas** hold at most `max_inflight` requests (worker threads); more are rejected.
//!   Compute (a log-normal service time, 80 % before the request's downstream calls and 20 %
//!   after) queues for one of the replica's `cores`. While a request waits on its dependencies it
//!   keeps its worker but not a core — so a slow dependency fills the worker pool and the
//!   rejection spreads upstream.
//! - **Calls** follow the path's call tree: stages in order, the calls of a stage in parallel,
//!   `OnMiss` calls only after the caller's cache call missed. The caller picks a replica round
//!   robin among running, ready, undrained ones, sets a timeout by edge kind, and on failure
//!   retries with exponential back-off within a retry budget. A stage with a failed call fails
//!   the request that issued it.
//! - **Caches** hit with `hit_ratio × (1 − e^(−t/τ))`, `t` the time since the replica became
//!   ready: a restart loses the cache, and the misses go to the database.
//! - **Probes**: every `period_s` a hung replica fails its probe; after `failure_threshold`
//!   failures it leaves load balancing. A killed replica leaves at once (its endpoint goes).
//! - **Control** ([`Sim::restart`], [`Sim::set_drained`], [`Sim::kill`], …) is how faults and
//!   actions take effect, each tagged with the [`Cause`] failures will carry.
//!
//! Everything random comes from per-component ChaCha streams of the run's seed; ties in the
//! event queue break by insertion order. Same seed, same spec, same control calls at the same
//! times: byte-identical metrics.
//!
//! # Layout
//!
//! - this module: the [`Sim`] struct, its construction and the run loop;
//! - `events`: the event core (a monotone radix queue of `(time, seq)`-ordered events);
//! - `engine`: the request engine (arrivals, calls, attempts, timeouts, retries, load balancing,
//!   worker pools, CPU queues, call-tree stages, answers);
//! - `probes`: replica lifecycle over time (start-up, probes, the per-second tick);
//! - `control`: the control API faults and actions go through;
//! - `observe`: what observers can read;
//! - `attribution`: which [`Cause`] a failure carries (precedence and blame).

use crate::cause::{Cause, ErrorKind};
use crate::config::SimConfig;
use crate::metrics::Metrics;
use crate::net::{DesNetwork, MsgId, Network};
use crate::rng::{self, Stream};
use crate::slab::{Key, Slab};
use crate::spec::AppSpec;
use kernel::{EdgeKind, VirtualTime};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, VecDeque};

mod attribution;
mod control;
mod engine;
mod events;
mod invariants;
mod observe;
mod probes;

use attribution::Flags;
use events::{Event, EventQueue};
pub use invariants::InvariantViolation;

/// Why a run stopped early.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimError {
    /// The application spec is inconsistent.
    #[error("invalid application: {0}")]
    BadSpec(String),
    /// The run processed more events than its budget allows (a runaway, not a result).
    #[error(
        "event budget of {budget} exceeded at t = {at} (raise max_events if the run is legitimately this large)"
    )]
    EventBudgetExceeded {
        /// The budget.
        budget: u64,
        /// When.
        at: VirtualTime,
    },
    /// A control call named something that does not exist.
    #[error("{0}")]
    BadControl(String),
    /// The invariant checker ([`SimConfig::check_invariants_every`]) found the simulator's state
    /// inconsistent: a simulator bug, never a result.
    #[error("{0}")]
    Invariant(InvariantViolation),
}

/// Request bookkeeping for the invariant checker: every request that starts ends exactly once.
#[derive(Debug, Default)]
struct Tally {
    requests_started: u64,
    requests_ended: u64,
    /// Root calls that completed without a request to end (a request ended twice).
    ends_without_request: u64,
}

/// A bug planted on purpose, once, at or after a time, to show the invariant checker catches it.
#[cfg(test)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sabotage {
    /// A finished execution leaves its worker counted.
    SkipInflightDecrement,
    /// A completed call stays in the slab (a leak).
    LeakCall,
    /// A request is counted as started twice.
    DoubleCountStart,
}

/// The lifecycle state of a replica.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplicaState {
    /// Process starting; not serving.
    Starting,
    /// Serving.
    Running,
    /// Process gone; connections refused.
    Down,
    /// Process alive but stuck: accepts connections, never answers.
    Hung,
}

/// What an observer (an agent, a probe) can see of a replica.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ReplicaStatus {
    /// Lifecycle state.
    pub state: ReplicaState,
    /// In load balancing (running, readiness passing, not drained).
    pub serving: bool,
    /// Drained by an operator.
    pub drained: bool,
    /// Requests held.
    pub inflight: u32,
    /// Liveness probe passing.
    pub live: bool,
    /// Consecutive failed probes.
    pub probe_failures: u32,
    /// Times restarted.
    pub restarts: u64,
}
#[derive(Clone, Copy, Debug)]
struct Outcome {
    error: Option<(ErrorKind, Cause)>,
    miss: bool,
    flags: Flags,
}

#[derive(Debug)]
enum Message {
    Request {
        call: Key,
        attempt: u32,
        service: u16,
        replica: u32,
        generation: u32,
    },
    Response {
        call: Key,
        attempt: u32,
        outcome: Outcome,
    },
}

#[derive(Clone, Copy, Debug)]
enum Parent {
    Request(Key),
    Exec(Key),
}

#[derive(Clone, Debug)]
struct Call {
    parent: Parent,
    path: u16,
    node: u16,
    callee: u16,
    caller: Option<(u16, u32)>,
    attempt: u32,
    awaiting: bool,
    target: (u32, u32),
    flags: Flags,
}

#[derive(Debug)]
struct Exec {
    call: Key,
    attempt: u32,
    caller: Option<(u16, u32)>,
    service: u16,
    replica: u32,
    path: u16,
    node: u16,
    stage: u16,
    pending: u16,
    failure: Option<Cause>,
    prev_miss: bool,
    stage_miss: bool,
    miss: bool,
    flags: Flags,
    admitted: VirtualTime,
}

#[derive(Debug)]
struct Request {
    path: u16,
    start: VirtualTime,
}

#[derive(Debug)]
struct Replica {
    state: ReplicaState,
    cause: Option<Cause>,
    generation: u32,
    in_lb: bool,
    probe_failures: u32,
    drained: bool,
    drain_cause: Option<Cause>,
    inflight: u32,
    execs: Vec<Key>,
    busy: u32,
    cpu_queue: VecDeque<(Key, bool)>,
    /// When the cache started warming; `None` for one that is warm (a run starts warm).
    warm_since: Option<VirtualTime>,
    cold_cause: Option<Cause>,
    slowdown: f64,
    slowdown_cause: Option<Cause>,
    leak: Option<(f64, f64, Cause)>,
    net_delay_us: u64,
    net_delay_cause: Option<Cause>,
    blocked: Vec<(u16, Cause)>,
    restarts: u64,
}

impl Replica {
    fn new(state: ReplicaState, cause: Option<Cause>, now: VirtualTime) -> Self {
        Replica {
            state,
            cause,
            generation: 0,
            in_lb: state == ReplicaState::Running,
            probe_failures: 0,
            drained: false,
            drain_cause: None,
            inflight: 0,
            execs: Vec::new(),
            busy: 0,
            cpu_queue: VecDeque::new(),
            warm_since: (state == ReplicaState::Starting).then_some(now),
            cold_cause: None,
            slowdown: 1.0,
            slowdown_cause: None,
            leak: None,
            net_delay_us: 0,
            net_delay_cause: None,
            blocked: Vec::new(),
            restarts: 0,
        }
    }

    fn serving(&self) -> bool {
        self.state == ReplicaState::Running && self.in_lb && !self.drained
    }
}

#[derive(Debug)]
struct ConfigVersion {
    name: String,
    fail_fraction: f64,
    cause: Option<Cause>,
}

#[derive(Debug)]
struct Limiter {
    rps: f64,
    tokens: f64,
    last: VirtualTime,
    cause: Cause,
}

#[derive(Debug)]
struct ServiceRt {
    replicas: Vec<Replica>,
    rr: usize,
    limiter: Option<Limiter>,
    breakers: BTreeMap<u16, Cause>,
    configs: Vec<ConfigVersion>,
    current_config: usize,
    /// Retry budget per callee (Finagle-style: one budget per destination).
    retry_tokens: Vec<f64>,
    scale_cause: Option<Cause>,
    /// CPU limit patched by hand, relative to the spec's (1 = unchanged), with its cause:
    /// service times are divided by it (raised limits give a CPU hog headroom, lowered ones
    /// throttle), never below the unstressed time.
    cpu_limit: Option<(f64, Cause)>,
    counters: CallCounters,
}

/// How many calls a service was sent, counting retries separately.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct CallCounters {
    /// First attempts of calls to the service.
    pub calls: u64,
    /// Retried attempts.
    pub retries: u64,
    /// Attempts that reached a replica.
    pub received: u64,
}

/// A call observed on the wire: `caller → callee` at `time` (`caller` is `None` for users).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRecord {
    /// When the call was first sent.
    pub time: VirtualTime,
    /// Calling service index, or `None` for the user.
    pub caller: Option<u16>,
    /// Called service index.
    pub callee: u16,
}

/// The simulator. See the [module documentation](self).
pub struct Sim<N: Network = DesNetwork> {
    spec: AppSpec,
    cfg: SimConfig,
    now: VirtualTime,
    queue: EventQueue,
    events: u64,
    net: N,
    msgs: Slab<Message>,
    calls: Slab<Call>,
    execs: Slab<Exec>,
    requests: Slab<Request>,
    services: Vec<ServiceRt>,
    rng_arrivals: ChaCha8Rng,
    rng_work: rng::Normals,
    rng_branches: ChaCha8Rng,
    rng_retries: ChaCha8Rng,
    metrics: Metrics,
    path_cdf: Vec<f64>,
    timeouts_us: Vec<Vec<u64>>,
    edge_kinds: Vec<Vec<EdgeKind>>,
    downstream: Vec<Vec<u16>>,
    delivered: Vec<(VirtualTime, MsgId)>,
    spans: Option<Vec<SpanRecord>>,
    arrivals_on: bool,
    tally: Tally,
    #[cfg(test)]
    sabotage: Option<(Sabotage, u64)>,
}

impl Sim<DesNetwork> {
    /// A simulation of `spec` over the event-driven network.
    pub fn new(spec: AppSpec, cfg: SimConfig) -> Result<Self, SimError> {
        let net = DesNetwork::new(cfg.network, rng::stream(cfg.seed, Stream::Network));
        Sim::with_network(spec, cfg, net)
    }
}

impl<N: Network> Sim<N> {
    /// A simulation of `spec` over `net`. Services are numbered as in `spec`; the user's client
    /// is network node `spec.services.len()`.
    pub fn with_network(spec: AppSpec, cfg: SimConfig, net: N) -> Result<Self, SimError> {
        spec.check().map_err(SimError::BadSpec)?;
        if spec.services.len() > u16::MAX as usize {
            return Err(SimError::BadSpec("too many services".into()));
        }
        if !(cfg.rate_rps.is_finite() && cfg.rate_rps >= 0.0) {
            return Err(SimError::BadSpec(
                "rate_rps must be a finite, non-negative rate".into(),
            ));
        }
        let now = VirtualTime::ZERO;
        let services = spec
            .services
            .iter()
            .map(|s| ServiceRt {
                replicas: (0..s.replicas)
                    .map(|_| Replica::new(ReplicaState::Running, None, now))
                    .collect(),
                rr: 0,
                limiter: None,
                breakers: BTreeMap::new(),
                configs: if s.config_versions.is_empty() {
                    vec![ConfigVersion {
                        name: "v1".into(),
                        fail_fraction: 0.0,
                        cause: None,
                    }]
                } else {
                    s.config_versions
                        .iter()
                        .map(|v| ConfigVersion {
                            name: v.clone(),
                            fail_fraction: 0.0,
                            cause: None,
                        })
                        .collect()
                },
                current_config: s.config_versions.len().max(1) - 1,
                retry_tokens: vec![cfg.retries.budget_cap; spec.services.len()],
                scale_cause: None,
                cpu_limit: None,
                counters: CallCounters::default(),
            })
            .collect();
        let total: f64 = spec.paths.iter().map(|p| p.weight).sum();
        let mut acc = 0.0;
        let path_cdf = spec
            .paths
            .iter()
            .map(|p| {
                acc += p.weight / total;
                acc
            })
            .collect();
        let edge_kind = |from: usize, to: usize| {
            spec.edges
                .iter()
                .find(|e| e.from == from && e.to == to)
                .map_or(EdgeKind::Rpc, |e| e.kind)
        };
        let mut timeouts_us = Vec::new();
        let mut edge_kinds = Vec::new();
        for p in &spec.paths {
            let mut t = vec![cfg.timeouts.client_ms * 1000; p.nodes.len()];
            let mut k = vec![EdgeKind::Rpc; p.nodes.len()];
            for node in &p.nodes {
                for &c in node.stages.iter().flatten() {
                    let kind = edge_kind(node.service, p.nodes[c].service);
                    k[c] = kind;
                    t[c] = 1000
                        * match kind {
                            EdgeKind::Cache => cfg.timeouts.cache_ms,
                            EdgeKind::Db => cfg.timeouts.db_ms,
                            EdgeKind::Rpc | EdgeKind::Mq => cfg.timeouts.rpc_ms,
                        };
                }
            }
            timeouts_us.push(t);
            edge_kinds.push(k);
        }
        // Downstream closure of every service over request edges (for blame).
        let n = spec.services.len();
        let downstream = (0..n)
            .map(|s| {
                let mut seen = vec![false; n];
                let mut stack = vec![s];
                seen[s] = true;
                while let Some(v) = stack.pop() {
                    for e in spec.edges.iter().filter(|e| e.from == v) {
                        if !seen[e.to] {
                            seen[e.to] = true;
                            stack.push(e.to);
                        }
                    }
                }
                (0..n).filter(|&v| seen[v]).map(|v| v as u16).collect()
            })
            .collect();
        let names: Vec<String> = spec.services.iter().map(|s| s.name.clone()).collect();
        let paths: Vec<String> = spec.paths.iter().map(|p| p.name.clone()).collect();
        let mut sim = Sim {
            metrics: Metrics::new(&names, &paths),
            cfg,
            now,
            queue: EventQueue::default(),
            events: 0,
            net,
            msgs: Slab::default(),
            calls: Slab::default(),
            execs: Slab::default(),
            requests: Slab::default(),
            services,
            rng_arrivals: rng::stream(cfg.seed, Stream::Arrivals),
            rng_work: rng::Normals::new(rng::stream(cfg.seed, Stream::Work)),
            rng_branches: rng::stream(cfg.seed, Stream::Branches),
            rng_retries: rng::stream(cfg.seed, Stream::Retries),
            path_cdf,
            timeouts_us,
            edge_kinds,
            downstream,
            delivered: Vec::new(),
            spans: None,
            arrivals_on: cfg.rate_rps > 0.0,
            tally: Tally::default(),
            #[cfg(test)]
            sabotage: None,
            spec,
        };
        if sim.arrivals_on {
            let first = rng::exponential(&mut sim.rng_arrivals, 1e6 / sim.cfg.rate_rps) as u64;
            sim.schedule_at(first, Event::Arrival);
        }
        let probe_us = (sim.cfg.probes.period_s * 1e6) as u64;
        sim.schedule_at(probe_us.max(1), Event::Probe);
        sim.schedule_at(1_000_000, Event::Second);
        Ok(sim)
    }

    // ---------------------------------------------------------------------------------------
    // Driving the simulation.
    // ---------------------------------------------------------------------------------------

    /// The current simulated time.
    pub fn now(&self) -> VirtualTime {
        self.now
    }

    /// The application.
    pub fn spec(&self) -> &AppSpec {
        &self.spec
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.cfg
    }

    /// Metrics so far (complete seconds).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Events processed so far.
    pub fn events_processed(&self) -> u64 {
        self.events
    }

    /// User requests in flight.
    pub fn requests_in_flight(&self) -> usize {
        self.requests.len()
    }

    /// Starts recording every call for trace-based graph building (see [`Sim::drain_spans`]).
    pub fn record_spans(&mut self) {
        self.spans.get_or_insert_with(Vec::new);
    }

    /// Moves the calls recorded so far into `out`.
    pub fn drain_spans(&mut self, out: &mut Vec<SpanRecord>) {
        if let Some(spans) = &mut self.spans {
            out.append(spans);
        }
    }

    /// Stops (or resumes) user arrivals, e.g. to let a run drain at its end.
    pub fn set_arrivals(&mut self, on: bool) {
        if on && !self.arrivals_on && self.cfg.rate_rps > 0.0 {
            let gap = rng::exponential(&mut self.rng_arrivals, 1e6 / self.cfg.rate_rps) as u64;
            self.schedule_in(gap, Event::Arrival);
        }
        self.arrivals_on = on;
    }

    /// Runs every event up to and including time `t`, then sets the clock to `t`.
    pub fn run_until(&mut self, t: VirtualTime) -> Result<(), SimError> {
        loop {
            let next_event = self.queue.peek_time();
            let next_net = self.net.next_delivery().map(VirtualTime::as_micros);
            let next = match (next_event, next_net) {
                (None, None) => break,
                (a, b) => a.unwrap_or(u64::MAX).min(b.unwrap_or(u64::MAX)),
            };
            if next > t.as_micros() {
                break;
            }
            self.events += 1;
            if self.events > self.cfg.max_events {
                return Err(SimError::EventBudgetExceeded {
                    budget: self.cfg.max_events,
                    at: self.now,
                });
            }
            if next_net == Some(next) && next_event.is_none_or(|e| next <= e) {
                let mut delivered = std::mem::take(&mut self.delivered);
                self.net.deliver_until(VirtualTime(next), &mut delivered);
                for (at, msg) in delivered.drain(..) {
                    self.now = self.now.max(at);
                    self.on_deliver(msg);
                }
                self.delivered = delivered;
                self.maybe_check()?;
                continue;
            }
            let (time, event) = self.queue.pop().expect("peeked");
            self.now = VirtualTime(time);
            self.dispatch(event);
            self.maybe_check()?;
        }
        self.now = self.now.max(t);
        Ok(())
    }

    fn dispatch(&mut self, event: Event) {
        match event {
            Event::Arrival => self.on_arrival(),
            Event::Work { exec, post } => self.on_work(exec, post),
            Event::Timeout { call, attempt } => self.on_timeout(call, attempt),
            Event::Retry { call } => self.start_attempt(call),
            Event::Fail {
                call,
                attempt,
                kind,
                cause,
                retryable,
            } => {
                if self
                    .calls
                    .get(call)
                    .is_some_and(|c| c.attempt == attempt && c.awaiting)
                {
                    self.attempt_failed(call, kind, cause, retryable);
                }
            }
            Event::Up {
                service,
                replica,
                generation,
            } => self.on_up(service, replica, generation),
            Event::Probe => self.on_probe(),
            Event::Second => self.on_second(),
        }
    }

    /// Runs the invariant checker if the configuration asks for it at this event.
    #[inline]
    fn maybe_check(&self) -> Result<(), SimError> {
        match self.cfg.check_invariants_every {
            Some(n) if self.events.is_multiple_of(n.max(1)) => {
                self.check_invariants().map_err(SimError::Invariant)
            }
            _ => Ok(()),
        }
    }

    /// Arms a planted bug (tests of the invariant checker only).
    #[cfg(test)]
    fn sabotage_now(&mut self, which: Sabotage) -> bool {
        match self.sabotage {
            Some((w, at)) if w == which && self.now.as_micros() >= at => {
                self.sabotage = None;
                true
            }
            _ => false,
        }
    }
}

/// Small applications for the world's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::cause::Cause;
    use crate::spec::{AppSpec, CallNode, Condition, EdgeSpec, PathSpec, ServiceSpec, ServiceTime};
    use kernel::{EdgeKind, ServiceKind};

    /// The fault the tests inject.
    pub const FAULT: Cause = Cause::Fault(1);
    /// The action the tests take.
    pub const ACTION: Cause = Cause::Action(1);

    fn service(
        name: &str,
        kind: ServiceKind,
        replicas: u32,
        cores: u32,
        inflight: u32,
    ) -> ServiceSpec {
        ServiceSpec {
            name: name.into(),
            kind,
            replicas,
            min_replicas: 1,
            max_replicas: replicas.max(4),
            cores,
            max_inflight: inflight,
            service_time: ServiceTime {
                median_us: 800.0,
                sigma: 0.4,
            },
            startup_s: 1.0,
            cache: None,
            startup_deps: Vec::new(),
            config_versions: vec!["v1".into()],
        }
    }

    fn node(service: usize, stages: Vec<Vec<usize>>) -> CallNode {
        CallNode {
            service,
            op: "op".into(),
            condition: Condition::Always,
            stages,
        }
    }

    /// `frontend → backend → db`, and `frontend → other` beside it (one path, both calls in
    /// one stage): services 0 to 3.
    pub fn chain() -> AppSpec {
        let edge = |from, to, kind| EdgeSpec { from, to, kind };
        AppSpec {
            name: "chain".into(),
            services: vec![
                service("frontend", ServiceKind::Frontend, 2, 4, 128),
                service("backend", ServiceKind::Stateless, 2, 2, 32),
                service("db", ServiceKind::Db, 1, 4, 64),
                service("other", ServiceKind::Stateless, 1, 2, 32),
            ],
            edges: vec![
                edge(0, 1, EdgeKind::Rpc),
                edge(1, 2, EdgeKind::Db),
                edge(0, 3, EdgeKind::Rpc),
            ],
            paths: vec![PathSpec {
                name: "read".into(),
                weight: 1.0,
                nodes: vec![
                    node(0, vec![vec![1, 3]]),
                    node(1, vec![vec![2]]),
                    node(2, vec![]),
                    node(3, vec![]),
                ],
            }],
        }
    }
}
