//! Policies against a DeathStarBench graph: the two LLM agents share their draws, the typed and
//! raw renderings of a plan agree, the oracle's plans pass the kernel, and a real-model agent
//! replays a recorded conversation exactly.

use agents::real_llm::{
    ChatRequest, Exchange, LlmError, RealLlmAgent, Recorder, ReplayTransport, Transport,
};

use agents::{
    FaultType, GroundTruth, IncidentInfo, IncidentLlm, LlmConfig, Mistake, MistakeRates,
    Observation, Policy, PolicyKind, Proposal, make, oracle_plan,
};
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use kernel::validate::{KernelView, validate};
use kernel::{DependencyGraph, Rule, Verdict, VirtualTime};
use sim::ReplicaStatus;
use sim::actuator::RawCommand;

fn hotel() -> (DependencyGraph, sim::spec::AppSpec) {
    let spec =
        deathstarbench::load("hotelReservation", &deathstarbench::Deployment::default()).unwrap();
    (spec.dependency_graph(300.0), spec)
}

fn incident(
    graph: &DependencyGraph,
    symptom: &str,
    truth: GroundTruth,
    number: u64,
) -> IncidentInfo {
    let id = IncidentId::try_from(format!("inc-{number}")).unwrap();
    let scope = Inference::new()
        .infer(
            graph,
            graph.id(symptom).unwrap(),
            id.clone(),
            GroupConfig::default(),
        )
        .scope;
    IncidentInfo {
        id,
        number,
        opened_at: VirtualTime::from_secs(100),
        symptom: symptom.into(),
        scope,
        truth,
    }
}

fn truth(root: &str, fault: FaultType) -> GroundTruth {
    GroundTruth {
        root_cause: root.into(),
        fault,
        replicas: vec![0],
        dependency: (fault == FaultType::Partition).then(|| "memcached-rate".to_string()),
    }
}

struct NoCluster;
impl agents::ClusterView for NoCluster {
    fn service_names(&self) -> Vec<String> {
        Vec::new()
    }
    fn replicas(&self, _: &str) -> Vec<ReplicaStatus> {
        Vec::new()
    }
}

fn observe(
    policy: &mut dyn Policy,
    now: u64,
    incidents: &[IncidentInfo],
    graph: &DependencyGraph,
    verdicts: &[(u64, Verdict)],
) -> Vec<Proposal> {
    policy.observe(&Observation {
        now: VirtualTime::from_secs(now),
        incidents,
        graph,
        cluster: &NoCluster,
        verdicts,
        metrics: &[],
    })
}

#[test]
fn constrained_and_unconstrained_receive_identical_diagnoses_and_plans() {
    let (graph, _) = hotel();
    // The raw agent's behaviours off: its commands are then its draft's (they draw from their
    // own stream, so the diagnoses are the same with them on).
    let mut cfg = LlmConfig::default();
    cfg.raw = cfg.raw.scaled(0.0);
    let mut compared = 0;
    for seed in 1..=20u64 {
        for (n, fault) in FaultType::ALL.into_iter().enumerate() {
            let info = incident(&graph, "search", truth("rate", fault), n as u64 + 1);
            let mut constrained = make(PolicyKind::Constrained, seed, cfg);
            let mut unconstrained = make(PolicyKind::Unconstrained, seed, cfg);
            // Both decide after the same latency: nothing at first, a plan 30 s later.
            let infos = std::slice::from_ref(&info);
            assert!(observe(constrained.as_mut(), 100, infos, &graph, &[]).is_empty());
            assert!(observe(unconstrained.as_mut(), 100, infos, &graph, &[]).is_empty());
            let typed = observe(constrained.as_mut(), 130, infos, &graph, &[]);
            let raw = observe(unconstrained.as_mut(), 130, infos, &graph, &[]);
            let (c, u) = (
                &constrained.pipelines()[0].1,
                &unconstrained.pipelines()[0].1,
            );
            assert_eq!(c.diagnosis(), u.diagnosis(), "seed {seed} {fault:?}");
            assert_eq!(c.mistakes(), u.mistakes());
            assert_eq!(c.decision_latency_s(), u.decision_latency_s());
            // An empty draft sends no command.
            if raw.is_empty() {
                assert!(
                    c.mistakes().contains(&Mistake::EmptyPlan),
                    "seed {seed} {fault:?}"
                );
                continue;
            }
            // The raw commands are the typed plan's actions, in order, except where the ISA
            // cannot express the intent (destructive commands).
            let (Proposal::Typed { plan, .. }, Proposal::Raw { commands, .. }) =
                (&typed[0], &raw[0])
            else {
                panic!(
                    "constrained proposes typed plans, unconstrained raw commands: {typed:?} {raw:?}"
                );
            };
            if !c.mistakes().contains(&agents::Mistake::Destructive) {
                let expected: Vec<_> = plan
                    .steps()
                    .map(|(_, a)| agents::pipeline::raw_of(a, &graph))
                    .collect();
                assert_eq!(&expected, commands, "seed {seed} {fault:?}");
                compared += 1;
            }
        }
    }
    assert!(compared > 50, "most incidents compared: {compared}");
}

