//! Remediation policies behind one trait: each control tick a policy observes and may propose.
//!
//! | policy | acts on | actuates through |
//! |---|---|---|
//! | `noop` | nothing | — |
//! | `auto-restart` | replicas failing liveness probes; exponential back-off like Kubernetes' CrashLoopBackOff (10 s doubling to 300 s) | raw (it is the platform) |
//! | `naive-microreboot` | a new incident: restart the symptom service at once | raw |
//! | `unconstrained` | a new incident: the simulated LLM's diagnosis acted on with kubectl's command space and named behaviours ([`crate::raw_agent`]) | raw |
//! | `constrained` | a new incident: the same LLM's plan in the typed ISA; re-plans on rejection; escalates after 3 | the kernel, every guard |
//! | `constrained-structural`, `-evidence`, `-watchdog` | as `constrained` (the guard ablation) | the kernel with no guard, the evidence rule only, the watchdog only |
//! | `oracle` | a new incident: the ground-truth plan, after the same decision latency | the kernel |

use crate::llm::LlmConfig;
use crate::pipeline::{FaultType, GroundTruth, IncidentLlm, View};
use kernel::isa::{
    Action, ConfigVersion, IncidentId, Lease, LeaseSeconds, Plan, ReplicaCount, ReplicaSelector,
    ServiceName,
};
use kernel::txn::Guards;
use kernel::{DependencyGraph, RecoveryScope, Verdict, VirtualTime};
use serde::{Deserialize, Serialize};
use sim::actuator::RawCommand;
use sim::{Network, ReplicaStatus, Sim};
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// The policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyKind {
    /// Do nothing.
    Noop,
    /// Kubernetes liveness-probe restarts.
    AutoRestart,
    /// Restart the symptom service.
    NaiveMicroreboot,
    /// Simulated LLM, raw commands.
    Unconstrained,
    /// Simulated LLM, typed plans through a kernel with its structural rules only (no guard):
    /// the ablation baseline.
    ConstrainedStructural,
    /// Ablation: structural rules plus the failure-evidence rule (`R18`) only.
    ConstrainedEvidence,
    /// Ablation: structural rules plus the SLO watchdog and half-open breakers only.
    ConstrainedWatchdog,
    /// Simulated LLM, typed plans through the kernel with every guard.
    Constrained,
    /// Ground-truth plans through the kernel.
    Oracle,
}

impl PolicyKind {
    /// All policies, in report order.
    pub const ALL: [PolicyKind; 9] = [
        PolicyKind::Noop,
        PolicyKind::AutoRestart,
        PolicyKind::NaiveMicroreboot,
        PolicyKind::Unconstrained,
        PolicyKind::ConstrainedStructural,
        PolicyKind::ConstrainedEvidence,
        PolicyKind::ConstrainedWatchdog,
        PolicyKind::Constrained,
        PolicyKind::Oracle,
    ];

    /// Kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyKind::Noop => "noop",
            PolicyKind::AutoRestart => "auto-restart",
            PolicyKind::NaiveMicroreboot => "naive-microreboot",
            PolicyKind::Unconstrained => "unconstrained",
            PolicyKind::ConstrainedStructural => "constrained-structural",
            PolicyKind::ConstrainedEvidence => "constrained-evidence",
            PolicyKind::ConstrainedWatchdog => "constrained-watchdog",
            PolicyKind::Constrained => "constrained",
            PolicyKind::Oracle => "oracle",
        }
    }

    /// The policy called `name`.
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        PolicyKind::ALL.into_iter().find(|p| p.as_str() == name)
    }

    /// Whether the policy's actions are an agent's (counted as agent-caused harm).
    pub fn is_agent(self) -> bool {
        !matches!(self, PolicyKind::Noop)
    }

    /// Whether the policy is the simulated LLM behind the kernel (`constrained` or one of its
    /// guard-ablation variants).
    pub fn is_constrained_llm(self) -> bool {
        matches!(
            self,
            PolicyKind::ConstrainedStructural
                | PolicyKind::ConstrainedEvidence
                | PolicyKind::ConstrainedWatchdog
                | PolicyKind::Constrained
        )
    }

    /// The kernel guards this policy runs behind, given the configured ones (`all`): the
    /// ablation variants switch guards off, every other policy keeps what is configured.
    pub fn guards(self, all: Guards) -> Guards {
        let (evidence, watchdog) = match self {
            PolicyKind::ConstrainedStructural => (false, false),
            PolicyKind::ConstrainedEvidence => (true, false),
            PolicyKind::ConstrainedWatchdog => (false, true),
            _ => return all,
        };
        Guards {
            evidence: all.evidence && evidence,
            watchdog: all.watchdog && watchdog,
            // Half-open breakers judge the callee's health, as the watchdog does.
            breaker_close_after_s: all.breaker_close_after_s.filter(|_| watchdog),
            ..all
        }
    }
}

