//! Behaviour of the simulated world, asserted on measured metrics.

use faults::{
    CrashMode, FaultInjector, FaultKind, FaultSchedule, FaultSpec, ReplicaPick, run_with_faults,
};
use kernel::VirtualTime;
use sim::rng::{self, Stream};
use sim::spec::AppSpec;
use sim::{Cause, ScopeKind, Sim, SimConfig, SimError};
use std::collections::BTreeSet;

fn app(name: &str) -> AppSpec {
    deathstarbench::load(name, &deathstarbench::Deployment::default()).unwrap()
}

fn secs(s: u64) -> VirtualTime {
    VirtualTime::from_secs(s)
}

const ACTION: Cause = Cause::Action(1);

/// Totals over seconds `[from, to)` of one scope.
#[derive(Debug, Default)]
struct Window {
    count: u64,
    errors: u64,
    errors_fault: u64,
    errors_action: u64,
    mean_p99_ms: f64,
}

impl Window {
    fn error_rate(&self) -> f64 {
        self.errors as f64 / self.count.max(1) as f64
    }
}

fn window(sim: &Sim, kind: ScopeKind, name: &str, from: u32, to: u32) -> Window {
    let rows: Vec<_> = sim
        .metrics()
        .series(kind, name)
        .into_iter()
        .filter(|r| r.second >= from && r.second < to)
        .collect();
    assert!(!rows.is_empty(), "no rows for {name} in [{from}, {to})");
    let with_latency: Vec<f64> = rows
        .iter()
        .filter(|r| r.p99_ms > 0.0)
        .map(|r| r.p99_ms)
        .collect();
    Window {
        count: rows.iter().map(|r| r.count).sum(),
        errors: rows.iter().map(|r| r.errors()).sum(),
        errors_fault: rows.iter().map(|r| r.errors_fault).sum(),
        errors_action: rows.iter().map(|r| r.errors_action).sum(),
        mean_p99_ms: with_latency.iter().sum::<f64>() / with_latency.len().max(1) as f64,
    }
}

fn one_fault(
    target: &str,
    start_s: f64,
    duration_s: f64,
    kind: FaultKind,
    replicas: ReplicaPick,
) -> FaultInjector {
    let schedule = FaultSchedule {
        faults: vec![FaultSpec {
            target: target.into(),
            replicas,
            start_s,
            duration_s,
            kind,
        }],
    };
    FaultInjector::new(schedule, rng::stream(1, Stream::Faults))
}

#[test]
fn without_faults_every_slo_holds_at_the_default_rate() {
    for name in ["socialNetwork", "hotelReservation", "mediaMicroservices"] {
        let mut sim = Sim::new(app(name), SimConfig::default()).unwrap();
        sim.run_until(secs(120)).unwrap();
        let paths: Vec<String> = sim.spec().paths.iter().map(|p| p.name.clone()).collect();
        for p in paths {
            for row in sim.metrics().series(ScopeKind::Path, &p) {
                assert!(row.slo_ok(), "{name}/{p} second {}: {row:?}", row.second);
            }
            let w = window(&sim, ScopeKind::Path, &p, 0, 120);
            assert_eq!(w.errors, 0, "{name}/{p}");
        }
    }
}

#[test]
fn a_crashed_post_storage_fails_compose_post_and_read_home_timeline() {
    let mut sim = Sim::new(app("socialNetwork"), SimConfig::default()).unwrap();
    let crash = one_fault(
        "post-storage-service",
        30.0,
        60.0,
        FaultKind::Crash {
            mode: CrashMode::Hang,
        },
        ReplicaPick::All,
    );
    let injector = run_with_faults(&mut sim, crash, secs(130)).unwrap();
    assert!(injector.all_retracted());
    for path in ["compose-post", "read-home-timeline", "read-user-timeline"] {
        let before = window(&sim, ScopeKind::Path, path, 5, 30);
        let during = window(&sim, ScopeKind::Path, path, 45, 90);
        let after = window(&sim, ScopeKind::Path, path, 105, 130);
        assert_eq!(before.errors, 0, "{path}");
        assert!(during.error_rate() > 0.9, "{path} during: {during:?}");
        assert_eq!(
            during.errors_fault, during.errors,
            "all attributed to the fault: {during:?}"
        );
        assert_eq!(
            after.errors, 0,
            "{path} recovers after the retraction: {after:?}"
        );
    }
}

