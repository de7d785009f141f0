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

use crate::cause::{Cause, ErrorKind};
use crate::config::SimConfig;
use crate::metrics::{Completion, Metrics};
use crate::net::{DesNetwork, MsgId, Network};
use crate::rng::{self, Stream};
use crate::slab::{Key, Slab};
use crate::spec::{AppSpec, Condition};
use kernel::{EdgeKind, ServiceKind, VirtualTime};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

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
enum Event {
    Arrival,
    Work {
        exec: Key,
        post: bool,
    },
    Timeout {
        call: Key,
        attempt: u32,
    },
    Retry {
        call: Key,
    },
    Fail {
        call: Key,
        attempt: u32,
        kind: ErrorKind,
        cause: Cause,
        retryable: bool,
    },
    Up {
        service: u16,
        replica: u32,
        generation: u32,
    },
    Probe,
    Second,
}

/// A queue entry: small, ordered by (time, insertion sequence) only, earliest first; the event
/// itself waits in a slab.
#[derive(Clone, Copy, Debug)]
struct Scheduled {
    time: u64,
    seq: u64,
    payload: Key,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Flags {
    fault: bool,
    action: bool,
}

impl Flags {
    fn merge(&mut self, other: Flags) {
        self.fault |= other.fault;
        self.action |= other.action;
    }
    fn of(cause: Cause) -> Flags {
        Flags {
            fault: cause.is_fault(),
            action: cause.is_action(),
        }
    }
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

#[derive(Debug)]
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
    queue: BinaryHeap<Scheduled>,
    payloads: Slab<Event>,
    seq: u64,
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
            queue: BinaryHeap::new(),
            payloads: Slab::default(),
            seq: 0,
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
            let next_event = self.queue.peek().map(|s| s.time);
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
                continue;
            }
            let scheduled = self.queue.pop().expect("peeked");
            let event = self
                .payloads
                .remove(scheduled.payload)
                .expect("every entry has its payload");
            self.now = VirtualTime(scheduled.time);
            self.dispatch(event);
        }
        self.now = self.now.max(t);
        Ok(())
    }

    fn schedule_at(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        let payload = self.payloads.insert(event);
        self.queue.push(Scheduled {
            time: at_us,
            seq: self.seq,
            payload,
        });
    }

    fn schedule_in(&mut self, delay_us: u64, event: Event) {
        self.schedule_at(self.now.as_micros() + delay_us, event);
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

    // ---------------------------------------------------------------------------------------
    // Requests and calls.
    // ---------------------------------------------------------------------------------------

    fn on_arrival(&mut self) {
        if !self.arrivals_on {
            return;
        }
        let gap = rng::exponential(&mut self.rng_arrivals, 1e6 / self.cfg.rate_rps) as u64;
        self.schedule_in(gap.max(1), Event::Arrival);
        let u: f64 = self.rng_arrivals.random();
        let path = self
            .path_cdf
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.path_cdf.len() - 1);
        if self.requests.len() >= self.cfg.max_requests_in_flight {
            let n = self.spec.services.len();
            self.metrics.record_path(
                n,
                path,
                Completion {
                    latency_us: 0,
                    error: Some(Cause::Overload),
                    touched_fault: false,
                },
            );
            return;
        }
        let req = self.requests.insert(Request {
            path: path as u16,
            start: self.now,
        });
        let call = self.calls.insert(Call {
            parent: Parent::Request(req),
            path: path as u16,
            node: 0,
            callee: self.spec.paths[path].nodes[0].service as u16,
            caller: None,
            attempt: 0,
            awaiting: false,
            target: (0, 0),
            flags: Flags::default(),
        });
        self.start_attempt(call);
    }

    fn start_attempt(&mut self, key: Key) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        // A retry of a call whose calling process has since stopped (restarted, scaled away):
        // nobody is left to send it.
        if let Parent::Exec(exec) = call.parent
            && self.execs.get(exec).is_none()
        {
            self.calls.remove(key);
            return;
        }
        let call = self.calls.get_mut(key).expect("checked above");
        call.attempt += 1;
        call.awaiting = true;
        let (attempt, callee, caller, path, node) =
            (call.attempt, call.callee, call.caller, call.path, call.node);
        let fail = |sim: &mut Self, kind, cause, retryable| {
            sim.schedule_in(
                0,
                Event::Fail {
                    call: key,
                    attempt,
                    kind,
                    cause,
                    retryable,
                },
            );
        };
        let counters = &mut self.services[callee as usize].counters;
        if attempt == 1 {
            counters.calls += 1;
        } else {
            counters.retries += 1;
        }
        if let Some((cs, _)) = caller {
            if attempt == 1 {
                let tokens = &mut self.services[cs as usize].retry_tokens[callee as usize];
                *tokens =
                    (*tokens + self.cfg.retries.budget_ratio).min(self.cfg.retries.budget_cap);
            }
            if let Some(&cause) = self.services[cs as usize].breakers.get(&callee) {
                let cause = self.fault_outage(callee).unwrap_or(cause);
                fail(self, ErrorKind::BreakerOpen, cause, false);
                return;
            }
        }
        if attempt == 1
            && let Some(spans) = &mut self.spans
        {
            spans.push(SpanRecord {
                time: self.now,
                caller: caller.map(|c| c.0),
                callee,
            });
        }
        let Some(replica) = self.pick_replica(callee) else {
            let cause = self.unavailable_cause(callee);
            fail(self, ErrorKind::Unavailable, cause, true);
            return;
        };
        let generation = self.services[callee as usize].replicas[replica as usize].generation;
        let call = self.calls.get_mut(key).expect("checked above");
        call.target = (replica, generation);
        let timeout = self.timeouts_us[path as usize][node as usize];
        self.schedule_in(timeout, Event::Timeout { call: key, attempt });
        // Injected link faults, applied here so both network backends see them.
        let mut delay = self.services[callee as usize].replicas[replica as usize].net_delay_us;
        if let Some((cs, cr)) = caller {
            let from = &self.services[cs as usize].replicas[cr as usize];
            delay += from.net_delay_us;
            if let Some(&(_, cause)) = from.blocked.iter().find(|(to, _)| *to == callee) {
                // Dropped on the wire: the caller learns of it only by its timeout.
                let call = self.calls.get_mut(key).expect("checked above");
                call.flags.merge(Flags::of(cause));
                return;
            }
        }
        let msg = self.msgs.insert(Message::Request {
            call: key,
            attempt,
            service: callee,
            replica,
            generation,
        });
        let from = caller.map_or(self.spec.services.len(), |c| c.0 as usize);
        self.net.send(
            self.now,
            from,
            callee as usize,
            MsgId(key_to_msg(msg)),
            delay,
        );
    }

    fn pick_replica(&mut self, service: u16) -> Option<u32> {
        let rt = &mut self.services[service as usize];
        let n = rt.replicas.len();
        for i in 0..n {
            let r = (rt.rr + i) % n;
            if rt.replicas[r].serving() {
                rt.rr = (r + 1) % n;
                return Some(r as u32);
            }
        }
        None
    }

    /// Why `service` has no replica to send to. A replica an action took out of service
    /// would otherwise have served, so actions are blamed before faults — unless the fault
    /// has every replica down anyway ([`Sim::fault_outage`]).
    fn unavailable_cause(&self, service: u16) -> Cause {
        if let Some(fault) = self.fault_outage(service) {
            return fault;
        }
        let rt = &self.services[service as usize];
        if rt.replicas.is_empty() {
            return rt.scale_cause.unwrap_or(Cause::Overload);
        }
        let (mut action, mut fault) = (None, None);
        for r in &rt.replicas {
            let cause = if r.drained {
                r.drain_cause
            } else if r.state != ReplicaState::Running || !r.in_lb {
                r.cause
            } else {
                None
            };
            match cause {
                Some(c @ Cause::Action(_)) => action = action.or(Some(c)),
                Some(c @ Cause::Fault(_)) => fault = fault.or(Some(c)),
                _ => {}
            }
        }
        action.or(fault).unwrap_or(Cause::Overload)
    }

    /// The fault, if an injected fault leaves `service` unable to answer anything: every
    /// replica hung, down or restarting because of it, or a configuration it pushed failing
    /// every request. Requests an action turns away from such a service (a breaker, a rate
    /// limit, a drain) would have failed anyway, so they keep the fault's tag.
    fn fault_outage(&self, service: u16) -> Option<Cause> {
        let rt = &self.services[service as usize];
        let config = &rt.configs[rt.current_config];
        if config.fail_fraction >= 1.0
            && let Some(c @ Cause::Fault(_)) = config.cause
        {
            return Some(c);
        }
        let mut found = None;
        for r in &rt.replicas {
            match (r.state, r.cause) {
                (ReplicaState::Running, _) => return None,
                (_, Some(c @ Cause::Fault(_))) => found = Some(c),
                _ => return None,
            }
        }
        found
    }

    /// A fault in `service` or anything it depends on; else an action there; else overload.
    fn blame(&self, service: u16) -> Cause {
        let mut found: Option<Cause> = None;
        for &s in &self.downstream[service as usize] {
            let own = self.disturbance(s);
            found = match (found, own) {
                (Some(Cause::Fault(f)), _) => Some(Cause::Fault(f)),
                (_, Some(Cause::Fault(f))) => Some(Cause::Fault(f)),
                (None, Some(c)) => Some(c),
                (f, _) => f,
            };
        }
        found.unwrap_or(Cause::Overload)
    }

    /// The strongest cause of anything wrong with `service` right now.
    fn disturbance(&self, service: u16) -> Option<Cause> {
        let rt = &self.services[service as usize];
        let per_replica = rt.replicas.iter().flat_map(|r| {
            let state = (r.state != ReplicaState::Running)
                .then_some(r.cause)
                .flatten();
            [
                state,
                r.slowdown_cause,
                r.net_delay_cause,
                r.drain_cause.filter(|_| r.drained),
            ]
            .into_iter()
            .flatten()
            .chain(r.blocked.iter().map(|b| b.1))
        });
        let config = rt.configs[rt.current_config]
            .cause
            .filter(|_| rt.configs[rt.current_config].fail_fraction > 0.0);
        let limiter = rt.limiter.as_ref().map(|l| l.cause);
        let found = strongest(
            per_replica
                .chain(config)
                .chain(limiter)
                .chain(rt.scale_cause),
        );
        (found != Cause::Overload).then_some(found)
    }

    fn on_deliver(&mut self, msg: MsgId) {
        let Some(message) = self.msgs.remove(msg_to_key(msg.0)) else {
            return;
        };
        match message {
            Message::Request {
                call,
                attempt,
                service,
                replica,
                generation,
            } => self.on_request(call, attempt, service, replica, generation),
            Message::Response {
                call,
                attempt,
                outcome,
            } => self.on_response(call, attempt, outcome),
        }
    }

    fn on_request(&mut self, call: Key, attempt: u32, service: u16, replica: u32, generation: u32) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let caller = c.caller;
        let (path, node) = (c.path, c.node);
        self.services[service as usize].counters.received += 1;
        let rt = &self.services[service as usize];
        let Some(r) = rt.replicas.get(replica as usize) else {
            let cause = rt.scale_cause.unwrap_or(Cause::Overload);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Unavailable, cause),
            );
        };
        if r.generation != generation
            || matches!(r.state, ReplicaState::Down | ReplicaState::Starting)
        {
            // Connection refused or reset: the process the caller picked is gone.
            let cause = r.cause.unwrap_or(Cause::Overload);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Unavailable, cause),
            );
        }
        if r.state == ReplicaState::Hung {
            return; // accepted, never answered: the caller times out
        }
        let now = self.now;
        let rt = &mut self.services[service as usize];
        if let Some(l) = &mut rt.limiter {
            let elapsed = now.since(l.last).as_secs_f64();
            l.tokens = (l.tokens + elapsed * l.rps).min(l.rps.max(1.0));
            l.last = now;
            if l.tokens < 1.0 {
                let cause = l.cause;
                let cause = self.fault_outage(service).unwrap_or(cause);
                return self.respond(
                    call,
                    attempt,
                    service,
                    replica,
                    caller,
                    error(ErrorKind::RateLimited, cause),
                );
            }
            l.tokens -= 1.0;
        }
        let max = self.spec.services[service as usize].max_inflight;
        if self.services[service as usize].replicas[replica as usize].inflight >= max {
            let cause = self.blame(service);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Rejected, cause),
            );
        }
        let exec = self.execs.insert(Exec {
            call,
            attempt,
            caller,
            service,
            replica,
            path,
            node,
            stage: 0,
            pending: 0,
            failure: None,
            prev_miss: false,
            stage_miss: false,
            miss: false,
            flags: Flags::default(),
            admitted: now,
        });
        let r = &mut self.services[service as usize].replicas[replica as usize];
        r.inflight += 1;
        r.execs.push(exec);
        self.enqueue_cpu(service, replica, exec, false);
    }

    fn enqueue_cpu(&mut self, service: u16, replica: u32, exec: Key, post: bool) {
        self.services[service as usize].replicas[replica as usize]
            .cpu_queue
            .push_back((exec, post));
        self.start_cpu(service, replica);
    }

    fn start_cpu(&mut self, service: u16, replica: u32) {
        let spec = &self.spec.services[service as usize];
        let (cores, st) = (spec.cores, spec.service_time);
        loop {
            let r = &mut self.services[service as usize].replicas[replica as usize];
            if r.busy >= cores {
                return;
            }
            let Some((exec, post)) = r.cpu_queue.pop_front() else {
                return;
            };
            r.busy += 1;
            let slowdown = r.slowdown;
            let share = if post { 0.2 } else { 0.8 };
            let z = self.rng_work.draw();
            let us = st.median_us * (st.sigma * z).exp() * share * slowdown;
            self.schedule_in(us.max(1.0) as u64, Event::Work { exec, post });
        }
    }

    fn on_work(&mut self, key: Key, post: bool) {
        let Some(exec) = self.execs.get(key) else {
            return;
        };
        let (service, replica) = (exec.service, exec.replica);
        self.services[service as usize].replicas[replica as usize].busy -= 1;
        self.start_cpu(service, replica);
        if post {
            self.finish_exec(key, None);
            return;
        }
        // The request has been computed: does the service's configuration let it succeed?
        let rt = &self.services[service as usize];
        let config = &rt.configs[rt.current_config];
        if config.fail_fraction > 0.0 && self.rng_branches.random::<f64>() < config.fail_fraction {
            let cause = config.cause.unwrap_or(Cause::Overload);
            self.finish_exec(key, Some((ErrorKind::BadConfig, cause)));
            return;
        }
        if let Some(cache) = self.spec.services[service as usize].cache {
            let r = &self.services[service as usize].replicas[replica as usize];
            let warm_s = r
                .warm_since
                .map_or(f64::INFINITY, |t| self.now.since(t).as_secs_f64());
            let hit = cache.hit_ratio * (1.0 - (-warm_s / cache.warmup_s.max(1e-9)).exp());
            let miss = self.rng_branches.random::<f64>() >= hit;
            let cold = r.cold_cause.filter(|_| warm_s < 3.0 * cache.warmup_s);
            let exec = self.execs.get_mut(key).expect("checked above");
            exec.miss = miss;
            if let Some(cause) = cold {
                exec.flags.merge(Flags::of(cause));
            }
        }
        self.run_stage(key, 0);
    }

    fn run_stage(&mut self, key: Key, stage: usize) {
        let Some(exec) = self.execs.get(key) else {
            return;
        };
        let (path, node, service, replica) = (
            exec.path as usize,
            exec.node as usize,
            exec.service,
            exec.replica,
        );
        let prev_miss = exec.prev_miss;
        let stages = self.spec.paths[path].nodes[node].stages.len();
        if stage >= stages {
            self.enqueue_cpu(service, replica, key, true);
            return;
        }
        let mut issue: Vec<usize> = Vec::new();
        for &child in &self.spec.paths[path].nodes[node].stages[stage] {
            let go = match self.spec.paths[path].nodes[child].condition {
                Condition::Always => true,
                Condition::OnMiss => prev_miss,
                Condition::Probability(p) => self.rng_branches.random::<f64>() < p,
            };
            if go {
                issue.push(child);
            }
        }
        let exec = self.execs.get_mut(key).expect("checked above");
        exec.stage = stage as u16;
        exec.pending = issue.len() as u16;
        exec.stage_miss = false;
        if issue.is_empty() {
            exec.prev_miss = false;
            return self.run_stage(key, stage + 1);
        }
        for child in issue {
            let call = self.calls.insert(Call {
                parent: Parent::Exec(key),
                path: path as u16,
                node: child as u16,
                callee: self.spec.paths[path].nodes[child].service as u16,
                caller: Some((service, replica)),
                attempt: 0,
                awaiting: false,
                target: (0, 0),
                flags: Flags::default(),
            });
            self.start_attempt(call);
        }
    }

    fn finish_exec(&mut self, key: Key, error_: Option<(ErrorKind, Cause)>) {
        let Some(exec) = self.execs.remove(key) else {
            return;
        };
        let (service, replica) = (exec.service, exec.replica);
        let r = &mut self.services[service as usize].replicas[replica as usize];
        r.inflight -= 1;
        if let Some(i) = r.execs.iter().position(|&e| e == key) {
            r.execs.swap_remove(i);
        }
        let mut flags = exec.flags;
        if let Some(cause) = self.replica_disturbance(service, replica) {
            flags.merge(Flags::of(cause));
        }
        let err = error_.or(exec.failure.map(|c| (ErrorKind::Dependency, c)));
        self.metrics.record_service(
            service as usize,
            Completion {
                latency_us: self.now.since(exec.admitted).as_micros() as u64,
                error: err.map(|e| e.1),
                touched_fault: flags.fault,
            },
        );
        let outcome = Outcome {
            error: err,
            miss: exec.miss,
            flags,
        };
        self.respond(
            exec.call,
            exec.attempt,
            service,
            replica,
            exec.caller,
            outcome,
        );
    }

    /// A disturbance of the calling replica's own network — a delay on it, or a partition from
    /// the callee — which makes its calls time out however healthy the callee is.
    fn link_disturbance(&self, key: Key, callee: u16) -> Option<Cause> {
        let (cs, cr) = self.calls.get(key)?.caller?;
        let r = self.services[cs as usize].replicas.get(cr as usize)?;
        r.blocked
            .iter()
            .find(|(to, _)| *to == callee)
            .map(|b| b.1)
            .or(r.net_delay_cause)
    }

    fn replica_disturbance(&self, service: u16, replica: u32) -> Option<Cause> {
        // The replica may have been scaled away while a call to it was pending.
        let r = self.services[service as usize]
            .replicas
            .get(replica as usize)?;
        let found = strongest([r.slowdown_cause, r.net_delay_cause].into_iter().flatten());
        (found != Cause::Overload).then_some(found)
    }

    fn respond(
        &mut self,
        call: Key,
        attempt: u32,
        service: u16,
        replica: u32,
        caller: Option<(u16, u32)>,
        outcome: Outcome,
    ) {
        let mut delay = self.services[service as usize]
            .replicas
            .get(replica as usize)
            .map_or(0, |r| r.net_delay_us);
        if let Some((cs, cr)) = caller {
            let from = &self.services[cs as usize].replicas.get(cr as usize);
            if let Some(r) = from {
                delay += r.net_delay_us;
                if r.blocked.iter().any(|(to, _)| *to == service) {
                    return; // the answer is lost on the partitioned link
                }
            }
        }
        let msg = self.msgs.insert(Message::Response {
            call,
            attempt,
            outcome,
        });
        let to = caller.map_or(self.spec.services.len(), |c| c.0 as usize);
        self.net.send(
            self.now,
            service as usize,
            to,
            MsgId(key_to_msg(msg)),
            delay,
        );
    }

    fn on_response(&mut self, key: Key, attempt: u32, outcome: Outcome) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        if call.attempt != attempt || !call.awaiting {
            return; // a late answer to an attempt already timed out or retried
        }
        call.awaiting = false;
        call.flags.merge(outcome.flags);
        match outcome.error {
            None => self.complete_call(key, outcome),
            Some((kind, cause)) => self.attempt_failed(key, kind, cause, true),
        }
    }

    fn on_timeout(&mut self, key: Key, attempt: u32) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        if call.attempt != attempt || !call.awaiting {
            return;
        }
        let (callee, (replica, generation)) = (call.callee, call.target);
        let r = self.services[callee as usize]
            .replicas
            .get(replica as usize);
        let cause = r
            .filter(|r| r.generation == generation)
            .and_then(|r| match r.state {
                ReplicaState::Hung | ReplicaState::Down => r.cause,
                _ => None,
            })
            .or_else(|| self.replica_disturbance(callee, replica))
            .or_else(|| self.link_disturbance(key, callee))
            .or_else(|| {
                let call = self.calls.get(key).expect("checked above");
                call.flags
                    .fault
                    .then(|| self.blame(callee))
                    .filter(|c| c.is_fault())
            })
            .unwrap_or_else(|| self.blame(callee));
        let call = self.calls.get_mut(key).expect("checked above");
        call.awaiting = false;
        self.attempt_failed(key, ErrorKind::Timeout, cause, true);
    }

    fn attempt_failed(&mut self, key: Key, kind: ErrorKind, cause: Cause, retryable: bool) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        call.awaiting = false;
        call.flags.merge(Flags::of(cause));
        let retries = self.cfg.retries;
        let can_retry = retryable && call.attempt <= retries.max_retries;
        if let (true, Some((cs, _))) = (can_retry, call.caller) {
            let attempt = call.attempt;
            let tokens = &mut self.services[cs as usize].retry_tokens[call.callee as usize];
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                let base =
                    retries.backoff_base_ms * 1000.0 * f64::from(1u32 << (attempt - 1).min(16));
                let jitter = 1.0 + 0.5 * self.rng_retries.random::<f64>();
                self.schedule_in((base * jitter) as u64, Event::Retry { call: key });
                return;
            }
        }
        let flags = self.calls.get(key).expect("checked above").flags;
        self.complete_call(
            key,
            Outcome {
                error: Some((kind, cause)),
                miss: false,
                flags,
            },
        );
    }

    fn complete_call(&mut self, key: Key, outcome: Outcome) {
        let Some(call) = self.calls.remove(key) else {
            return;
        };
        let mut flags = call.flags;
        flags.merge(outcome.flags);
        match call.parent {
            Parent::Request(req) => {
                let Some(r) = self.requests.remove(req) else {
                    return;
                };
                let n = self.spec.services.len();
                self.metrics.record_path(
                    n,
                    r.path as usize,
                    Completion {
                        latency_us: self.now.since(r.start).as_micros() as u64,
                        error: outcome.error.map(|e| e.1),
                        touched_fault: flags.fault,
                    },
                );
            }
            Parent::Exec(exec_key) => {
                let is_cache =
                    self.edge_kinds[call.path as usize][call.node as usize] == EdgeKind::Cache;
                let Some(exec) = self.execs.get_mut(exec_key) else {
                    return;
                };
                exec.flags.merge(flags);
                if let Some((_, cause)) = outcome.error {
                    exec.failure.get_or_insert(cause);
                }
                if is_cache && outcome.miss {
                    exec.stage_miss = true;
                }
                exec.pending = exec.pending.saturating_sub(1);
                if exec.pending > 0 {
                    return;
                }
                if exec.failure.is_some() {
                    self.finish_exec(exec_key, None);
                } else {
                    exec.prev_miss = exec.stage_miss;
                    let next = exec.stage as usize + 1;
                    self.run_stage(exec_key, next);
                }
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Lifecycle: start-up, probes, seconds.
    // ---------------------------------------------------------------------------------------

    fn on_up(&mut self, service: u16, replica: u32, generation: u32) {
        let now = self.now;
        let Some(r) = self.services[service as usize]
            .replicas
            .get_mut(replica as usize)
        else {
            return;
        };
        if r.generation != generation || r.state != ReplicaState::Starting {
            return;
        }
        r.state = ReplicaState::Running;
        r.in_lb = true;
        r.probe_failures = 0;
        r.warm_since = Some(now);
        r.cold_cause = r.cause;
        r.cause = None;
    }

    fn on_probe(&mut self) {
        let threshold = self.cfg.probes.failure_threshold;
        for rt in &mut self.services {
            for r in &mut rt.replicas {
                match r.state {
                    ReplicaState::Running => {
                        r.probe_failures = 0;
                        r.in_lb = true;
                    }
                    ReplicaState::Hung => {
                        r.probe_failures += 1;
                        if r.probe_failures >= threshold {
                            r.in_lb = false;
                        }
                    }
                    ReplicaState::Down | ReplicaState::Starting => {
                        r.probe_failures += 1;
                        r.in_lb = false;
                    }
                }
            }
        }
        let period = (self.cfg.probes.period_s * 1e6) as u64;
        self.schedule_in(period.max(1), Event::Probe);
    }

    fn on_second(&mut self) {
        self.metrics.flush_second();
        for rt in &mut self.services {
            for r in &mut rt.replicas {
                if let Some((per_s, max, cause)) = r.leak {
                    r.slowdown = (r.slowdown + per_s).min(max);
                    r.slowdown_cause = Some(cause);
                }
            }
        }
        self.schedule_in(1_000_000, Event::Second);
    }

    // ---------------------------------------------------------------------------------------
    // Control: how faults and actions take effect.
    // ---------------------------------------------------------------------------------------

    fn service_index(&self, name: &str) -> Result<u16, SimError> {
        self.spec
            .service_index(name)
            .map(|i| i as u16)
            .ok_or_else(|| SimError::BadControl(format!("unknown service `{name}`")))
    }

    fn check_replicas(&self, s: u16, replicas: &[u32]) -> Result<(), SimError> {
        let n = self.services[s as usize].replicas.len() as u32;
        match replicas.iter().find(|&&r| r >= n) {
            Some(r) => Err(SimError::BadControl(format!(
                "`{}` has no replica {r} ({n} replicas)",
                self.spec.services[s as usize].name
            ))),
            None => Ok(()),
        }
    }

    /// Number of replicas of `service`.
    pub fn replica_count(&self, service: &str) -> Result<u32, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].replicas.len() as u32)
    }

    /// Stops `replica`'s process: in-flight requests fail (connection reset) with `cause`,
    /// queued work is lost.
    fn stop_process(&mut self, s: u16, replica: u32, cause: Cause, answer_in_flight: bool) {
        let execs = std::mem::take(&mut self.services[s as usize].replicas[replica as usize].execs);
        for key in execs {
            if let Some(exec) = self.execs.remove(key)
                && answer_in_flight
            {
                {
                    self.metrics.record_service(
                        s as usize,
                        Completion {
                            latency_us: self.now.since(exec.admitted).as_micros() as u64,
                            error: Some(cause),
                            touched_fault: cause.is_fault(),
                        },
                    );
                    let outcome = error(ErrorKind::Unavailable, cause);
                    self.respond(exec.call, exec.attempt, s, replica, exec.caller, outcome);
                }
            }
        }
        let r = &mut self.services[s as usize].replicas[replica as usize];
        r.generation = r.generation.wrapping_add(1);
        r.inflight = 0;
        r.busy = 0;
        r.cpu_queue.clear();
    }

    /// Restarts replicas: the process stops (in-flight requests fail with `cause` unless the
    /// replica was drained and idle), in-memory state is lost, and the replica serves again
    /// after the service's start-up time with a cold cache. A CPU hog or leak in the old process
    /// is gone; network faults and the configuration are not (they live outside the process).
    ///
    /// Restarting a replica an injected fault has hung, killed or slowed is a remedy: what fails
    /// while it restarts would have failed under the fault anyway, so those failures keep the
    /// fault's tag (the harm oracle does not charge the remedy with the fault's cost).
    pub fn restart(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        let startup = (self.spec.services[s as usize].startup_s * 1e6) as u64;
        for &r in replicas {
            let rep = &self.services[s as usize].replicas[r as usize];
            let stuck = matches!(rep.state, ReplicaState::Hung | ReplicaState::Down);
            let fault = [rep.cause.filter(|_| stuck), rep.slowdown_cause]
                .into_iter()
                .flatten()
                .find(|c| c.is_fault());
            let cause = fault.unwrap_or(cause);
            self.stop_process(s, r, cause, true);
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.state = ReplicaState::Starting;
            rep.cause = Some(cause);
            rep.in_lb = false;
            rep.restarts += 1;
            rep.slowdown = 1.0;
            if rep.leak.is_none() {
                rep.slowdown_cause = None;
            }
            let generation = rep.generation;
            self.schedule_in(
                startup,
                Event::Up {
                    service: s,
                    replica: r,
                    generation,
                },
            );
        }
        Ok(())
    }

    /// Kills replicas (they stay down and refuse connections) — a crash fault's "kill" mode.
    pub fn kill(&mut self, service: &str, replicas: &[u32], cause: Cause) -> Result<(), SimError> {
        self.stop(service, replicas, cause, ReplicaState::Down)
    }

    /// Hangs replicas: they keep accepting connections and never answer (callers time out)
    /// until probes take them out of load balancing — a crash fault's "hang" mode.
    pub fn hang(&mut self, service: &str, replicas: &[u32], cause: Cause) -> Result<(), SimError> {
        self.stop(service, replicas, cause, ReplicaState::Hung)
    }

    /// Stops replicas' processes, leaving them `state` (down: refusing and out of load
    /// balancing at once; hung: until probes notice).
    fn stop(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
        state: ReplicaState,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        let down = state == ReplicaState::Down;
        for &r in replicas {
            self.stop_process(s, r, cause, down);
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.state = state;
            rep.cause = Some(cause);
            if down {
                rep.in_lb = false;
            }
        }
        Ok(())
    }

    /// Brings back replicas a crash left down or hung (the orchestrator replacing the pod when
    /// the fault ends): they restart, still tagged with the fault.
    pub fn recover(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let stuck: Vec<u32> = replicas
            .iter()
            .copied()
            .filter(|&r| {
                self.services[s as usize]
                    .replicas
                    .get(r as usize)
                    .is_some_and(|rep| matches!(rep.state, ReplicaState::Down | ReplicaState::Hung))
            })
            .collect();
        self.restart(service, &stuck, cause)
    }

    /// Sets which replicas are drained (out of load balancing; in-flight requests finish).
    pub fn set_drained(
        &mut self,
        service: &str,
        drained: &BTreeSet<u32>,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let list: Vec<u32> = drained.iter().copied().collect();
        self.check_replicas(s, &list)?;
        for (i, r) in self.services[s as usize].replicas.iter_mut().enumerate() {
            let d = drained.contains(&(i as u32));
            if d && !r.drained {
                r.drain_cause = Some(cause);
            }
            r.drained = d;
        }
        Ok(())
    }

    /// Opens or closes the breaker `caller → callee`.
    pub fn set_breaker(
        &mut self,
        caller: &str,
        callee: &str,
        open: bool,
        cause: Cause,
    ) -> Result<(), SimError> {
        let (a, b) = (self.service_index(caller)?, self.service_index(callee)?);
        let breakers = &mut self.services[a as usize].breakers;
        if open {
            breakers.insert(b, cause);
        } else {
            breakers.remove(&b);
        }
        Ok(())
    }

    /// Sets or clears `service`'s ingress rate limit (requests per second, token bucket with a
    /// one-second burst).
    pub fn set_rate_limit(
        &mut self,
        service: &str,
        rps: Option<f64>,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let now = self.now;
        self.services[s as usize].limiter = match rps {
            Some(rps) if rps.is_finite() && rps >= 0.0 => Some(Limiter {
                rps,
                tokens: rps.max(1.0),
                last: now,
                cause,
            }),
            Some(bad) => return Err(SimError::BadControl(format!("rate {bad} is not a rate"))),
            None => None,
        };
        Ok(())
    }

    /// Changes the replica count: new replicas start (and warm) from scratch; removed ones are
    /// the highest ordinals, and their in-flight requests fail with `cause`. Zero is allowed here
    /// (raw commands can do it); the kernel's ISA cannot express it.
    pub fn set_replicas(&mut self, service: &str, n: u32, cause: Cause) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let current = self.services[s as usize].replicas.len() as u32;
        let startup = (self.spec.services[s as usize].startup_s * 1e6) as u64;
        if n < current {
            for r in n..current {
                self.stop_process(s, r, cause, true);
            }
            self.services[s as usize].replicas.truncate(n as usize);
        }
        let now = self.now;
        for r in current..n {
            let mut rep = Replica::new(ReplicaState::Starting, Some(cause), now);
            rep.in_lb = false;
            self.services[s as usize].replicas.push(rep);
            self.schedule_in(
                startup,
                Event::Up {
                    service: s,
                    replica: r,
                    generation: 0,
                },
            );
        }
        let rt = &mut self.services[s as usize];
        rt.rr = 0;
        rt.scale_cause = (n < self.spec.services[s as usize].replicas).then_some(cause);
        Ok(())
    }

    /// Runs configuration `version`. A version the service has never had is unknown to it and
    /// makes every request fail (an arbitrary config pushed by hand).
    pub fn set_config(
        &mut self,
        service: &str,
        version: &str,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let rt = &mut self.services[s as usize];
        match rt.configs.iter().position(|c| c.name == version) {
            Some(i) => rt.current_config = i,
            None => {
                rt.configs.push(ConfigVersion {
                    name: version.into(),
                    fail_fraction: 1.0,
                    cause: Some(cause),
                });
                rt.current_config = rt.configs.len() - 1;
            }
        }
        Ok(())
    }

    /// Pushes a new, bad configuration version that fails `fail_fraction` of requests — a
    /// misconfiguration fault. Returns the version's name.
    pub fn push_bad_config(
        &mut self,
        service: &str,
        fail_fraction: f64,
        cause: Cause,
    ) -> Result<String, SimError> {
        let s = self.service_index(service)?;
        let rt = &mut self.services[s as usize];
        let name = format!("v{}-bad", rt.configs.len() + 1);
        rt.configs.push(ConfigVersion {
            name: name.clone(),
            fail_fraction: fail_fraction.clamp(0.0, 1.0),
            cause: Some(cause),
        });
        rt.current_config = rt.configs.len() - 1;
        Ok(name)
    }

    /// Sets a CPU slowdown on replicas (service times × `factor`); 1.0 clears it. With
    /// `leak_per_s`, the slowdown grows by that much every second up to `factor` (a memory leak's
    /// garbage-collection pressure).
    pub fn set_slowdown(
        &mut self,
        service: &str,
        replicas: &[u32],
        factor: f64,
        leak_per_s: Option<f64>,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let rep = &mut self.services[s as usize].replicas[r as usize];
            if factor <= 1.0 {
                rep.slowdown = 1.0;
                rep.slowdown_cause = None;
                rep.leak = None;
            } else if let Some(per_s) = leak_per_s {
                rep.leak = Some((per_s, factor, cause));
                rep.slowdown_cause = Some(cause);
            } else {
                rep.slowdown = factor;
                rep.slowdown_cause = Some(cause);
            }
        }
        Ok(())
    }

    /// Adds `delay_us` to every message to or from replicas (NetworkChaos delay); 0 clears it.
    pub fn set_net_delay(
        &mut self,
        service: &str,
        replicas: &[u32],
        delay_us: u64,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.net_delay_us = delay_us;
            rep.net_delay_cause = (delay_us > 0).then_some(cause);
        }
        Ok(())
    }

    /// Partitions replicas of `service` from `dependency` (messages both ways are lost), or
    /// repairs the partition.
    pub fn set_partition(
        &mut self,
        service: &str,
        replicas: &[u32],
        dependency: &str,
        partitioned: bool,
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        let d = self.service_index(dependency)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let blocked = &mut self.services[s as usize].replicas[r as usize].blocked;
            blocked.retain(|(to, _)| *to != d);
            if partitioned {
                blocked.push((d, cause));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // Observation.
    // ---------------------------------------------------------------------------------------

    /// What probes and operators see of `service`'s replicas.
    pub fn replicas(&self, service: &str) -> Result<Vec<ReplicaStatus>, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize]
            .replicas
            .iter()
            .map(|r| ReplicaStatus {
                state: r.state,
                serving: r.serving(),
                drained: r.drained,
                inflight: r.inflight,
                live: r.state == ReplicaState::Running,
                probe_failures: r.probe_failures,
                restarts: r.restarts,
            })
            .collect())
    }

    /// The control-plane state of `service` as the kernel models it.
    pub fn service_control(&self, service: &str) -> Result<kernel::ServiceControl, SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        let mut c = kernel::ServiceControl::new(
            rt.replicas.len() as u32,
            rt.configs[rt.current_config].name.clone(),
        );
        c.drained = rt
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.drained)
            .map(|(i, _)| i as u32)
            .collect();
        c.rate_limit = rt.limiter.as_ref().map(|l| l.rps);
        c.open_breakers = rt
            .breakers
            .keys()
            .map(|&b| self.spec.services[b as usize].name.clone())
            .collect();
        c.restarts = rt
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.restarts > 0)
            .map(|(i, r)| (i as u32, r.restarts))
            .collect();
        Ok(c)
    }

    /// The configuration versions `service` knows, oldest first, and the running one.
    pub fn config_versions(&self, service: &str) -> Result<(Vec<String>, String), SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        Ok((
            rt.configs.iter().map(|c| c.name.clone()).collect(),
            rt.configs[rt.current_config].name.clone(),
        ))
    }

    /// Whether `service`'s running configuration is one that fails requests.
    pub fn config_is_bad(&self, service: &str) -> Result<bool, SimError> {
        let s = self.service_index(service)?;
        let rt = &self.services[s as usize];
        Ok(rt.configs[rt.current_config].fail_fraction > 0.0)
    }

    /// Whether a rate limit is in force on `service`, and at what rate.
    pub fn rate_limit(&self, service: &str) -> Result<Option<f64>, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].limiter.as_ref().map(|l| l.rps))
    }

    /// The kernel's dependency graph of the application as it runs now: the spec's graph with
    /// the current replica counts and config histories.
    pub fn dependency_graph(&self) -> kernel::DependencyGraph {
        let mut g = self.spec.dependency_graph(self.cfg.rate_rps);
        for (i, rt) in self.services.iter().enumerate() {
            let id = g
                .id(&self.spec.services[i].name)
                .expect("built from the spec");
            let svc = g.service_mut(id);
            svc.replicas = rt.replicas.len().max(1) as u32;
            svc.max_replicas = svc.max_replicas.max(svc.replicas);
            svc.min_replicas = svc.min_replicas.min(svc.replicas);
            let mut versions: Vec<String> = rt.configs.iter().map(|c| c.name.clone()).collect();
            // The running version is the last of the history (`current_config` in the kernel).
            let running = versions.remove(rt.current_config);
            versions.push(running);
            svc.config_versions = versions;
        }
        g
    }

    /// Calls sent to `service` so far.
    pub fn call_counters(&self, service: &str) -> Result<CallCounters, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].counters)
    }

    /// Kind of `service`.
    pub fn service_kind(&self, service: &str) -> Result<ServiceKind, SimError> {
        let s = self.service_index(service)?;
        Ok(self.spec.services[s as usize].kind)
    }
}

fn error(kind: ErrorKind, cause: Cause) -> Outcome {
    Outcome {
        error: Some((kind, cause)),
        miss: false,
        flags: Flags::of(cause),
    }
}

/// The strongest of some causes: any fault beats any action, which beats overload.
fn strongest(causes: impl IntoIterator<Item = Cause>) -> Cause {
    let mut best = Cause::Overload;
    for c in causes {
        best = match (best, c) {
            (Cause::Fault(_), _) => best,
            (_, Cause::Fault(_)) => c,
            (Cause::Action(_), _) => best,
            (_, c) => c,
        };
    }
    best
}

fn key_to_msg(key: Key) -> u64 {
    let (idx, generation) = key_parts(key);
    (u64::from(generation) << 32) | u64::from(idx)
}

fn msg_to_key(id: u64) -> Key {
    key_from_parts(id as u32, (id >> 32) as u32)
}

fn key_parts(key: Key) -> (u32, u32) {
    crate::slab::parts(key)
}

fn key_from_parts(idx: u32, generation: u32) -> Key {
    crate::slab::from_parts(idx, generation)
}
