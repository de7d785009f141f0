//! Concurrent recovery, like for like: `N` incidents on traffic-carrying services in disjoint
//! restart groups, all opened in the same tick, remedied by the oracle's plans through the
//! kernel — executed in parallel (disjoint plans concurrently, overlapping ones serialised by the
//! kernel's locks) or one plan at a time, on the same seeds and the same faults, so both modes
//! remedy the same set and only the execution differs.
//!
//! The experiment sweeps `N` over [`ParallelConfig::counts`] and the plan-length mix over
//! [`ParallelConfig::mixes`]: every target stateless (equal-length plans), or every other target a
//! database (a 30 s start against a stateless service's 5–8 s, so the longest plan bounds the
//! speed-up). The `overlapping` mix adds a bad configuration pushed to the first target, whose
//! rollback touches the service the restart holds: the kernel must refuse it (`R13-lock-conflict`)
//! until the restart commits.
//!
//! Targets are drawn by the seed among the services the crash scenario may hit (those with
//! traffic on a user path; [`deathstarbench::drawn::eligible`]) such that their restarts are
//! independent: no two share a restart group (a service and, transitively, what reads it only at
//! start-up) and none reads another's group at start-up. An app with too few such services for a
//! cell is not run in that cell (the report's pair count shows it).
//!
//! From each run's journal the experiment checks that no two plans executing at the same time
//! ever touched the same service.

use crate::online::{Detection, Execution, OnlineConfig, OnlineRun, RunError, RunSpec, judge, run};
use crate::record::{ParallelRecord, Provenance};
use agents::{LlmConfig, PolicyKind};
use faults::{CrashMode, FaultKind, FaultSchedule, FaultSpec, FaultType, ReplicaPick};
use kernel::journal::Event;
use kernel::{ServiceKind, VirtualTime};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sim::rng::{self, Stream};
use sim::spec::AppSpec;
use std::collections::{BTreeMap, BTreeSet};

/// The plan-length mix of a concurrent-recovery cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mix {
    /// Every target a stateless service: equal-length plans.
    Stateless,
    /// Every other target a database (the first stateless): unequal plans.
    Databases,
    /// Stateless targets plus a bad configuration on the first, whose rollback overlaps its
    /// restart (the kernel's locks serialise the two).
    Overlapping,
}

impl Mix {
    /// Snake-case name, as in configurations and result lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Mix::Stateless => "stateless",
            Mix::Databases => "databases",
            Mix::Overlapping => "overlapping",
        }
    }

    /// The service kind of the `k`-th target.
    fn kind(self, k: u32) -> ServiceKind {
        match self {
            Mix::Databases if k % 2 == 1 => ServiceKind::Db,
            _ => ServiceKind::Stateless,
        }
    }
}

/// Parameters of the concurrent-recovery experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelConfig {
    /// Seeds per application and cell.
    pub seeds: u32,
    /// Simultaneous incidents, one cell each.
    pub counts: Vec<u32>,
    /// Plan-length mixes, one cell each.
    pub mixes: Vec<Mix>,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            seeds: 2,
            counts: (1..=8).collect(),
            mixes: vec![Mix::Stateless, Mix::Databases, Mix::Overlapping],
        }
    }
}

/// What restarting `i` forces to restart with it: `i` and, transitively, every service that
/// reads it only at start-up (its restart group, `i` first; DESIGN §3).
fn forced(app: &AppSpec, i: usize) -> BTreeSet<usize> {
    let mut group = BTreeSet::from([i]);
    let mut frontier = vec![i];
    while let Some(x) = frontier.pop() {
        for (j, s) in app.services.iter().enumerate() {
            if s.startup_deps.contains(&x) && group.insert(j) {
                frontier.push(j);
            }
        }
    }
    group
}

/// Whether restarting `i` and `j` are independent: neither restart group contains a service of
/// the other's, nor what the other reads at start-up (a service restarted after one of its
/// start-up dependencies must wait for it). Two services reading the same registry at start-up
/// stay independent: the registry itself does not restart.
fn independent(app: &AppSpec, i: usize, j: usize) -> bool {
    let (fi, fj) = (forced(app, i), forced(app, j));
    let reads = |f: &BTreeSet<usize>| -> BTreeSet<usize> {
        f.iter()
            .flat_map(|&x| app.services[x].startup_deps.iter().copied())
            .collect()
    };
    fi.is_disjoint(&fj) && reads(&fi).is_disjoint(&fj) && reads(&fj).is_disjoint(&fi)
}

