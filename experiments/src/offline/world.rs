//! The offline world: an industrial graph's control plane, the incident's fault and the effect
//! model, behind the same interfaces the simulator offers online — the kernel's [`Actuator`]
//! (typed plans execute as kernel transactions), raw commands (the unconstrained baseline's
//! separate, unchecked path), the orchestrator's [`ClusterView`] and the monitoring side's
//! health snapshot.
//!
//! What monitoring reports is derived from the ground truth through the same alerting rule as
//! online: while the fault is neither cured nor contained, the root cause violates its SLO (its
//! faulty replicas failing probes after a crash, a config change for a misconfig) and its errors
//! reach every transitive caller, which violate theirs too. After a crash or a partition, the
//! share of the root cause's requests that fail is the share of its replicas the fault holds (an
//! assumption: a load balancer spreading requests evenly, no retries); slow replicas (latency,
//! CPU starvation) and a bad configuration show as a violated SLO without an error rate (an
//! assumption: the worst case the model can tell from a disruption, which fails everything). A service the effect model disrupts fails
//! every request, and so does every transitive caller (the worst case the harm rule charges).
//! Nothing else is visible: no cause tags.

use super::OfflineConfig;
use super::effects::{Degradation, Effects};
use agents::{ClusterView, GroundTruth};
use faults::FaultType;
use kernel::{
    Actuator, Check, ControlOp, ControlState, DependencyGraph, Health, ServiceControl,
    ServiceHealth, VirtualTime,
};
use sim::actuator::RawCommand;
use sim::{ReplicaState, ReplicaStatus};
use std::collections::{BTreeMap, BTreeSet};

/// What a health snapshot is computed from: whether the fault shows, the disrupted services,
/// the number of open breakers.
type HealthKey = (bool, Vec<String>, usize);

/// One incident's world under one policy.
pub(super) struct World<'a> {
    graph: &'a DependencyGraph,
    truth: &'a GroundTruth,
    /// Now (the runner's clock).
    pub now: VirtualTime,
    /// Control state of the services touched so far (the others are as the graph says).
    state: ControlState,
    /// When each restarted or scaled service is up again.
    up_at: BTreeMap<String, VirtualTime>,
    /// The root cause's replicas the fault still holds (a restart frees a crash or resource
    /// fault's replicas; latency, partition and misconfig stay until contained or rolled back).
    faulty: BTreeSet<u32>,
    /// A misconfig rolled back to a version the service had.
    rolled_back: bool,
    pub effects: Effects<'a>,
    /// The last health snapshot, with what it was computed from.
    health: Option<(HealthKey, Health)>,
}

impl<'a> World<'a> {
    pub fn new(graph: &'a DependencyGraph, cfg: &'a OfflineConfig, truth: &'a GroundTruth) -> Self {
        World {
            graph,
            truth,
            now: VirtualTime::ZERO,
            state: ControlState::default(),
            up_at: BTreeMap::new(),
            faulty: truth.replicas.iter().copied().collect(),
            rolled_back: false,
            effects: Effects::new(graph, cfg, truth),
            health: None,
        }
    }

    fn secs(&self) -> f64 {
        self.now.as_secs_f64()
    }

    /// The control state of `service`, materialised from the graph on first touch.
    fn control(&mut self, service: &str) -> Option<&mut ServiceControl> {
        if !self.state.services.contains_key(service) {
            let s = self.graph.service_by_name(service)?;
            let control = ServiceControl::new(s.replicas, s.current_config().unwrap_or("v1"));
            self.state.services.insert(service.to_string(), control);
        }
        self.state.services.get_mut(service)
    }

    /// Whether the fault still shows: not cured (restart, rollback) and not contained (its
    /// faulty replicas drained while another serves).
    pub fn failing(&self) -> bool {
        let root = self.truth.root_cause.as_str();
        match self.truth.fault {
            FaultType::Crash | FaultType::Resource => !self.faulty.is_empty(),
            FaultType::Misconfig => !self.rolled_back,
            FaultType::Latency | FaultType::Partition => {
                let Some(c) = self.observe(root) else {
                    return false;
                };
                let contained = self.faulty.iter().all(|r| c.drained.contains(r))
                    && (0..c.replicas).any(|r| !c.drained.contains(&r));
                !contained
            }
        }
    }

