//! The offline effect model: what each control operation, applied at a point in virtual time,
//! does to the services of an industrial graph, in the worst case (the table in the
//! [module documentation](super)). Operations arrive from the kernel's transactions or from raw
//! commands through [`super::world::World`]; this file only keeps the disruptions they cause.

use super::{OfflineConfig, OfflineHarm};
use agents::GroundTruth;
use faults::FaultType;
use kernel::{DependencyGraph, ServiceId, ServiceKind};
use std::collections::{BTreeMap, BTreeSet};

/// A disruption: every request of every caller path through `service` fails (or, for a cold
/// cache or database, is slowed) from `from` for `seconds` (infinite: forever).
#[derive(Clone, Debug)]
pub(super) struct Disruption {
    pub service: String,
    pub from: f64,
    pub seconds: f64,
    pub action: String,
}

/// A degradation a control operation leaves in place until a later operation removes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Degradation {
    /// Every replica drained: nothing serves.
    Unserved(String),
    /// A breaker on an existing edge: the caller's requests over it fail.
    Broken { caller: String, callee: String },
    /// A rate limit below the baseline sheds load.
    Shedding(String),
    /// No replica left (scaled to zero, deleted).
    Gone(String),
    /// A configuration version the service never had.
    BadConfig(String),
}

impl Degradation {
    /// The service that fails (a breaker's caller).
    fn service(&self) -> &str {
        match self {
            Degradation::Unserved(s)
            | Degradation::Shedding(s)
            | Degradation::Gone(s)
            | Degradation::BadConfig(s) => s,
            Degradation::Broken { caller, .. } => caller,
        }
    }
}

/// The disruptions of one incident under one policy.
pub(super) struct Effects<'a> {
    graph: &'a DependencyGraph,
    cfg: &'a OfflineConfig,
    truth: &'a GroundTruth,
    /// When each restarted service is up again, seconds.
    up_at: BTreeMap<String, f64>,
    /// When each service was last restarted in a way that took it down.
    restarted_at: BTreeMap<String, f64>,
    /// Degradations in place, with when they started to cost (`None`: not yet, see
    /// [`Effects::root_down`]) and by what.
    open: BTreeMap<Degradation, (Option<f64>, String)>,
    /// The fault has taken every replica of the root cause down: what a degradation turns away
    /// on its way to the root would fail anyway, so it is the fault's, not the action's (the
    /// simulator's rule online).
    root_down: bool,
    pub out: Vec<Disruption>,
}

impl<'a> Effects<'a> {
    pub fn new(graph: &'a DependencyGraph, cfg: &'a OfflineConfig, truth: &'a GroundTruth) -> Self {
        Effects {
            graph,
            cfg,
            truth,
            up_at: BTreeMap::new(),
            restarted_at: BTreeMap::new(),
            open: BTreeMap::new(),
            root_down: truth.fault == FaultType::Crash,
            out: Vec::new(),
        }
    }

    /// Whether `degradation` only turns away requests to a root cause the fault has down.
    fn masked(&self, degradation: &Degradation) -> bool {
        let root = self.truth.root_cause.as_str();
        self.root_down
            && match degradation {
                Degradation::Broken { callee, .. } => callee == root,
                Degradation::Unserved(s) | Degradation::Shedding(s) => s == root,
                Degradation::Gone(_) | Degradation::BadConfig(_) => false,
            }
    }

    /// The root cause is up again at `at`: degradations it masked start to cost now.
    pub fn root_up(&mut self, at: f64) {
        self.root_down = false;
        for (from, _) in self.open.values_mut() {
            from.get_or_insert(at);
        }
    }

    /// Start-up time of a service, by kind.
    pub fn startup(&self, id: ServiceId) -> f64 {
        self.cfg.startup_s[deathstarbench::kind_index(self.graph.service(id).kind)]
    }

    fn fail(&mut self, service: &str, from: f64, seconds: f64, action: &str) {
        if seconds > 0.0 {
            self.out.push(Disruption {
                service: service.into(),
                from,
                seconds,
                action: action.into(),
            });
        }
    }

