//! One incident as the simulated LLM sees it: a diagnosis, a remedy, the mistakes that survive
//! verification, and the plan they make — rendered either as a typed plan for the kernel or as
//! raw commands.

use crate::llm::LlmConfig;
use kernel::isa::{
    Action, ConfigVersion, IncidentId, Lease, LeaseSeconds, Plan, Rate, ReplicaCount,
    ReplicaSelector, ServiceName,
};
use kernel::{DependencyGraph, RecoveryScope, Rule, ServiceKind, Verdict};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim::actuator::RawCommand;
use std::collections::BTreeSet;

/// The fault types a diagnosis names: the workspace's one fault vocabulary, owned by the
/// `faults` crate (re-exported here because a diagnosis and its ground truth speak it).
pub use faults::FaultType;

/// What really happened (known to the simulator, the oracle and the LLM's error model).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// Faulty service.
    pub root_cause: String,
    /// Fault type.
    pub fault: FaultType,
    /// Replicas hit.
    pub replicas: Vec<u32>,
    /// For a partition, the dependency cut off.
    pub dependency: Option<String>,
}

/// What the diagnosis agent concluded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// Service it blames.
    pub root_cause: String,
    /// Fault type it names.
    pub fault: FaultType,
    /// Replicas it names.
    pub replicas: Vec<u32>,
    /// Whether the root cause is the true one.
    pub correct_root: bool,
    /// Whether the fault type is the true one.
    pub correct_type: bool,
}

/// A planning mistake (see [`crate::llm::MistakeRates`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mistake {
    /// Too broad a scope.
    TooBroad,
    /// Restarting the root cause's stores too.
    CollateralRestart,
    /// No drain before restarting a replicated or hub service.
    SkipDrain,
    /// Dependents restarted before their dependencies.
    WrongOrder,
    /// Drain never closed.
    ForgetRestore,
    /// Delete, scale to zero, or restart everything.
    Destructive,
    /// A rate limit far below the baseline.
    AggressiveRateLimit,
    /// A config version that never existed.
    WrongConfigVersion,
    /// A remedy that does not fit the fault.
    WrongRemedy,
    /// A breaker on an edge that does not exist.
    HallucinatedEdge,
    /// An action on a service that does not exist.
    HallucinatedService,
    /// A scale outside the bounds.
    ScaleOutOfBounds,
    /// Another incident's id.
    StaleIncident,
    /// No step at all.
    EmptyPlan,
    /// Two actions on one service in one parallel stage.
    StageConflict,
    /// A lease on a restart.
    LeaseOnRestart,
    /// Far too many steps.
    OversizedPlan,
    /// A drain that stays in force without scaling up first.
    SkipSurge,
}

impl Mistake {
    /// All mistakes, in the order the pipeline draws them.
    pub const ALL: [Mistake; 18] = [
        Mistake::TooBroad,
        Mistake::CollateralRestart,
        Mistake::SkipDrain,
        Mistake::WrongOrder,
        Mistake::ForgetRestore,
        Mistake::Destructive,
        Mistake::AggressiveRateLimit,
        Mistake::WrongConfigVersion,
        Mistake::WrongRemedy,
        Mistake::HallucinatedEdge,
        Mistake::HallucinatedService,
        Mistake::ScaleOutOfBounds,
        Mistake::StaleIncident,
        Mistake::EmptyPlan,
        Mistake::StageConflict,
        Mistake::LeaseOnRestart,
        Mistake::OversizedPlan,
        Mistake::SkipSurge,
    ];

    fn rate(self, cfg: &LlmConfig) -> f64 {
        let m = &cfg.mistakes;
        match self {
            Mistake::TooBroad => m.too_broad,
            Mistake::CollateralRestart => m.collateral_restart,
            Mistake::SkipDrain => m.skip_drain,
            Mistake::WrongOrder => m.wrong_order,
            Mistake::ForgetRestore => m.forget_restore,
            Mistake::Destructive => m.destructive,
            Mistake::AggressiveRateLimit => m.aggressive_rate_limit,
            Mistake::WrongConfigVersion => m.wrong_config_version,
            Mistake::WrongRemedy => m.wrong_remedy,
            Mistake::HallucinatedEdge => m.hallucinated_edge,
            Mistake::HallucinatedService => m.hallucinated_service,
            Mistake::ScaleOutOfBounds => m.scale_out_of_bounds,
            Mistake::StaleIncident => m.stale_incident,
            Mistake::EmptyPlan => m.empty_plan,
            Mistake::StageConflict => m.stage_conflict,
            Mistake::LeaseOnRestart => m.lease_on_restart,
            Mistake::OversizedPlan => m.oversized_plan,
            Mistake::SkipSurge => m.skip_surge,
        }
    }

