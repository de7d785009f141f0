//! Result lines: one JSON object per run (or per offline incident × policy), tagged with the
//! experiment it belongs to. Everything in the report is computed from these lines.

use crate::harm::Regression;
use crate::offline::{IndustrialGraph, OfflineOutcome};
use crate::online::{Actor, Judgement, OnlineRun};
use agents::{Mistake, PolicyId};
use faults::FaultType;
use kernel::journal::Event;
use kernel::txn::Outcome;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a line came from: the code and the configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `git rev-parse HEAD` of the build (`unknown` outside a checkout), `+dirty` if modified.
    pub commit: String,
    /// FNV-1a of the evaluation configuration's canonical JSON, hex.
    pub config_hash: String,
}

/// One action, briefly.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionBrief {
    /// When, seconds.
    pub at_s: f64,
    /// Agent or human.
    pub actor: Actor,
    /// ISA or raw-command kind.
    pub kind: String,
    /// What.
    pub what: String,
    /// The harm it caused, if any (agent actions only).
    pub harm: Option<Regression>,
}

/// One online run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OnlineRecord {
    /// Code and configuration.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// Application.
    pub app: String,
    /// Fault type.
    pub fault: FaultType,
    /// Policy.
    pub policy: PolicyId,
    /// Seed.
    pub seed: u64,
    /// The LLM error-rate factor (1 = the documented rates; sensitivity runs vary it).
    pub error_factor: f64,
    /// Whether any agent action was harmful.
    pub harmful: bool,
    /// Worse than the noop run of the same seed.
    pub counterfactual: Option<Regression>,
    /// Time to recovery, seconds (`None`: not within the run).
    pub ttr_s: Option<f64>,
    /// Every action that took effect, with the harm verdict of agent actions.
    pub actions: Vec<ActionBrief>,
    /// Incidents opened.
    pub incidents: u32,
    /// Kernel rejections of the agent's plans.
    pub rejections: u32,
    /// Rule ids of those rejections, with counts.
    pub rejected_rules: BTreeMap<String, u32>,
    /// Incidents the agent escalated.
    pub escalations: u32,
    /// Whether the (first) diagnosis named the root cause (LLM policies).
    pub correct_root: Option<bool>,
    /// Mistakes left in the LLM's plan at the end of each diagnosis round (after verification
    /// and the fixes kernel feedback prompted).
    pub mistakes: Vec<Mistake>,
    /// Kernel plans committed.
    pub plans_committed: u32,
    /// Kernel plans aborted (and rolled back).
    pub plans_aborted: u32,
    /// Undo and compensation operations.
    pub rollbacks: u32,
    /// Leases that expired and were reverted.
    pub lease_expiries: u32,
    /// Leases the kernel renewed because their revert regressed (the failure persisted).
    #[serde(default)]
    pub lease_renewals: u32,
    /// Steps the SLO watchdog took back: executing plans it aborted and committed steps it
    /// reverted.
    #[serde(default)]
    pub watchdog_undos: u32,
    /// Half-open breakers that closed early once their callee recovered.
    #[serde(default)]
    pub breakers_closed: u32,
    /// Raw commands the orchestrator refused.
    pub refused_commands: u32,
    /// Simulator events (a determinism fingerprint).
    pub events: u64,
    /// The fault scenario the run injected: what the seed drew (or the fixed set's choice).
    /// Absent in lines written before scenarios were recorded.
    #[serde(default)]
    pub scenario: Option<Scenario>,
    /// How often each named behaviour of the raw-command agent occurred (`unconstrained` only;
    /// absent for every other policy, whose lines are unchanged).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub behaviours: BTreeMap<String, u32>,
    /// External agents only: why the agent failed (crashed, timed out, sent a malformed or
    /// oversized message), ending its part in the incident. Absent when it did not fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_failure: Option<String>,
}

/// The fault scenario of a run, as injected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The scenario set it came from.
    pub set: deathstarbench::ScenarioSet,
    /// The service hit.
    pub target: String,
    /// The replicas the injection hit (ordinals, resolved at injection).
    pub replicas: Vec<u32>,
    /// Type and intensity (for a partition: the dependency cut off).
    pub intensity: faults::FaultKind,
}

impl Scenario {
    /// The scenario of `spec`, drawn from `set`, with the replicas `run` injected it on.
    pub fn of(set: deathstarbench::ScenarioSet, spec: &faults::FaultSpec, run: &OnlineRun) -> Self {
        let replicas = run
            .fault_log
            .iter()
            .find(|e| e.what == "inject")
            .map(|e| e.replicas.clone())
            .unwrap_or_default();
        Scenario {
            set,
            target: spec.target.clone(),
            replicas,
            intensity: spec.kind.clone(),
        }
    }

    /// The target as a breakdown names it: the service, or `caller ↛ dependency`.
    pub fn target_label(&self) -> String {
        match &self.intensity {
            faults::FaultKind::Partition { dependency } => {
                format!("{} ↛ {dependency}", self.target)
            }
            _ => self.target.clone(),
        }
    }
}

