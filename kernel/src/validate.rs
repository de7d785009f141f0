//! Plan validation: structural rules, every violation named (DESIGN §5).
//!
//! [`validate`] is a pure function of the plan, the current dependency graph, the incident's
//! [`RecoveryScope`] and a read-only [`KernelView`] of the kernel's state (locks held by executing
//! plans, restarts in the budget window). It does not predict effects; it checks that a plan stays
//! inside the structure that makes recovery safe, and returns **all** violations, each with a
//! stable rule id, the offending step and target.
//!
//! | id | rejects a plan when |
//! |---|---|
//! | `R1-unknown-target` | a target service, or a replica of it, does not exist in the current graph |
//! | `R2-out-of-scope` | a target lies outside the incident's scope (for a circuit break, the callee) |
//! | `R3-drain-before-restart` | a hub is restarted without a drain of those replicas in an earlier stage and a traffic restore in a later one |
//! | `R4-restart-order` | a service restarts in the same stage as, or before, a service it depends on |
//! | `R5-replica-bounds` | a scale leaves fewer than `min_replicas` or more than `max_replicas` |
//! | `R6-rate-limit-floor` | a rate limit sheds more than half the service's baseline rate (or the baseline is unknown) |
//! | `R7-unknown-edge` | a circuit break names an edge absent from the graph |
//! | `R8-unknown-config-version` | a config rollback names a version not in the service's history |
//! | `R9-unclosed-reversible` | a drain, circuit break or rate limit has neither its inverse later in the plan nor a lease |
//! | `R10-group-size` | the plan restarts more than `MAX_GROUP_SIZE` services |
//! | `R11-restart-budget` | the plan's restarts would exceed the restart budget (intensity per period) |
//! | `R12-plan-length` | the plan has more than `MAX_PLAN_STEPS` steps |
//! | `R13-lock-conflict` | a target is locked by a plan still executing |
//! | `R14-incident-mismatch` | the plan answers a different incident than the scope's |
//! | `R15-empty-plan` | the plan, or one of its stages, has no step |
//! | `R16-stage-conflict` | two actions of one (parallel) stage touch the same service |
//! | `R17-bad-lease` | a lease names a missing step, a step that cannot be reverted, a step that removes a degradation (`restore_traffic`), or a step twice |
//! | `R18-no-failure-evidence` | with a health snapshot: the target of a restart, drain or scale, or the callee of a circuit break, shows no failure (alert, failing probe, violated SLO) and restarts with no service that does (same recovery group); or a config rollback targets a service whose configuration did not change within the evidence window |
//! | `R19-drain-without-surge` | after a drain still in force when the plan ends (no `restore_traffic` of the service later in the plan), or a later scale of its service, fewer replicas serve than before the plan: no unleased scale in an earlier stage added as many as the plan's lasting drains take out |
//!
//! Decisions beyond DESIGN §5: a rate limit's inverse cannot be written in the ISA (it is
//! "the previous limit"), so rate limits and circuit breaks close only through a lease (a circuit
//! break's own `duration_s` counts as one); a drain closes by a `restore_traffic` of the same
//! service in a later stage. Plans touching a locked service are refused, not queued: the caller
//! resubmits once the other plan finishes, which serialises overlapping plans while disjoint ones
//! run in parallel.