    /// The mistakes a violated kernel rule points at: what a re-plan tries to fix.
    pub fn implicated_by(rule: Rule) -> &'static [Mistake] {
        use Mistake::*;
        match rule {
            Rule::UnknownTarget => &[HallucinatedService, Destructive, TooBroad, OversizedPlan],
            Rule::OutOfScope => &[TooBroad, Destructive, OversizedPlan, WrongRemedy],
            Rule::DrainBeforeRestart => &[SkipDrain],
            Rule::RestartOrder => &[WrongOrder],
            Rule::ReplicaBounds => &[ScaleOutOfBounds],
            Rule::RateLimitFloor => &[AggressiveRateLimit],
            Rule::UnknownEdge => &[HallucinatedEdge],
            Rule::UnknownConfigVersion => &[WrongConfigVersion],
            Rule::UnclosedReversible => &[ForgetRestore],
            Rule::GroupSize | Rule::PlanLength => &[OversizedPlan, Destructive, TooBroad],
            Rule::RestartBudget => &[OversizedPlan, TooBroad, CollateralRestart, Destructive],
            Rule::LockConflict => &[],
            Rule::IncidentMismatch => &[StaleIncident],
            Rule::EmptyPlan => &[EmptyPlan],
            Rule::StageConflict => &[StageConflict],
            Rule::BadLease => &[LeaseOnRestart],
            Rule::NoFailureEvidence => &[CollateralRestart, TooBroad, WrongRemedy],
            Rule::DrainWithoutSurge => &[SkipSurge],
        }
    }
}

/// The remedy family a plan is built around.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Remedy {
    /// Restart the root cause.
    Restart,
    /// Drain the faulty replicas (with a lease).
    Drain,
    /// Scale the root cause out.
    Scale,
    /// Rate-limit the root cause.
    RateLimit,
    /// Roll the root cause's config back.
    Rollback,
    /// Break the callers' edges to the root cause.
    Break,
}

impl Remedy {
    /// The remedy family a competent SRE picks for `fault`; `pick` (uniform in `[0, 1)`)
    /// chooses among several (a resource fault: restart, scale or rate-limit). A match with no
    /// catch-all, so a new fault type does not compile until it has a remedy.
    pub fn for_fault(fault: FaultType, pick: f64) -> Remedy {
        match fault {
            FaultType::Crash => Remedy::Restart,
            FaultType::Latency | FaultType::Partition => Remedy::Drain,
            FaultType::Resource if pick < 0.5 => Remedy::Restart,
            FaultType::Resource if pick < 0.8 => Remedy::Scale,
            FaultType::Resource => Remedy::RateLimit,
            FaultType::Misconfig => Remedy::Rollback,
        }
    }
}

/// What the planner sees of the system: the trace-derived graph with control-plane facts.
pub struct View<'a> {
    /// The incident id.
    pub incident: &'a IncidentId,
    /// The symptom service the monitoring side reported.
    pub symptom: &'a str,
    /// The dependency graph.
    pub graph: &'a DependencyGraph,
    /// The kernel's scope (used only to re-localise after an out-of-scope rejection: the
    /// rejection names the symptom's scope).
    pub scope: &'a RecoveryScope,
    /// Services blamed in earlier rounds whose remedies did not resolve the incident.
    pub ruled_out: &'a [String],
}

/// One step of a draft plan: a typed action, or something the ISA cannot express.
#[derive(Clone, Debug, PartialEq)]
enum Intent {
    Act(Action),
    DeleteDeployment(String),
    ScaleToZero(String),
    RestartEverything,
}

/// A draft step: the intent and, for a reversible action, the lease the planner gives it. The
/// lease travels with its step, so inserting steps before it never re-points it.
#[derive(Clone, Debug, PartialEq)]
struct Step {
    intent: Intent,
    lease_s: Option<u64>,
}