    /// What monitoring reports now (see the module documentation).
    pub fn health(&mut self) -> Health {
        let failing = self.failing();
        let at = self.secs();
        let disrupted: Vec<String> = self
            .effects
            .disrupted_at(at)
            .into_iter()
            .map(str::to_string)
            .collect();
        // The snapshot changes only with these: the fault, the disruptions, the open breakers.
        let breakers = self
            .state
            .services
            .values()
            .map(|c| c.open_breakers.len())
            .sum::<usize>();
        let key = (failing, disrupted, breakers);
        if let Some((k, h)) = &self.health
            && *k == key
        {
            return h.clone();
        }
        let mut health = Health::new();
        if failing && let Some(root) = self.graph.id(&self.truth.root_cause) {
            // Crashed or cut-off replicas fail their share of the requests; slow ones (latency,
            // CPU starvation) and a bad config's errors show as a violated SLO only.
            let replicas = self.graph.service(root).replicas.max(1);
            let share = match self.truth.fault {
                FaultType::Crash | FaultType::Partition => {
                    (self.faulty.len() as f64 / f64::from(replicas)).min(1.0)
                }
                FaultType::Latency | FaultType::Resource | FaultType::Misconfig => 0.0,
            };
            let root_health = ServiceHealth {
                alerting: true,
                slo_violated: true,
                failing_replicas: if self.truth.fault == FaultType::Crash {
                    self.faulty.len() as u32
                } else {
                    0
                },
                error_rate: share,
                config_changed: self.truth.fault == FaultType::Misconfig,
                ..ServiceHealth::default()
            };
            health.set(self.truth.root_cause.clone(), root_health);
            for caller in self.upstream(&self.truth.root_cause) {
                health.set(
                    caller,
                    ServiceHealth {
                        slo_violated: true,
                        error_rate: share,
                        ..ServiceHealth::default()
                    },
                );
            }
        }
        // Monitoring covers every service; the snapshot lists the ones anything here asks about
        // (the fault's neighbourhood, the callees of open breakers), healthy unless shown
        // otherwise, rather than thousands of healthy ones.
        let mut covered = self.upstream(&self.truth.root_cause);
        covered.push(self.truth.root_cause.clone());
        for control in self.state.services.values() {
            covered.extend(control.open_breakers.iter().cloned());
        }
        for s in covered {
            if health.get(&s).is_none() {
                health.set(s, ServiceHealth::default());
            }
        }
        for service in &key.1 {
            let mut hit = self.upstream(service);
            hit.push(service.clone());
            for s in hit {
                let mut h = health.get(&s).cloned().unwrap_or_default();
                h.slo_violated = true;
                h.error_rate = 1.0;
                health.set(s, h);
            }
        }
        self.health = Some((key, health.clone()));
        health
    }

    /// Every transitive caller of `service` (not itself), breadth first.
    fn upstream(&self, service: &str) -> Vec<String> {
        let Some(start) = self.graph.id(service) else {
            return Vec::new();
        };
        self.graph.upstream(start)[1..]
            .iter()
            .map(|&id| self.graph.service(id).name.clone())
            .collect()
    }

