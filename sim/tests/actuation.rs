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

/// Advances the simulation in 250 ms ticks from `t` (µs), polling the kernel, until the first
/// plan finishes or `limit`; returns its outcome and the time.
fn run_plan(sim: &mut Sim, kernel: &mut Kernel, mut t: u64, limit: u64) -> (Option<Outcome>, u64) {
    let mut outcome = None;
    while outcome.is_none() && t < limit {
        t += 250_000;
        sim.run_until(VirtualTime(t)).unwrap();
        let mut actuator = SimActuator::new(sim, Cause::Action(1));
        outcome = kernel
            .poll(VirtualTime(t), &mut actuator)
            .into_iter()
            .next()
            .map(|(_, o)| o);
    }
    (outcome, t)
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
    let (outcome, t) = run_plan(&mut sim, &mut kernel, 20_000_000, 120_000_000);
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

/// Errors per cause on a path over seconds `from..to`: (fault, action).
fn causes(sim: &Sim, path: &str, from: u32, to: u32) -> (u64, u64) {
    let rows = sim.metrics().series(ScopeKind::Path, path);
    let span = rows.iter().filter(|r| (from..to).contains(&r.second));
    span.fold((0, 0), |(f, a), r| {
        (f + r.errors_fault, a + r.errors_action)
    })
}

#[test]
fn what_an_action_turns_away_from_a_service_the_fault_has_taken_down_is_the_faults() {
    // A breaker on the edge to a hung service fails calls fast, but they would fail anyway.
    let mut sim = social();
    sim.run_until(VirtualTime::from_secs(10)).unwrap();
    let all = [0, 1];
    sim.hang("post-storage-service", &all, Cause::Fault(1))
        .unwrap();
    sim.set_breaker(
        "user-timeline-service",
        "post-storage-service",
        true,
        Cause::Action(1),
    )
    .unwrap();
    sim.run_until(VirtualTime::from_secs(30)).unwrap();
    let (fault, action) = causes(&sim, "read-user-timeline", 15, 30);
    assert!(fault > 0 && action == 0, "fault {fault}, action {action}");
    // A remedial restart of the hung replicas keeps the fault's tag while they start.
    sim.restart("post-storage-service", &all, Cause::Action(2))
        .unwrap();
    sim.set_breaker(
        "user-timeline-service",
        "post-storage-service",
        false,
        Cause::Action(1),
    )
    .unwrap();
    sim.run_until(VirtualTime::from_secs(36)).unwrap();
    let (fault, action) = causes(&sim, "read-user-timeline", 30, 36);
    assert!(fault > 0 && action == 0, "fault {fault}, action {action}");
    // Once it serves again, the same breaker's failures are the action's.
    sim.run_until(VirtualTime::from_secs(60)).unwrap();
    sim.set_breaker(
        "user-timeline-service",
        "post-storage-service",
        true,
        Cause::Action(3),
    )
    .unwrap();
    sim.run_until(VirtualTime::from_secs(70)).unwrap();
    let (fault, action) = causes(&sim, "read-user-timeline", 62, 70);
    assert!(fault == 0 && action > 0, "fault {fault}, action {action}");
}

#[test]
fn scaling_away_busy_replicas_under_faults_is_safe() {
    // Calls in flight from and to replicas that disappear, with retries pending: the
    // simulation carries on and the service comes back when scaled up again.
    let mut sim = social();
    sim.run_until(VirtualTime::from_secs(5)).unwrap();
    sim.set_net_delay("compose-post-service", &[0], 300_000, Cause::Fault(1))
        .unwrap();
    sim.run_until(VirtualTime::from_secs(8)).unwrap();
    for (t, service, n) in [
        (8, "compose-post-service", 0),
        (9, "post-storage-service", 0),
        (12, "compose-post-service", 2),
        (13, "post-storage-service", 2),
    ] {
        sim.run_until(VirtualTime::from_secs(t)).unwrap();
        RawActuator::execute(
            &mut sim,
            &RawCommand::Scale {
                service: service.into(),
                replicas: n,
            },
            Cause::Action(4),
        )
        .unwrap();
    }
    sim.run_until(VirtualTime::from_secs(60)).unwrap();
    let rows = sim.metrics().series(ScopeKind::Path, "read-user-timeline");
    assert!(
        rows.iter()
            .filter(|r| r.second >= 40)
            .all(|r| r.error_rate() < 0.01),
        "recovered"
    );
}

/// Issue example (socialNetwork crash, seed 3): a scale-up while a fault holds a replica hung
/// used to wait for every replica to run and abort, with a failing compensation. Its
/// post-condition is about the replicas it added, so it commits; its lease then scales back.
#[test]
fn a_scale_during_a_hang_commits() {
    let mut sim = social();
    sim.run_until(VirtualTime::from_secs(20)).unwrap();
    let service = "post-storage-service";
    let before = sim.replica_count(service).unwrap();
    sim.hang(service, &[0], Cause::Fault(0)).unwrap();
    let graph = sim.dependency_graph();
    let scope = Inference::new()
        .infer(
            &graph,
            graph.id(service).unwrap(),
            IncidentId::try_from("inc").unwrap(),
            GroupConfig::default(),
        )
        .scope;
    let plan = Plan::from_json_str(
        &format!(
            r#"{{"incident": "inc", "stages": [[{{"scale": {{"service": "{service}", "replicas": {}}}}}]],
                 "leases": [{{"step": 0, "ttl_s": 60}}]}}"#,
            before + 1
        ),
        "plan",
    )
    .unwrap();
    let mut kernel = Kernel::new(KernelConfig::default());
    let sub = kernel.submit(sim.now(), plan, &graph, &scope);
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    let (outcome, mut t) = run_plan(&mut sim, &mut kernel, 20_000_000, 200_000_000);
    assert_eq!(
        outcome,
        Some(Outcome::Committed),
        "{}",
        kernel.journal().to_jsonl()
    );
    assert_eq!(sim.replica_count(service).unwrap(), before + 1);
    // The lease lapses and the kernel scales back to what was there.
    let end = t + 61_000_000;
    while t < end {
        t += 250_000;
        sim.run_until(VirtualTime(t)).unwrap();
        kernel.poll(
            VirtualTime(t),
            &mut SimActuator::new(&mut sim, Cause::Action(1)),
        );
    }
    assert_eq!(sim.replica_count(service).unwrap(), before);
    assert!(
        kernel
            .journal()
            .records()
            .iter()
            .any(|r| r.event.name() == "lease_expired")
    );
}