impl Step {
    fn act(action: Action) -> Self {
        Step {
            intent: Intent::Act(action),
            lease_s: None,
        }
    }

    fn leased(action: Action, ttl_s: Option<u64>) -> Self {
        Step {
            intent: Intent::Act(action),
            lease_s: ttl_s,
        }
    }
}

/// The LLM pipeline's state for one incident.
#[derive(Clone, Debug)]
pub struct IncidentLlm {
    cfg: LlmConfig,
    rng: ChaCha8Rng,
    truth: GroundTruth,
    diagnosis: Diagnosis,
    /// The diagnosis before any re-plan re-localised it (what both LLM agents draw alike).
    first_diagnosis: Diagnosis,
    remedy: Remedy,
    mistakes: BTreeSet<Mistake>,
    /// Mistakes drawn before verification (for reports).
    drafted: BTreeSet<Mistake>,
    rounds: u32,
    latency_s: f64,
}

fn name(s: &str) -> ServiceName {
    ServiceName::try_from(s).unwrap_or_else(|_| ServiceName::try_from("unnamed").expect("valid"))
}

fn lease(s: u64) -> LeaseSeconds {
    LeaseSeconds::try_from(s).expect("lease within bounds")
}

impl IncidentLlm {
    /// Runs diagnosis, planning and verification for round `round` (0 first; a new round
    /// starts when a remedy did not resolve the incident) of incident number `incident_no` of
    /// the run seeded `seed`. Draw order is fixed, so equal inputs give equal pipelines.
    pub fn new(
        seed: u64,
        incident_no: u64,
        round: u32,
        cfg: LlmConfig,
        truth: GroundTruth,
        view: &View<'_>,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4c4c_4d00);
        rng.set_stream((incident_no << 8) | u64::from(round.min(255)));
        // Diagnosis.
        let correct_root = rng.random_bool(cfg.localization_accuracy.clamp(0.0, 1.0));
        let wrong_pick: f64 = rng.random();
        let wrong_index: u64 = rng.random();
        let root_cause = if correct_root {
            truth.root_cause.clone()
        } else {
            wrong_root(&truth.root_cause, view, wrong_pick, wrong_index)
        };
        let correct_type = rng.random_bool(cfg.fault_type_accuracy.clamp(0.0, 1.0));
        // One of the other types (as many draws as before for the five: `0..4`).
        let other: usize = rng.random_range(0..FaultType::ALL.len() - 1);
        let fault = if correct_type {
            truth.fault
        } else {
            *FaultType::ALL
                .iter()
                .filter(|f| **f != truth.fault)
                .nth(other)
                .expect("ALL.len() - 1 others")
        };
        let replicas = if correct_root {
            truth.replicas.clone()
        } else {
            vec![0]
        };
        // Remedy family: what a competent SRE would pick for the named fault type.
        let pick: f64 = rng.random();
        let remedy = Remedy::for_fault(fault, pick);
        // Planning mistakes, then verification.
        let mut drafted = BTreeSet::new();
        let mut mistakes = BTreeSet::new();
        for m in Mistake::ALL {
            let made = rng.random_bool(m.rate(&cfg).clamp(0.0, 1.0));
            let caught = rng.random_bool(cfg.verification_catch.clamp(0.0, 1.0));
            if made {
                drafted.insert(m);
                if !caught {
                    mistakes.insert(m);
                }
            }
        }
        let jitter: f64 = rng.random_range(-1.0..=1.0);
        let latency_s = (cfg.decision_latency_s + jitter * cfg.latency_jitter_s).max(0.0);
        let diagnosis = Diagnosis {
            root_cause,
            fault,
            replicas,
            correct_root,
            correct_type,
        };
        IncidentLlm {
            cfg,
            rng,
            truth,
            first_diagnosis: diagnosis.clone(),
            diagnosis,
            remedy,
            mistakes,
            drafted,
            rounds: 0,
            latency_s,
        }
    }

    /// Seconds from the incident to the first plan (diagnosis + planning + verification).
    pub fn decision_latency_s(&self) -> f64 {
        self.latency_s
    }

    /// Re-plans so far.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// The diagnosis (after any re-localisation by a re-plan).
    pub fn diagnosis(&self) -> &Diagnosis {
        &self.diagnosis
    }

