//! Transactional execution of accepted plans (DESIGN §6).
//!
//! The [`Kernel`] is sans-I/O: the host calls [`Kernel::submit`] with a plan and
//! [`Kernel::poll`] with the current time and an [`Actuator`] whenever something may have
//! changed (the testbed polls every few hundred milliseconds of virtual time). Nothing blocks, so
//! a plan's restarts can take their real start-up time in a simulation without the kernel ever
//! sleeping.
//!
//! Execution of a plan:
//! 1. On submission the plan is validated ([`crate::validate`]). If accepted, every service it
//!    touches is locked; a later plan touching a locked service is rejected with
//!    `R13-lock-conflict` (refused, not queued: plans on disjoint services run in parallel,
//!    overlapping ones are serialised by resubmission).
//! 2. Stages run in order. For each action of a stage the kernel observes the target's state,
//!    lowers the action to a concrete [`ControlOp`], derives the op's exact undo from the same
//!    observation, applies the op and journals it. Then it waits until every post-condition of
//!    the stage holds, or fails, or the stage's deadline passes.
//! 3. On any failure it aborts: in reverse order it undoes reversible steps, compensates
//!    compensatable ones (each waiting for its own post-condition) and journals restarts as
//!    not undoable. Then it releases the locks.
//! 4. On success it commits, releases the locks and arms the plan's leases (and circuit-break
//!    durations); when one expires the kernel applies the step's undo, deferring while another
//!    executing plan holds the service's lock.
//!
//! The restart budget counts restarts kernel-wide over a sliding period, like an OTP supervisor's
//! intensity/period.

use crate::graph::DependencyGraph;
use crate::health::Health;
use crate::isa::{Action, LeaseSeconds, Plan, RollbackClass};
use crate::journal::{Event, Journal};
use crate::lease::{Knob, LeaseBook, LeaseId};
use crate::scope::RecoveryScope;
use crate::state::{ControlOp, ControlState, ServiceControl};
use crate::time::VirtualTime;
use crate::validate::{KernelView, Limits, Verdict, validate};
use crate::watchdog::{Watch, WatchdogConfig};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::time::Duration;

/// Identifier the kernel gives every proposal.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct PlanId(pub u64);

impl fmt::Display for PlanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "plan-{}", self.0)
    }
}

/// A post-condition reading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// The operation's effect is in place (replicas ready, breaker open, limit in force, …).
    Holds,
    /// Not yet (replicas still starting, drained replicas still finishing requests).
    Pending,
    /// It will not hold.
    Failed(String),
}

/// The actuation interface: how the kernel reaches the system.
///
/// Contract: [`apply`](Actuator::apply) is atomic — on `Err` nothing changed. [`observe`]
/// returns the control-plane state the next `apply` would start from.
///
/// [`observe`]: Actuator::observe
pub trait Actuator {
    /// Current control-plane state of `service`, or `None` if it does not exist.
    fn observe(&self, service: &str) -> Option<ServiceControl>;
    /// Applies one operation.
    fn apply(&mut self, op: &ControlOp) -> Result<(), String>;
    /// Reads back the operation's post-condition. `before` is the service's state just before
    /// the operation was applied, so a post-condition can be about what the step changed (the
    /// replicas a scale added) rather than about everything (replicas a fault hung).
    fn check(&self, op: &ControlOp, before: &ServiceControl) -> Check;
}

/// How long the kernel waits for a post-condition before it declares the step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckTimeouts {
    /// Restarts and scale changes (replicas must start and pass readiness), seconds.
    pub startup_s: u64,
    /// Config changes (replicas reload), seconds.
    pub config_s: u64,
    /// Drains, restores, breakers and limits, seconds.
    pub traffic_s: u64,
}

impl Default for CheckTimeouts {
    fn default() -> Self {
        CheckTimeouts {
            startup_s: 300,
            config_s: 120,
            traffic_s: 60,
        }
    }
}

impl CheckTimeouts {
    fn for_op(&self, op: &ControlOp) -> Duration {
        Duration::from_secs(match op {
            ControlOp::Restart { .. } | ControlOp::SetReplicas { .. } => self.startup_s,
            ControlOp::SetConfig { .. } => self.config_s,
            _ => self.traffic_s,
        })
    }
}

/// Which guards beyond the structural rules are on.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Guards {
    /// `R18-no-failure-evidence`: plans act only where the health snapshot shows failure.
    pub evidence: bool,
    /// The SLO watchdog ([`crate::watchdog`]): steps that make their affected services' SLOs
    /// worse are taken back.
    pub watchdog: bool,
    /// Its parameters.
    pub watchdog_params: WatchdogConfig,
    /// Half-open breakers: a breaker a lease holds open closes early once its callee has shown
    /// no failure for this many seconds (the kernel's probe is the monitoring side's health of
    /// the callee); `None` keeps breakers open for their whole duration.
    pub breaker_close_after_s: Option<u64>,
}

impl Default for Guards {
    fn default() -> Self {
        Guards {
            evidence: true,
            watchdog: true,
            watchdog_params: WatchdogConfig::default(),
            breaker_close_after_s: Some(10),
        }
    }
}

/// Kernel configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KernelConfig {
    /// Validation limits, including the restart budget.
    pub limits: Limits,
    /// Post-condition deadlines.
    pub timeouts: CheckTimeouts,
    /// Guards that act on evidence.
    pub guards: Guards,
}