impl OnlineRecord {
    /// Builds the record of a judged run.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        provenance: Provenance,
        app: &str,
        fault: FaultType,
        policy: PolicyId,
        seed: u64,
        error_factor: f64,
        run: &OnlineRun,
        judgement: &Judgement,
    ) -> Self {
        let mut harms = judgement.actions.iter().map(|a| a.harm.clone());
        let actions = run
            .actions
            .iter()
            .map(|a| ActionBrief {
                at_s: a.at_s,
                actor: a.actor,
                kind: a.kind.clone(),
                what: a.what.clone(),
                harm: if a.actor == Actor::Agent {
                    harms.next().flatten()
                } else {
                    None
                },
            })
            .collect();
        let mut rejected_rules = BTreeMap::new();
        for inc in &run.incidents {
            for rules in &inc.rejections {
                for r in rules {
                    *rejected_rules.entry(r.id().to_string()).or_insert(0) += 1;
                }
            }
        }
        let count = |f: fn(&Event) -> bool| {
            run.journal.records().iter().filter(|r| f(&r.event)).count() as u32
        };
        OnlineRecord {
            provenance,
            app: app.to_string(),
            fault,
            policy,
            seed,
            error_factor,
            harmful: judgement.harmful,
            counterfactual: judgement.counterfactual.clone(),
            ttr_s: judgement.ttr_s,
            actions,
            incidents: run.incidents.len() as u32,
            rejections: run
                .incidents
                .iter()
                .map(|i| i.rejections.len() as u32)
                .sum(),
            rejected_rules,
            escalations: run
                .incidents
                .iter()
                .filter(|i| i.escalated_at_s.is_some())
                .count() as u32,
            correct_root: run
                .incidents
                .first()
                .and_then(|i| i.diagnosis.as_ref())
                .map(|d| d.correct_root),
            mistakes: run
                .incidents
                .iter()
                .flat_map(|i| i.mistakes.iter().copied())
                .collect(),
            plans_committed: run
                .outcomes
                .iter()
                .filter(|(_, o)| *o == Outcome::Committed)
                .count() as u32,
            plans_aborted: run
                .outcomes
                .iter()
                .filter(|(_, o)| *o != Outcome::Committed)
                .count() as u32,
            rollbacks: count(|e| matches!(e, Event::Undo { .. } | Event::Compensate { .. })),
            lease_expiries: count(|e| matches!(e, Event::LeaseExpired { .. })),
            lease_renewals: count(|e| matches!(e, Event::LeaseRenewed { .. })),
            watchdog_undos: count(|e| {
                matches!(
                    e,
                    Event::WatchdogTripped { .. } | Event::WatchdogUndo { .. }
                )
            }),
            breakers_closed: count(|e| matches!(e, Event::BreakerClosed { .. })),
            refused_commands: run.refused_commands.len() as u32,
            events: run.events,
            scenario: None,
            behaviours: run.behaviours.clone(),
            agent_failure: None,
        }
    }
}

/// One offline incident under one policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OfflineRecord {
    /// Code and configuration.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// The graph.
    pub graph: IndustrialGraph,
    /// Incident number.
    pub incident: u32,
    /// Seed.
    pub seed: u64,
    /// The LLM error-rate factor.
    pub error_factor: f64,
    /// What happened.
    #[serde(flatten)]
    pub outcome: OfflineOutcome,
}

impl OfflineRecord {
    /// Whether an action was harmful.
    pub fn harmful(&self) -> bool {
        self.outcome.harmful_action.is_some()
    }
}

/// Concurrent incidents recovered with parallel or serial plan execution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParallelRecord {
    /// Code and configuration.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// Application.
    pub app: String,
    /// Seed.
    pub seed: u64,
    /// Plan-length mix of the cell.
    pub mix: crate::parallel::Mix,
    /// Simultaneous incidents of the cell.
    pub count: u32,
    /// `parallel` or `serial`.
    pub execution: crate::online::Execution,
    /// The faults, `type@service`.
    pub faults: Vec<String>,
    /// When each incident opened, seconds (all in one tick: the faults start together).
    pub opened_at_s: Vec<f64>,
    /// Root causes of the incidents resolved within the run, sorted.
    pub resolved: Vec<String>,
    /// Time to recovery of the whole system, seconds.
    pub ttr_s: Option<f64>,
    /// First plan step to last plan end, seconds.
    pub makespan_s: Option<f64>,
    /// Plans the kernel executed.
    pub plans: u32,
    /// Most plans executing at once.
    pub max_concurrent_plans: u32,
    /// Pairs of plans that executed at the same time and touched a common service (must be 0).
    pub overlap_violations: u32,
    /// Rejections for a lock held by another plan (overlapping plans serialised).
    pub lock_conflicts: u32,
}

/// Shape of an industrial graph (blast radius: transitive synchronous callers).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphRecord {
    /// Code and configuration.
    #[serde(flatten)]
    pub provenance: Provenance,
    /// The graph.
    pub graph: IndustrialGraph,
    /// Services.
    pub services: usize,
    /// Edges.
    pub edges: usize,
    /// Hubs (fan-in above the kernel's threshold).
    pub hubs: usize,
    /// Blast radius P50.
    pub blast_p50: f64,
    /// Blast radius P90.
    pub blast_p90: f64,
    /// Blast radius P99.
    pub blast_p99: f64,
    /// Blast radius max.
    pub blast_max: f64,
}

/// One line of `results.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "experiment", rename_all = "snake_case")]
pub enum ResultLine {
    /// An online run.
    Online(OnlineRecord),
    /// An offline incident × policy.
    Offline(OfflineRecord),
    /// A concurrent-recovery run.
    Parallel(ParallelRecord),
    /// An industrial graph's shape.
    Graph(GraphRecord),
}

/// Reads `results.jsonl`; errors name the line.
pub fn read_results(text: &str, source: &str) -> Result<Vec<ResultLine>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{source}:{}: {e}", i + 1)))
        .collect()
}

/// Writes lines as JSON lines.
pub fn write_results(lines: &[ResultLine], mut w: impl std::io::Write) -> std::io::Result<()> {
    for line in lines {
        serde_json::to_writer(&mut w, line)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}