impl fmt::Display for PolicyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the cluster shows an operator (replica states), abstracted so policies run against the
/// simulator or anything else.
pub trait ClusterView {
    /// Services, in a fixed order.
    fn service_names(&self) -> Vec<String>;
    /// A service's replicas.
    fn replicas(&self, service: &str) -> Vec<ReplicaStatus>;
}

impl<N: Network> ClusterView for Sim<N> {
    fn service_names(&self) -> Vec<String> {
        self.spec()
            .services
            .iter()
            .map(|s| s.name.clone())
            .collect()
    }

    fn replicas(&self, service: &str) -> Vec<ReplicaStatus> {
        Sim::replicas(self, service).unwrap_or_default()
    }
}

/// An incident as the monitoring side opened it.
#[derive(Clone, Debug)]
pub struct IncidentInfo {
    /// Id (also what plans must answer).
    pub id: IncidentId,
    /// Sequence number within the run (seeds the LLM's stream).
    pub number: u64,
    /// When it was opened.
    pub opened_at: VirtualTime,
    /// The deepest alerting service.
    pub symptom: String,
    /// The kernel's recovery scope for it.
    pub scope: RecoveryScope,
    /// What really happened (for the oracle and for the LLM's error model only).
    pub truth: GroundTruth,
}

impl IncidentInfo {
    /// What the planner sees of this incident, with the services earlier rounds blamed.
    pub fn view<'a>(&'a self, graph: &'a DependencyGraph, ruled_out: &'a [String]) -> View<'a> {
        View {
            incident: &self.id,
            symptom: &self.symptom,
            graph,
            scope: &self.scope,
            ruled_out,
        }
    }
}

/// One tick's observation.
pub struct Observation<'a> {
    /// Now.
    pub now: VirtualTime,
    /// Open incidents.
    pub incidents: &'a [IncidentInfo],
    /// The trace-derived dependency graph with control-plane facts.
    pub graph: &'a DependencyGraph,
    /// Replica states.
    pub cluster: &'a dyn ClusterView,
    /// The kernel's verdicts on this policy's plans since the last tick, by incident number.
    pub verdicts: &'a [(u64, Verdict)],
    /// Per-second service and path metrics so far, as monitoring records them (external agents
    /// read them; the simulated agents do not).
    pub metrics: &'a [sim::SecondStats],
}

/// What a policy wants done.
#[derive(Clone, Debug, PartialEq)]
pub enum Proposal {
    /// A typed plan for the kernel, answering incident `incident`.
    Typed {
        /// Incident number.
        incident: u64,
        /// The plan.
        plan: Plan,
    },
    /// Raw commands straight to the orchestrator.
    Raw {
        /// Incident number, if the commands answer one.
        incident: Option<u64>,
        /// The commands.
        commands: Vec<RawCommand>,
    },
    /// Hand the incident to a human.
    Escalate {
        /// Incident number.
        incident: u64,
        /// Why.
        reason: String,
    },
    /// The planner answered with something that is not a plan (a real model's unreadable
    /// reply). Nothing goes to the kernel, but the runner puts the reply on the record: the
    /// journal and the incident's log.
    Refused {
        /// Incident number.
        incident: u64,
        /// Why it was refused.
        reason: String,
        /// The start of the reply (bounded).
        reply_excerpt: String,
    },
}