/// How a plan ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Every step's post-condition held.
    Committed,
    /// A step failed; completed steps were undone or compensated.
    Aborted {
        /// The failure.
        reason: String,
        /// Whether every undo succeeded.
        clean: bool,
    },
}

/// The answer to [`Kernel::submit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    /// Id given to the proposal (journaled either way).
    pub plan: PlanId,
    /// The verdict; when accepted the plan is now executing.
    pub verdict: Verdict,
}

/// Lowers a typed action to a concrete operation against the state just before it.
pub fn lower(action: &Action, before: &ServiceControl) -> Result<ControlOp, String> {
    let service = action.service().as_str().to_string();
    Ok(match action {
        Action::Restart { replicas, .. } => ControlOp::Restart {
            replicas: replicas.resolve(before.replicas).ok_or_else(|| {
                format!("{replicas} do not exist: {service} has {}", before.replicas)
            })?,
            service,
        },
        Action::Drain { replicas, .. } => {
            let mut drained = before.drained.clone();
            drained.extend(replicas.resolve(before.replicas).ok_or_else(|| {
                format!("{replicas} do not exist: {service} has {}", before.replicas)
            })?);
            ControlOp::SetDrained { service, drained }
        }
        Action::RestoreTraffic { .. } => ControlOp::SetDrained {
            service,
            drained: BTreeSet::new(),
        },
        Action::CircuitBreak { callee, .. } => ControlOp::SetBreaker {
            caller: service,
            callee: callee.as_str().to_string(),
            open: true,
        },
        Action::RateLimit { rps, .. } => ControlOp::SetRateLimit {
            service,
            rps: Some(rps.get()),
        },
        Action::Scale { replicas, .. } => ControlOp::SetReplicas {
            service,
            replicas: replicas.get(),
        },
        Action::RollbackConfig { version, .. } => ControlOp::SetConfig {
            service,
            version: version.as_str().to_string(),
        },
    })
}

#[derive(Clone, Debug)]
struct AppliedStep {
    step: usize,
    /// The service's state just before the step (the base of a lease on it).
    before: ServiceControl,
    op: ControlOp,
    undo: Option<ControlOp>,
    class: RollbackClass,
    lease: Option<LeaseSeconds>,
    /// The watchdog's watch on the step, when the watchdog is on.
    watch: Option<Watch>,
}

/// A lapsed lease whose revert the watchdog watches: a regression re-imposes the step and
/// renews the lease ([`crate::watchdog`]).
#[derive(Clone, Debug)]
struct Probation {
    lease: LeaseId,
    /// The service the revert touched.
    service: String,
    /// The revert's exact undo: what re-imposes the step.
    reimpose: ControlOp,
    /// The service's state just after the revert: if anything changes it before the probation
    /// trips (another plan's step), the probation is dropped rather than undo that change.
    reverted: ServiceControl,
    /// The renewed lease's length.
    renewed_ttl: Duration,
    watch: Watch,
}

/// A committed step the watchdog still watches.
#[derive(Clone, Debug)]
struct CommittedWatch {
    lease: LeaseId,
    undo: Option<ControlOp>,
    watch: Watch,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Next: issue stage `Txn::stage`.
    Ready,
    /// Stage issued; waiting for its post-conditions.
    Waiting { deadline: VirtualTime, first: usize },
    /// Undoing `Txn::applied[..remaining]` in reverse; `current` awaits its post-condition.
    Undoing {
        reason: String,
        clean: bool,
        remaining: usize,
        current: Option<Box<PendingUndo>>,
    },
}

/// An undo or compensation applied and awaiting its post-condition.
#[derive(Clone, Debug)]
struct PendingUndo {
    step: usize,
    op: ControlOp,
    /// The service's state just before the undo.
    before: ServiceControl,
    deadline: VirtualTime,
}

#[derive(Clone, Debug)]
struct Txn {
    plan: Plan,
    stage: usize,
    phase: Phase,
    applied: Vec<AppliedStep>,
    locked: Vec<String>,
    /// Services the scope says must be drained around a restart (`R3`), asserted at run time.
    hubs: BTreeSet<String>,
    /// Per step, the services whose SLOs it may move: its target (a circuit break's caller) and
    /// every transitive caller in the graph.
    affected: Vec<Vec<String>>,
}

/// Failed reverts of one lease after which the kernel escalates (it keeps retrying).
pub const LEASE_ESCALATE_AFTER: u32 = 3;

/// The microkernel: validator, executor, lock table, restart budget and journal.
/// See the [module documentation](self).
#[derive(Debug, Default)]
pub struct Kernel {
    config: KernelConfig,
    locks: BTreeMap<String, PlanId>,
    restarts: VecDeque<VirtualTime>,
    txns: BTreeMap<PlanId, Txn>,
    leases: LeaseBook,
    /// The latest health snapshot from the monitoring side.
    health: Option<Health>,
    /// Committed steps under the watchdog's eye.
    watches: Vec<CommittedWatch>,
    /// Watched leased steps: their affected services and current lease length, for the
    /// probation of their revert.
    lease_scopes: BTreeMap<LeaseId, (Vec<String>, Duration)>,
    /// Lapsed leases whose revert is on probation.
    probations: Vec<Probation>,
    /// Breaker leases whose callee has looked healthy since then (half-open breakers).
    callee_healthy_since: BTreeMap<LeaseId, VirtualTime>,
    /// Leases whose revert failed [`LEASE_ESCALATE_AFTER`] times, for a human to look at.
    escalated: Vec<LeaseId>,
    journal: Journal,
    next_plan: u64,
}

