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
        // Only a stale read uses the history; at rate 0 there is none to keep.
        if !obs.incidents.is_empty() && self.cfg.raw.stale_state > 0.0 {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::GroundTruth;
    use crate::policy::ClusterView;
    use kernel::DependencyGraph;
    use kernel::groups::{GroupConfig, Inference};
    use kernel::isa::IncidentId;
    use sim::{ReplicaState, ReplicaStatus};

    fn hotel() -> DependencyGraph {
        deathstarbench::load("hotelReservation", &deathstarbench::Deployment::default())
            .unwrap()
            .dependency_graph(300.0)
    }

    fn incident(graph: &DependencyGraph, fault: FaultType) -> IncidentInfo {
        let id = IncidentId::try_from("inc-1").unwrap();
        let scope = Inference::new()
            .infer(
                graph,
                graph.id("search").unwrap(),
                id.clone(),
                GroupConfig::default(),
            )
            .scope;
        IncidentInfo {
            id,
            number: 1,
            opened_at: VirtualTime::from_secs(100),
            symptom: "search".into(),
            scope,
            truth: GroundTruth {
                root_cause: "rate".into(),
                fault,
                replicas: vec![0],
                dependency: None,
            },
        }
    }

    /// A cluster whose every replica is down during `[down_from, down_until)` and up otherwise.
    struct Cluster {
        services: Vec<String>,
        now: u64,
        down: (u64, u64),
    }

    impl ClusterView for Cluster {
        fn service_names(&self) -> Vec<String> {
            self.services.clone()
        }
        fn replicas(&self, _: &str) -> Vec<ReplicaStatus> {
            let live = !(self.down.0..self.down.1).contains(&self.now);
            vec![
                ReplicaStatus {
                    state: if live {
                        ReplicaState::Running
                    } else {
                        ReplicaState::Starting
                    },
                    serving: live,
                    drained: false,
                    inflight: 0,
                    live,
                    probe_failures: 0,
                    restarts: 0,
                };
                2
            ]
        }
    }

    /// Only the named behaviour, at probability `p`; no jitter (the agent acts at 113 s).
    fn only(set: fn(&mut RawAgentConfig, f64), p: f64) -> LlmConfig {
        let mut cfg = LlmConfig {
            latency_jitter_s: 0.0,
            ..LlmConfig::default()
        };
        cfg.raw = cfg.raw.scaled(0.0);
        set(&mut cfg.raw, p);
        cfg
    }

    /// Runs `agent` from 100 s to `until`, every replica down in `down`; the proposals by tick.
    fn drive(
        agent: &mut RawAgent,
        info: &IncidentInfo,
        until: u64,
        down: (u64, u64),
    ) -> Vec<(u64, Proposal)> {
        let graph = hotel();
        let services = graph.services().map(|(_, s)| s.name.clone()).collect();
        let mut cluster = Cluster {
            services,
            now: 0,
            down,
        };
        let mut out = Vec::new();
        for t in 100..until {
            cluster.now = t;
            let obs = Observation {
                now: VirtualTime::from_secs(t),
                incidents: std::slice::from_ref(info),
                graph: &graph,
                cluster: &cluster,
                verdicts: &[],
                metrics: &[],
            };
            out.extend(agent.observe(&obs).into_iter().map(|p| (t, p)));
        }
        out
    }

    fn commands(p: &Proposal) -> &[RawCommand] {
        match p {
            Proposal::Raw { commands, .. } => commands,
            other => panic!("the raw agent proposes raw commands only: {other:?}"),
        }
    }

    /// A seed whose first remedy (for a crash) restarts something.
    fn seed_with_restarts(graph: &DependencyGraph, info: &IncidentInfo, cfg: LlmConfig) -> u64 {
        (1..200)
            .find(|&seed| {
                let llm =
                    IncidentLlm::new(seed, 1, 0, cfg, info.truth.clone(), &info.view(graph, &[]));
                !restarts(&llm.raw_commands(&info.view(graph, &[]))).is_empty()
            })
            .expect("some seed restarts")
    }

    #[test]
    fn a_restart_loop_follows_an_unsuccessful_fix_and_stops_at_its_bound() {
        let graph = hotel();
        let info = incident(&graph, FaultType::Crash);
        let mut cfg = only(|r, p| r.restart_loop = p, 1.0);
        cfg.raw.restart_loop_max = 2;
        let seed = seed_with_restarts(&graph, &info, cfg);
        let mut agent = RawAgent::new(seed, cfg);
        let proposals = drive(&mut agent, &info, 900, (0, 0));
        let first = commands(&proposals[0].1).to_vec();
        let repeated = restarts(&first);
        // The first remedy at 113 s; the same restarts at each reassessment (60 s apart) while
        // the incident stays open, twice; then a new diagnosis round.
        assert_eq!(proposals[0].0, 113);
        assert_eq!(
            (proposals[1].0, commands(&proposals[1].1)),
            (173, &repeated[..])
        );
        assert_eq!(
            (proposals[2].0, commands(&proposals[2].1)),
            (233, &repeated[..])
        );
        assert_eq!(
            agent.behaviours()["restart_loop"],
            2,
            "bounded by restart_loop_max"
        );
        assert_eq!(
            agent.pipelines().len(),
            3,
            "then new rounds, up to max_rounds"
        );
        assert!(matches!(
            proposals.last().unwrap().1,
            Proposal::Escalate { .. }
        ));
        // Without the behaviour: no repeat, a new round at the first reassessment.
        let mut plain = RawAgent::new(seed, only(|r, p| r.restart_loop = p, 0.0));
        let proposals = drive(&mut plain, &info, 900, (0, 0));
        assert_eq!(plain.behaviours()["restart_loop"], 0);
        assert!(
            proposals.iter().all(|(t, _)| *t != 173),
            "reassessing is thinking, not acting"
        );
    }

    #[test]
    fn stale_state_deletes_pods_that_were_unready_in_an_observation_older_than_now() {
        let graph = hotel();
        let info = incident(&graph, FaultType::Crash);
        let cfg = only(|r, p| r.stale_state = p, 1.0);
        let seed = seed_with_restarts(&graph, &info, cfg);
        let mut agent = RawAgent::new(seed, cfg);
        // Replicas restart after the agent acts at 113 s and are up again from 121 s; the check
        // at 128 s reads the observation of 118 s (10 s old), when they were not.
        let proposals = drive(&mut agent, &info, 140, (113, 121));
        let check: Vec<&(u64, Proposal)> = proposals.iter().filter(|(t, _)| *t == 128).collect();
        assert_eq!(check.len(), 1, "{proposals:?}");
        assert!(commands(&check[0].1).iter().all(
            |c| matches!(c, RawCommand::RestartReplicas { replicas, .. } if replicas == &[0, 1])
        ));
        assert_eq!(agent.behaviours()["stale_state"], 1);
        // Reading the observation of now (up again), nothing would be deleted.
        let mut fresh = RawAgent::new(seed, only(|r, p| r.stale_state = p, 0.0));
        assert!(
            drive(&mut fresh, &info, 140, (113, 121))
                .iter()
                .all(|(t, _)| *t != 128)
        );
        // And the stale view is the newest observation at least stale_by_s old.
        let at = agent.stale_view(VirtualTime::from_secs(139)).unwrap().0;
        assert_eq!(at, VirtualTime::from_secs(129));
    }

    #[test]
    fn early_success_lifts_its_own_mitigations_and_stops_following_the_incident() {
        let remedy = vec![
            RawCommand::Drain {
                service: "rate".into(),
                replicas: vec![0],
            },
            RawCommand::RateLimit {
                service: "search".into(),
                rps: 30.0,
            },
            RawCommand::CircuitBreak {
                caller: "search".into(),
                callee: "rate".into(),
            },
            RawCommand::Restart {
                service: "rate".into(),
            },
        ];
        let kinds: Vec<&str> = lift_mitigations(&remedy).iter().map(|c| c.name()).collect();
        assert_eq!(kinds, ["undrain", "lift_rate_limit", "close_breaker"]);
        let graph = hotel();
        let info = incident(&graph, FaultType::Latency);
        let mut agent = RawAgent::new(3, only(|r, p| r.early_success = p, 1.0));
        let proposals = drive(&mut agent, &info, 900, (0, 0));
        assert_eq!(agent.behaviours()["early_success"], 1);
        assert!(
            proposals.iter().all(|(t, _)| *t <= 128),
            "no reassessment, no escalation: {proposals:?}"
        );
    }

    #[test]
    fn a_symptom_fix_acts_on_the_alerting_service_and_exploration_comes_first() {
        let fix = symptom_fix("search", FaultType::Resource, 2, 2.0);
        assert_eq!(
            fix,
            [
                RawCommand::PatchLimits {
                    service: "search".into(),
                    cpu: 2.0
                },
                RawCommand::Scale {
                    service: "search".into(),
                    replicas: 3
                }
            ]
        );
        assert_eq!(
            symptom_fix("search", FaultType::Crash, 2, 2.0),
            [RawCommand::Restart {
                service: "search".into()
            }]
        );
        let kinds: Vec<Vec<&str>> = (0..5)
            .map(|k| {
                exploratory_change("rate", k, 2, 0.5)
                    .iter()
                    .map(|c| c.name())
                    .collect()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                vec!["set_env"],
                vec!["scale", "scale"],
                vec!["patch_limits"],
                vec!["restart_replicas"],
                vec!["delete_deployment", "scale"]
            ]
        );
        let graph = hotel();
        let info = incident(&graph, FaultType::Crash);
        let mut cfg = only(|r, p| r.symptom_fix = p, 1.0);
        cfg.raw.exploratory = 1.0;
        let mut agent = RawAgent::new(1, cfg);
        let proposals = drive(&mut agent, &info, 114, (0, 0));
        let sent = commands(&proposals[0].1);
        assert_eq!(
            sent.last(),
            Some(&RawCommand::Restart {
                service: "search".into()
            })
        );
        let first = sent[0].targets().unwrap()[0].to_string();
        assert!(
            info.scope.contains(&first),
            "explores in the scope: {sent:?}"
        );
        assert_eq!(agent.behaviours()["exploratory"], 1);
        assert_eq!(agent.behaviours()["symptom_fix"], 1);
    }

    #[test]
    fn scaling_moves_every_behaviour_rate_and_keeps_bounds() {
        let raw = RawAgentConfig::default();
        let half = raw.scaled(0.5);
        assert_eq!(half.restart_loop, raw.restart_loop * 0.5);
        assert_eq!(half.stale_state, raw.stale_state * 0.5);
        assert_eq!(half.restart_loop_max, raw.restart_loop_max);
        assert_eq!(raw.scaled(10.0).restart_loop, 1.0);
        assert_eq!(
            LlmConfig::default().with_error_factor(0.0).raw.exploratory,
            0.0
        );
    }
}