    /// The diagnosis the round started with, before any re-plan.
    pub fn first_diagnosis(&self) -> &Diagnosis {
        &self.first_diagnosis
    }

    /// The remedy family chosen.
    pub fn remedy(&self) -> Remedy {
        self.remedy
    }

    /// Mistakes in the current plan (after verification and any re-plans).
    pub fn mistakes(&self) -> &BTreeSet<Mistake> {
        &self.mistakes
    }

    /// Mistakes drawn before verification caught some.
    pub fn drafted_mistakes(&self) -> &BTreeSet<Mistake> {
        &self.drafted
    }

    /// Re-plans after the kernel rejected the plan with `verdict`: each mistake a violated rule
    /// implicates is fixed with probability `fix_on_feedback`; a root cause outside the scope, or
    /// one the kernel says shows no failure (`R18` naming it), is re-localised inside the scope
    /// (away from it). Returns the latency of the re-plan, seconds.
    pub fn replan(&mut self, verdict: &Verdict, view: &View<'_>) -> f64 {
        self.rounds += 1;
        let rules = verdict.rules();
        let mut implicated: BTreeSet<Mistake> = BTreeSet::new();
        for &r in &rules {
            implicated.extend(Mistake::implicated_by(r).iter().copied());
        }
        for m in implicated {
            let fixed = self
                .rng
                .random_bool(self.cfg.fix_on_feedback.clamp(0.0, 1.0));
            if fixed {
                self.mistakes.remove(&m);
            }
        }
        let root = self.diagnosis.root_cause.clone();
        let healthy_root = verdict
            .violations
            .iter()
            .any(|v| v.rule == Rule::NoFailureEvidence && v.target.as_deref() == Some(&root));
        let outside = rules.contains(&Rule::OutOfScope) && !view.scope.contains(&root);
        if outside || healthy_root {
            let retry_correct = self
                .rng
                .random_bool(self.cfg.localization_accuracy.clamp(0.0, 1.0));
            let members: Vec<&str> = view
                .scope
                .services()
                .filter(|s| !healthy_root || *s != root)
                .collect();
            let pick: usize = self.rng.random_range(0..members.len().max(1));
            self.diagnosis.root_cause =
                if retry_correct && view.scope.contains(&self.truth.root_cause) {
                    self.truth.root_cause.clone()
                } else {
                    members
                        .get(pick)
                        .map_or(view.symptom.to_string(), |s| s.to_string())
                };
            self.diagnosis.correct_root = self.diagnosis.root_cause == self.truth.root_cause;
            self.diagnosis.replicas = if self.diagnosis.correct_root {
                self.truth.replicas.clone()
            } else {
                vec![0]
            };
        }
        self.cfg.replan_latency_s
    }