use crate::graph::{DependencyGraph, ServiceId};
use crate::health::Health;
use crate::isa::{Action, ActionKind, IncidentId, Plan, ReplicaSelector};
use crate::scope::{RecoveryScope, ScopeSlot};
use crate::txn::PlanId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A validation rule, identified by a stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Rule {
    /// `R1-unknown-target`
    #[serde(rename = "R1-unknown-target")]
    UnknownTarget,
    /// `R2-out-of-scope`
    #[serde(rename = "R2-out-of-scope")]
    OutOfScope,
    /// `R3-drain-before-restart`
    #[serde(rename = "R3-drain-before-restart")]
    DrainBeforeRestart,
    /// `R4-restart-order`
    #[serde(rename = "R4-restart-order")]
    RestartOrder,
    /// `R5-replica-bounds`
    #[serde(rename = "R5-replica-bounds")]
    ReplicaBounds,
    /// `R6-rate-limit-floor`
    #[serde(rename = "R6-rate-limit-floor")]
    RateLimitFloor,
    /// `R7-unknown-edge`
    #[serde(rename = "R7-unknown-edge")]
    UnknownEdge,
    /// `R8-unknown-config-version`
    #[serde(rename = "R8-unknown-config-version")]
    UnknownConfigVersion,
    /// `R9-unclosed-reversible`
    #[serde(rename = "R9-unclosed-reversible")]
    UnclosedReversible,
    /// `R10-group-size`
    #[serde(rename = "R10-group-size")]
    GroupSize,
    /// `R11-restart-budget`
    #[serde(rename = "R11-restart-budget")]
    RestartBudget,
    /// `R12-plan-length`
    #[serde(rename = "R12-plan-length")]
    PlanLength,
    /// `R13-lock-conflict`
    #[serde(rename = "R13-lock-conflict")]
    LockConflict,
    /// `R14-incident-mismatch`
    #[serde(rename = "R14-incident-mismatch")]
    IncidentMismatch,
    /// `R15-empty-plan`
    #[serde(rename = "R15-empty-plan")]
    EmptyPlan,
    /// `R16-stage-conflict`
    #[serde(rename = "R16-stage-conflict")]
    StageConflict,
    /// `R17-bad-lease`
    #[serde(rename = "R17-bad-lease")]
    BadLease,
    /// `R18-no-failure-evidence`
    #[serde(rename = "R18-no-failure-evidence")]
    NoFailureEvidence,
    /// `R19-drain-without-surge`
    #[serde(rename = "R19-drain-without-surge")]
    DrainWithoutSurge,
}

impl Rule {
    /// Every rule, in id order.
    pub const ALL: [Rule; 19] = [
        Rule::UnknownTarget,
        Rule::OutOfScope,
        Rule::DrainBeforeRestart,
        Rule::RestartOrder,
        Rule::ReplicaBounds,
        Rule::RateLimitFloor,
        Rule::UnknownEdge,
        Rule::UnknownConfigVersion,
        Rule::UnclosedReversible,
        Rule::GroupSize,
        Rule::RestartBudget,
        Rule::PlanLength,
        Rule::LockConflict,
        Rule::IncidentMismatch,
        Rule::EmptyPlan,
        Rule::StageConflict,
        Rule::BadLease,
        Rule::NoFailureEvidence,
        Rule::DrainWithoutSurge,
    ];

    /// The stable id, e.g. `R3-drain-before-restart`.
    pub fn id(self) -> &'static str {
        match self {
            Rule::UnknownTarget => "R1-unknown-target",
            Rule::OutOfScope => "R2-out-of-scope",
            Rule::DrainBeforeRestart => "R3-drain-before-restart",
            Rule::RestartOrder => "R4-restart-order",
            Rule::ReplicaBounds => "R5-replica-bounds",
            Rule::RateLimitFloor => "R6-rate-limit-floor",
            Rule::UnknownEdge => "R7-unknown-edge",
            Rule::UnknownConfigVersion => "R8-unknown-config-version",
            Rule::UnclosedReversible => "R9-unclosed-reversible",
            Rule::GroupSize => "R10-group-size",
            Rule::RestartBudget => "R11-restart-budget",
            Rule::PlanLength => "R12-plan-length",
            Rule::LockConflict => "R13-lock-conflict",
            Rule::IncidentMismatch => "R14-incident-mismatch",
            Rule::EmptyPlan => "R15-empty-plan",
            Rule::StageConflict => "R16-stage-conflict",
            Rule::BadLease => "R17-bad-lease",
            Rule::NoFailureEvidence => "R18-no-failure-evidence",
            Rule::DrainWithoutSurge => "R19-drain-without-surge",
        }
    }

    /// The rule with id `id`.
    pub fn from_id(id: &str) -> Option<Rule> {
        Rule::ALL.into_iter().find(|r| r.id() == id)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// The offending step (numbered from 0 across stages), if the rule concerns one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    /// The offending service, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Human explanation.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.rule)?;
        if let Some(step) = self.step {
            write!(f, " at step {step}")?;
        }
        if let Some(target) = &self.target {
            write!(f, " ({target})")?;
        }
        write!(f, ": {}", self.detail)
    }
}

/// The kernel's answer to a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// Incident the plan claimed to answer.
    pub incident: IncidentId,
    /// Every violation, ordered by step then rule. Empty means accepted.
    pub violations: Vec<Violation>,
}

impl Verdict {
    /// Whether the plan may execute.
    pub fn accepted(&self) -> bool {
        self.violations.is_empty()
    }