/// A remediation policy: observe, then propose.
pub trait Policy {
    /// Which policy this is.
    fn kind(&self) -> PolicyKind;
    /// One control tick.
    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal>;
    /// A failure that makes the policy's decisions meaningless (a real model's transport
    /// broke, a replayed recording does not match the run). The runner stops on it.
    fn failure(&self) -> Option<String> {
        None
    }
    /// The LLM pipelines of the incidents seen, every diagnosis round in order, for reports
    /// (LLM policies only).
    fn pipelines(&self) -> Vec<(u64, &IncidentLlm)> {
        Vec::new()
    }
    /// How often each of the policy's named behaviours occurred (the raw agent's; empty for the
    /// others), for result lines.
    fn behaviours(&self) -> BTreeMap<String, u32> {
        BTreeMap::new()
    }
}

/// Builds a policy.
pub fn make(kind: PolicyKind, seed: u64, llm: LlmConfig) -> Box<dyn Policy> {
    match kind {
        PolicyKind::Noop => Box::new(Noop),
        PolicyKind::AutoRestart => Box::new(AutoRestart::default()),
        PolicyKind::NaiveMicroreboot => Box::new(NaiveMicroreboot::default()),
        PolicyKind::Unconstrained => Box::new(crate::raw_agent::RawAgent::new(seed, llm)),
        PolicyKind::ConstrainedStructural
        | PolicyKind::ConstrainedEvidence
        | PolicyKind::ConstrainedWatchdog
        | PolicyKind::Constrained => Box::new(LlmAgent::new(kind, seed, llm)),
        PolicyKind::Oracle => Box::new(Oracle::new(llm.decision_latency_s)),
    }
}

/// Does nothing.
pub struct Noop;

impl Policy for Noop {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Noop
    }
    fn observe(&mut self, _: &Observation<'_>) -> Vec<Proposal> {
        Vec::new()
    }
}

/// Kubernetes' kubelet: a replica failing `failure_threshold` consecutive liveness probes is
/// restarted, and again after a back-off that doubles from 10 s up to 300 s while it keeps
/// failing (CrashLoopBackOff).
pub struct AutoRestart {
    failure_threshold: u32,
    backoff: BTreeMap<(String, u32), (VirtualTime, Duration)>,
}

impl Default for AutoRestart {
    fn default() -> Self {
        AutoRestart {
            failure_threshold: 3,
            backoff: BTreeMap::new(),
        }
    }
}

impl Policy for AutoRestart {
    fn kind(&self) -> PolicyKind {
        PolicyKind::AutoRestart
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        let mut commands = Vec::new();
        for service in obs.cluster.service_names() {
            let mut restart = Vec::new();
            for (r, status) in obs.cluster.replicas(&service).iter().enumerate() {
                let key = (service.clone(), r as u32);
                if status.live || status.state == sim::ReplicaState::Starting {
                    continue;
                }
                if status.probe_failures < self.failure_threshold {
                    continue;
                }
                let (next, delay) = self
                    .backoff
                    .get(&key)
                    .copied()
                    .unwrap_or((VirtualTime::ZERO, Duration::from_secs(10)));
                if obs.now >= next {
                    restart.push(r as u32);
                    let next_delay = (delay * 2).min(Duration::from_secs(300));
                    self.backoff
                        .insert(key, (obs.now.saturating_add(delay), next_delay));
                }
            }
            if !restart.is_empty() {
                commands.push(RawCommand::RestartReplicas {
                    service,
                    replicas: restart,
                });
            }
        }
        if commands.is_empty() {
            Vec::new()
        } else {
            vec![Proposal::Raw {
                incident: None,
                commands,
            }]
        }
    }
}

