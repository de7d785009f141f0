//! The `unconstrained` agent: the simulated LLM with an SRE's kubectl, every command straight to
//! the orchestrator (`sim`'s `RawActuator`), nothing validated.
//!
//! It diagnoses with the same pipeline and the same draws as the constrained agents
//! ([`IncidentLlm`] on the same seed, incident and round), so both receive identical diagnoses
//! and draft plans. Its draft is rendered as raw commands; on top of it, five named
//! **behaviours** of agents with a raw action space draw from their own ChaCha stream (derived
//! from the seed and the incident number, never from the pipeline's), so switching them on or
//! off leaves every constrained run unchanged.
//!
//! | behaviour | what the agent does | mechanism in the simulator | source |
//! |---|---|---|---|
//! | `restart_loop` | still open at the reassessment after a round with restarts: the same restarts again instead of a new diagnosis, at most `restart_loop_max` times per incident | each repeat restarts the replicas again, no drain: in-flight requests fail, capacity drops for a start-up | looping until a termination bound in ITBench SRE traces (IBM Research and UC Berkeley, "Diagnose why enterprise agents fail using IT-Bench and MAST", 2026); rate: assumption |
//! | `symptom_fix` | acts on the alerting service instead of the diagnosed root cause: more CPU limit and one more replica for a slowness diagnosis (resource, latency), a rollout restart otherwise | the symptom's CPU headroom and capacity mask part of a slowdown; its restart drops its in-flight requests; the cause stays | ITBench-AA analyses: agents blame services that only react (root cause vs symptom); rate: assumption |
//! | `exploratory` | one probing change on a service of the recovery scope before the remedy: set an env variable (a rollout), scale to 0 and back, lower the CPU limit, delete a pod, or delete the deployment and re-apply it | each is the command's simulator effect: restarts, zero replicas until the new ones start, a throttle that stays | STRATUS (Chen et al., arXiv 2506.02009) makes mitigation *exploration* safe with transactional no-regression because agents explore; rate: assumption |
//! | `early_success` | at its first check, `check_after_s` after acting, declares the incident fixed on seeing its commands applied: lifts its own mitigations by hand (undrain, lift the rate limit, close breakers) and stops following the incident (no reassessment, no escalation) | the lifted mitigations let the fault's traffic back in; an unfixed incident stays unfixed | "declare victory" without checking ground truth, the strongest failure predictor in the IT-Bench × MAST study (incorrect verification, premature termination); rate: assumption |
//! | `stale_state` | at its first check, reads the replica states of an observation `stale_by_s` old: replicas its own restart had not yet brought up look broken, and it deletes those pods again | restarts of replicas that are running by now, no drain | assumption (a cached `kubectl get pods`; no study measured it) |
//!
//! Every rate is a probability, drawn where the behaviour applies; none is tuned to reach a harm
//! number, and the evaluation's sensitivity sweep scales them all with the mistake rates.

use crate::llm::LlmConfig;
use crate::pipeline::{FaultType, IncidentLlm};
use crate::policy::{IncidentInfo, Observation, Policy, PolicyKind, Proposal};
use kernel::VirtualTime;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use sim::actuator::RawCommand;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The raw agent's behaviours: rates and bounds (module documentation: mechanisms, sources).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAgentConfig {
    /// P(repeating a round's restarts when the incident is still open at the reassessment).
    pub restart_loop: f64,
    /// Repeats of a restart loop per incident, at most.
    pub restart_loop_max: u32,
    /// P(a round acts on the symptom instead of the diagnosed root cause).
    pub symptom_fix: f64,
    /// P(a round starts with one exploratory change).
    pub exploratory: f64,
    /// P(declaring success at the first check).
    pub early_success: f64,
    /// P(the first check reads a stale observation).
    pub stale_state: f64,
    /// Seconds from acting to the agent's first check (`kubectl get pods`).
    pub check_after_s: f64,
    /// Age of a stale observation, seconds.
    pub stale_by_s: f64,
    /// CPU limit a symptom fix sets, × the spec's.
    pub limit_raise: f64,
    /// CPU limit an exploratory "right-sizing" sets, × the spec's.
    pub limit_lower: f64,
}

impl Default for RawAgentConfig {
    fn default() -> Self {
        RawAgentConfig {
            restart_loop: 0.5,
            restart_loop_max: 3,
            symptom_fix: 0.3,
            exploratory: 0.25,
            early_success: 0.25,
            stale_state: 0.3,
            check_after_s: 15.0,
            stale_by_s: 10.0,
            limit_raise: 2.0,
            limit_lower: 0.5,
        }
    }
}

