//! The kernel's guards at work in the simulator, one behaviour per guard: the kernel sees the
//! monitoring side's health snapshots (alerts, probes, error rates and P99 — never cause tags)
//! exactly as in the online experiment, and each guard must change what happens to the system.
//! (A scale during a hang committing: `sim/tests/actuation.rs`.)

use experiments::harm::{HarmConfig, Series, affected_scopes, judge_action};
use experiments::observe::{Evidence, Monitor};
use kernel::groups::{GroupConfig, Inference};
use kernel::isa::IncidentId;
use kernel::txn::Guards;
use kernel::{Kernel, KernelConfig, Plan, Rule, Verdict, VirtualTime};
use sim::actuator::SimActuator;
use sim::{Cause, Sim, SimConfig};

/// socialNetwork with the monitoring side and a kernel, stepped in 250 ms control ticks.
struct Bench {
    sim: Sim,
    kernel: Kernel,
    evidence: Evidence,
    monitor: Monitor,
    rows_seen: usize,
}

const CALLER: &str = "home-timeline-service";
const CALLEE: &str = "post-storage-service";

impl Bench {
    /// A bench whose kernel runs with `guards`, after 40 s of clean traffic.
    fn new(guards: Guards) -> Self {
        let spec =
            deathstarbench::load("socialNetwork", &deathstarbench::Deployment::default()).unwrap();
        let monitor = Monitor::new(&spec, 10);
        let sim = Sim::new(spec, SimConfig::default()).unwrap();
        let mut bench = Bench {
            evidence: Evidence::new(&sim),
            sim,
            kernel: Kernel::new(KernelConfig {
                guards,
                ..KernelConfig::default()
            }),
            monitor,
            rows_seen: 0,
        };
        bench.run_to(40.0);
        bench
    }

    fn now_s(&self) -> f64 {
        self.sim.now().as_secs_f64()
    }

    /// Runs to `t_s`, handing the kernel a health snapshot and polling it every tick.
    fn run_to(&mut self, t_s: f64) {
        let end = VirtualTime((t_s * 1e6) as u64);
        while self.sim.now() < end {
            let next = VirtualTime(self.sim.now().as_micros() + 250_000).min(end);
            self.sim.run_until(next).unwrap();
            let rows = self.sim.metrics().rows();
            self.monitor.update(&rows[self.rows_seen.min(rows.len())..]);
            self.rows_seen = rows.len();
            self.evidence.poll(&self.sim);
            let health = self.evidence.snapshot(&self.sim, &self.monitor);
            self.kernel.observe_health(health);
            let now = self.sim.now();
            self.kernel
                .poll(now, &mut SimActuator::new(&mut self.sim, Cause::Action(1)));
        }
    }

