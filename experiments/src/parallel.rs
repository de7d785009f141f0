//! Concurrent recovery: several simultaneous faults in different recovery groups, remedied by
//! the oracle's plans through the kernel, executed in parallel (disjoint plans concurrently,
//! overlapping ones serialised by the kernel's locks) or one plan at a time — on the same seeds.
//!
//! The scenario: `faults` services (not the entry) drawn by the seed, each hung (a crash), plus a
//! bad configuration pushed to the first of them. The misconfiguration's rollback plan touches a
//! service the crash's restart plan holds, so the kernel must refuse it (`R13-lock-conflict`)
//! until the restart commits: overlapping plans serialise while disjoint ones run together.
//!
//! From each run's journal the experiment checks that no two plans executing at the same time
//! ever touched the same service.

use crate::online::{Detection, Execution, OnlineConfig, OnlineRun, RunError, RunSpec, judge, run};
use crate::record::{ParallelRecord, Provenance};
use agents::{LlmConfig, PolicyKind};
use faults::{CrashMode, FaultKind, FaultSchedule, FaultSpec, ReplicaPick};
use kernel::journal::Event;
use kernel::{ServiceKind, VirtualTime};
use rand::RngExt;
use serde::{Deserialize, Serialize};
use sim::rng::{self, Stream};
use sim::spec::AppSpec;
use std::collections::{BTreeMap, BTreeSet};

/// Parameters of the concurrent-recovery experiment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ParallelConfig {
    /// Seeds per application.
    pub seeds: u32,
    /// Simultaneous crashes.
    pub faults: u32,
}

impl Default for ParallelConfig {
    fn default() -> Self {
        ParallelConfig {
            seeds: 3,
            faults: 5,
        }
    }
}

/// The seed's concurrent faults on `app`, starting at `start_s`.
pub fn schedule(
    app: &AppSpec,
    seed: u64,
    faults: u32,
    start_s: f64,
    duration_s: f64,
) -> FaultSchedule {
    let mut rng = rng::stream(seed, Stream::Scenario);
    let mut candidates: Vec<&str> = app
        .services
        .iter()
        .filter(|s| !matches!(s.kind, ServiceKind::Frontend | ServiceKind::Infra))
        .map(|s| s.name.as_str())
        .collect();
    let mut chosen = Vec::new();
    while (chosen.len() as u32) < faults && !candidates.is_empty() {
        chosen.push(candidates.swap_remove(rng.random_range(0..candidates.len())));
    }
    let fault = |target: &str, kind: FaultKind| FaultSpec {
        target: target.to_string(),
        replicas: ReplicaPick::All,
        start_s,
        duration_s,
        kind,
    };
    let mut list: Vec<FaultSpec> = chosen
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
    if let Some(first) = chosen.first() {
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

/// Runs the scenario of `seed` on `app` with both execution modes.
pub fn run_pair(
    app: &AppSpec,
    seed: u64,
    cfg: &ParallelConfig,
    online: &OnlineConfig,
    llm: LlmConfig,
    provenance: &Provenance,
) -> Result<Vec<ParallelRecord>, RunError> {
    let faults = schedule(
        app,
        seed,
        cfg.faults,
        online.fault_start_s,
        online.fault_duration_s,
    );
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
                execution,
                faults: faults
                    .faults
                    .iter()
                    .map(|f| format!("{}@{}", f.kind.fault_type(), f.target))
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