#[test]
fn restarting_a_memcached_loads_mongodb_and_raises_p99_for_a_while() {
    let mut sim = Sim::new(app("socialNetwork"), SimConfig::default()).unwrap();
    sim.run_until(secs(60)).unwrap();
    sim.restart("post-storage-memcached", &[0], ACTION).unwrap();
    sim.run_until(secs(150)).unwrap();
    let db_before = window(&sim, ScopeKind::Service, "post-storage-mongodb", 30, 60);
    let db_after = window(&sim, ScopeKind::Service, "post-storage-mongodb", 66, 90);
    let per_s = |w: &Window, s: u64| w.count as f64 / s as f64;
    assert!(
        per_s(&db_after, 24) > 5.0 * per_s(&db_before, 30),
        "cold cache sends reads to the database: {db_before:?} -> {db_after:?}"
    );
    let p99_before = window(&sim, ScopeKind::Path, "read-home-timeline", 30, 60).mean_p99_ms;
    let p99_cold = window(&sim, ScopeKind::Path, "read-home-timeline", 66, 90).mean_p99_ms;
    let p99_warm = window(&sim, ScopeKind::Path, "read-home-timeline", 130, 150).mean_p99_ms;
    assert!(
        p99_cold > 1.1 * p99_before,
        "P99 rises while cold: {p99_before:.2} -> {p99_cold:.2} ms"
    );
    assert!(
        p99_warm < p99_cold,
        "and falls as the cache warms: {p99_cold:.2} -> {p99_warm:.2} ms"
    );
    let restart_errors = window(&sim, ScopeKind::Path, "read-home-timeline", 60, 70);
    assert_eq!(
        restart_errors.errors, restart_errors.errors_action,
        "what the restart broke is the action's"
    );
}

#[test]
fn a_misconfig_survives_a_restart_and_yields_to_a_rollback() {
    let mut sim = Sim::new(app("socialNetwork"), SimConfig::default()).unwrap();
    let mut faults = one_fault(
        "user-timeline-service",
        20.0,
        500.0,
        FaultKind::Misconfig { fail_fraction: 1.0 },
        ReplicaPick::All,
    );
    sim.run_until(secs(20)).unwrap();
    faults.apply_due(&mut sim).unwrap();
    sim.run_until(secs(40)).unwrap();
    sim.restart("user-timeline-service", &[0, 1], ACTION)
        .unwrap();
    sim.run_until(secs(70)).unwrap();
    let after_restart = window(&sim, ScopeKind::Path, "read-user-timeline", 55, 70);
    assert!(
        after_restart.error_rate() > 0.99,
        "the restart keeps the bad config: {after_restart:?}"
    );
    let (versions, running) = sim.config_versions("user-timeline-service").unwrap();
    assert_eq!(running, "v2-bad");
    sim.set_config("user-timeline-service", &versions[0], ACTION)
        .unwrap();
    sim.run_until(secs(90)).unwrap();
    assert_eq!(
        window(&sim, ScopeKind::Path, "read-user-timeline", 72, 90).errors,
        0,
        "the rollback fixes it"
    );
    faults.retract_all(&mut sim).unwrap();
    assert_eq!(
        sim.config_versions("user-timeline-service").unwrap().1,
        "v1",
        "retraction leaves the rollback"
    );
}

#[test]
fn a_partition_survives_a_restart_and_yields_to_a_drain() {
    let mut sim = Sim::new(app("socialNetwork"), SimConfig::default()).unwrap();
    let mut faults = one_fault(
        "home-timeline-service",
        20.0,
        500.0,
        FaultKind::Partition {
            dependency: "post-storage-service".into(),
        },
        ReplicaPick::Ids(vec![1]),
    );
    sim.run_until(secs(20)).unwrap();
    faults.apply_due(&mut sim).unwrap();
    sim.run_until(secs(40)).unwrap();
    let during = window(&sim, ScopeKind::Path, "read-home-timeline", 25, 40);
    assert!(
        during.error_rate() > 0.3,
        "half the traffic crosses the partition: {during:?}"
    );
    sim.restart("home-timeline-service", &[1], ACTION).unwrap();
    sim.run_until(secs(70)).unwrap();
    let after_restart = window(&sim, ScopeKind::Path, "read-home-timeline", 55, 70);
    assert!(
        after_restart.error_rate() > 0.3,
        "a restart does not repair a link: {after_restart:?}"
    );
    sim.set_drained("home-timeline-service", &BTreeSet::from([1]), ACTION)
        .unwrap();
    sim.run_until(secs(90)).unwrap();
    let drained = window(&sim, ScopeKind::Path, "read-home-timeline", 73, 90);
    assert_eq!(
        drained.errors, 0,
        "draining the cut-off replica routes around it: {drained:?}"
    );
    faults.retract_all(&mut sim).unwrap();
}