    /// The distinct rules violated, in id order.
    pub fn rules(&self) -> Vec<Rule> {
        let mut rules: Vec<Rule> = self.violations.iter().map(|v| v.rule).collect();
        rules.sort_unstable();
        rules.dedup();
        rules
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.accepted() {
            return write!(f, "ACCEPTED plan for incident {}", self.incident);
        }
        write!(
            f,
            "REJECTED plan for incident {}: {} violation(s)",
            self.incident,
            self.violations.len()
        )?;
        for v in &self.violations {
            write!(f, "\n  - {v}")?;
        }
        Ok(())
    }
}

/// Numeric limits the validator enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most steps in a plan.
    pub max_plan_steps: usize,
    /// Most services a plan may restart.
    pub max_group_size: usize,
    /// Restarts allowed per budget period, kernel-wide (OTP supervisor "intensity").
    pub restart_intensity: u32,
    /// Length of the budget period, seconds (OTP supervisor "period").
    pub restart_period_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_plan_steps: crate::MAX_PLAN_STEPS,
            max_group_size: crate::MAX_GROUP_SIZE,
            restart_intensity: 10,
            restart_period_s: 300,
        }
    }
}

/// What validation may read of the kernel's state.
#[derive(Clone, Copy, Debug)]
pub struct KernelView<'a> {
    /// Service → plan holding its lock.
    pub locks: &'a BTreeMap<String, PlanId>,
    /// Restarts executed within the current budget period.
    pub restarts_in_window: u32,
    /// Limits in force.
    pub limits: Limits,
    /// What monitoring reports, when the evidence guard is on (`R18`); `None` checks the plan's
    /// structure only.
    pub health: Option<&'a Health>,
}

static NO_LOCKS: BTreeMap<String, PlanId> = BTreeMap::new();

impl KernelView<'static> {
    /// A kernel with nothing executing, an unused budget and default limits.
    pub fn idle() -> Self {
        KernelView {
            locks: &NO_LOCKS,
            restarts_in_window: 0,
            limits: Limits::default(),
            health: None,
        }
    }
}

/// One step with its names resolved once, so that the rules below work on ids and scope slots
/// instead of repeating hash lookups (validation must take microseconds).
struct StepInfo<'p> {
    step: usize,
    stage: usize,
    action: &'p Action,
    /// The service acted on (the caller, for a circuit break).
    id: Option<ServiceId>,
    /// The circuit break's callee.
    callee: Option<ServiceId>,
    /// Scope slot of the service that must be in scope (the callee, for a circuit break).
    slot: Option<ScopeSlot>,
    /// The service's replica count when this step runs: the graph's, unless a scale in an
    /// earlier stage of this plan changed it.
    replicas: u32,
}

impl StepInfo<'_> {
    fn is_restore_of(&self, id: Option<ServiceId>) -> bool {
        id.is_some() && self.id == id && matches!(self.action, Action::RestoreTraffic { .. })
    }

    /// Whether a later stage of the plan restores traffic to this step's service.
    fn restored_later(&self, steps: &[StepInfo<'_>]) -> bool {
        steps
            .iter()
            .any(|later| later.stage > self.stage && later.is_restore_of(self.id))
    }
}