    /// Executes a raw command (unchecked, as typed by an operator).
    pub fn raw(&mut self, command: &RawCommand) {
        let what = command.to_string();
        let ops: Vec<ControlOp> = match command {
            // No replica left: beyond what the control plane models (it refuses zero replicas),
            // and nothing brings the service back.
            RawCommand::DeleteDeployment { service }
            | RawCommand::Scale {
                service,
                replicas: 0,
            } => {
                if self.graph.id(service).is_some() {
                    let at = self.secs();
                    self.effects
                        .degrade(Degradation::Gone(service.clone()), true, at, &what);
                }
                Vec::new()
            }
            RawCommand::Scale { service, replicas } => vec![ControlOp::SetReplicas {
                service: service.clone(),
                replicas: *replicas,
            }],
            RawCommand::RestartAll => {
                let names: Vec<String> =
                    self.graph.services().map(|(_, s)| s.name.clone()).collect();
                names
                    .into_iter()
                    .filter_map(|service| self.restart_all(&service))
                    .collect()
            }
            RawCommand::Restart { service } => self.restart_all(service).into_iter().collect(),
            RawCommand::RestartReplicas { service, replicas } => vec![ControlOp::Restart {
                service: service.clone(),
                replicas: replicas.clone(),
            }],
            RawCommand::SetConfig { service, version } => vec![ControlOp::SetConfig {
                service: service.clone(),
                version: version.clone(),
            }],
            RawCommand::Drain { service, replicas } => {
                let mut drained = self.observe(service).map(|c| c.drained).unwrap_or_default();
                drained.extend(replicas);
                vec![ControlOp::SetDrained {
                    service: service.clone(),
                    drained,
                }]
            }
            RawCommand::Undrain { service } => vec![ControlOp::SetDrained {
                service: service.clone(),
                drained: BTreeSet::new(),
            }],
            RawCommand::RateLimit { service, rps } => vec![ControlOp::SetRateLimit {
                service: service.clone(),
                rps: Some(*rps),
            }],
            RawCommand::CircuitBreak { caller, callee } => vec![ControlOp::SetBreaker {
                caller: caller.clone(),
                callee: callee.clone(),
                open: true,
            }],
            RawCommand::CloseBreaker { caller, callee } => vec![ControlOp::SetBreaker {
                caller: caller.clone(),
                callee: callee.clone(),
                open: false,
            }],
            RawCommand::LiftRateLimit { service } => vec![ControlOp::SetRateLimit {
                service: service.clone(),
                rps: None,
            }],
            // The offline model has no CPU: a limit changes nothing it propagates.
            RawCommand::PatchLimits { .. } => Vec::new(),
            // A pod-template change: a rollout of every replica.
            RawCommand::SetEnv { service, .. } => self.restart_all(service).into_iter().collect(),
        };
        for op in ops {
            // The orchestrator refuses what does not exist; nothing happens then.
            let _ = self.apply_as(&op, &what);
        }
    }

    fn restart_all(&self, service: &str) -> Option<ControlOp> {
        let n = self.graph.service_by_name(service)?.replicas;
        Some(ControlOp::Restart {
            service: service.to_string(),
            replicas: (0..n).collect(),
        })
    }