impl Kernel {
    /// A kernel with `config`.
    pub fn new(config: KernelConfig) -> Self {
        Kernel {
            config,
            ..Default::default()
        }
    }

    /// The configuration.
    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    /// The journal so far.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Service → plan holding its lock.
    pub fn locks(&self) -> &BTreeMap<String, PlanId> {
        &self.locks
    }

    /// Plans still executing (or undoing), in id order.
    pub fn executing(&self) -> impl Iterator<Item = PlanId> + '_ {
        self.txns.keys().copied()
    }

    /// Whether `plan` is still executing.
    pub fn is_executing(&self, plan: PlanId) -> bool {
        self.txns.contains_key(&plan)
    }

    /// Leases armed and not yet expired (including failed reverts awaiting a retry).
    pub fn armed_leases(&self) -> usize {
        self.leases.len()
    }

    /// The live leases.
    pub fn leases(&self) -> &LeaseBook {
        &self.leases
    }

    /// Leases whose revert kept failing and were escalated (the kernel still retries them).
    pub fn escalated_leases(&self) -> &[LeaseId] {
        &self.escalated
    }

    /// Restarts within the budget period ending at `now`.
    pub fn restarts_in_window(&self, now: VirtualTime) -> u32 {
        let period = Duration::from_secs(self.config.limits.restart_period_s);
        self.restarts
            .iter()
            .filter(|&&t| now.since(t) < period)
            .count() as u32
    }

    /// The read-only view validation uses at `now`.
    pub fn view(&self, now: VirtualTime) -> KernelView<'_> {
        KernelView {
            locks: &self.locks,
            restarts_in_window: self.restarts_in_window(now),
            limits: self.config.limits,
            health: self.health.as_ref().filter(|_| self.config.guards.evidence),
        }
    }

    /// Whether the kernel needs fresh health snapshots now: the watchdog watches an executing
    /// plan or a committed step, or a half-open breaker waits for its callee (hosts may skip
    /// the snapshot otherwise).
    pub fn wants_health(&self) -> bool {
        let guards = &self.config.guards;
        (guards.watchdog
            && (!self.txns.is_empty() || !self.watches.is_empty() || !self.probations.is_empty()))
            || (guards.breaker_close_after_s.is_some() && !self.leases.open_breakers().is_empty())
    }

    /// Takes the monitoring side's latest health snapshot; later validations judge failure
    /// evidence (`R18`) against it.
    pub fn observe_health(&mut self, health: Health) {
        self.health = Some(health);
    }

    /// Journals an agent's reply that never became a plan (a real model's unreadable answer),
    /// under [`crate::journal::UNSUBMITTED`], so the journal shows every answer an agent gave,
    /// not only the ones the validator saw. `excerpt` is the start of the reply.
    pub fn refuse(
        &mut self,
        now: VirtualTime,
        incident: crate::isa::IncidentId,
        reason: &str,
        excerpt: &str,
    ) {
        self.journal.append(
            now,
            crate::journal::UNSUBMITTED,
            Event::ProposalRefused {
                incident,
                reason: reason.to_string(),
                reply_excerpt: excerpt.to_string(),
            },
        );
    }

    /// Validates `plan`; if accepted, locks its services and starts executing it at the next
    /// [`poll`](Kernel::poll). Both the proposal and the verdict are journaled.
    pub fn submit(
        &mut self,
        now: VirtualTime,
        plan: Plan,
        graph: &DependencyGraph,
        scope: &RecoveryScope,
    ) -> Submission {
        self.next_plan += 1;
        let id = PlanId(self.next_plan);
        let verdict = validate(&plan, graph, scope, &self.view(now));
        self.journal.append(
            now,
            id,
            Event::Proposal {
                incident: plan.incident.clone(),
                plan: plan.clone(),
            },
        );
        self.journal.append(
            now,
            id,
            Event::Verdict {
                accepted: verdict.accepted(),
                violations: verdict.violations.clone(),
            },
        );
        if verdict.accepted() {
            let mut locked: Vec<String> = plan
                .steps()
                .flat_map(|(_, a)| a.targets().map(|t| t.as_str().to_string()))
                .collect();
            locked.sort();
            locked.dedup();
            let hubs = plan
                .steps()
                .filter(|(_, a)| matches!(a, Action::Restart { .. }))
                .map(|(_, a)| a.service().as_str())
                .filter(|s| scope.requires_drain(s))
                .map(str::to_string)
                .collect();
            let affected = plan
                .steps()
                .map(|(_, a)| upstream_of(graph, a.service().as_str()))
                .collect();
            for service in &locked {
                self.locks.insert(service.clone(), id);
            }
            self.txns.insert(
                id,
                Txn {
                    plan,
                    stage: 0,
                    phase: Phase::Ready,
                    applied: Vec::new(),
                    locked,
                    hubs,
                    affected,
                },
            );
        }
        Submission { plan: id, verdict }
    }

    /// Advances every executing plan and expires due leases. Returns the plans that finished
    /// during this call, in id order.
    pub fn poll<A: Actuator + ?Sized>(
        &mut self,
        now: VirtualTime,
        actuator: &mut A,
    ) -> Vec<(PlanId, Outcome)> {
        let mut finished = Vec::new();
        self.watch_committed(now, actuator);
        let ids: Vec<PlanId> = self.txns.keys().copied().collect();
        for id in ids {
            let mut txn = self.txns.remove(&id).expect("listed above");
            self.watch_executing(now, id, &mut txn);
            match self.advance(now, id, &mut txn, actuator) {
                Some(outcome) => {
                    for service in &txn.locked {
                        self.locks.remove(service);
                    }
                    if outcome == Outcome::Committed {
                        self.arm_leases(now, id, &txn);
                    }
                    finished.push((id, outcome));
                }
                None => {
                    self.txns.insert(id, txn);
                }
            }
        }
        self.close_healed_breakers(now, actuator);
        self.judge_probations(now, actuator);
        self.expire_leases(now, actuator);
        finished
    }

    /// Half-open breakers: a breaker held open by a lease closes once its callee has shown no
    /// failure for `breaker_close_after_s`, as a circuit breaker's half-open probe would find;
    /// the lease ends early, journaled as `breaker_closed`.
    fn close_healed_breakers<A: Actuator + ?Sized>(&mut self, now: VirtualTime, actuator: &mut A) {
        let (Some(after), Some(health)) = (self.config.guards.breaker_close_after_s, &self.health)
        else {
            return;
        };
        let open = self.leases.open_breakers();
        self.callee_healthy_since
            .retain(|id, _| open.iter().any(|(o, _)| o == id));
        for (lease, callee) in open {
            if health.failing(&callee) || health.get(&callee).is_none() {
                self.callee_healthy_since.remove(&lease);
                continue;
            }
            let since = *self.callee_healthy_since.entry(lease).or_insert(now);
            if now.since(since) < Duration::from_secs(after) {
                continue;
            }
            let Some(service) = self
                .leases
                .due(VirtualTime(u64::MAX))
                .into_iter()
                .find(|(l, _)| *l == lease)
                .map(|(_, s)| s)
            else {
                continue;
            };
            if self.locks.contains_key(&service) {
                continue;
            }
            let Some(current) = actuator.observe(&service) else {
                continue;
            };
            let op = self.leases.revert(lease, &current).and_then(|r| r.op);
            if let Some(op) = &op
                && let Err(error) = actuator.apply(op)
            {
                self.journal.append(
                    now,
                    lease.plan,
                    Event::UndoFailed {
                        step: lease.step,
                        op: op.clone(),
                        error,
                    },
                );
                continue;
            }
            self.leases.end(lease);
            self.lease_scopes.remove(&lease);
            self.callee_healthy_since.remove(&lease);
            self.journal.append(
                now,
                lease.plan,
                Event::BreakerClosed {
                    step: lease.step,
                    callee,
                    op,
                },
            );
        }
    }

    /// The earliest time at which polling can make progress without outside change: the nearest
    /// deadline or lease expiry. Hosts may poll earlier (post-conditions change with the system).
    pub fn next_deadline(&self) -> Option<VirtualTime> {
        let deadlines = self.txns.values().filter_map(|t| match &t.phase {
            Phase::Waiting { deadline, .. } => Some(*deadline),
            Phase::Undoing {
                current: Some(pending),
                ..
            } => Some(pending.deadline),
            _ => None,
        });
        deadlines.chain(self.leases.next_expiry()).min()
    }

    fn advance<A: Actuator + ?Sized>(
        &mut self,
        now: VirtualTime,
        id: PlanId,
        txn: &mut Txn,
        actuator: &mut A,
    ) -> Option<Outcome> {
        loop {
            match std::mem::replace(&mut txn.phase, Phase::Ready) {
                Phase::Ready => {
                    if txn.stage == txn.plan.stages.len() {
                        self.journal.append(now, id, Event::Commit);
                        return Some(Outcome::Committed);
                    }
                    txn.phase = self.issue_stage(now, id, txn, actuator);
                }
                Phase::Waiting { deadline, first } => {
                    match self.await_stage(now, id, txn, first, deadline, actuator) {
                        StageState::Done => txn.stage += 1,
                        StageState::Waiting => {
                            txn.phase = Phase::Waiting { deadline, first };
                            return None;
                        }
                        StageState::Failed(reason) => {
                            txn.phase = Phase::Undoing {
                                reason,
                                clean: true,
                                remaining: txn.applied.len(),
                                current: None,
                            };
                        }
                    }
                }
                Phase::Undoing {
                    reason,
                    clean,
                    remaining,
                    current,
                } => {
                    match self.undo_step(now, id, txn, reason, clean, remaining, current, actuator)
                    {
                        Ok(outcome) => return Some(outcome),
                        Err(phase) => {
                            let waiting = matches!(
                                &phase,
                                Phase::Undoing {
                                    current: Some(_),
                                    ..
                                }
                            );
                            txn.phase = phase;
                            if waiting {
                                return None;
                            }
                        }
                    }
                }
            }
        }
    }

    fn issue_stage<A: Actuator + ?Sized>(
        &mut self,
        now: VirtualTime,
        id: PlanId,
        txn: &mut Txn,
        actuator: &mut A,
    ) -> Phase {
        let first_step: usize = txn.plan.stages[..txn.stage].iter().map(Vec::len).sum();
        let first = txn.applied.len();
        let mut deadline = now;
        for (offset, action) in txn.plan.stages[txn.stage].iter().enumerate() {
            let step = first_step + offset;
            let lowered = actuator
                .observe(action.service().as_str())
                .ok_or_else(|| {
                    format!(
                        "service `{}` is not known to the actuator",
                        action.service()
                    )
                })
                .and_then(|before| lower(action, &before).map(|op| (before, op)));
            let (before, op) = match lowered {
                Ok(pair) => pair,
                Err(error) => return self.step_failed(now, id, txn, step, action, None, error),
            };
            if let ControlOp::Restart { service, replicas } = &op
                && txn.hubs.contains(service)
                && let Some(live) = replicas.iter().find(|r| !before.drained.contains(r))
            {
                // The validator's R3 simulated the plan's drains; this is the same promise
                // checked against the world as it is, in case anything moved in between.
                let error = format!(
                    "R3 at run time: replica {live} of hub `{service}` is in load balancing"
                );
                return self.step_failed(now, id, txn, step, action, Some(op), error);
            }
            if let Err(error) = actuator.apply(&op) {
                return self.step_failed(now, id, txn, step, action, Some(op), error);
            }
            let class = action.rollback_class(Some(before.replicas));
            self.journal.append(
                now,
                id,
                Event::StepApplied {
                    step,
                    action: action.clone(),
                    op: op.clone(),
                    class,
                },
            );
            if matches!(op, ControlOp::Restart { .. }) {
                self.restarts.push_back(now);
            }
            let lease = txn.plan.lease(step).or(match action {
                Action::CircuitBreak { duration_s, .. } => *duration_s,
                _ => None,
            });
            let watch = self
                .health
                .as_ref()
                .filter(|_| self.config.guards.watchdog && class != RollbackClass::Restartable)
                .map(|health| Watch::new(&txn.affected[step], health, now));
            deadline = deadline.max(now.saturating_add(self.config.timeouts.for_op(&op)));
            txn.applied.push(AppliedStep {
                step,
                undo: op.undo(&before),
                before,
                op,
                class,
                lease,
                watch,
            });
        }
        self.prune_restarts(now);
        Phase::Waiting { deadline, first }
    }

    #[allow(clippy::too_many_arguments)]
    fn step_failed(
        &mut self,
        now: VirtualTime,
        id: PlanId,
        txn: &Txn,
        step: usize,
        action: &Action,
        op: Option<ControlOp>,
        error: String,
    ) -> Phase {
        self.journal.append(
            now,
            id,
            Event::StepFailed {
                step,
                action: action.clone(),
                op,
                error: error.clone(),
            },
        );
        Phase::Undoing {
            reason: format!("step {step} failed: {error}"),
            clean: true,
            remaining: txn.applied.len(),
            current: None,
        }
    }

    fn await_stage<A: Actuator + ?Sized>(
        &mut self,
        now: VirtualTime,
        id: PlanId,
        txn: &Txn,
        first: usize,
        deadline: VirtualTime,
        actuator: &mut A,
    ) -> StageState {
        let mut pending = false;
        for applied in &txn.applied[first..] {
            match actuator.check(&applied.op, &applied.before) {
                Check::Holds => {}
                Check::Pending => pending = true,
                Check::Failed(reason) => {
                    self.journal.append(
                        now,
                        id,
                        Event::CheckFailed {
                            step: applied.step,
                            reason: reason.clone(),
                        },
                    );
                    return StageState::Failed(format!(
                        "post-condition of step {} failed: {reason}",
                        applied.step
                    ));
                }
            }
        }
        if !pending {
            for applied in &txn.applied[first..] {
                self.journal
                    .append(now, id, Event::CheckPassed { step: applied.step });
            }
            return StageState::Done;
        }
        if now >= deadline {
            let step = txn.applied[first..]
                .iter()
                .find(|a| actuator.check(&a.op, &a.before) == Check::Pending)
                .map_or(txn.applied[first].step, |a| a.step);
            let reason = format!("post-condition did not hold by {deadline}");
            self.journal.append(
                now,
                id,
                Event::CheckFailed {
                    step,
                    reason: reason.clone(),
                },
            );
            return StageState::Failed(format!("step {step}: {reason}"));
        }
        StageState::Waiting
    }

    /// One move of the undo phase: `Ok` when the abort is complete, `Err(next phase)` otherwise.
    #[allow(clippy::too_many_arguments)]
    fn undo_step<A: Actuator + ?Sized>(
        &mut self,
        now: VirtualTime,
        id: PlanId,
        txn: &Txn,
        reason: String,
        mut clean: bool,
        mut remaining: usize,
        current: Option<Box<PendingUndo>>,
        actuator: &mut A,
    ) -> Result<Outcome, Phase> {
        if let Some(pending) = current {
            match actuator.check(&pending.op, &pending.before) {
                Check::Pending if now < pending.deadline => {
                    return Err(Phase::Undoing {
                        reason,
                        clean,
                        remaining,
                        current: Some(pending),
                    });
                }
                Check::Holds => {}
                check => {
                    let error = match check {
                        Check::Failed(e) => e,
                        _ => format!("post-condition did not hold by {}", pending.deadline),
                    };
                    let PendingUndo { step, op, .. } = *pending;
                    self.journal
                        .append(now, id, Event::UndoFailed { step, op, error });
                    clean = false;
                }
            }
        }
        // Walk back over steps that need no waiting until one does.
        while remaining > 0 {
            remaining -= 1;
            let applied = &txn.applied[remaining];
            let Some(undo) = applied
                .undo
                .clone()
                .filter(|_| applied.class != RollbackClass::Restartable)
            else {
                self.journal.append(
                    now,
                    id,
                    Event::NotUndoable {
                        step: applied.step,
                        op: applied.op.clone(),
                    },
                );
                continue;
            };
            let Some(before) = actuator.observe(undo.service()) else {
                self.journal.append(
                    now,
                    id,
                    Event::UndoFailed {
                        step: applied.step,
                        error: format!("service `{}` is not known to the actuator", undo.service()),
                        op: undo,
                    },
                );
                clean = false;
                continue;
            };
            if let Err(error) = actuator.apply(&undo) {
                self.journal.append(
                    now,
                    id,
                    Event::UndoFailed {
                        step: applied.step,
                        op: undo,
                        error,
                    },
                );
                clean = false;
                continue;
            }
            let event = match applied.class {
                RollbackClass::Compensatable => Event::Compensate {
                    step: applied.step,
                    op: undo.clone(),
                },
                _ => Event::Undo {
                    step: applied.step,
                    op: undo.clone(),
                },
            };
            self.journal.append(now, id, event);
            let deadline = now.saturating_add(self.config.timeouts.for_op(&undo));
            return Err(Phase::Undoing {
                reason,
                clean,
                remaining,
                current: Some(Box::new(PendingUndo {
                    step: applied.step,
                    op: undo,
                    before,
                    deadline,
                })),
            });
        }
        self.journal.append(
            now,
            id,
            Event::Abort {
                reason: reason.clone(),
                clean,
            },
        );
        Ok(Outcome::Aborted { reason, clean })
    }

    /// The watchdog on an executing plan: a step whose affected services regressed aborts the
    /// plan (its normal undo takes every reversible step back).
    fn watch_executing(&mut self, now: VirtualTime, id: PlanId, txn: &mut Txn) {
        if matches!(txn.phase, Phase::Undoing { .. }) {
            return;
        }
        let (Some(health), cfg) = (&self.health, self.config.guards.watchdog_params) else {
            return;
        };
        let tripped = txn.applied.iter_mut().find_map(|a| {
            let service = a.watch.as_mut()?.judge(&cfg, health, now)?;
            Some((a.step, service))
        });
        if let Some((step, service)) = tripped {
            self.journal.append(
                now,
                id,
                Event::WatchdogTripped {
                    step,
                    service: service.clone(),
                },
            );
            txn.phase = Phase::Undoing {
                reason: format!("watchdog: {service} regressed after step {step}"),
                clean: true,
                remaining: txn.applied.len(),
                current: None,
            };
        }
    }

    /// The watchdog on committed steps: a regression reverts the step — through the lease book
    /// when a lease still holds it, else by its exact undo.
    fn watch_committed<A: Actuator + ?Sized>(&mut self, now: VirtualTime, actuator: &mut A) {
        self.watches.retain(|w| !w.watch.expired(now));
        let Some(health) = &self.health else {
            return;
        };
        let cfg = self.config.guards.watchdog_params;
        let mut tripped = Vec::new();
        for (i, w) in self.watches.iter_mut().enumerate() {
            if let Some(service) = w.watch.judge(&cfg, health, now) {
                tripped.push((i, service));
            }
        }
        for (i, service) in tripped.into_iter().rev() {
            let w = self.watches.remove(i);
            // A leased step is taken back through the lease book, so that it composes with
            // other leases on the same control; a step without a lease by its exact undo.
            let op = if self.leases.expiry(w.lease).is_some() {
                let op = w
                    .undo
                    .as_ref()
                    .and_then(|u| actuator.observe(u.service()))
                    .and_then(|current| self.leases.revert(w.lease, &current))
                    .and_then(|r| r.op);
                self.leases.end(w.lease);
                self.lease_scopes.remove(&w.lease);
                op
            } else {
                w.undo.clone()
            };
            let result = op.as_ref().map(|op| actuator.apply(op)).transpose();
            self.journal.append(
                now,
                w.lease.plan,
                match result {
                    Ok(_) => Event::WatchdogUndo {
                        step: w.lease.step,
                        service,
                        op,
                    },
                    Err(error) => Event::UndoFailed {
                        step: w.lease.step,
                        op: op.expect("an error means an op was applied"),
                        error,
                    },
                },
            );
        }
    }

    /// At commit: every step enters the lease book in order, leased ones as holds that expire
    /// `ttl` after now, the others as permanent changes (see [`crate::lease`]); watched steps
    /// stay watched for their lease, or the watchdog's window.
    ///
    /// Unleased steps of one plan on the same knob compose into their net change: only the
    /// last is watched, and its revert restores the value before the plan's first step on the
    /// knob — so a drain closed by its `restore_traffic` is no change and nothing to revert
    /// (undoing the restore alone would drain the service again; DESIGN §6).
    fn arm_leases(&mut self, now: VirtualTime, id: PlanId, txn: &Txn) {
        let window = Duration::from_secs(self.config.guards.watchdog_params.window_s);
        let knob = |a: &AppliedStep| Knob::of(&a.op).filter(|_| a.lease.is_none());
        for (i, applied) in txn.applied.iter().enumerate() {
            let lease = LeaseId {
                plan: id,
                step: applied.step,
            };
            let mut undo = applied.undo.clone();
            if let Some(k) = knob(applied) {
                let same = |a: &AppliedStep| knob(a).as_ref() == Some(&k);
                if txn.applied[i + 1..].iter().any(same) {
                    undo = None; // a later step of the plan on this knob carries the net revert
                } else if let Some(first) = txn.applied[..i].iter().find(|a| same(a)) {
                    undo = first.undo.clone().filter(|net| *net != applied.op);
                }
            }
            // A knob step with nothing left to revert is not watched after commit.
            let watched = applied
                .watch
                .clone()
                .filter(|_| undo.is_some() || knob(applied).is_none());
            if let Some(mut watch) = watched {
                watch.until =
                    Some(now.saturating_add(applied.lease.map_or(window, |l| l.duration())));
                if let Some(ttl) = applied.lease {
                    let scope = watch.baseline.iter().map(|(s, _)| s.clone()).collect();
                    self.lease_scopes.insert(lease, (scope, ttl.duration()));
                }
                self.watches.push(CommittedWatch { lease, undo, watch });
            }
            let expires = applied.lease.map(|ttl| now.saturating_add(ttl.duration()));
            for moot in self
                .leases
                .record(lease, &applied.op, &applied.before, expires)
            {
                self.lease_scopes.remove(&moot);
                self.journal.append(
                    now,
                    moot.plan,
                    Event::LeaseSuperseded {
                        step: moot.step,
                        by_plan: id,
                        by_step: applied.step,
                    },
                );
            }
        }
    }

    /// Puts the revert `op` of a lapsed lease on probation when the watchdog is on and watched
    /// the step (`scope`); `before` is the service's state before the revert.
    fn start_probation(
        &mut self,
        now: VirtualTime,
        lease: LeaseId,
        scope: Option<(Vec<String>, Duration)>,
        op: &ControlOp,
        before: &ServiceControl,
        reverted: Option<ServiceControl>,
    ) {
        let (Some((services, ttl)), Some(health), Some(reverted), true) =
            (scope, &self.health, reverted, self.config.guards.watchdog)
        else {
            return;
        };
        let Some(reimpose) = op.undo(before) else {
            return;
        };
        let params = self.config.guards.watchdog_params;
        let mut watch = Watch::new(&services, health, now);
        watch.until = Some(now.saturating_add(params.probation()));
        self.probations.push(Probation {
            lease,
            service: op.service().to_string(),
            reimpose,
            reverted,
            renewed_ttl: (ttl * 2).min(Duration::from_secs(params.max_lease_s)),
            watch,
        });
    }

    /// Judges lapsed leases on probation: a revert after which the step's affected services
    /// regressed is taken back — the step re-imposed, its lease renewed (and watched again).
    /// A probation whose service another plan has locked waits for that plan.
    fn judge_probations<A: Actuator + ?Sized>(&mut self, now: VirtualTime, actuator: &mut A) {
        self.probations.retain(|p| !p.watch.expired(now));
        let Some(health) = &self.health else {
            return;
        };
        let cfg = self.config.guards.watchdog_params.probe();
        let mut tripped = Vec::new();
        for (i, p) in self.probations.iter_mut().enumerate() {
            if self.locks.contains_key(&p.service) {
                continue;
            }
            if let Some(service) = p.watch.judge(&cfg, health, now) {
                tripped.push((i, service));
            }
        }
        for (i, regressed) in tripped.into_iter().rev() {
            let p = self.probations.remove(i);
            let step = p.lease.step;
            let Some(before) = actuator.observe(&p.service) else {
                continue;
            };
            if before != p.reverted {
                continue; // changed since the revert: re-imposing would undo someone else's step
            }
            if let Err(error) = actuator.apply(&p.reimpose) {
                self.journal.append(
                    now,
                    p.lease.plan,
                    Event::UndoFailed {
                        step,
                        op: p.reimpose,
                        error,
                    },
                );
                continue;
            }
            let expires = now.saturating_add(p.renewed_ttl);
            self.leases
                .record(p.lease, &p.reimpose, &before, Some(expires));
            let services: Vec<String> = p.watch.baseline.into_iter().map(|(s, _)| s).collect();
            let mut watch = Watch::new(&services, health, now);
            watch.until = Some(expires);
            self.watches.push(CommittedWatch {
                lease: p.lease,
                undo: p.reimpose.undo(&before),
                watch,
            });
            self.lease_scopes.insert(p.lease, (services, p.renewed_ttl));
            self.journal.append(
                now,
                p.lease.plan,
                Event::LeaseRenewed {
                    step,
                    service: regressed,
                    op: Some(p.reimpose),
                    ttl_s: p.renewed_ttl.as_secs(),
                },
            );
        }
    }

    /// Reverts due leases. A revert on a service another plan has locked waits for that plan;
    /// a failed revert stays held and is retried with back-off, and is escalated after
    /// [`LEASE_ESCALATE_AFTER`] failures — a lease is never dropped silently.
    fn expire_leases<A: Actuator + ?Sized>(&mut self, now: VirtualTime, actuator: &mut A) {
        for (lease, service) in self.leases.due(now) {
            if self.locks.contains_key(&service) {
                continue; // another plan is working on the service; revert once it finishes
            }
            let outcome = match actuator.observe(&service) {
                None => Err((
                    None,
                    format!("service `{service}` is not known to the actuator"),
                )),
                Some(current) => {
                    let revert = self.leases.revert(lease, &current).expect("listed as due");
                    match revert.op {
                        None => Ok(None),
                        Some(op) => match actuator.apply(&op) {
                            Ok(()) => Ok(Some((op, current))),
                            Err(error) => Err((Some(op), error)),
                        },
                    }
                }
            };
            match outcome {
                Ok(reverted) => {
                    self.leases.end(lease);
                    let scope = self.lease_scopes.remove(&lease);
                    let op = reverted.map(|(op, before)| {
                        let reverted = actuator.observe(&service);
                        self.start_probation(now, lease, scope, &op, &before, reverted);
                        op
                    });
                    self.journal.append(
                        now,
                        lease.plan,
                        Event::LeaseExpired {
                            step: lease.step,
                            op,
                        },
                    );
                }
                Err((op, error)) => {
                    let (failures, retry_at) =
                        self.leases.postpone(lease, now).expect("listed as due");
                    self.journal.append(
                        now,
                        lease.plan,
                        Event::LeaseFailed {
                            step: lease.step,
                            op,
                            error,
                            failures,
                            retry_at,
                        },
                    );
                    if failures == LEASE_ESCALATE_AFTER {
                        self.escalated.push(lease);
                        self.journal.append(
                            now,
                            lease.plan,
                            Event::LeaseEscalated {
                                step: lease.step,
                                failures,
                            },
                        );
                    }
                }
            }
        }
    }

    fn prune_restarts(&mut self, now: VirtualTime) {
        let period = Duration::from_secs(self.config.limits.restart_period_s);
        while self
            .restarts
            .front()
            .is_some_and(|&t| now.since(t) >= period)
        {
            self.restarts.pop_front();
        }
    }
}