/// The seed's `count` targets of `mix` on `app`, in disjoint restart groups; `None` when the
/// app has too few.
pub fn targets(app: &AppSpec, seed: u64, count: u32, mix: Mix) -> Option<Vec<String>> {
    let mut rng = rng::stream(seed, Stream::Scenario);
    let mut candidates: Vec<usize> = deathstarbench::drawn::eligible(app, FaultType::Crash)
        .into_iter()
        .map(|c| c.service)
        .collect();
    // A seeded shuffle (Fisher–Yates), so that the choice below is a uniform draw.
    for i in (1..candidates.len()).rev() {
        candidates.swap(i, rng.random_range(0..=i));
    }
    let mut chosen: Vec<usize> = Vec::new();
    for k in 0..count {
        let kind = mix.kind(k);
        let pick = candidates.iter().position(|&c| {
            app.services[c].kind == kind && chosen.iter().all(|&t| independent(app, c, t))
        })?;
        chosen.push(candidates.remove(pick));
    }
    Some(
        chosen
            .iter()
            .map(|&c| app.services[c].name.clone())
            .collect(),
    )
}

/// The faults of a cell: each target hung from `start_s`, plus the overlapping mix's bad
/// configuration on the first.
pub fn schedule(targets: &[String], mix: Mix, start_s: f64, duration_s: f64) -> FaultSchedule {
    let fault = |target: &str, kind: FaultKind| FaultSpec {
        target: target.to_string(),
        replicas: ReplicaPick::All,
        start_s,
        duration_s,
        kind,
    };
    let mut list: Vec<FaultSpec> = targets
        .iter()
        .map(|t| {
            fault(
                t,
                FaultKind::Crash {
                    mode: CrashMode::Hang,
                },
            )
        })
        .collect();
    if let (Mix::Overlapping, Some(first)) = (mix, targets.first()) {
        list.push(fault(first, FaultKind::Misconfig { fail_fraction: 1.0 }));
    }
    FaultSchedule { faults: list }
}

/// Pairs of plans that were executing at the same time and touched a common service.
pub fn overlap_violations(run: &OnlineRun) -> u32 {
    // Each plan's execution interval and the services its operations touched.
    let mut spans: BTreeMap<u64, (VirtualTime, VirtualTime, BTreeSet<String>)> = BTreeMap::new();
    for r in run.journal.records() {
        match &r.event {
            Event::StepApplied { op, .. }
            | Event::Undo { op, .. }
            | Event::Compensate { op, .. } => {
                let e = spans
                    .entry(r.plan.0)
                    .or_insert_with(|| (r.t_us, r.t_us, BTreeSet::new()));
                e.1 = r.t_us;
                e.2.insert(op.service().to_string());
            }
            Event::Commit | Event::Abort { .. } => {
                if let Some(e) = spans.get_mut(&r.plan.0) {
                    e.1 = r.t_us;
                }
            }
            _ => {}
        }
    }
    let list: Vec<_> = spans.values().collect();
    let mut violations = 0;
    for (i, a) in list.iter().enumerate() {
        for b in &list[i + 1..] {
            let concurrent = a.0 < b.1 && b.0 < a.1;
            if concurrent && !a.2.is_disjoint(&b.2) {
                violations += 1;
            }
        }
    }
    violations
}

/// First applied step to last commit or abort, seconds.
fn makespan(run: &OnlineRun) -> Option<f64> {
    let records = run.journal.records();
    let first = records
        .iter()
        .find(|r| matches!(r.event, Event::StepApplied { .. }))?
        .t_us;
    let last = records
        .iter()
        .rev()
        .find(|r| matches!(r.event, Event::Commit | Event::Abort { .. }))?
        .t_us;
    Some(last.since(first).as_secs_f64())
}