    /// Applies `op`, charging its effects to `what`.
    fn apply_as(&mut self, op: &ControlOp, what: &str) -> Result<(), String> {
        let service = op.service().to_string();
        let before = self
            .control(&service)
            .ok_or_else(|| format!("service `{service}` does not exist"))?
            .clone();
        self.state.apply(op).map_err(|e| e.to_string())?;
        let at = self.secs();
        let is_root = service == self.truth.root_cause;
        match op {
            ControlOp::Restart { replicas, .. } => {
                self.effects.restart(
                    &service,
                    replicas,
                    before.replicas,
                    &before.drained,
                    at,
                    what,
                );
                if let Some(id) = self.graph.id(&service) {
                    let up = self.now.saturating_add(std::time::Duration::from_secs_f64(
                        self.effects.startup(id),
                    ));
                    self.up_at.insert(service.clone(), up);
                }
                if is_root && self.truth.fault.cured_by_restart() {
                    self.faulty.retain(|r| !replicas.contains(r));
                    if self.truth.fault == FaultType::Crash {
                        self.effects.root_up(at);
                    }
                }
            }
            ControlOp::SetDrained { drained, .. } => {
                let unserved = before.replicas > 0 && drained.len() as u32 >= before.replicas;
                self.effects
                    .degrade(Degradation::Unserved(service), unserved, at, what);
            }
            ControlOp::SetBreaker {
                caller,
                callee,
                open,
            } => {
                let edge = match (self.graph.id(caller), self.graph.id(callee)) {
                    (Some(a), Some(b)) => self.graph.edge(a, b).is_some(),
                    _ => false,
                };
                if edge {
                    let d = Degradation::Broken {
                        caller: caller.clone(),
                        callee: callee.clone(),
                    };
                    self.effects.degrade(d, *open, at, what);
                }
            }
            ControlOp::SetRateLimit { rps, .. } => {
                let base = self
                    .graph
                    .id(&service)
                    .and_then(|id| self.graph.baseline_rps(id));
                let shedding = matches!((rps, base), (Some(r), Some(b)) if *r < b);
                self.effects
                    .degrade(Degradation::Shedding(service), shedding, at, what);
            }
            ControlOp::SetReplicas { replicas, .. } => {
                if *replicas > before.replicas
                    && let Some(id) = self.graph.id(&service)
                {
                    let up = self.now.saturating_add(std::time::Duration::from_secs_f64(
                        self.effects.startup(id),
                    ));
                    self.up_at.insert(service.clone(), up);
                }
            }
            ControlOp::SetConfig { version, .. } => {
                let known = self
                    .graph
                    .service_by_name(&service)
                    .is_some_and(|s| s.config_versions.iter().any(|v| v == version));
                if is_root && known && *version != before.config {
                    self.rolled_back = true;
                }
                self.effects
                    .degrade(Degradation::BadConfig(service), !known, at, what);
            }
        }
        Ok(())
    }
}

impl Actuator for World<'_> {
    fn observe(&self, service: &str) -> Option<ServiceControl> {
        self.state.get(service).cloned().or_else(|| {
            let s = self.graph.service_by_name(service)?;
            Some(ServiceControl::new(
                s.replicas,
                s.current_config().unwrap_or("v1"),
            ))
        })
    }

    fn apply(&mut self, op: &ControlOp) -> Result<(), String> {
        self.apply_as(op, &op.to_string())
    }

    fn check(&self, op: &ControlOp, _before: &ServiceControl) -> Check {
        match op {
            ControlOp::Restart { service, .. } | ControlOp::SetReplicas { service, .. }
                if self.up_at.get(service).is_some_and(|&up| self.now < up) =>
            {
                Check::Pending
            }
            _ => Check::Holds,
        }
    }
}

impl ClusterView for World<'_> {
    /// The services whose replicas are not all running — what `kubectl get pods` lists as not
    /// ready. On a graph of thousands of healthy services, listing every one would only make
    /// the kubelet policy iterate over them.
    fn service_names(&self) -> Vec<String> {
        let crashed = self.truth.fault == FaultType::Crash && !self.faulty.is_empty();
        let mut names: BTreeSet<String> = self
            .up_at
            .iter()
            .filter(|&(_, &up)| self.now < up)
            .map(|(s, _)| s.clone())
            .collect();
        if crashed {
            names.insert(self.truth.root_cause.clone());
        }
        names.into_iter().collect()
    }

    fn replicas(&self, service: &str) -> Vec<ReplicaStatus> {
        let Some(c) = self.observe(service) else {
            return Vec::new();
        };
        let starting = self.up_at.get(service).is_some_and(|&up| self.now < up);
        let crashed = self.truth.fault == FaultType::Crash && service == self.truth.root_cause;
        (0..c.replicas)
            .map(|r| {
                let down = crashed && self.faulty.contains(&r);
                let state = if down {
                    ReplicaState::Down
                } else if starting {
                    ReplicaState::Starting
                } else {
                    ReplicaState::Running
                };
                let running = state == ReplicaState::Running;
                ReplicaStatus {
                    state,
                    serving: running && !c.drained.contains(&r),
                    drained: c.drained.contains(&r),
                    inflight: 0,
                    live: running,
                    // A crashed replica has failed every probe since the fault began.
                    probe_failures: if down { u32::MAX } else { 0 },
                    restarts: c.restarts.get(&r).copied().unwrap_or(0),
                }
            })
            .collect()
    }
}