#[test]
fn retries_amplify_load_on_an_overloaded_dependency() {
    // A CPU hog on mongodb plus a cold cache: calls time out and are retried.
    let spec = app("socialNetwork");
    let mut calm = Sim::new(spec.clone(), SimConfig::default()).unwrap();
    calm.run_until(secs(60)).unwrap();
    let c = calm.call_counters("post-storage-mongodb").unwrap();
    assert_eq!(c.retries, 0, "no retries without trouble");
    let mut sim = Sim::new(spec, SimConfig::default()).unwrap();
    sim.set_slowdown("post-storage-mongodb", &[0], 600.0, None, Cause::Fault(1))
        .unwrap();
    sim.restart("post-storage-memcached", &[0], ACTION).unwrap();
    sim.run_until(secs(60)).unwrap();
    let c = sim.call_counters("post-storage-mongodb").unwrap();
    let amplification = (c.calls + c.retries) as f64 / c.calls as f64;
    assert!(amplification > 1.1, "retries add load: {c:?}");
    assert!(
        amplification < 1.0 + 0.25,
        "the retry budget bounds them (20% + slack): {c:?}"
    );
    let w = window(&sim, ScopeKind::Service, "post-storage-service", 20, 60);
    assert!(w.errors > 0, "overload surfaces as errors upstream");
}

#[test]
fn a_drained_replica_loses_no_in_flight_request_when_restarted() {
    let cfg = SimConfig {
        rate_rps: 1500.0,
        ..SimConfig::default()
    };
    let run = |drain_first: bool| {
        let mut sim = Sim::new(app("socialNetwork"), cfg).unwrap();
        sim.set_slowdown("home-timeline-service", &[0, 1], 2.0, None, Cause::Overload)
            .unwrap();
        sim.run_until(secs(30)).unwrap();
        if drain_first {
            sim.set_drained("home-timeline-service", &BTreeSet::from([0]), ACTION)
                .unwrap();
            let mut t = 30_000_000;
            while sim.replicas("home-timeline-service").unwrap()[0].inflight > 0 {
                t += 10_000;
                sim.run_until(VirtualTime(t)).unwrap();
            }
        } else {
            let mut t = 30_000_000;
            while sim.replicas("home-timeline-service").unwrap()[0].inflight == 0 {
                t += 100;
                sim.run_until(VirtualTime(t)).unwrap();
            }
        }
        sim.restart("home-timeline-service", &[0], ACTION).unwrap();
        sim.run_until(secs(50)).unwrap();
        sim.set_drained("home-timeline-service", &BTreeSet::new(), ACTION)
            .unwrap();
        sim.run_until(secs(60)).unwrap();
        let lost = window(&sim, ScopeKind::Service, "home-timeline-service", 29, 60).errors_action;
        let users = window(&sim, ScopeKind::Path, "read-home-timeline", 29, 60).errors_action;
        (lost, users)
    };
    assert_eq!(
        run(true),
        (0, 0),
        "drain, wait for in-flight requests, restart: nothing lost"
    );
    let (lost, _users) = run(false);
    assert!(
        lost > 0,
        "restart without a drain loses the requests in flight (callers may retry them)"
    );
}

#[test]
fn same_seed_same_bytes_different_seed_different_bytes() {
    let csv = |seed: u64| {
        let cfg = SimConfig {
            seed,
            ..SimConfig::default()
        };
        let mut sim = Sim::new(app("hotelReservation"), cfg).unwrap();
        let crash = one_fault(
            "rate",
            10.0,
            15.0,
            FaultKind::Crash {
                mode: CrashMode::Kill,
            },
            ReplicaPick::One,
        );
        run_with_faults(&mut sim, crash, secs(40)).unwrap();
        let mut out = Vec::new();
        sim.metrics().write_csv(&mut out).unwrap();
        out
    };
    let a = csv(7);
    assert_eq!(a, csv(7));
    assert_ne!(a, csv(8));
}

#[test]
fn a_runaway_run_stops_at_its_event_budget() {
    let cfg = SimConfig {
        max_events: 10_000,
        ..SimConfig::default()
    };
    let mut sim = Sim::new(app("socialNetwork"), cfg).unwrap();
    let err = sim.run_until(secs(60)).unwrap_err();
    assert!(
        matches!(err, SimError::EventBudgetExceeded { budget: 10_000, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("raise max_events"));
}