    /// The plan as intended steps (stages), with leases.
    fn draft(&self, view: &View<'_>) -> (String, Vec<Vec<Step>>) {
        let g = view.graph;
        let d = &self.diagnosis;
        let has = |m: Mistake| self.mistakes.contains(&m);
        let root = d.root_cause.as_str();
        let root_id = g.id(root);
        let replicas = root_id.map_or(1, |id| g.service(id).replicas);
        let baseline = root_id
            .and_then(|id| g.baseline_rps(id))
            .unwrap_or(100.0)
            .max(1.0);
        let callers: Vec<String> = root_id
            .map(|id| {
                g.callers(id)
                    .map(|(c, _)| g.service(c).name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let stores: Vec<String> = root_id
            .map(|id| {
                g.callees(id)
                    .filter(|(c, _)| {
                        matches!(g.service(*c).kind, ServiceKind::Cache | ServiceKind::Db)
                    })
                    .map(|(c, _)| g.service(c).name.clone())
                    .collect()
            })
            .unwrap_or_default();
        let named_replicas = if d.replicas.iter().all(|&r| r < replicas) && !d.replicas.is_empty() {
            ReplicaSelector::Ids(d.replicas.clone())
        } else {
            ReplicaSelector::All
        };
        let mut stages: Vec<Vec<Step>> = Vec::new();
        let act = Step::act;
        let restart = |s: &str, sel: ReplicaSelector| {
            act(Action::Restart {
                service: name(s),
                replicas: sel,
            })
        };
        // The remedy (or a wrong one).
        let remedy = if has(Mistake::WrongRemedy) {
            match self.remedy {
                Remedy::Restart => Remedy::Break,
                _ => Remedy::Restart,
            }
        } else {
            self.remedy
        };
        let mut restarts: Vec<String> = Vec::new();
        match remedy {
            Remedy::Restart => restarts.push(root.to_string()),
            Remedy::Drain => {
                // Capacity first (surge, R19), unless the planner forgets it; it never forgets
                // when the drain would leave nothing serving.
                let drained = named_replicas
                    .resolve(replicas)
                    .map_or(replicas, |r| r.len() as u32);
                if drained >= replicas || !has(Mistake::SkipSurge) {
                    stages.push(vec![act(Action::Scale {
                        service: name(root),
                        replicas: ReplicaCount::try_from(u64::from(replicas + drained))
                            .expect("positive"),
                    })]);
                }
                let lease =
                    (!has(Mistake::ForgetRestore)).then_some(LeaseSeconds::DEFAULT.get().into());
                stages.push(vec![Step::leased(
                    Action::Drain {
                        service: name(root),
                        replicas: named_replicas.clone(),
                    },
                    lease,
                )]);
            }
            Remedy::Scale => {
                let n = if has(Mistake::ScaleOutOfBounds) {
                    replicas + 50
                } else {
                    replicas + 2
                };
                stages.push(vec![act(Action::Scale {
                    service: name(root),
                    replicas: ReplicaCount::try_from(u64::from(n)).expect("positive"),
                })]);
            }
            Remedy::RateLimit => {}
            Remedy::Rollback => {
                let versions = root_id
                    .map(|id| g.service(id).config_versions.clone())
                    .unwrap_or_default();
                let target = if has(Mistake::WrongConfigVersion) || versions.len() < 2 {
                    "v0".to_string()
                } else {
                    versions[versions.len() - 2].clone()
                };
                stages.push(vec![act(Action::RollbackConfig {
                    service: name(root),
                    version: ConfigVersion::try_from(target).expect("valid version"),
                })]);
            }
            Remedy::Break => {
                for c in callers.iter().take(2) {
                    stages.push(vec![act(Action::CircuitBreak {
                        caller: name(c),
                        callee: name(root),
                        duration_s: Some(LeaseSeconds::DEFAULT),
                    })]);
                }
            }
        }
        if remedy == Remedy::RateLimit || has(Mistake::AggressiveRateLimit) {
            let rps = if has(Mistake::AggressiveRateLimit) {
                0.1 * baseline
            } else {
                0.8 * baseline
            };
            stages.push(vec![Step::leased(
                Action::RateLimit {
                    service: name(root),
                    rps: Rate::try_from(rps.max(0.1)).expect("positive"),
                },
                Some(LeaseSeconds::DEFAULT.get().into()),
            )]);
        }
        if has(Mistake::CollateralRestart) {
            restarts.splice(0..0, stores.iter().cloned());
        }
        if has(Mistake::TooBroad) {
            restarts.extend(callers.iter().cloned());
            restarts.push(view.symptom.to_string());
        }
        // Each service once, at its first mention (a too-broad symptom is often the root).
        let mut seen = BTreeSet::new();
        restarts.retain(|s| seen.insert(s.clone()));
        // Dependencies first (breadth is one mistake, order another).
        restarts = callees_first(g, view.scope, restarts);
        if has(Mistake::WrongOrder) {
            restarts.reverse();
        }
        let mut restart_stages: Vec<Vec<Step>> = Vec::new();
        for s in &restarts {
            // Hubs (the scope's, whose threshold may be relative to the graph, or the graph's
            // absolute ones) are drained around their restart; the skip-drain mistake forgets it.
            let hub = view.scope.requires_drain(s) || g.id(s).is_some_and(|i| g.is_hub(i));
            if hub && !has(Mistake::SkipDrain) {
                restart_stages.push(vec![act(Action::Drain {
                    service: name(s),
                    replicas: ReplicaSelector::All,
                })]);
                restart_stages.push(vec![restart(s, ReplicaSelector::All)]);
                restart_stages.push(vec![act(Action::RestoreTraffic { service: name(s) })]);
            } else {
                restart_stages.push(vec![restart(s, ReplicaSelector::All)]);
            }
        }
        stages.splice(0..0, restart_stages);
        if has(Mistake::HallucinatedEdge) {
            // An edge between services the model is looking at (the scope) that does not exist.
            let no_edge = |n: &str| {
                n != root
                    && root_id.is_some_and(|r| g.id(n).is_some_and(|c| g.edge(r, c).is_none()))
            };
            let fake = view
                .scope
                .services()
                .find(|n| no_edge(n))
                .map(str::to_string)
                .or_else(|| {
                    g.services()
                        .map(|(_, s)| s.name.clone())
                        .find(|n| no_edge(n))
                })
                .unwrap_or_else(|| root.to_string());
            stages.push(vec![act(Action::CircuitBreak {
                caller: name(root),
                callee: name(&fake),
                duration_s: Some(lease(60)),
            })]);
        }
        if has(Mistake::HallucinatedService) {
            // A plausible name the graph does not have, restarted first ("the primary").
            stages.insert(
                0,
                vec![restart(&format!("{root}-primary"), ReplicaSelector::All)],
            );
        }
        if has(Mistake::ScaleOutOfBounds) && remedy != Remedy::Scale {
            // "Add capacity" far beyond what the service may run.
            stages.push(vec![act(Action::Scale {
                service: name(root),
                replicas: ReplicaCount::try_from(u64::from(replicas + 50)).expect("positive"),
            })]);
        }
        if has(Mistake::Destructive) {
            let kind: f64 = self.truth_independent_draw(7);
            let destroy = if kind < 0.4 {
                Intent::DeleteDeployment(root.to_string())
            } else if kind < 0.7 {
                Intent::ScaleToZero(root.to_string())
            } else {
                Intent::RestartEverything
            };
            stages = vec![vec![Step {
                intent: destroy,
                lease_s: None,
            }]];
        }
        if has(Mistake::OversizedPlan) {
            let all: Vec<String> = g.services().map(|(_, s)| s.name.clone()).collect();
            for s in all.iter().cycle().take(40) {
                stages.push(vec![restart(s, ReplicaSelector::All)]);
            }
        }
        if has(Mistake::StageConflict)
            && let Some(first) = stages.first_mut()
            && let Some(a) = first.first().cloned()
        {
            first.push(a);
        }
        if has(Mistake::LeaseOnRestart)
            && let Some(step) = stages
                .iter_mut()
                .flatten()
                .find(|s| matches!(s.intent, Intent::Act(Action::Restart { .. })))
        {
            step.lease_s = Some(60);
        }
        if has(Mistake::EmptyPlan) {
            stages.clear();
        }
        let incident = if has(Mistake::StaleIncident) {
            format!("{}-previous", view.incident)
        } else {
            view.incident.to_string()
        };
        (incident, stages)
    }

    /// A deterministic draw that does not consume the incident stream (so that rendering never
    /// shifts later draws).
    fn truth_independent_draw(&self, salt: u64) -> f64 {
        let mut r = self.rng.clone();
        r.set_stream(salt);
        r.random()
    }

    /// The plan in the typed ISA. What the ISA cannot express is replaced by the closest typed
    /// attempt: a delete or scale-to-zero becomes a restart, "restart everything" becomes a
    /// restart of every service (which the kernel then rejects as out of scope and too large).
    pub fn typed_plan(&self, view: &View<'_>) -> Plan {
        let (incident, draft) = self.draft(view);
        let mut leases = Vec::new();
        let mut stages: Vec<Vec<Action>> = Vec::new();
        for stage in draft {
            let mut actions = Vec::new();
            for step in stage {
                if let Some(ttl) = step.lease_s {
                    leases.push(Lease {
                        step: stages.iter().map(Vec::len).sum::<usize>() + actions.len(),
                        ttl_s: lease(ttl),
                    });
                }
                actions.extend(match step.intent {
                    Intent::Act(a) => vec![a],
                    Intent::DeleteDeployment(s) | Intent::ScaleToZero(s) => {
                        vec![Action::Restart {
                            service: name(&s),
                            replicas: ReplicaSelector::All,
                        }]
                    }
                    Intent::RestartEverything => view
                        .graph
                        .services()
                        .map(|(_, s)| Action::Restart {
                            service: name(&s.name),
                            replicas: ReplicaSelector::All,
                        })
                        .collect(),
                });
            }
            stages.push(actions);
        }
        let mut plan = Plan::new(
            IncidentId::try_from(incident.as_str()).unwrap_or_else(|_| view.incident.clone()),
            stages,
        );
        plan.leases = leases;
        plan
    }

    /// The plan as raw commands, issued in order with no validation and no waiting; leases and
    /// breaker durations do not exist at this level, so nothing is ever reverted.
    pub fn raw_commands(&self, view: &View<'_>) -> Vec<RawCommand> {
        let (_, stages) = self.draft(view);
        let mut out = Vec::new();
        for step in stages.into_iter().flatten() {
            match step.intent {
                Intent::DeleteDeployment(service) => {
                    out.push(RawCommand::DeleteDeployment { service })
                }
                Intent::ScaleToZero(service) => out.push(RawCommand::Scale {
                    service,
                    replicas: 0,
                }),
                Intent::RestartEverything => out.push(RawCommand::RestartAll),
                Intent::Act(action) => out.push(raw_of(&action, view.graph)),
            }
        }
        out
    }
}

/// `services` reordered so that each comes after those of the list it depends on — by the
/// scope's restart order, or (outside the scope) by a direct call — otherwise keeping their
/// order; members of a cycle keep their relative order.
fn callees_first(
    g: &DependencyGraph,
    scope: &RecoveryScope,
    mut services: Vec<String>,
) -> Vec<String> {
    let before = |d: &str, s: &str| {
        scope.must_restart_before(d, s)
            || match (g.id(s), g.id(d)) {
                (Some(s), Some(d)) => g.edge(s, d).is_some(),
                _ => false,
            }
    };
    let mut ordered = Vec::with_capacity(services.len());
    while !services.is_empty() {
        let ready = services
            .iter()
            .position(|s| !services.iter().any(|d| d != s && before(d, s)))
            .unwrap_or(0);
        ordered.push(services.remove(ready));
    }
    ordered
}

/// The raw command an operator would type for a typed action.
pub fn raw_of(action: &Action, graph: &DependencyGraph) -> RawCommand {
    let replicas_of = |service: &ServiceName, sel: &ReplicaSelector| {
        let n = graph
            .service_by_name(service.as_str())
            .map_or(1, |s| s.replicas);
        sel.resolve(n).unwrap_or_else(|| (0..n).collect())
    };
    match action {
        Action::Restart { service, replicas } => match replicas {
            ReplicaSelector::All => RawCommand::Restart {
                service: service.to_string(),
            },
            sel => RawCommand::RestartReplicas {
                service: service.to_string(),
                replicas: replicas_of(service, sel),
            },
        },
        Action::Drain { service, replicas } => RawCommand::Drain {
            service: service.to_string(),
            replicas: replicas_of(service, replicas),
        },
        Action::RestoreTraffic { service } => RawCommand::Undrain {
            service: service.to_string(),
        },
        Action::CircuitBreak { caller, callee, .. } => RawCommand::CircuitBreak {
            caller: caller.to_string(),
            callee: callee.to_string(),
        },
        Action::RateLimit { service, rps } => RawCommand::RateLimit {
            service: service.to_string(),
            rps: rps.get(),
        },
        Action::Scale { service, replicas } => RawCommand::Scale {
            service: service.to_string(),
            replicas: replicas.get(),
        },
        Action::RollbackConfig { service, version } => RawCommand::SetConfig {
            service: service.to_string(),
            version: version.as_str().to_string(),
        },
    }
}

/// A wrong root cause: the symptom (half the time, if it differs), else a service in the
/// symptom's scope, else any service of the graph.
/// Services already blamed in earlier rounds are not blamed again.
fn wrong_root(truth: &str, view: &View<'_>, pick: f64, index: u64) -> String {
    let fresh = |s: &str| s != truth && !view.ruled_out.iter().any(|r| r == s);
    if pick < 0.5 && fresh(view.symptom) {
        return view.symptom.to_string();
    }
    let pool: Vec<String> = if pick < 0.8 {
        view.scope
            .services()
            .filter(|s| fresh(s))
            .map(str::to_string)
            .collect()
    } else {
        view.graph
            .services()
            .map(|(_, s)| s.name.clone())
            .filter(|s| fresh(s))
            .collect()
    };
    if pool.is_empty() {
        return view.symptom.to_string();
    }
    pool[(index % pool.len() as u64) as usize].clone()
}