/// Restarts the symptom service of every new incident at once (all replicas, no drain): naive
/// microreboot without architectural support.
#[derive(Default)]
pub struct NaiveMicroreboot {
    handled: Vec<u64>,
}

impl Policy for NaiveMicroreboot {
    fn kind(&self) -> PolicyKind {
        PolicyKind::NaiveMicroreboot
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        let mut out = Vec::new();
        for inc in obs.incidents {
            if !self.handled.contains(&inc.number) {
                self.handled.push(inc.number);
                out.push(Proposal::Raw {
                    incident: Some(inc.number),
                    commands: vec![RawCommand::Restart {
                        service: inc.symptom.clone(),
                    }],
                });
            }
        }
        out
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum AgentState {
    /// Diagnosing or planning; the plan is ready at this time.
    Thinking { ready_at: VirtualTime },
    /// A typed plan is with the kernel.
    AwaitingVerdict,
    /// Acted (plan accepted) at this time; reassess later.
    Acted { at: VirtualTime },
    /// Handed to a human.
    Escalated,
}

struct AgentIncident {
    /// One pipeline per diagnosis round; the last is current.
    rounds: Vec<IncidentLlm>,
    state: AgentState,
    /// Rejections of the current round's plans.
    rejections: u32,
}

impl AgentIncident {
    fn current(&mut self) -> &mut IncidentLlm {
        self.rounds.last_mut().expect("at least one round")
    }
}

/// The simulated LLM agent behind the kernel (typed plans). The raw-command agent
/// ([`crate::raw_agent::RawAgent`]) runs the same pipeline on the same draws.
///
/// Per incident: diagnose and plan (the LLM's decision latency), act, and if the incident is
/// still open `reassess_after_s` later, start a new diagnosis round that does not blame the
/// services already tried; after `max_rounds` rounds — or after `max_rejections` rejections in
/// one round — escalate to a human.
pub struct LlmAgent {
    kind: PolicyKind,
    seed: u64,
    cfg: LlmConfig,
    incidents: BTreeMap<u64, AgentIncident>,
    /// Rejections after which the agent escalates to a human.
    pub max_rejections: u32,
}

impl LlmAgent {
    /// A new agent of `kind` (a constrained kind: the guards it runs behind are the kernel's).
    pub fn new(kind: PolicyKind, seed: u64, cfg: LlmConfig) -> Self {
        LlmAgent {
            kind,
            seed,
            cfg,
            incidents: BTreeMap::new(),
            max_rejections: 3,
        }
    }

    fn on_verdict(
        &mut self,
        now: VirtualTime,
        number: u64,
        verdict: &Verdict,
        obs: &Observation<'_>,
    ) -> Option<Proposal> {
        let max_rejections = self.max_rejections;
        let inc = self.incidents.get_mut(&number)?;
        if inc.state != AgentState::AwaitingVerdict {
            return None;
        }
        if verdict.accepted() {
            inc.state = AgentState::Acted { at: now };
            return None;
        }
        inc.rejections += 1;
        if inc.rejections >= max_rejections {
            inc.state = AgentState::Escalated;
            return Some(Proposal::Escalate {
                incident: number,
                reason: format!("{} rejections; last: {:?}", inc.rejections, verdict.rules()),
            });
        }
        let info = obs.incidents.iter().find(|i| i.number == number)?;
        let ruled_out = ruled_out(&inc.rounds);
        let view = info.view(obs.graph, &ruled_out);
        let latency = inc.current().replan(verdict, &view);
        inc.state = AgentState::Thinking {
            ready_at: now.saturating_add(Duration::from_secs_f64(latency)),
        };
        None
    }
}

/// Services blamed in the rounds before the current one.
fn ruled_out(rounds: &[IncidentLlm]) -> Vec<String> {
    rounds
        .iter()
        .map(|r| r.diagnosis().root_cause.clone())
        .collect()
}

impl Policy for LlmAgent {
    fn kind(&self) -> PolicyKind {
        self.kind
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        let mut out = Vec::new();
        for (number, verdict) in obs.verdicts {
            out.extend(self.on_verdict(obs.now, *number, verdict, obs));
        }
        let reassess = Duration::from_secs_f64(self.cfg.reassess_after_s.max(0.0));
        for info in obs.incidents {
            let (seed, cfg) = (self.seed, self.cfg);
            let inc = self.incidents.entry(info.number).or_insert_with(|| {
                let view = info.view(obs.graph, &[]);
                let llm = IncidentLlm::new(seed, info.number, 0, cfg, info.truth.clone(), &view);
                let ready_at = info
                    .opened_at
                    .saturating_add(Duration::from_secs_f64(llm.decision_latency_s()));
                AgentIncident {
                    rounds: vec![llm],
                    state: AgentState::Thinking { ready_at },
                    rejections: 0,
                }
            });
            // Still open well after acting: the remedy did not work; diagnose again.
            if let AgentState::Acted { at } = inc.state
                && obs.now >= at.saturating_add(reassess)
            {
                if inc.rounds.len() as u32 >= cfg.max_rounds {
                    inc.state = AgentState::Escalated;
                    out.push(Proposal::Escalate {
                        incident: info.number,
                        reason: format!("unresolved after {} rounds", inc.rounds.len()),
                    });
                    continue;
                }
                let blamed = ruled_out(&inc.rounds);
                let view = info.view(obs.graph, &blamed);
                let round = inc.rounds.len() as u32;
                let llm =
                    IncidentLlm::new(seed, info.number, round, cfg, info.truth.clone(), &view);
                inc.state = AgentState::Thinking {
                    ready_at: obs
                        .now
                        .saturating_add(Duration::from_secs_f64(llm.decision_latency_s())),
                };
                inc.rounds.push(llm);
                inc.rejections = 0;
            }
            if let AgentState::Thinking { ready_at } = inc.state
                && obs.now >= ready_at
            {
                let blamed = ruled_out(&inc.rounds[..inc.rounds.len() - 1]);
                let view = info.view(obs.graph, &blamed);
                inc.state = AgentState::AwaitingVerdict;
                out.push(Proposal::Typed {
                    incident: info.number,
                    plan: inc.current().typed_plan(&view),
                });
            }
        }
        out
    }

    fn pipelines(&self) -> Vec<(u64, &IncidentLlm)> {
        self.incidents
            .iter()
            .flat_map(|(n, i)| i.rounds.iter().map(move |r| (*n, r)))
            .collect()
    }
}

/// Batches of a rolling restart (keeps plans within the kernel's length and restart budget).
const ROLLING_BATCHES: u32 = 4;

/// The ground-truth plan for a fault (what a perfect operator does), in the typed ISA, with the
/// graph's absolute hub threshold deciding whether a restart is drained.
pub fn oracle_plan(incident: &IncidentId, truth: &GroundTruth, graph: &DependencyGraph) -> Plan {
    let hub = graph.id(&truth.root_cause).is_some_and(|i| graph.is_hub(i));
    oracle_plan_drained(incident, truth, graph, hub)
}

/// The ground-truth plan for an incident whose recovery scope says which services are hubs
/// (the scope's threshold may be relative to the graph).
pub fn oracle_plan_in(info: &IncidentInfo, graph: &DependencyGraph) -> Plan {
    let hub = info.scope.requires_drain(&info.truth.root_cause)
        || graph
            .id(&info.truth.root_cause)
            .is_some_and(|i| graph.is_hub(i));
    oracle_plan_drained(&info.id, &info.truth, graph, hub)
}

/// The ground-truth plan; `hub`: whether the root cause's restart needs a drain around it.
fn oracle_plan_drained(
    incident: &IncidentId,
    truth: &GroundTruth,
    graph: &DependencyGraph,
    hub: bool,
) -> Plan {
    let name = |s: &str| ServiceName::try_from(s).expect("valid service name");
    let svc = truth.root_cause.as_str();
    let id = graph.id(svc);
    let replicas = id.map_or(1, |i| graph.service(i).replicas);
    let ids = |r: &[u32]| ReplicaSelector::Ids(r.to_vec());
    let mut stages: Vec<Vec<Action>> = Vec::new();
    let mut leases = Vec::new();
    match truth.fault {
        FaultType::Crash => {
            if hub {
                stages.push(vec![Action::Drain {
                    service: name(svc),
                    replicas: ReplicaSelector::All,
                }]);
            }
            stages.push(vec![Action::Restart {
                service: name(svc),
                replicas: ReplicaSelector::All,
            }]);
            if hub {
                stages.push(vec![Action::RestoreTraffic { service: name(svc) }]);
            }
        }
        FaultType::Latency | FaultType::Partition => {
            // Take the faulty replicas out of load balancing after adding as many fresh ones
            // (surge, R19): the healthy replicas alone would queue the faulty ones' share.
            let target = replicas + truth.replicas.len() as u32;
            stages.push(vec![Action::Scale {
                service: name(svc),
                replicas: ReplicaCount::try_from(u64::from(target)).expect("positive"),
            }]);
            stages.push(vec![Action::Drain {
                service: name(svc),
                replicas: ids(&truth.replicas),
            }]);
            leases.push(Lease {
                step: stages.len() - 1,
                ttl_s: LeaseSeconds::DEFAULT,
            });
        }
        FaultType::Resource => {
            // A rolling restart in (at most four) batches, each drained first, so capacity
            // never drops to zero and no request in flight is lost.
            let batches = replicas.clamp(1, ROLLING_BATCHES);
            for b in 0..batches {
                let batch: Vec<u32> = (0..replicas).filter(|r| r % batches == b).collect();
                stages.push(vec![Action::Drain {
                    service: name(svc),
                    replicas: ids(&batch),
                }]);
                stages.push(vec![Action::Restart {
                    service: name(svc),
                    replicas: ids(&batch),
                }]);
                stages.push(vec![Action::RestoreTraffic { service: name(svc) }]);
            }
        }
        FaultType::Misconfig => {
            let versions = id
                .map(|i| graph.service(i).config_versions.clone())
                .unwrap_or_default();
            let previous = versions
                .len()
                .checked_sub(2)
                .map_or("v1".to_string(), |i| versions[i].clone());
            stages.push(vec![Action::RollbackConfig {
                service: name(svc),
                version: ConfigVersion::try_from(previous).expect("valid version"),
            }]);
        }
    }
    let mut plan = Plan::new(incident.clone(), stages);
    plan.leases = leases;
    plan
}

/// Proposes the ground-truth plan after the LLM's decision latency.
pub struct Oracle {
    latency: Duration,
    submitted: Vec<u64>,
}

impl Oracle {
    /// An oracle that answers `latency_s` after an incident opens.
    pub fn new(latency_s: f64) -> Self {
        Oracle {
            latency: Duration::from_secs_f64(latency_s.max(0.0)),
            submitted: Vec::new(),
        }
    }
}

impl Policy for Oracle {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Oracle
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        let mut out = Vec::new();
        for info in obs.incidents {
            if obs.now >= info.opened_at.saturating_add(self.latency)
                && !self.submitted.contains(&info.number)
            {
                self.submitted.push(info.number);
                out.push(Proposal::Typed {
                    incident: info.number,
                    plan: oracle_plan_in(info, obs.graph),
                });
            }
        }
        // A plan refused for a lock held by another plan is resubmitted next tick.
        for (number, verdict) in obs.verdicts {
            if verdict.rules() == [kernel::Rule::LockConflict] {
                self.submitted.retain(|n| n != number);
            }
        }
        out
    }
}