#[test]
fn draws_differ_across_seeds_and_incidents() {
    let (graph, _) = hotel();
    let info = |n| incident(&graph, "search", truth("rate", FaultType::Crash), n);
    let infos: Vec<IncidentInfo> = (1..=30).map(info).collect();
    let roots: std::collections::BTreeSet<String> = infos
        .iter()
        .map(|i| {
            let view = i.view(&graph, &[]);
            IncidentLlm::new(7, i.number, 0, LlmConfig::default(), i.truth.clone(), &view)
                .diagnosis()
                .root_cause
                .clone()
        })
        .collect();
    assert!(roots.len() > 2, "localisation errors vary: {roots:?}");
}

#[test]
fn perfect_llm_plans_like_the_oracle_and_passes_the_kernel() {
    let (mut graph, _) = hotel();
    // The misconfiguration pushed a bad version on top of the good one, as the fault does.
    let rate = graph.id("rate").unwrap();
    graph.service_mut(rate).config_versions = vec!["v1".into(), "v2-bad".into()];
    let perfect = LlmConfig::default().with_error_factor(0.0);
    for (n, fault) in FaultType::ALL.into_iter().enumerate() {
        let info = incident(&graph, "rate", truth("rate", fault), n as u64 + 1);
        let view = info.view(&graph, &[]);
        let llm = IncidentLlm::new(3, info.number, 0, perfect, info.truth.clone(), &view);
        assert!(llm.diagnosis().correct_root && llm.diagnosis().correct_type);
        assert!(llm.mistakes().is_empty());
        let verdict = validate(
            &llm.typed_plan(&view),
            &graph,
            &info.scope,
            &KernelView::idle(),
        );
        assert!(verdict.accepted(), "{fault:?}: {verdict}");
        let oracle = oracle_plan(&info.id, &info.truth, &graph);
        let verdict = validate(&oracle, &graph, &info.scope, &KernelView::idle());
        assert!(verdict.accepted(), "oracle {fault:?}: {verdict}");
    }
}