impl RawAgentConfig {
    /// Every behaviour's probability × `factor` (capped at 1); bounds and magnitudes stay: the
    /// sensitivity sweep's knob, as for the mistake rates.
    pub fn scaled(&self, factor: f64) -> Self {
        let f = |x: f64| (x * factor).clamp(0.0, 1.0);
        RawAgentConfig {
            restart_loop: f(self.restart_loop),
            symptom_fix: f(self.symptom_fix),
            exploratory: f(self.exploratory),
            early_success: f(self.early_success),
            stale_state: f(self.stale_state),
            ..*self
        }
    }
}

/// A named behaviour of the raw agent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Behaviour {
    /// The same restarts again after a fix that did not work.
    RestartLoop,
    /// Acting on the symptom instead of the cause.
    SymptomFix,
    /// A probing change before the remedy.
    Exploratory,
    /// Declaring success at the first check.
    EarlySuccess,
    /// Acting on an observation older than now.
    StaleState,
}

impl Behaviour {
    /// Every behaviour, in documentation order.
    pub const ALL: [Behaviour; 5] = [
        Behaviour::RestartLoop,
        Behaviour::SymptomFix,
        Behaviour::Exploratory,
        Behaviour::EarlySuccess,
        Behaviour::StaleState,
    ];

    /// Snake-case name (the parameter's).
    pub fn as_str(self) -> &'static str {
        match self {
            Behaviour::RestartLoop => "restart_loop",
            Behaviour::SymptomFix => "symptom_fix",
            Behaviour::Exploratory => "exploratory",
            Behaviour::EarlySuccess => "early_success",
            Behaviour::StaleState => "stale_state",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum State {
    /// Diagnosing; commands are ready at this time.
    Thinking { ready_at: VirtualTime },
    /// Commands sent at `at`; `checked` once the first check ran.
    Acted { at: VirtualTime, checked: bool },
    /// Declared fixed: no longer followed.
    DeclaredFixed,
    /// Handed to a human.
    Escalated,
}

struct RawIncident {
    /// One pipeline per diagnosis round.
    rounds: Vec<IncidentLlm>,
    /// The behaviours' draws for this incident.
    rng: ChaCha8Rng,
    state: State,
    /// The current round's remedy (what a loop repeats, what early success lifts).
    remedy: Vec<RawCommand>,
    loops: u32,
}

/// One tick's replica liveness, per service.
type Snapshot = (VirtualTime, BTreeMap<String, Vec<bool>>);

/// The raw-command agent (module documentation).
pub struct RawAgent {
    seed: u64,
    cfg: LlmConfig,
    incidents: BTreeMap<u64, RawIncident>,
    /// Recent observations, oldest first (for `stale_state`).
    history: VecDeque<Snapshot>,
    counts: BTreeMap<Behaviour, u32>,
}

impl RawAgent {
    /// A raw agent for the run seeded `seed`.
    pub fn new(seed: u64, cfg: LlmConfig) -> Self {
        RawAgent {
            seed,
            cfg,
            incidents: BTreeMap::new(),
            history: VecDeque::new(),
            counts: BTreeMap::new(),
        }
    }

    fn count(&mut self, b: Behaviour) {
        *self.counts.entry(b).or_default() += 1;
    }

    /// Keeps the observations a stale read may need.
    fn record(&mut self, obs: &Observation<'_>) {
        let snapshot = obs
            .cluster
            .service_names()
            .into_iter()
            .map(|s| {
                let live = obs.cluster.replicas(&s).iter().map(|r| r.live).collect();
                (s, live)
            })
            .collect();
        self.history.push_back((obs.now, snapshot));
        let keep = Duration::from_secs_f64(self.cfg.raw.stale_by_s.max(0.0) + 1.0);
        while self
            .history
            .front()
            .is_some_and(|(t, _)| obs.now.since(*t) > keep)
        {
            self.history.pop_front();
        }
    }

    /// The newest observation at least `stale_by_s` older than `now`.
    fn stale_view(&self, now: VirtualTime) -> Option<&Snapshot> {
        let age = Duration::from_secs_f64(self.cfg.raw.stale_by_s.max(0.0));
        self.history
            .iter()
            .rev()
            .find(|(t, _)| now.since(*t) >= age)
    }

    /// The current round's commands: its draft as raw commands, or a symptom fix, after an
    /// exploratory change if one is drawn.
    fn round_commands(
        &mut self,
        number: u64,
        info: &IncidentInfo,
        obs: &Observation<'_>,
    ) -> Vec<RawCommand> {
        let raw = self.cfg.raw;
        let inc = self.incidents.get_mut(&number).expect("incident entered");
        let explore = inc.rng.random_bool(raw.exploratory);
        let explore_kind: u64 = inc.rng.random();
        let explore_target: u64 = inc.rng.random();
        let symptom = inc.rng.random_bool(raw.symptom_fix);
        let replicas = |s: &str| obs.cluster.replicas(s).len() as u32;
        let mut commands = Vec::new();
        let mut fired = Vec::new();
        if explore {
            let scope: Vec<&str> = info.scope.services().collect();
            let target = if scope.is_empty() {
                info.symptom.clone()
            } else {
                scope[(explore_target % scope.len() as u64) as usize].to_string()
            };
            commands.extend(exploratory_change(
                &target,
                explore_kind,
                replicas(&target),
                raw.limit_lower,
            ));
            fired.push(Behaviour::Exploratory);
        }
        let blamed: Vec<String> = inc.rounds[..inc.rounds.len() - 1]
            .iter()
            .map(|r| r.diagnosis().root_cause.clone())
            .collect();
        let llm = inc.rounds.last().expect("a round");
        let remedy = if symptom {
            fired.push(Behaviour::SymptomFix);
            symptom_fix(
                &info.symptom,
                llm.diagnosis().fault,
                replicas(&info.symptom),
                raw.limit_raise,
            )
        } else {
            llm.raw_commands(&info.view(obs.graph, &blamed))
        };
        commands.extend(remedy.iter().cloned());
        inc.remedy = remedy;
        for b in fired {
            self.count(b);
        }
        commands
    }

    /// The first check after acting: success declared early, or a stale read acted on.
    fn first_check(&mut self, number: u64, now: VirtualTime) -> Vec<RawCommand> {
        let raw = self.cfg.raw;
        let inc = self.incidents.get_mut(&number).expect("incident entered");
        let early = inc.rng.random_bool(raw.early_success);
        let stale = inc.rng.random_bool(raw.stale_state);
        if early {
            inc.state = State::DeclaredFixed;
            let lifts = lift_mitigations(&inc.remedy);
            self.count(Behaviour::EarlySuccess);
            return lifts;
        }
        if !stale {
            return Vec::new();
        }
        let remedy = inc.remedy.clone();
        let Some((_, view)) = self.stale_view(now) else {
            return Vec::new();
        };
        let again = redelete_unready(&remedy, view);
        if !again.is_empty() {
            self.count(Behaviour::StaleState);
        }
        again
    }
}

/// The exploratory change of kind `kind` (any number; taken modulo the five) on `target`.
fn exploratory_change(target: &str, kind: u64, replicas: u32, limit_lower: f64) -> Vec<RawCommand> {
    let service = target.to_string();
    match kind % 5 {
        0 => vec![RawCommand::SetEnv {
            service,
            name: "LOG_LEVEL".into(),
            value: "debug".into(),
        }],
        1 => vec![
            RawCommand::Scale {
                service: service.clone(),
                replicas: 0,
            },
            RawCommand::Scale { service, replicas },
        ],
        2 => vec![RawCommand::PatchLimits {
            service,
            cpu: limit_lower,
        }],
        3 => vec![RawCommand::RestartReplicas {
            service,
            replicas: vec![0],
        }],
        _ => vec![
            RawCommand::DeleteDeployment {
                service: service.clone(),
            },
            RawCommand::Scale { service, replicas },
        ],
    }
}

/// What an agent fixing the alerting service does: capacity for a slowness, a rollout restart
/// for anything else.
fn symptom_fix(
    symptom: &str,
    diagnosed: FaultType,
    replicas: u32,
    limit_raise: f64,
) -> Vec<RawCommand> {
    let service = symptom.to_string();
    match diagnosed {
        FaultType::Resource | FaultType::Latency => vec![
            RawCommand::PatchLimits {
                service: service.clone(),
                cpu: limit_raise,
            },
            RawCommand::Scale {
                service,
                replicas: replicas + 1,
            },
        ],
        _ => vec![RawCommand::Restart { service }],
    }
}

/// The commands that undo `remedy`'s mitigations by hand.
fn lift_mitigations(remedy: &[RawCommand]) -> Vec<RawCommand> {
    remedy
        .iter()
        .filter_map(|c| match c {
            RawCommand::Drain { service, .. } => Some(RawCommand::Undrain {
                service: service.clone(),
            }),
            RawCommand::RateLimit { service, .. } => Some(RawCommand::LiftRateLimit {
                service: service.clone(),
            }),
            RawCommand::CircuitBreak { caller, callee } => Some(RawCommand::CloseBreaker {
                caller: caller.clone(),
                callee: callee.clone(),
            }),
            _ => None,
        })
        .collect()
}

/// Pods of the services `remedy` restarted that `view` shows not live: deleted again.
fn redelete_unready(remedy: &[RawCommand], view: &BTreeMap<String, Vec<bool>>) -> Vec<RawCommand> {
    let mut out: Vec<RawCommand> = Vec::new();
    for c in remedy {
        let service = match c {
            RawCommand::Restart { service }
            | RawCommand::RestartReplicas { service, .. }
            | RawCommand::SetEnv { service, .. } => service,
            _ => continue,
        };
        let down: Vec<u32> = view
            .get(service)
            .into_iter()
            .flat_map(|live| {
                live.iter()
                    .enumerate()
                    .filter(|(_, l)| !**l)
                    .map(|(r, _)| r as u32)
            })
            .collect();
        let already = out
            .iter()
            .any(|o| o.targets() == Some(vec![service.as_str()]));
        if !down.is_empty() && !already {
            out.push(RawCommand::RestartReplicas {
                service: service.clone(),
                replicas: down,
            });
        }
    }
    out
}

/// The restarts in `remedy` (what a restart loop repeats).
fn restarts(remedy: &[RawCommand]) -> Vec<RawCommand> {
    remedy
        .iter()
        .filter(|c| {
            matches!(
                c,
                RawCommand::Restart { .. }
                    | RawCommand::RestartReplicas { .. }
                    | RawCommand::RestartAll
                    | RawCommand::SetEnv { .. }
            )
        })
        .cloned()
        .collect()
}

impl Policy for RawAgent {
    fn kind(&self) -> PolicyKind {
        PolicyKind::Unconstrained
    }

    fn observe(&mut self, obs: &Observation<'_>) -> Vec<Proposal> {
        if !obs.incidents.is_empty() {
            self.record(obs);
        }
        let mut out = Vec::new();
        let (seed, cfg) = (self.seed, self.cfg);
        let check = Duration::from_secs_f64(cfg.raw.check_after_s.max(0.0));
        let reassess = Duration::from_secs_f64(cfg.reassess_after_s.max(0.0));
        for info in obs.incidents {
            let number = info.number;
            let inc = self.incidents.entry(number).or_insert_with(|| {
                let llm = IncidentLlm::new(
                    seed,
                    number,
                    0,
                    cfg,
                    info.truth.clone(),
                    &info.view(obs.graph, &[]),
                );
                let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5241_5700);
                rng.set_stream(number);
                RawIncident {
                    state: State::Thinking {
                        ready_at: info
                            .opened_at
                            .saturating_add(Duration::from_secs_f64(llm.decision_latency_s())),
                    },
                    rounds: vec![llm],
                    rng,
                    remedy: Vec::new(),
                    loops: 0,
                }
            });
            let mut commands = Vec::new();
            match inc.state {
                State::Thinking { ready_at } if obs.now >= ready_at => {
                    inc.state = State::Acted {
                        at: obs.now,
                        checked: false,
                    };
                    commands = self.round_commands(number, info, obs);
                }
                State::Acted { at, checked: false } if obs.now >= at.saturating_add(check) => {
                    inc.state = State::Acted { at, checked: true };
                    commands = self.first_check(number, obs.now);
                }
                State::Acted { at, .. } if obs.now >= at.saturating_add(reassess) => {
                    // Still open: the remedy did not work.
                    let again = restarts(&inc.remedy);
                    let loops = !again.is_empty()
                        && inc.loops < cfg.raw.restart_loop_max
                        && inc.rng.random_bool(cfg.raw.restart_loop);
                    if loops {
                        inc.loops += 1;
                        inc.state = State::Acted {
                            at: obs.now,
                            checked: true,
                        };
                        commands = again;
                        self.count(Behaviour::RestartLoop);
                    } else if inc.rounds.len() as u32 >= cfg.max_rounds {
                        inc.state = State::Escalated;
                        out.push(Proposal::Escalate {
                            incident: number,
                            reason: format!("unresolved after {} rounds", inc.rounds.len()),
                        });
                    } else {
                        let blamed: Vec<String> = inc
                            .rounds
                            .iter()
                            .map(|r| r.diagnosis().root_cause.clone())
                            .collect();
                        let round = inc.rounds.len() as u32;
                        let llm = IncidentLlm::new(
                            seed,
                            number,
                            round,
                            cfg,
                            info.truth.clone(),
                            &info.view(obs.graph, &blamed),
                        );
                        inc.state = State::Thinking {
                            ready_at: obs
                                .now
                                .saturating_add(Duration::from_secs_f64(llm.decision_latency_s())),
                        };
                        inc.rounds.push(llm);
                    }
                }
                _ => {}
            }
            if !commands.is_empty() {
                out.push(Proposal::Raw {
                    incident: Some(number),
                    commands,
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

    fn behaviours(&self) -> BTreeMap<String, u32> {
        Behaviour::ALL
            .into_iter()
            .map(|b| {
                (
                    b.as_str().to_string(),
                    self.counts.get(&b).copied().unwrap_or(0),
                )
            })
            .collect()
    }
}