    /// A restart at `at` of the replicas `hit` of `service` (which has `replicas`, of which
    /// `drained` are out of load balancing).
    pub fn restart(
        &mut self,
        service: &str,
        hit: &[u32],
        replicas: u32,
        drained: &BTreeSet<u32>,
        at: f64,
        what: &str,
    ) {
        let Some(id) = self.graph.id(service) else {
            return;
        };
        let startup = self.startup(id);
        let up = at + startup;
        // Restarted before (or with) a dependency it calls: it loses it, and restarts again.
        let mut fail_until = up;
        for (callee, _) in self.graph.callees(id) {
            if let Some(&dep_up) = self.up_at.get(&self.graph.service(callee).name)
                && dep_up >= at
            {
                fail_until = fail_until.max(dep_up + startup);
            }
        }
        self.up_at.insert(service.to_string(), up);
        let remedy = service == self.truth.root_cause
            && self.truth.fault.cured_by_restart()
            && hit.iter().all(|r| self.truth.replicas.contains(r));
        if remedy && fail_until == up {
            return;
        }
        let serving_elsewhere = (0..replicas).any(|r| !hit.contains(&r) && !drained.contains(&r));
        let all_drained = hit.iter().all(|r| drained.contains(r));
        if all_drained && serving_elsewhere {
            return;
        }
        // Callers restarted earlier (the wrong order) lose this dependency now: each fails until
        // it is up again and has restarted once more.
        let orphaned: Vec<(String, f64, f64)> = self
            .graph
            .callers(id)
            .filter_map(|(c, _)| {
                let name = &self.graph.service(c).name;
                let &t = self.restarted_at.get(name)?;
                (t < at).then(|| (name.clone(), t, up + self.startup(c) - t))
            })
            .collect();
        for (caller, from, seconds) in orphaned {
            self.fail(&caller, from, seconds, what);
        }
        self.restarted_at.insert(service.to_string(), at);
        let hub = self.graph.is_hub(id) && !all_drained;
        let storm = if hub { self.cfg.hub_storm_s } else { 0.0 };
        let cold = if matches!(
            self.graph.service(id).kind,
            ServiceKind::Cache | ServiceKind::Db
        ) {
            self.cfg.cold_s
        } else {
            0.0
        };
        self.fail(service, at, fail_until - at + storm + cold, what);
    }

    /// Puts `degradation` in place at `at` (`on`) or removes it; what an operation that
    /// removes it does not end, nothing else does.
    pub fn degrade(&mut self, degradation: Degradation, on: bool, at: f64, what: &str) {
        if on {
            let from = (!self.masked(&degradation)).then_some(at);
            self.open
                .entry(degradation)
                .or_insert_with(|| (from, what.to_string()));
        } else if let Some((Some(from), action)) = self.open.remove(&degradation) {
            let service = degradation.service().to_string();
            self.fail(&service, from, at - from, &action);
        }
    }

    /// Services disrupted at `at`: a degradation in place or a disruption under way.
    pub fn disrupted_at(&self, at: f64) -> BTreeSet<&str> {
        let open = self
            .open
            .iter()
            .filter(|(_, (from, _))| from.is_some())
            .map(|(d, _)| d.service());
        let windows = self
            .out
            .iter()
            .filter(|d| d.from <= at && at < d.from + d.seconds)
            .map(|d| d.service.as_str());
        open.chain(windows).collect()
    }

    /// Ends the incident: what is still in place lasts forever (nothing reverts it).
    pub fn finish(&mut self) {
        for (degradation, (from, action)) in std::mem::take(&mut self.open) {
            if let Some(from) = from {
                self.fail(degradation.service(), from, f64::INFINITY, &action);
            }
        }
    }

    /// The first disruption (in time) that is harm: longer than grace + sustain.
    pub fn first_harm(&self, harm: &crate::harm::HarmConfig) -> Option<OfflineHarm> {
        let limit = f64::from(harm.grace_s + harm.sustain_s);
        self.out
            .iter()
            .filter(|d| d.seconds > limit)
            .min_by(|a, b| a.from.total_cmp(&b.from))
            .map(|d| OfflineHarm {
                action: d.action.clone(),
                service: d.service.clone(),
                seconds: d.seconds.is_finite().then_some(d.seconds),
            })
    }
}