/// Each planning mistake alone trips only the kernel rules that name it (gross ones aside), never
/// another: a plan
/// with a rate-limit or drain lease stays well formed whatever steps a mistake adds before it
/// (leases travel with their steps), and a service named twice is restarted once.
#[test]
fn each_mistake_alone_trips_only_the_rules_that_name_it() {
    for app in ["hotelReservation", "socialNetwork"] {
        let spec = deathstarbench::load(app, &deathstarbench::Deployment::default()).unwrap();
        let mut graph = spec.dependency_graph(300.0);
        let names: Vec<String> = graph.services().map(|(_, s)| s.name.clone()).collect();
        for name in &names {
            let id = graph.id(name).unwrap();
            graph.service_mut(id).config_versions = vec!["v1".into(), "v2-bad".into()];
        }
        for mistake in Mistake::ALL {
            let mut rates = serde_json::to_value(MistakeRates::default().scaled(0.0)).unwrap();
            rates[serde_json::to_value(mistake).unwrap().as_str().unwrap()] = 1.0.into();
            let cfg = LlmConfig {
                mistakes: serde_json::from_value(rates).unwrap(),
                verification_catch: 0.0,
                ..LlmConfig::default().with_error_factor(0.0)
            };
            let allowed: Vec<Rule> = Rule::ALL
                .into_iter()
                .filter(|r| Mistake::implicated_by(*r).contains(&mistake))
                .collect();
            let mut checked = 0;
            for (n, root) in names.iter().enumerate().step_by(3) {
                let Some((caller, _)) = graph.callers(graph.id(root).unwrap()).next() else {
                    continue;
                };
                let symptom = graph.service(caller).name.clone();
                for fault in FaultType::ALL {
                    let mut t = truth(root, fault);
                    t.dependency = graph
                        .callees(graph.id(root).unwrap())
                        .next()
                        .map(|(c, _)| graph.service(c).name.clone());
                    let info = incident(&graph, &symptom, t, n as u64);
                    let view = info.view(&graph, &[]);
                    let llm = IncidentLlm::new(5, info.number, 0, cfg, info.truth.clone(), &view);
                    let verdict = validate(
                        &llm.typed_plan(&view),
                        &graph,
                        &info.scope,
                        &KernelView::idle(),
                    );
                    checked += 1;
                    // Gross mistakes break many rules at once. Forty restarts must at least be
                    // too long; a destructive command has no typed form (it becomes the closest
                    // restart, which may pass), but the raw rendering must keep it.
                    if mistake == Mistake::OversizedPlan {
                        assert!(verdict.rules().contains(&Rule::PlanLength), "{verdict}");
                        continue;
                    }
                    if mistake == Mistake::Destructive {
                        let raw = llm.raw_commands(&view);
                        assert!(
                            raw.iter().any(|c| matches!(
                                c,
                                RawCommand::DeleteDeployment { .. }
                                    | RawCommand::Scale { replicas: 0, .. }
                                    | RawCommand::RestartAll
                            )),
                            "{raw:?}"
                        );
                        continue;
                    }
                    for rule in verdict.rules() {
                        assert!(
                            allowed.contains(&rule),
                            "{app}, {mistake:?} alone (root {root}, {fault:?}) tripped {rule:?}: {verdict}"
                        );
                    }
                }
            }
            assert!(checked > 10, "{app}: only {checked} incidents");
        }
    }
}

#[test]
fn constrained_agent_replans_on_rejection_then_escalates() {
    let (graph, _) = hotel();
    let info = incident(&graph, "search", truth("rate", FaultType::Crash), 1);
    let infos = std::slice::from_ref(&info);
    let mut agent = make(PolicyKind::Constrained, 1, LlmConfig::default());
    let rejection = Verdict {
        incident: info.id.clone(),
        violations: vec![kernel::validate::Violation {
            rule: Rule::OutOfScope,
            step: None,
            target: None,
            detail: "test".into(),
        }],
    };
    let mut now = 130;
    let mut escalated = false;
    for round in 0..3 {
        let proposals = observe(agent.as_mut(), now, infos, &graph, &[]);
        assert!(
            matches!(proposals.as_slice(), [Proposal::Typed { .. }]),
            "round {round}: {proposals:?}"
        );
        now += 1;
        let after = observe(
            agent.as_mut(),
            now,
            infos,
            &graph,
            &[(1, rejection.clone())],
        );
        if round == 2 {
            escalated = matches!(after.as_slice(), [Proposal::Escalate { incident: 1, .. }]);
        } else {
            assert!(after.is_empty(), "re-planning takes time: {after:?}");
            now += 10;
        }
    }
    assert!(escalated, "three rejections escalate");
    assert!(
        observe(agent.as_mut(), now + 100, infos, &graph, &[]).is_empty(),
        "nothing after escalating"
    );
}

#[test]
fn raw_agent_starts_a_new_round_when_its_remedy_did_not_resolve_the_incident() {
    let (graph, _) = hotel();
    let info = incident(&graph, "search", truth("rate", FaultType::Crash), 1);
    let infos = std::slice::from_ref(&info);
    // The raw agent with its behaviours off: act, reassess, re-diagnose.
    let mut cfg = LlmConfig::default();
    cfg.raw = cfg.raw.scaled(0.0);
    let mut agent = make(PolicyKind::Unconstrained, 5, cfg);
    let mut proposals = 0;
    let mut escalations = 0;
    for t in 100..700 {
        for p in observe(agent.as_mut(), t, infos, &graph, &[]) {
            match p {
                Proposal::Raw { .. } => proposals += 1,
                Proposal::Escalate { .. } => escalations += 1,
                Proposal::Typed { .. } | Proposal::Refused { .. } => {
                    panic!("unconstrained never proposes typed plans")
                }
            }
        }
    }
    assert_eq!(
        (proposals, escalations),
        (3, 1),
        "three rounds, then a human"
    );
    let blamed: Vec<String> = agent
        .pipelines()
        .iter()
        .map(|(_, l)| l.diagnosis().root_cause.clone())
        .collect();
    let wrong: Vec<&String> = blamed.iter().filter(|b| *b != "rate").collect();
    let distinct: std::collections::BTreeSet<&&String> = wrong.iter().collect();
    assert_eq!(
        distinct.len(),
        wrong.len(),
        "a wrong suspect is not blamed twice: {blamed:?}"
    );
}