/// Every service that calls `service`, transitively, and `service` itself: whose SLOs a step on
/// it may move.
fn upstream_of(graph: &DependencyGraph, service: &str) -> Vec<String> {
    let Some(start) = graph.id(service) else {
        return vec![service.to_string()];
    };
    graph
        .upstream(start)
        .into_iter()
        .map(|id| graph.service(id).name.clone())
        .collect()
}

enum StageState {
    Done,
    Waiting,
    Failed(String),
}

/// An in-memory reference actuator over a [`ControlState`], for tests and the CLI. It can be
/// told to fail the apply or the post-condition check of any operation (counted from 0 in apply
/// order), and to report post-conditions as pending until [`tick`](MemoryActuator::tick) has
/// been called a number of times since the operation was applied.
#[derive(Clone, Debug, Default)]
pub struct MemoryActuator {
    /// The control-plane state.
    pub state: ControlState,
    fail_apply: BTreeSet<u64>,
    fail_check: BTreeSet<u64>,
    settle_ticks: u64,
    clock: u64,
    applies: u64,
    /// Every applied operation with the tick it was applied at and whether its check fails.
    applied: Vec<(ControlOp, u64, bool)>,
}

impl MemoryActuator {
    /// An actuator over `state` that never fails and settles at once.
    pub fn new(state: ControlState) -> Self {
        MemoryActuator {
            state,
            ..Default::default()
        }
    }