    /// Submits `stages_json` (and `leases_json`) for an incident whose symptom is `CALLEE`.
    fn submit(&mut self, stages_json: &str, leases_json: &str) -> Verdict {
        let graph = self.sim.dependency_graph();
        let scope = Inference::new()
            .infer(
                &graph,
                graph.id(CALLEE).unwrap(),
                IncidentId::try_from("inc").unwrap(),
                GroupConfig::default(),
            )
            .scope;
        let plan = Plan::from_json_str(
            &format!(r#"{{"incident": "inc", "stages": {stages_json}, "leases": {leases_json}}}"#),
            "plan",
        )
        .unwrap();
        let now = self.sim.now();
        self.kernel.submit(now, plan, &graph, &scope).verdict
    }

    /// Journal events by name with their time, seconds.
    fn events(&self) -> Vec<(f64, &'static str)> {
        self.kernel
            .journal()
            .records()
            .iter()
            .map(|r| (r.t_us.as_secs_f64(), r.event.name()))
            .collect()
    }

    fn first(&self, event: &str) -> Option<f64> {
        self.events()
            .into_iter()
            .find(|(_, e)| *e == event)
            .map(|(t, _)| t)
    }

    /// The harm rule's verdict on an action at `at_s` on `targets` (DESIGN §8).
    fn harm(&self, at_s: f64, targets: &[&str]) -> bool {
        let series = Series::from_rows(self.sim.metrics().rows());
        let targets: Vec<String> = targets.iter().map(|t| t.to_string()).collect();
        judge_action(
            &series,
            at_s,
            &affected_scopes(self.sim.spec(), &targets),
            &HarmConfig::default(),
        )
        .is_some()
    }

    fn breaker_open(&self) -> bool {
        self.sim
            .service_control(CALLER)
            .unwrap()
            .open_breakers
            .contains(CALLEE)
    }

    fn journal(&self) -> String {
        self.kernel.journal().to_jsonl()
    }
}

fn watchdog_only() -> Guards {
    Guards {
        evidence: false,
        ..Guards::default()
    }
}

fn no_guards() -> Guards {
    Guards {
        evidence: false,
        watchdog: false,
        breaker_close_after_s: None,
        ..Guards::default()
    }
}

const BREAK: &str = r#"[[{"circuit_break": {"caller": "home-timeline-service", "callee": "post-storage-service", "duration_s": 120}}]]"#;

#[test]
fn the_evidence_rule_refuses_restarting_a_healthy_database_and_allows_a_crashed_one() {
    let restart_db = r#"[[{"restart": {"service": "post-storage-mongodb"}}]]"#;
    let mut guarded = Bench::new(Guards::default());
    let verdict = guarded.submit(restart_db, "[]");
    assert!(
        verdict.rules().contains(&Rule::NoFailureEvidence),
        "{verdict}"
    );
    // The structural rules alone let the same plan through.
    let mut structural = Bench::new(no_guards());
    assert!(structural.submit(restart_db, "[]").accepted());
    // Once the database is down and probes fail, the same restart is evidence-backed.
    guarded
        .sim
        .kill("post-storage-mongodb", &[0], Cause::Fault(0))
        .unwrap();
    guarded.run_to(60.0);
    let verdict = guarded.submit(restart_db, "[]");
    assert!(verdict.accepted(), "{verdict}");
}

#[test]
fn the_watchdog_undoes_a_breaker_on_a_needed_edge_before_harm_counts_it() {
    let mut watched = Bench::new(watchdog_only());
    let at = watched.now_s();
    assert!(watched.submit(BREAK, "[]").accepted());
    watched.run_to(at + 90.0);
    let undone = watched
        .first("watchdog_undo")
        .unwrap_or_else(|| panic!("no watchdog undo:\n{}", watched.journal()));
    let cfg = Guards::default().watchdog_params;
    let harm = HarmConfig::default();
    // Detection bound (DESIGN §6): grace + sustain, plus the ticks it takes metrics to show it.
    assert!(
        undone - at <= (cfg.grace_s + cfg.sustain_s + 3) as f64,
        "{undone}"
    );
    assert!(undone - at < f64::from(harm.grace_s + harm.sustain_s));
    assert!(!watched.breaker_open());
    assert!(!watched.harm(at, &[CALLER]), "the harm rule counts it");
    // Without the watchdog the same breaker stays open for its duration, and that is harm.
    let mut unwatched = Bench::new(no_guards());
    assert!(unwatched.submit(BREAK, "[]").accepted());
    unwatched.run_to(at + 90.0);
    assert!(unwatched.breaker_open());
    assert!(unwatched.harm(at, &[CALLER]));
}

#[test]
fn a_lease_nobody_needs_lapses_and_reverts() {
    // A generous limit (far above the offered load) that hurts nobody: its lease lapses, the
    // revert's probation finds nothing worse, and the limit is gone for good.
    let mut bench = Bench::new(watchdog_only());
    let at = bench.now_s();
    let verdict = bench.submit(
        r#"[[{"rate_limit": {"service": "post-storage-service", "rps": 5000}}]]"#,
        r#"[{"step": 0, "ttl_s": 30}]"#,
    );
    assert!(verdict.accepted(), "{verdict}");
    bench.run_to(at + 10.0);
    assert_eq!(bench.sim.rate_limit(CALLEE).unwrap(), Some(5000.0));
    bench.run_to(at + 60.0);
    let expired = bench.first("lease_expired").expect("the lease lapsed");
    assert!((at + 30.0..at + 32.0).contains(&expired), "{expired}");
    assert_eq!(bench.sim.rate_limit(CALLEE).unwrap(), None);
    assert_eq!(bench.first("lease_renewed"), None, "{}", bench.journal());
    assert_eq!(bench.kernel.armed_leases(), 0);
}

#[test]
fn a_drain_lease_renews_while_the_replica_stays_slow_and_lapses_once_it_heals() {
    let mut bench = Bench::new(Guards::default());
    bench
        .sim
        .set_net_delay(CALLEE, &[0], 200_000, Cause::Fault(0))
        .unwrap();
    bench.run_to(60.0);
    // Surge first (R19): a third replica, then the drain, leased for 30 s.
    let verdict = bench.submit(
        r#"[[{"scale": {"service": "post-storage-service", "replicas": 3}}],
            [{"drain": {"service": "post-storage-service", "replicas": [0]}}]]"#,
        r#"[{"step": 1, "ttl_s": 30}]"#,
    );
    assert!(verdict.accepted(), "{verdict}");
    let drained = |b: &Bench| b.sim.service_control(CALLEE).unwrap().drained.contains(&0);
    bench.run_to(75.0);
    assert!(drained(&bench), "{}", bench.journal());
    let (drained_at, _) = bench
        .events()
        .into_iter()
        .filter(|(_, e)| *e == "step_applied")
        .nth(1)
        .expect("the drain was applied");
    let lapse = drained_at + 30.0;
    bench.run_to(lapse - 1.0);
    assert!(drained(&bench));
    // The lease lapses; undraining the slow replica regresses its callers at once, so the
    // kernel drains it again and renews the lease (60 s), before the monitoring side alerts.
    bench.run_to(lapse + 20.0);
    let renewed = bench
        .first("lease_renewed")
        .unwrap_or_else(|| panic!("not renewed:\n{}", bench.journal()));
    let probe = Guards::default().watchdog_params;
    assert!(renewed - lapse <= (probe.probe_grace_s + probe.probe_sustain_s + 3) as f64);
    assert!(drained(&bench));
    // The fault heals; at the renewed lease's end the probe finds nothing worse.
    bench
        .sim
        .set_net_delay(CALLEE, &[0], 0, Cause::Fault(0))
        .unwrap();
    bench.run_to(lapse + 110.0);
    assert!(!drained(&bench), "{}", bench.journal());
    let renewals = bench
        .events()
        .iter()
        .filter(|(_, e)| *e == "lease_renewed")
        .count();
    assert_eq!(renewals, 1, "{}", bench.journal());
    assert_eq!(bench.kernel.armed_leases(), 0);
}

#[test]
fn a_half_open_breaker_closes_once_its_callee_recovers() {
    let mut bench = Bench::new(Guards::default());
    bench.sim.kill(CALLEE, &[0, 1], Cause::Fault(0)).unwrap();
    bench.run_to(60.0);
    let verdict = bench.submit(BREAK, "[]");
    assert!(verdict.accepted(), "{verdict}");
    bench.run_to(80.0);
    assert!(bench.breaker_open(), "{}", bench.journal());
    // The callee comes back; once it has shown no failure for the half-open period, the
    // breaker closes long before its 120 s.
    bench.sim.recover(CALLEE, &[0, 1], Cause::Fault(0)).unwrap();
    bench.run_to(140.0);
    let closed = bench
        .first("breaker_closed")
        .unwrap_or_else(|| panic!("still open:\n{}", bench.journal()));
    assert!(closed < 60.0 + 120.0);
    assert!(!bench.breaker_open());
}