/// Answers with a fixed list of replies.
struct Canned(Vec<String>);
impl Transport for Canned {
    fn complete(&mut self, _: &ChatRequest) -> Result<String, LlmError> {
        if self.0.is_empty() {
            Err(LlmError::Transport("no more replies".into()))
        } else {
            Ok(self.0.remove(0))
        }
    }
}

fn drive(agent: &mut dyn Policy, graph: &DependencyGraph, info: &IncidentInfo) -> Vec<Proposal> {
    let infos = std::slice::from_ref(info);
    let mut all = Vec::new();
    let reject = Verdict {
        incident: info.id.clone(),
        violations: vec![kernel::validate::Violation {
            rule: Rule::RestartOrder,
            step: Some(0),
            target: None,
            detail: "test".into(),
        }],
    };
    let mut verdicts = Vec::new();
    for t in 100..200 {
        let out = observe(agent, t, infos, graph, &verdicts);
        verdicts = out
            .iter()
            .filter(|p| matches!(p, Proposal::Typed { .. }))
            .map(|_| (1, reject.clone()))
            .collect();
        all.extend(out);
    }
    all
}

#[test]
fn real_llm_agent_records_then_replays_identically() {
    let (graph, _) = hotel();
    let info = incident(&graph, "search", truth("rate", FaultType::Crash), 1);
    let replies = vec![
        "I'll restart the rate service.\n```json\n{\"incident\": \"inc-1\", \"stages\": [[{\"restart\": {\"service\": \"rate\"}}]]}\n```".to_string(),
        "not a plan at all".to_string(),
        "{\"incident\": \"inc-1\", \"stages\": [[{\"restart\": {\"service\": \"memcached-rate\"}}], [{\"restart\": {\"service\": \"rate\"}}]]}".to_string(),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("recording.jsonl");
    let mut live = RealLlmAgent::new(Recorder::new(Canned(replies), &path), "test-model", 12.0);
    let recorded = drive(&mut live, &graph, &info);
    // Two parsed plans (the chatty one and the bare one), the unreadable answer on the record
    // and fed back, then escalation after the third failure.
    let kinds: Vec<&str> = recorded
        .iter()
        .map(|p| match p {
            Proposal::Typed { .. } => "typed",
            Proposal::Escalate { .. } => "escalate",
            Proposal::Raw { .. } => "raw",
            Proposal::Refused { .. } => "refused",
        })
        .collect();
    assert_eq!(kinds, ["typed", "refused", "typed", "escalate"]);
    let Proposal::Refused {
        incident,
        reason,
        reply_excerpt,
    } = &recorded[1]
    else {
        unreachable!("checked above")
    };
    assert_eq!(*incident, 1);
    assert!(reason.contains("not a typed plan"), "{reason}");
    assert_eq!(reply_excerpt, "not a plan at all");
    let text = std::fs::read_to_string(&path).unwrap();
    let exchanges: Vec<Exchange> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exchanges.len(), 3);
    assert!(
        exchanges[1].request.messages[1]
            .content
            .contains("R4-restart-order"),
        "rejections are fed back"
    );
    assert!(
        exchanges[2].request.messages[1]
            .content
            .contains("not a typed plan"),
        "parse errors are fed back"
    );
    let mut replayed = RealLlmAgent::new(ReplayTransport::open(&path).unwrap(), "test-model", 12.0);
    assert_eq!(drive(&mut replayed, &graph, &info), recorded);
    assert_eq!(replayed.failure(), None);
    // A recording of another conversation (here: another model) does not answer this one: the
    // agent stops with the reason instead of improvising.
    let mut mismatched =
        RealLlmAgent::new(ReplayTransport::open(&path).unwrap(), "other-model", 12.0);
    assert!(drive(&mut mismatched, &graph, &info).is_empty());
    let failure = mismatched.failure().expect("a failure");
    assert!(failure.contains("no recorded response"), "{failure}");
}