    /// Makes the `n`-th call of `apply` (from 0) fail without effect.
    pub fn fail_apply_at(mut self, n: u64) -> Self {
        self.fail_apply.insert(n);
        self
    }

    /// Makes the post-condition of the operation applied by the `n`-th `apply` call fail.
    pub fn fail_check_at(mut self, n: u64) -> Self {
        self.fail_check.insert(n);
        self
    }

    /// Post-conditions hold only `ticks` calls of [`tick`](Self::tick) after their operation.
    pub fn settle_after(mut self, ticks: u64) -> Self {
        self.settle_ticks = ticks;
        self
    }

    /// Lets time pass for pending post-conditions.
    pub fn tick(&mut self) {
        self.clock += 1;
    }

    /// Number of `apply` calls so far.
    pub fn applies(&self) -> u64 {
        self.applies
    }
}

impl Actuator for MemoryActuator {
    fn observe(&self, service: &str) -> Option<ServiceControl> {
        self.state.get(service).cloned()
    }

    fn apply(&mut self, op: &ControlOp) -> Result<(), String> {
        let n = self.applies;
        self.applies += 1;
        if self.fail_apply.contains(&n) {
            return Err(format!("injected failure of apply #{n}"));
        }
        self.state.apply(op).map_err(|e| e.to_string())?;
        self.applied
            .push((op.clone(), self.clock, self.fail_check.contains(&n)));
        Ok(())
    }

    fn check(&self, op: &ControlOp, _before: &ServiceControl) -> Check {
        match self
            .applied
            .iter()
            .rev()
            .find(|(applied, ..)| applied == op)
        {
            None => Check::Failed("operation was never applied".into()),
            Some((_, _, true)) => Check::Failed("injected post-condition failure".into()),
            Some((_, at, false)) if self.clock - at < self.settle_ticks => Check::Pending,
            Some(_) => Check::Holds,
        }
    }
}
