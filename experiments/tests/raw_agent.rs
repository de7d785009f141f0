//! The raw-command (`unconstrained`) agent on real simulated runs: its commands reach the
//! orchestrator through the raw actuator only, never the kernel, and its behaviours are counted.

use agents::{LlmConfig, PolicyKind};
use experiments::online::{Actor, Detection, Execution, OnlineConfig, RunSpec, run};
use faults::FaultType;

#[test]
fn the_raw_agent_reaches_only_the_raw_actuator_never_the_kernel() {
    let cfg = OnlineConfig {
        fault_start_s: 60.0,
        run_s: 300.0,
        ..OnlineConfig::default()
    };
    // Every behaviour likely, so that every kind of command it has is exercised.
    let mut llm = LlmConfig::default();
    llm.raw = llm.raw.scaled(3.0);
    let mut raw_actions = 0;
    let mut behaviours = std::collections::BTreeMap::<String, u32>::new();
    for (name, fault, seed) in [
        ("socialNetwork", FaultType::Crash, 1),
        ("hotelReservation", FaultType::Resource, 2),
        ("hotelReservation", FaultType::Latency, 3),
    ] {
        let app = deathstarbench::load(name, &deathstarbench::Deployment::default()).unwrap();
        let f =
            deathstarbench::scenario_fault(name, fault, cfg.fault_start_s, cfg.fault_duration_s)
                .unwrap();
        let r = run(&RunSpec {
            app: &app,
            faults: faults::FaultSchedule { faults: vec![f] },
            policy: PolicyKind::Unconstrained,
            seed,
            llm,
            config: &cfg,
            detection: Detection::Monitoring,
            execution: Execution::Parallel,
        })
        .unwrap();
        // The kernel saw nothing of the agent: no plan, no journal record, no outcome; the only
        // kernel plans are a paged human's.
        let agent_plans = r
            .actions
            .iter()
            .filter(|a| a.actor == Actor::Agent && a.plan.is_some())
            .count();
        assert_eq!(agent_plans, 0, "{name} {fault}: {:?}", r.actions);
        assert!(
            r.incidents
                .iter()
                .all(|i| i.accepted == 0 && i.rejections.is_empty()),
            "{name} {fault}: no verdict on the agent"
        );
        let human_plans = r.actions.iter().filter(|a| a.actor == Actor::Human).count();
        if human_plans == 0 {
            assert!(
                r.journal.records().is_empty(),
                "{name} {fault}: journal is the human's"
            );
        }
        raw_actions += r.actions.iter().filter(|a| a.actor == Actor::Agent).count();
        for (b, n) in r.behaviours {
            *behaviours.entry(b).or_default() += n;
        }
    }
    assert!(raw_actions > 0, "the agent acted");
    // Every behaviour is counted, and (at three times its rate) happened in these runs.
    for b in agents::Behaviour::ALL {
        let n = behaviours.get(b.as_str()).copied().unwrap_or(0);
        assert!(
            n > 0,
            "behaviour {} never happened: {behaviours:?}",
            b.as_str()
        );
    }
    assert_eq!(
        behaviours.len(),
        agents::Behaviour::ALL.len(),
        "{behaviours:?}"
    );
}
