//! The kernel executing typed plans through the simulator, and raw commands bypassing it.

use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use kernel::journal::replay;
use kernel::txn::Outcome;
use kernel::{ControlState, Kernel, KernelConfig, Plan, VirtualTime};
use sim::actuator::{RawActuator, RawCommand, SimActuator};
use sim::{Cause, ScopeKind, Sim, SimConfig};

fn social() -> Sim {
    let spec =
        deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default()).unwrap();
    Sim::new(spec, SimConfig::default()).unwrap()
}

#[test]
fn a_typed_plan_runs_through_the_kernel_into_the_simulation() {
    let mut sim = social();
    sim.run_until(VirtualTime::from_secs(20)).unwrap();
    let graph = sim.dependency_graph();
    let symptom = graph.id("home-timeline-service").unwrap();
    let scope = Inference::new()
        .infer(
            &graph,
            symptom,
            IncidentId::try_from("inc").unwrap(),
            GroupConfig::default(),
        )
        .scope;
    let plan = Plan::from_json_str(
        r#"{"incident": "inc", "stages": [
            [{"drain": {"service": "home-timeline-service", "replicas": [1]}}],
            [{"restart": {"service": "home-timeline-service", "replicas": [1]}}],
            [{"restore_traffic": {"service": "home-timeline-service"}}]]}"#,
        "plan",
    )
    .unwrap();
    let initial = ControlState::from_graph(&graph);
    let mut kernel = Kernel::new(KernelConfig::default());
    let sub = kernel.submit(sim.now(), plan, &graph, &scope);
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    let mut outcome = None;
    let mut t = 20_000_000;
    while outcome.is_none() && t < 120_000_000 {
        t += 250_000;
        sim.run_until(VirtualTime(t)).unwrap();
        let mut actuator = SimActuator::new(&mut sim, Cause::Action(1));
        outcome = kernel
            .poll(VirtualTime(t), &mut actuator)
            .into_iter()
            .next()
            .map(|(_, o)| o);
    }
    assert_eq!(outcome, Some(Outcome::Committed));
    let done = t as f64 / 1e6;
    assert!(
        (28.0..32.0).contains(&done),
        "commit waits for the 8 s start-up: {done}"
    );
    sim.run_until(VirtualTime::from_secs(60)).unwrap();
    let lost: u64 = sim
        .metrics()
        .series(ScopeKind::Service, "home-timeline-service")
        .iter()
        .map(|r| r.errors_action)
        .sum();
    assert_eq!(lost, 0, "drained before the restart: no request lost");
    let replayed = replay(&initial, kernel.journal().records()).unwrap();
    assert_eq!(
        replayed.get("home-timeline-service"),
        Some(&sim.service_control("home-timeline-service").unwrap()),
        "the journal replays to the simulation's control state"
    );
}

#[test]
fn raw_destructive_commands_hurt() {
    let mut sim = social();
    sim.run_until(VirtualTime::from_secs(10)).unwrap();
    let cmd = RawCommand::DeleteDeployment {
        service: "post-storage-service".into(),
    };
    assert_eq!(
        cmd.to_string(),
        "kubectl delete deployment post-storage-service"
    );
    RawActuator::execute(&mut sim, &cmd, Cause::Action(9)).unwrap();
    sim.run_until(VirtualTime::from_secs(40)).unwrap();
    let rows = sim.metrics().series(ScopeKind::Path, "read-home-timeline");
    let after: Vec<_> = rows.iter().filter(|r| r.second >= 12).collect();
    assert!(
        after.iter().all(|r| r.error_rate() > 0.99),
        "deleted for good"
    );
    assert!(
        after.iter().all(|r| r.errors_action == r.errors()),
        "and it is the action's doing"
    );
    RawActuator::execute(&mut sim, &RawCommand::RestartAll, Cause::Action(10)).unwrap();
    assert!(
        sim.replicas("post-storage-mongodb")
            .unwrap()
            .iter()
            .all(|r| r.state == sim::ReplicaState::Starting)
    );
}