/// Answers every request with the same reply and measures each prompt.
struct Same {
    reply: String,
    prompt_bytes: Vec<usize>,
}
impl Transport for Same {
    fn complete(&mut self, request: &ChatRequest) -> Result<String, LlmError> {
        self.prompt_bytes
            .push(request.messages.iter().map(|m| m.content.len()).sum());
        Ok(self.reply.clone())
    }
}

/// Drives `agent` with real verdicts of the kernel's validator; returns its proposals.
fn drive_validated(
    agent: &mut dyn Policy,
    graph: &DependencyGraph,
    info: &IncidentInfo,
) -> (Vec<Proposal>, Vec<Verdict>) {
    let infos = std::slice::from_ref(info);
    let (mut all, mut given) = (Vec::new(), Vec::new());
    let mut verdicts = Vec::new();
    for t in 100..300 {
        let out = observe(agent, t, infos, graph, &verdicts);
        verdicts = out
            .iter()
            .filter_map(|p| match p {
                Proposal::Typed { plan, .. } => {
                    Some((1, validate(plan, graph, &info.scope, &KernelView::idle())))
                }
                _ => None,
            })
            .collect();
        given.extend(verdicts.iter().map(|(_, v)| v.clone()));
        all.extend(out);
    }
    (all, given)
}

#[test]
fn a_thousand_step_reply_does_not_grow_the_prompt_beyond_the_cap() {
    use agents::real_llm::{FEEDBACK_TOTAL_CAP, REPLY_EXCERPT_CAP};
    let (graph, _) = hotel();
    let info = incident(&graph, "search", truth("rate", FaultType::Crash), 1);
    // 1,000 restarts of a service outside the scope, in one stage: every step violates rules.
    let step = r#"{"restart": {"service": "frontend"}}"#;
    let steps = vec![step; 1000].join(", ");
    let huge = format!(r#"{{"incident": "inc-1", "stages": [[{steps}]]}}"#);
    let mut agent = RealLlmAgent::new(
        Same {
            reply: huge.clone(),
            prompt_bytes: Vec::new(),
        },
        "m",
        12.0,
    );
    let (proposals, verdicts) = drive_validated(&mut agent, &graph, &info);
    assert!(
        matches!(proposals.last(), Some(Proposal::Escalate { .. })),
        "{:?}",
        proposals.last()
    );
    let pasted: Vec<usize> = verdicts.iter().map(|v| v.to_string().len()).collect();
    assert!(
        verdicts.iter().all(|v| v.violations.len() >= 1000) && pasted[0] > 50_000,
        "the verdict pasted whole would be {pasted:?} bytes"
    );
    let mut unreadable = RealLlmAgent::new(
        Same {
            reply: format!("Here is my plan: {}", huge.replace("restart", "reboot")),
            prompt_bytes: Vec::new(),
        },
        "m",
        12.0,
    );
    let (refused, _) = drive_validated(&mut unreadable, &graph, &info);
    for p in &refused {
        if let Proposal::Refused { reply_excerpt, .. } = p {
            assert!(
                reply_excerpt.len() <= REPLY_EXCERPT_CAP,
                "{}",
                reply_excerpt.len()
            );
        }
    }
    assert_eq!(
        refused
            .iter()
            .filter(|p| matches!(p, Proposal::Refused { .. }))
            .count(),
        3
    );
    // Both agents were asked three times; the prompts grow by at most the cap.
    for sizes in [
        &agent.transport().prompt_bytes,
        &unreadable.transport().prompt_bytes,
    ] {
        assert_eq!(sizes.len(), 3, "{sizes:?}");
        for s in sizes {
            assert!(
                *s <= sizes[0] + FEEDBACK_TOTAL_CAP,
                "prompt sizes {sizes:?} (the verdicts pasted whole: {pasted:?})"
            );
        }
        eprintln!("prompt bytes per attempt: {sizes:?}; verdicts pasted whole: {pasted:?}");
    }
}