/// Validates `plan` (see the [module documentation](self) for the rules).
pub fn validate(
    plan: &Plan,
    graph: &DependencyGraph,
    scope: &RecoveryScope,
    view: &KernelView<'_>,
) -> Verdict {
    let mut out = Vec::new();
    let plan_level = |rule, detail: String| Violation {
        rule,
        step: None,
        target: None,
        detail,
    };
    if plan.incident != *scope.incident() {
        out.push(plan_level(
            Rule::IncidentMismatch,
            format!(
                "plan answers incident `{}` but the scope is for `{}`",
                plan.incident,
                scope.incident()
            ),
        ));
    }
    let step_count = plan.step_count();
    if step_count == 0 {
        out.push(plan_level(Rule::EmptyPlan, "the plan has no step".into()));
    }
    for (i, stage) in plan.stages.iter().enumerate() {
        if stage.is_empty() && step_count > 0 {
            out.push(plan_level(Rule::EmptyPlan, format!("stage {i} is empty")));
        }
    }
    if step_count > view.limits.max_plan_steps {
        out.push(plan_level(
            Rule::PlanLength,
            format!(
                "{step_count} steps, more than the {} allowed",
                view.limits.max_plan_steps
            ),
        ));
    }

    // Replica counts as earlier stages' scales leave them (a plan may scale, then drain).
    let mut scaled: Vec<(ServiceId, u32)> = Vec::new();
    let mut scaling_now: Vec<(ServiceId, u32)> = Vec::new();
    let mut stage_now = 0;
    let steps: Vec<StepInfo<'_>> = plan
        .steps()
        .map(|(r, action)| {
            if r.stage != stage_now {
                scaled.append(&mut scaling_now);
                stage_now = r.stage;
            }
            let callee = match action {
                Action::CircuitBreak { callee, .. } => Some(callee.as_str()),
                _ => None,
            };
            let scoped = callee.unwrap_or(action.service().as_str());
            let id = graph.id(action.service().as_str());
            let replicas = id.map_or(0, |id| {
                scaled
                    .iter()
                    .rev()
                    .find(|(s, _)| *s == id)
                    .map_or(graph.service(id).replicas, |&(_, n)| n)
            });
            if let (Action::Scale { replicas: n, .. }, Some(id)) = (action, id) {
                scaling_now.push((id, n.get()));
            }
            StepInfo {
                step: r.step,
                stage: r.stage,
                action,
                id,
                callee: callee.and_then(|c| graph.id(c)),
                slot: scope.slot(scoped),
                replicas,
            }
        })
        .collect();

    for info in &steps {
        check_step(plan, graph, scope, view, &steps, info, &mut out);
    }
    check_restarts(scope, view, &steps, &mut out);
    check_leases(plan, &steps, &mut out);
    check_surges(plan, graph, &steps, &mut out);

    out.sort_by_key(|v| (v.step, v.rule));
    Verdict {
        incident: plan.incident.clone(),
        violations: out,
    }
}

