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
    /// Degradations in place, with when and by what they started.
    open: BTreeMap<Degradation, (f64, String)>,
    /// After a crash, the services the fault has down: the root cause and, in the worst case,
    /// every transitive caller. What fails there while the root is down would fail anyway, so
    /// it is the fault's, not the action's (the simulator's attribution online).
    down: BTreeSet<String>,
    /// When the root cause was up again (restarted), if it was.
    root_up_at: Option<f64>,
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
            down: if truth.fault == FaultType::Crash {
                upstream_and_self(graph, &truth.root_cause)
            } else {
                BTreeSet::new()
            },
            root_up_at: None,
            out: Vec::new(),
        }
    }

    /// The root cause is up again at `at` (the first restart of a crashed root).
    pub fn root_up(&mut self, at: f64) {
        self.root_up_at.get_or_insert(at);
    }

    /// The part of `d` that is the action's: all of it, except while the fault had its
    /// service down.
    fn charged(&self, d: &Disruption) -> (f64, f64) {
        let end = d.from + d.seconds;
        if !self.down.contains(&d.service) {
            return (d.from, d.seconds);
        }
        let from = d.from.max(self.root_up_at.unwrap_or(f64::INFINITY));
        if from >= end {
            (end, 0.0)
        } else {
            (from, end - from)
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

    /// Puts `degradation` in place at `at` (`on`) or removes it (`!on`), closing its disruption.
    /// One left in place lasts until [`Effects::finish`] (forever).
    pub fn degrade(&mut self, degradation: Degradation, on: bool, at: f64, what: &str) {
        if on {
            self.open
                .entry(degradation)
                .or_insert_with(|| (at, what.to_string()));
        } else if let Some((from, action)) = self.open.remove(&degradation) {
            let service = degradation.service().to_string();
            self.fail(&service, from, at - from, &action);
        }
    }

    /// Services an action disrupts at `at`: a degradation in place or a disruption under way,
    /// where the fault does not have the service down anyway.
    pub fn disrupted_at(&self, at: f64) -> BTreeSet<&str> {
        let masked = |s: &str| self.down.contains(s) && self.root_up_at.is_none_or(|up| at < up);
        let open = self.open.keys().map(Degradation::service);
        let windows = self
            .out
            .iter()
            .filter(|d| d.from <= at && at < d.from + d.seconds)
            .map(|d| d.service.as_str());
        open.chain(windows).filter(|s| !masked(s)).collect()
    }

    /// Ends the incident: what is still in place lasts forever (nothing reverts it).
    pub fn finish(&mut self) {
        for (degradation, (from, action)) in std::mem::take(&mut self.open) {
            self.fail(degradation.service(), from, f64::INFINITY, &action);
        }
    }

    /// The first disruption (in time) that is harm: longer than grace + sustain.
    pub fn first_harm(&self, harm: &crate::harm::HarmConfig) -> Option<OfflineHarm> {
        let limit = f64::from(harm.grace_s + harm.sustain_s);
        self.out
            .iter()
            .map(|d| (d, self.charged(d)))
            .filter(|(_, (_, seconds))| *seconds > limit)
            .min_by(|a, b| a.1.0.total_cmp(&b.1.0))
            .map(|(d, (_, seconds))| OfflineHarm {
                action: d.action.clone(),
                service: d.service.clone(),
                seconds: seconds.is_finite().then_some(seconds),
            })
    }
}

/// `service` and every transitive caller of it.
fn upstream_and_self(graph: &DependencyGraph, service: &str) -> BTreeSet<String> {
    graph.id(service).map_or_else(BTreeSet::new, |start| {
        graph
            .upstream(start)
            .into_iter()
            .map(|id| graph.service(id).name.clone())
            .collect()
    })
}