/// Runs the cell (`count` incidents of `mix`) of `seed` on `app` with both execution modes;
/// no records when the app has too few disjoint targets.
pub fn run_pair(
    app: &AppSpec,
    seed: u64,
    count: u32,
    mix: Mix,
    online: &OnlineConfig,
    llm: LlmConfig,
    provenance: &Provenance,
) -> Result<Vec<ParallelRecord>, RunError> {
    let Some(targets) = targets(app, seed, count, mix) else {
        return Ok(Vec::new());
    };
    let faults = schedule(&targets, mix, online.fault_start_s, online.fault_duration_s);
    [Execution::Parallel, Execution::Serial]
        .into_iter()
        .map(|execution| {
            let spec = RunSpec {
                app,
                faults: faults.clone(),
                policy: PolicyKind::Oracle,
                seed,
                llm,
                config: online,
                detection: Detection::GroundTruth,
                execution,
            };
            let result = run(&spec)?;
            let judgement = judge(&result, app, None, online);
            let lock_conflicts = result
                .journal
                .records()
                .iter()
                .filter(|r| match &r.event {
                    Event::Verdict { violations, .. } => violations
                        .iter()
                        .any(|v| v.rule == kernel::Rule::LockConflict),
                    _ => false,
                })
                .count() as u32;
            Ok(ParallelRecord {
                provenance: provenance.clone(),
                app: app.name.clone(),
                seed,
                mix,
                count,
                execution,
                faults: faults
                    .faults
                    .iter()
                    .map(|f| format!("{}@{}", f.kind.fault_type(), f.target))
                    .collect(),
                opened_at_s: result.incidents.iter().map(|i| i.opened_at_s).collect(),
                resolved: result
                    .incidents
                    .iter()
                    .filter(|i| i.resolved_at_s.is_some())
                    .map(|i| i.root_cause.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect(),
                ttr_s: judgement.ttr_s,
                makespan_s: makespan(&result),
                plans: result.outcomes.len() as u32,
                max_concurrent_plans: result.max_concurrent_plans as u32,
                overlap_violations: overlap_violations(&result),
                lock_conflicts,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppSpec {
        deathstarbench::load(name, &deathstarbench::Deployment::default()).unwrap()
    }

    #[test]
    fn targets_are_independent_carry_traffic_and_follow_the_seed() {
        let hotel = app("hotelReservation");
        let with_traffic: BTreeSet<String> =
            deathstarbench::drawn::eligible(&hotel, FaultType::Crash)
                .iter()
                .map(|c| hotel.services[c.service].name.clone())
                .collect();
        for seed in 1..=5 {
            // Every hotel service reads the registry at start-up; that couples none of them.
            let t = targets(&hotel, seed, 7, Mix::Stateless).expect("seven stateless services");
            assert_eq!(t, targets(&hotel, seed, 7, Mix::Stateless).unwrap());
            assert!(t.iter().all(|s| with_traffic.contains(s)), "{t:?}");
            let ids: Vec<usize> = t.iter().map(|s| hotel.service_index(s).unwrap()).collect();
            for (a, &i) in ids.iter().enumerate() {
                for &j in &ids[a + 1..] {
                    assert!(independent(&hotel, i, j));
                }
            }
            // A larger cell of the same seed extends the smaller one.
            assert_eq!(targets(&hotel, seed, 3, Mix::Stateless).unwrap(), t[..3]);
        }
        assert_ne!(
            targets(&hotel, 1, 3, Mix::Stateless),
            targets(&hotel, 2, 3, Mix::Stateless)
        );
        // Only seven stateless services carry traffic: no eighth.
        assert_eq!(targets(&hotel, 1, 8, Mix::Stateless), None);
        // geo reads mongodb-geo at start-up: restarting both is one coupled restart.
        let (geo, db) = (
            hotel.service_index("geo").unwrap(),
            hotel.service_index("mongodb-geo").unwrap(),
        );
        assert!(!independent(&hotel, geo, db));
        let mixed = targets(&app("socialNetwork"), 1, 4, Mix::Databases).unwrap();
        let kinds: Vec<ServiceKind> = mixed
            .iter()
            .map(|s| {
                let social = app("socialNetwork");
                social.services[social.service_index(s).unwrap()].kind
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ServiceKind::Stateless,
                ServiceKind::Db,
                ServiceKind::Stateless,
                ServiceKind::Db
            ]
        );
    }
}
