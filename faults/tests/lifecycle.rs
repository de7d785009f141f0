//! Each fault type is injected, observed and retracted; schedules parse and are checked.

use faults::{FaultInjector, FaultSchedule, FaultType, run_with_faults};
use kernel::VirtualTime;
use sim::rng::{self, Stream};
use sim::{ReplicaState, ScopeKind, Sim, SimConfig};

fn social() -> Sim {
    let spec =
        deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default()).unwrap();
    Sim::new(spec, SimConfig::default()).unwrap()
}

fn errors(sim: &Sim, from: u32, to: u32) -> u64 {
    sim.metrics()
        .rows()
        .iter()
        .filter(|r| r.kind == ScopeKind::Path && (from..to).contains(&r.second))
        .map(|r| r.errors_fault)
        .sum()
}

#[test]
fn every_fault_type_hurts_while_active_and_is_retracted() {
    for fault in FaultType::ALL {
        let spec = deathstarbench::scenario_fault("socialNetwork", fault, 10.0, 30.0).unwrap();
        let target = spec.target.clone();
        let mut sim = social();
        let injector = FaultInjector::new(
            FaultSchedule { faults: vec![spec] },
            rng::stream(1, Stream::Faults),
        );
        let injector = run_with_faults(&mut sim, injector, VirtualTime::from_secs(70)).unwrap();
        assert!(injector.all_retracted(), "{fault}");
        assert_eq!(
            injector.log().len(),
            2,
            "{fault}: one injection, one retraction"
        );
        assert!(injector.active().is_empty());
        let during = errors(&sim, 12, 40);
        let latency_seen =
            sim.metrics().rows().iter().any(|r| {
                r.kind == ScopeKind::Path && (12..40).contains(&r.second) && r.p99_ms > 100.0
            });
        assert!(
            during > 0 || latency_seen,
            "{fault} on {target} shows while active"
        );
        assert_eq!(errors(&sim, 55, 70), 0, "{fault}: gone after retraction");
        assert!(!sim.config_is_bad(&target).unwrap(), "{fault}");
        let states: Vec<_> = sim
            .replicas(&target)
            .unwrap()
            .into_iter()
            .map(|r| r.state)
            .collect();
        assert!(
            states.iter().all(|s| *s == ReplicaState::Running),
            "{fault}: {states:?}"
        );
    }
}

#[test]
fn schedules_parse_from_toml_and_are_checked() {
    let schedule = FaultSchedule::from_toml(
        r#"
        [[faults]]
        target = "post-storage-service"
        start_s = 5
        duration_s = 10
        fault = { type = "latency", delay_ms = 50 }

        [[faults]]
        target = "home-timeline-service"
        replicas = { ids = [1] }
        start_s = 5
        duration_s = 10
        fault = { type = "partition", dependency = "post-storage-service" }
        "#,
    )
    .unwrap();
    assert_eq!(schedule.faults.len(), 2);
    let sim = social();
    schedule.check(&sim).unwrap();
    for (bad, needle) in [
        (
            "target = \"nope\"\nstart_s = 1\nduration_s = 1\nfault = { type = \"crash\" }",
            "unknown service `nope`",
        ),
        (
            "target = \"text-service\"\nstart_s = 1\nduration_s = 0\nfault = { type = \"crash\" }",
            "duration_s",
        ),
        (
            "target = \"text-service\"\nstart_s = 1\nduration_s = 5\nfault = { type = \"resource\", cpu_factor = 0.5 }",
            "cpu_factor",
        ),
        (
            "target = \"text-service\"\nreplicas = { ids = [9] }\nstart_s = 1\nduration_s = 5\nfault = { type = \"crash\" }",
            "no replica 9",
        ),
    ] {
        let s = FaultSchedule::from_toml(&format!("[[faults]]\n{bad}")).unwrap();
        let err = s.check(&sim).unwrap_err();
        assert!(err.contains(needle), "{err}");
    }
    let err = FaultSchedule::from_toml(
        "[[faults]]\ntarget = \"x\"\nstart_s = 1\nduration_s = 1\nfault = { type = \"flood\" }",
    )
    .unwrap_err();
    assert!(err.contains("flood") || err.contains("variant"), "{err}");
    let err = FaultSchedule::from_toml("[[faults]]\ntarget = \"x\"\nstart_s = 1\nduration_s = 1\nfault = { type = \"crash\", mdoe = \"kill\" }").unwrap_err();
    assert!(err.contains("mdoe"), "typos are errors: {err}");
}

/// Found by the simulator's swarm test: a misconfig pushed over an earlier one and retracted
/// after it rolled back to the earlier, already-retracted bad version, leaving it running.
#[test]
fn overlapping_misconfigs_on_one_service_all_retract() {
    let schedule = FaultSchedule::from_toml(
        r#"
        [[faults]]
        target = "user-service"
        start_s = 2
        duration_s = 5
        fault = { type = "misconfig", fail_fraction = 0.5 }

        [[faults]]
        target = "user-service"
        start_s = 5
        duration_s = 10
        fault = { type = "misconfig", fail_fraction = 0.8 }
        "#,
    )
    .unwrap();
    let mut sim = social();
    let before = sim.config_versions("user-service").unwrap().1;
    let injector = FaultInjector::new(schedule, rng::stream(1, Stream::Faults));
    run_with_faults(&mut sim, injector, VirtualTime::from_secs(20)).unwrap();
    assert!(!sim.config_is_bad("user-service").unwrap());
    assert_eq!(sim.config_versions("user-service").unwrap().1, before);
    assert!(sim.fault_residue().is_empty(), "{:?}", sim.fault_residue());
}