/// Rules that concern one step on its own (and its relation to the rest of its stage).
fn check_step(
    plan: &Plan,
    graph: &DependencyGraph,
    scope: &RecoveryScope,
    view: &KernelView<'_>,
    steps: &[StepInfo<'_>],
    info: &StepInfo<'_>,
    out: &mut Vec<Violation>,
) {
    let action = info.action;
    let violation = |rule, target: &str, detail: String| Violation {
        rule,
        step: Some(info.step),
        target: Some(target.to_string()),
        detail,
    };
    // Existence, locks and in-stage conflicts for every target.
    let resolved = [info.id, info.callee];
    for (target, id) in action.targets().zip(resolved) {
        let name = target.as_str();
        if id.is_none() {
            out.push(violation(
                Rule::UnknownTarget,
                name,
                "no such service in the current dependency graph".into(),
            ));
        }
        if !view.locks.is_empty()
            && let Some(holder) = view.locks.get(name)
        {
            out.push(violation(
                Rule::LockConflict,
                name,
                format!("locked by executing plan {holder}"),
            ));
        }
        // Steps are in stage order, so this stage's earlier steps sit right before this one.
        let clash = steps[..info.step]
            .iter()
            .rev()
            .take_while(|other| other.stage == info.stage)
            .find(|other| other.action.targets().any(|t| t == target));
        if let Some(other) = clash {
            out.push(violation(
                Rule::StageConflict,
                name,
                format!(
                    "step {} of the same parallel stage also touches it",
                    other.step
                ),
            ));
        }
    }
    // Scope: the service acted on must be in scope; for a circuit break, the callee.
    let (scoped_name, scoped_id) = match action {
        Action::CircuitBreak { callee, .. } => (callee.as_str(), info.callee),
        _ => (action.service().as_str(), info.id),
    };
    if scoped_id.is_some() && info.slot.is_none() {
        let why = if scope.is_truncated(scoped_name) {
            format!(
                "reachable from `{}` but cut by the scope's size cap",
                scope.symptom()
            )
        } else if scope.was_truncated() {
            format!(
                "not in the scope of `{}` (which the size cap truncated)",
                scope.symptom()
            )
        } else {
            format!("not downstream of the symptom `{}`", scope.symptom())
        };
        out.push(violation(Rule::OutOfScope, scoped_name, why));
    }

    if let Some(health) = view.health {
        check_evidence(health, scope, action, info, out);
    }

    let name = action.service().as_str();
    let Some(id) = info.id else {
        return;
    };
    let service = graph.service(id);
    match action {
        Action::Restart { replicas, .. } | Action::Drain { replicas, .. } => {
            if !replicas.fits(info.replicas) {
                out.push(violation(
                    Rule::UnknownTarget,
                    name,
                    format!(
                        "names {replicas}, but the service has {} at this step",
                        info.replicas
                    ),
                ));
            }
        }
        Action::Scale { replicas, .. } => {
            let n = replicas.get();
            if n < service.min_replicas || n > service.max_replicas {
                out.push(violation(
                    Rule::ReplicaBounds,
                    name,
                    format!(
                        "{n} replicas is outside [{}, {}]",
                        service.min_replicas, service.max_replicas
                    ),
                ));
            }
        }
        Action::RateLimit { rps, .. } => match graph.baseline_rps(id) {
            Some(baseline) if rps.get() >= 0.5 * baseline => {}
            Some(baseline) => out.push(violation(
                Rule::RateLimitFloor,
                name,
                format!(
                    "{} rps sheds more than half of the {baseline:.1} rps baseline",
                    rps.get()
                ),
            )),
            None => out.push(violation(
                Rule::RateLimitFloor,
                name,
                "baseline rate unknown, so the shed fraction cannot be bounded".into(),
            )),
        },
        Action::CircuitBreak { callee, .. } => {
            if let Some(callee_id) = info.callee
                && graph.edge(id, callee_id).is_none()
            {
                out.push(violation(
                    Rule::UnknownEdge,
                    name,
                    format!("no edge {name} -> {callee} in the current graph"),
                ));
            }
        }
        Action::RollbackConfig { version, .. } => {
            if !service
                .config_versions
                .iter()
                .any(|v| v == version.as_str())
            {
                out.push(violation(
                    Rule::UnknownConfigVersion,
                    name,
                    format!(
                        "version `{}` is not in the history {:?}",
                        version.as_str(),
                        service.config_versions
                    ),
                ));
            }
        }
        Action::RestoreTraffic { .. } => {}
    }

    if action.kind().must_be_closed() && plan.lease(info.step).is_none() {
        let closed = match action {
            Action::Drain { .. } => info.restored_later(steps),
            Action::CircuitBreak { duration_s, .. } => duration_s.is_some(),
            _ => false,
        };
        if !closed {
            let how = match action.kind() {
                ActionKind::Drain => "a later restore_traffic or a lease",
                ActionKind::CircuitBreak => "a duration_s or a lease",
                _ => "a lease",
            };
            out.push(violation(
                Rule::UnclosedReversible,
                name,
                format!("{} is never closed: add {how}", action.kind()),
            ));
        }
    }
}

/// `R19`: a drain that outlasts its plan must not cost capacity. Draining the failing replicas
/// of a service that still has healthy ones moves their share of the load onto the rest, whose
/// queues then grow (the harm the paper's 10 % latency rule counts); a rolling update with
/// `maxUnavailable: 0` avoids that by surging first. So the plan must scale the service up, in an
/// earlier stage, by at least as many replicas as its lasting drains take out of load balancing,
/// and keep them: after every lasting drain and every later scale of the service, as many
/// replicas serve as before the plan. A leased scale counts at the lower of its two counts (its
/// lease puts the old count back while the drain may still hold). A drain closed by a
/// `restore_traffic` later in the same plan brackets a restart of the same replicas, which are
/// out of service during it anyway; R3 governs it instead.
fn check_surges(
    plan: &Plan,
    graph: &DependencyGraph,
    steps: &[StepInfo<'_>],
    out: &mut Vec<Violation>,
) {
    let lasting = |info: &StepInfo<'_>| {
        matches!(info.action, Action::Drain { .. }) && !info.restored_later(steps)
    };
    if !steps.iter().any(lasting) {
        return; // the common plan: validation must stay microseconds
    }
    // Per service acted on: replicas R19 may count on, and the replicas lasting drains hold.
    let mut state: BTreeMap<ServiceId, (u32, Vec<u32>)> = BTreeMap::new();
    for info in steps {
        let Some(id) = info.id else { continue };
        let before = graph.service(id).replicas;
        let (count, drained) = match info.action {
            Action::Drain { replicas, .. } if lasting(info) => {
                // R1 names a selector that does not fit.
                let Some(ids) = replicas.resolve(info.replicas) else {
                    continue;
                };
                let (count, drained) = state.entry(id).or_insert((before, Vec::new()));
                drained.extend(ids);
                drained.sort_unstable();
                drained.dedup();
                (*count, &*drained)
            }
            Action::Scale { replicas, .. } => {
                let n = replicas.get();
                let (count, drained) = state.entry(id).or_insert((before, Vec::new()));
                *count = if plan.lease(info.step).is_some() {
                    n.min(*count)
                } else {
                    n
                };
                if drained.is_empty() {
                    continue;
                }
                (*count, &*drained)
            }
            _ => continue,
        };
        let out_of_service = drained.iter().filter(|&&r| r < count).count() as u32;
        let serving = count - out_of_service;
        if serving >= before {
            continue;
        }
        let name = info.action.service().as_str();
        let detail = match info.action {
            Action::Drain {
                replicas: ReplicaSelector::All,
                ..
            } => format!(
                "drains every replica, surged ones too: nothing serves. Name the failing \
                 replicas, after a scale of {name} by as many in an earlier stage"
            ),
            Action::Drain { .. } => format!(
                "leaves {serving} of the {before} replicas serving: scale {name} to {} \
                 replicas in an earlier stage first (not under a lease)",
                before + out_of_service
            ),
            _ => format!(
                "leaves {serving} of the {before} replicas serving while this plan's drains \
                 of {name} hold"
            ),
        };
        out.push(Violation {
            rule: Rule::DrainWithoutSurge,
            step: Some(info.step),
            target: Some(name.to_string()),
            detail,
        });
    }
}

/// `R18`: act only where monitoring shows failure. A restart, drain or scale needs its target,
/// a circuit break its callee, to show failure or to share a recovery group (an SCC or a
/// start-up coupling: they restart together) with a service that does; a config rollback needs
/// a configuration change within the evidence window. Rate limits and restores are left to the
/// other rules: shedding load is how one protects a healthy service, and a restore removes a
/// degradation.
fn check_evidence(
    health: &Health,
    scope: &RecoveryScope,
    action: &Action,
    info: &StepInfo<'_>,
    out: &mut Vec<Violation>,
) {
    let target = match action {
        Action::CircuitBreak { callee, .. } => callee.as_str(),
        Action::Restart { service, .. }
        | Action::Drain { service, .. }
        | Action::Scale { service, .. }
        | Action::RollbackConfig { service, .. } => service.as_str(),
        Action::RateLimit { .. } | Action::RestoreTraffic { .. } => return,
    };
    let known = match action {
        Action::CircuitBreak { .. } => info.callee.is_some(),
        _ => info.id.is_some(),
    };
    if !known {
        return; // R1 names it; there is no evidence to weigh for a service that does not exist
    }
    let detail = if let Action::RollbackConfig { .. } = action {
        if health.config_changed(target) {
            return;
        }
        "its configuration did not change within the evidence window, so a rollback has nothing \
         to undo"
            .to_string()
    } else {
        if health.failing(target) {
            return;
        }
        let coupled = info.slot.and_then(|slot| {
            scope.groups()[slot.group]
                .members
                .iter()
                .find(|m| health.failing(m))
        });
        if coupled.is_some() {
            return;
        }
        format!(
            "shows no failure (no alert, failing probe or violated SLO) and restarts with no \
             service that does: {} would act on a healthy service",
            action.kind()
        )
    };
    out.push(Violation {
        rule: Rule::NoFailureEvidence,
        step: Some(info.step),
        target: Some(target.to_string()),
        detail,
    });
}

/// Rules about the plan's restarts as a whole: hub drains, order, group size, budget.
fn check_restarts(
    scope: &RecoveryScope,
    view: &KernelView<'_>,
    steps: &[StepInfo<'_>],
    out: &mut Vec<Violation>,
) {
    let restarts: Vec<&StepInfo<'_>> = steps
        .iter()
        .filter(|s| matches!(s.action, Action::Restart { .. }))
        .collect();
    let count = restarts.len();
    if count == 0 {
        return;
    }

    for &restart in &restarts {
        if restart.slot.is_some_and(|s| s.requires_drain) {
            check_hub_drain(steps, restart, out);
        }
    }

    for &b in &restarts {
        for &a in &restarts {
            let (Some(sa), Some(sb)) = (a.slot, b.slot) else {
                continue;
            };
            let (name_a, name_b) = (a.action.service().as_str(), b.action.service().as_str());
            let precedes = if sa.group != sb.group {
                scope.group_precedes(sa.group, sb.group)
            } else {
                name_a != name_b && scope.startup_precedes(name_a, name_b)
            };
            if precedes && a.stage >= b.stage {
                out.push(Violation {
                    rule: Rule::RestartOrder,
                    step: Some(b.step),
                    target: Some(name_b.to_string()),
                    detail: format!(
                        "restarts in stage {}, but `{name_a}` (step {}, stage {}) \
                         must finish restarting first",
                        b.stage, a.step, a.stage
                    ),
                });
            }
        }
    }

    let mut distinct: Vec<&str> = restarts
        .iter()
        .map(|r| r.action.service().as_str())
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() > view.limits.max_group_size {
        out.push(Violation {
            rule: Rule::GroupSize,
            step: None,
            target: None,
            detail: format!(
                "restarts {} services, more than the {} allowed",
                distinct.len(),
                view.limits.max_group_size
            ),
        });
    }
    let wanted = count as u32;
    if view.restarts_in_window.saturating_add(wanted) > view.limits.restart_intensity {
        out.push(Violation {
            rule: Rule::RestartBudget,
            step: None,
            target: None,
            detail: format!(
                "{wanted} restart(s) on top of {} in the last {} s exceed the budget of {}",
                view.restarts_in_window,
                view.limits.restart_period_s,
                view.limits.restart_intensity
            ),
        });
    }
}

/// `R3`: a hub's restarted replicas must be drained when the restart runs — by state, not by
/// syntax: a `restore_traffic` between the drain and the restart puts them back — and traffic
/// restored in a later stage.
fn check_hub_drain(steps: &[StepInfo<'_>], restart: &StepInfo<'_>, out: &mut Vec<Violation>) {
    let Action::Restart { replicas: sel, .. } = restart.action else {
        return;
    };
    // The hub's drained replicas as the earlier stages leave them, in the executor's order: a
    // drain adds, a restore_traffic empties the set, a scale-down forgets removed ordinals.
    let mut drained: Vec<u32> = Vec::new();
    for earlier in steps
        .iter()
        .filter(|s| s.stage < restart.stage && s.id == restart.id)
    {
        match earlier.action {
            Action::Drain { replicas: d, .. } => {
                drained.extend(d.resolve(earlier.replicas).unwrap_or_default());
            }
            Action::RestoreTraffic { .. } => drained.clear(),
            Action::Scale { replicas: n, .. } => drained.retain(|&r| r < n.get()),
            _ => {}
        }
    }
    let covered = sel
        .resolve(restart.replicas)
        .is_some_and(|r| r.iter().all(|x| drained.contains(x)));
    let restored = restart.restored_later(steps);
    if !covered || !restored {
        let missing = match (covered, restored) {
            (false, false) => {
                "a drain of the restarted replicas before it and a restore_traffic after it"
            }
            (false, true) => "a drain of the restarted replicas in an earlier stage",
            _ => "a restore_traffic in a later stage",
        };
        out.push(Violation {
            rule: Rule::DrainBeforeRestart,
            step: Some(restart.step),
            target: Some(restart.action.service().as_str().to_string()),
            detail: format!("hub restart needs {missing}"),
        });
    }
}

/// `R17`: leases must name existing, revertible steps, once each.
fn check_leases(plan: &Plan, steps: &[StepInfo<'_>], out: &mut Vec<Violation>) {
    for (i, lease) in plan.leases.iter().enumerate() {
        let problem = match steps.get(lease.step) {
            None => Some(format!(
                "lease {i} names step {}, which does not exist",
                lease.step
            )),
            Some(info)
                if matches!(
                    info.action.kind(),
                    ActionKind::Restart | ActionKind::RollbackConfig
                ) =>
            {
                Some(format!(
                    "lease {i} is on a {}, which a lease cannot revert",
                    info.action.kind()
                ))
            }
            // Reverting a restore would re-impose the degradation it removed.
            Some(info) if info.action.kind() == ActionKind::RestoreTraffic => Some(format!(
                "lease {i} is on a restore_traffic, which removes a degradation: reverting it \
                 would drain the service again"
            )),
            Some(_) if plan.leases[..i].iter().any(|l| l.step == lease.step) => {
                Some(format!("lease {i} repeats a lease on step {}", lease.step))
            }
            Some(_) => None,
        };
        if let Some(detail) = problem {
            out.push(Violation {
                rule: Rule::BadLease,
                step: (lease.step < steps.len()).then_some(lease.step),
                target: None,
                detail,
            });
        }
    }
}
