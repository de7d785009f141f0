//! The transactional executor: commit, abort with undo and compensation, leases, locks, budget.

mod common;

use common::{graph, plan, plan_with, scope};
use kernel::journal::{Event, replay};
use kernel::txn::{MemoryActuator, Outcome, PlanId};
use kernel::{ControlState, Kernel, KernelConfig, Rule, VirtualTime};

fn secs(s: u64) -> VirtualTime {
    VirtualTime::from_secs(s)
}

/// Polls once per virtual second until `plan` finishes, ticking the actuator in between.
fn run_to_end(
    kernel: &mut Kernel,
    actuator: &mut MemoryActuator,
    start: u64,
    plan: PlanId,
) -> (Outcome, u64) {
    for t in start..start + 1000 {
        for (id, outcome) in kernel.poll(secs(t), actuator) {
            if id == plan {
                return (outcome, t);
            }
        }
        actuator.tick();
    }
    panic!("{plan} did not finish");
}

fn events(kernel: &Kernel) -> Vec<&'static str> {
    kernel
        .journal()
        .records()
        .iter()
        .map(|r| r.event.name())
        .collect()
}

#[test]
fn accepted_plan_commits_after_every_post_condition_holds() {
    let g = graph();
    let initial = ControlState::from_graph(&g);
    let mut actuator = MemoryActuator::new(initial.clone()).settle_after(3);
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan(
        r#"[[{"drain": {"service": "search", "replicas": [1]}}],
            [{"restart": {"service": "search", "replicas": [1]}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
    );
    let sub = kernel.submit(secs(0), p, &g, &scope());
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    assert_eq!(kernel.locks().get("search"), Some(&sub.plan));
    let (outcome, at) = run_to_end(&mut kernel, &mut actuator, 0, sub.plan);
    assert_eq!(outcome, Outcome::Committed);
    assert_eq!(at, 9, "three stages, each settling after three ticks");
    assert!(kernel.locks().is_empty());
    let s = actuator.state.get("search").unwrap();
    assert!(s.drained.is_empty());
    assert_eq!(s.restarts.get(&1), Some(&1));
    assert_eq!(
        events(&kernel),
        [
            "proposal",
            "verdict",
            "step_applied",
            "check_passed",
            "step_applied",
            "check_passed",
            "step_applied",
            "check_passed",
            "commit"
        ]
    );
    assert_eq!(
        replay(&initial, kernel.journal().records()).unwrap(),
        actuator.state
    );
    assert_eq!(kernel.restarts_in_window(secs(10)), 1);
    assert_eq!(
        kernel.restarts_in_window(secs(400)),
        0,
        "budget window slides"
    );
}

#[test]
fn failed_step_undoes_in_reverse_and_compensates() {
    let g = graph();
    let initial = ControlState::from_graph(&g);
    // apply #0 rollback_config (compensatable), #1 drain rate (reversible), #2 restart geo,
    // #3 rate limit (fails its check).
    let mut actuator = MemoryActuator::new(initial.clone()).fail_check_at(3);
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan_with(
        r#"[[{"rollback_config": {"service": "rate", "version": "v1"}}],
            [{"drain": {"service": "rate", "replicas": [0]}}, {"restart": {"service": "geo"}}],
            [{"rate_limit": {"service": "rate", "rps": 120}}],
            [{"restore_traffic": {"service": "rate"}}]]"#,
        r#"[{"step": 3, "ttl_s": 60}]"#,
    );
    let sub = kernel.submit(secs(0), p, &g, &scope());
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    let (outcome, _) = run_to_end(&mut kernel, &mut actuator, 0, sub.plan);
    assert!(
        matches!(outcome, Outcome::Aborted { clean: true, .. }),
        "{outcome:?}"
    );
    let undo_trail: Vec<(&str, usize)> = kernel
        .journal()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::Undo { step, .. } => Some(("undo", *step)),
            Event::Compensate { step, .. } => Some(("compensate", *step)),
            Event::NotUndoable { step, .. } => Some(("not_undoable", *step)),
            _ => None,
        })
        .collect();
    assert_eq!(
        undo_trail,
        [
            ("undo", 3),
            ("not_undoable", 2),
            ("undo", 1),
            ("compensate", 0)
        ]
    );
    let rate = actuator.state.get("rate").unwrap();
    let rate0 = initial.get("rate").unwrap();
    assert_eq!(
        (&rate.drained, rate.rate_limit, &rate.config),
        (&rate0.drained, rate0.rate_limit, &rate0.config)
    );
    assert_eq!(
        actuator.state.get("geo").unwrap().restarts.get(&0),
        Some(&1),
        "restart stays"
    );
    assert!(kernel.locks().is_empty());
    assert_eq!(kernel.armed_leases(), 0, "aborted plans arm no lease");
    assert_eq!(
        replay(&initial, kernel.journal().records()).unwrap(),
        actuator.state
    );
}

#[test]
fn refused_apply_and_timeouts_abort() {
    let g = graph();
    let mut actuator = MemoryActuator::new(ControlState::from_graph(&g)).fail_apply_at(0);
    let mut kernel = Kernel::new(KernelConfig::default());
    let sub = kernel.submit(
        secs(0),
        plan(r#"[[{"restart": {"service": "geo"}}]]"#),
        &g,
        &scope(),
    );
    let (outcome, _) = run_to_end(&mut kernel, &mut actuator, 0, sub.plan);
    assert!(
        matches!(&outcome, Outcome::Aborted { reason, .. } if reason.contains("injected")),
        "{outcome:?}"
    );
    assert!(events(&kernel).contains(&"step_failed"));

    // A post-condition that never settles times out at the configured deadline.
    let mut slow = MemoryActuator::new(ControlState::from_graph(&g)).settle_after(10_000);
    let mut kernel = Kernel::new(KernelConfig::default());
    let sub = kernel.submit(
        secs(0),
        plan(r#"[[{"restart": {"service": "geo"}}]]"#),
        &g,
        &scope(),
    );
    let (outcome, at) = run_to_end(&mut kernel, &mut slow, 0, sub.plan);
    assert!(matches!(&outcome, Outcome::Aborted { reason, .. } if reason.contains("did not hold")));
    assert_eq!(at, KernelConfig::default().timeouts.startup_s);
    assert_eq!(kernel.next_deadline(), None);
}

#[test]
fn overlapping_plans_are_refused_disjoint_plans_run_in_parallel() {
    let g = graph();
    let mut actuator = MemoryActuator::new(ControlState::from_graph(&g)).settle_after(5);
    let mut kernel = Kernel::new(KernelConfig::default());
    let a = kernel.submit(
        secs(0),
        plan(r#"[[{"restart": {"service": "geo"}}]]"#),
        &g,
        &scope(),
    );
    let b = kernel.submit(
        secs(0),
        plan(r#"[[{"restart": {"service": "memcached-rate"}}]]"#),
        &g,
        &scope(),
    );
    let c = kernel.submit(
        secs(0),
        plan(r#"[[{"scale": {"service": "geo", "replicas": 3}}]]"#),
        &g,
        &scope(),
    );
    assert!(a.verdict.accepted() && b.verdict.accepted());
    assert_eq!(c.verdict.rules(), [Rule::LockConflict]);
    assert_eq!(kernel.executing().collect::<Vec<_>>(), [a.plan, b.plan]);
    let mut done = Vec::new();
    for t in 0..20 {
        done.extend(
            kernel
                .poll(secs(t), &mut actuator)
                .into_iter()
                .map(|(id, _)| (id, t)),
        );
        actuator.tick();
    }
    assert_eq!(done, [(a.plan, 5), (b.plan, 5)], "both finished together");
    let again = kernel.submit(
        secs(20),
        plan(r#"[[{"scale": {"service": "geo", "replicas": 3}}]]"#),
        &g,
        &scope(),
    );
    assert!(again.verdict.accepted(), "lock released");
}

#[test]
fn leases_revert_after_commit() {
    let g = graph();
    let initial = ControlState::from_graph(&g);
    let mut actuator = MemoryActuator::new(initial.clone());
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan_with(
        r#"[[{"rate_limit": {"service": "rate", "rps": 120}},
             {"circuit_break": {"caller": "search", "callee": "geo", "duration_s": 30}}]]"#,
        r#"[{"step": 0, "ttl_s": 60}]"#,
    );
    let sub = kernel.submit(secs(0), p, &g, &scope());
    let (outcome, _) = run_to_end(&mut kernel, &mut actuator, 0, sub.plan);
    assert_eq!(outcome, Outcome::Committed);
    assert_eq!(actuator.state.get("rate").unwrap().rate_limit, Some(120.0));
    assert!(
        actuator
            .state
            .get("search")
            .unwrap()
            .open_breakers
            .contains("geo")
    );
    assert_eq!(kernel.armed_leases(), 2);
    assert_eq!(kernel.next_deadline(), Some(secs(30)));
    kernel.poll(secs(30), &mut actuator);
    assert!(
        actuator
            .state
            .get("search")
            .unwrap()
            .open_breakers
            .is_empty()
    );
    assert_eq!(actuator.state.get("rate").unwrap().rate_limit, Some(120.0));
    kernel.poll(secs(60), &mut actuator);
    assert_eq!(actuator.state, initial);
    assert_eq!(
        events(&kernel)
            .iter()
            .filter(|e| **e == "lease_expired")
            .count(),
        2
    );
    assert_eq!(
        replay(&initial, kernel.journal().records()).unwrap(),
        actuator.state
    );
}

#[test]
fn lease_expiry_waits_for_a_plan_holding_the_lock() {
    let g = graph();
    let mut actuator = MemoryActuator::new(ControlState::from_graph(&g)).settle_after(5);
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan_with(
        r#"[[{"rate_limit": {"service": "rate", "rps": 120}}]]"#,
        r#"[{"step": 0, "ttl_s": 10}]"#,
    );
    let sub = kernel.submit(secs(0), p, &g, &scope());
    let mut t = 0;
    while kernel.is_executing(sub.plan) {
        kernel.poll(secs(t), &mut actuator);
        actuator.tick();
        t += 1;
    }
    // A second plan on `rate` is slow to settle; the lease falls due meanwhile.
    let busy = kernel.submit(
        secs(t),
        plan(r#"[[{"rollback_config": {"service": "rate", "version": "v2"}}]]"#),
        &g,
        &scope(),
    );
    assert!(busy.verdict.accepted());
    kernel.poll(secs(t + 50), &mut actuator);
    assert_eq!(
        actuator.state.get("rate").unwrap().rate_limit,
        Some(120.0),
        "deferred"
    );
    for _ in 0..5 {
        actuator.tick();
    }
    kernel.poll(secs(t + 60), &mut actuator);
    assert!(!kernel.is_executing(busy.plan));
    assert_eq!(
        actuator.state.get("rate").unwrap().rate_limit,
        None,
        "reverted once free"
    );
}

/// The example world's initial control state, an actuator over it that settles at once, and an
/// idle kernel with default guards.
fn fresh() -> (ControlState, MemoryActuator, Kernel) {
    let initial = ControlState::from_graph(&graph());
    let actuator = MemoryActuator::new(initial.clone());
    (initial, actuator, Kernel::new(KernelConfig::default()))
}

/// Commits `stages` with `leases` from `start`; returns when it committed.
fn commit(
    kernel: &mut Kernel,
    actuator: &mut MemoryActuator,
    start: u64,
    stages: &str,
    leases: &str,
) -> u64 {
    let sub = kernel.submit(secs(start), plan_with(stages, leases), &graph(), &scope());
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    let (outcome, at) = run_to_end(kernel, actuator, start, sub.plan);
    assert_eq!(outcome, Outcome::Committed);
    at
}

/// Issue example: a lease on a `restore_traffic` would drain the hub again when it expired,
/// with no lease left to undo that; R17 refuses it.
#[test]
fn a_lease_on_restore_traffic_is_refused() {
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan_with(
        r#"[[{"drain": {"service": "search", "replicas": "all"}}],
            [{"restart": {"service": "search", "replicas": "all"}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
        r#"[{"step": 2, "ttl_s": 60}]"#,
    );
    let sub = kernel.submit(secs(0), p, &graph(), &scope());
    assert_eq!(sub.verdict.rules(), vec![Rule::BadLease], "{}", sub.verdict);
    assert!(
        sub.verdict.violations[0]
            .detail
            .contains("removes a degradation"),
        "{}",
        sub.verdict
    );
}

/// Issue example: rate-limit `geo` to 150 for 30 s, then to 120 for 600 s. The first expiry
/// leaves the later limit in force; the second leaves no limit at all.
#[test]
fn overlapping_rate_limit_leases_leave_no_limit_once_both_expire() {
    let (initial, mut actuator, mut kernel) = fresh();
    let limit = |rps| format!(r#"[[{{"rate_limit": {{"service": "geo", "rps": {rps}}}}}]]"#);
    let t1 = commit(
        &mut kernel,
        &mut actuator,
        0,
        &limit(150),
        r#"[{"step": 0, "ttl_s": 30}]"#,
    );
    let t2 = commit(
        &mut kernel,
        &mut actuator,
        t1 + 1,
        &limit(120),
        r#"[{"step": 0, "ttl_s": 600}]"#,
    );
    assert_eq!(kernel.armed_leases(), 2);
    kernel.poll(secs(t1 + 30), &mut actuator);
    assert_eq!(actuator.state.get("geo").unwrap().rate_limit, Some(120.0));
    kernel.poll(secs(t2 + 600), &mut actuator);
    assert_eq!(actuator.state.get("geo").unwrap().rate_limit, None);
    assert_eq!(actuator.state, initial, "no degradation remains");
    assert_eq!(kernel.armed_leases(), 0);
    assert_eq!(
        replay(&initial, kernel.journal().records()).unwrap(),
        actuator.state
    );
}

/// A restore_traffic ends the drain leases on its service: nothing is left for them to revert,
/// and the journal says which lease it superseded.
#[test]
fn restore_traffic_supersedes_drain_leases() {
    let g = graph();
    let mut actuator = MemoryActuator::new(ControlState::from_graph(&g));
    let mut kernel = Kernel::new(KernelConfig::default());
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"scale": {"service": "geo", "replicas": 3}}],
            [{"drain": {"service": "geo", "replicas": [0]}}]]"#,
        r#"[{"step": 1, "ttl_s": 300}]"#,
    );
    commit(
        &mut kernel,
        &mut actuator,
        t + 1,
        r#"[[{"restore_traffic": {"service": "geo"}}]]"#,
        "[]",
    );
    assert_eq!(kernel.armed_leases(), 0);
    assert!(events(&kernel).contains(&"lease_superseded"));
    kernel.poll(secs(1000), &mut actuator);
    assert!(actuator.state.get("geo").unwrap().drained.is_empty());
}

/// A revert the actuator refuses is retried with back-off and escalated, never dropped.
#[test]
fn failed_lease_reverts_are_retried_and_escalated() {
    let g = graph();
    let initial = ControlState::from_graph(&g);
    // Apply #0 is the limit itself; #1..#3 are the first three reverts.
    let mut actuator = MemoryActuator::new(initial.clone())
        .fail_apply_at(1)
        .fail_apply_at(2)
        .fail_apply_at(3);
    let mut kernel = Kernel::new(KernelConfig::default());
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"rate_limit": {"service": "rate", "rps": 120}}]]"#,
        r#"[{"step": 0, "ttl_s": 10}]"#,
    );
    for s in t..t + 200 {
        kernel.poll(secs(s), &mut actuator);
    }
    let names = events(&kernel);
    assert_eq!(names.iter().filter(|e| **e == "lease_failed").count(), 3);
    assert_eq!(names.iter().filter(|e| **e == "lease_escalated").count(), 1);
    assert_eq!(names.iter().filter(|e| **e == "lease_expired").count(), 1);
    assert_eq!(kernel.escalated_leases().len(), 1);
    assert_eq!(actuator.state, initial, "the fourth try reverted it");
    let retries: Vec<u64> = kernel
        .journal()
        .records()
        .iter()
        .filter_map(|r| match &r.event {
            Event::LeaseFailed { retry_at, .. } => Some(retry_at.as_micros() / 1_000_000),
            _ => None,
        })
        .collect();
    assert_eq!(retries, [t + 11, t + 13, t + 17], "1, 2, 4 s back-off");
}

/// Issue example for R3 by state: "drain; restore; restart; restore" restarts the hub while it
/// is back in load balancing.
#[test]
fn a_restore_between_drain_and_restart_breaks_r3() {
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan(
        r#"[[{"drain": {"service": "search", "replicas": "all"}}],
            [{"restore_traffic": {"service": "search"}}],
            [{"restart": {"service": "search", "replicas": "all"}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
    );
    let sub = kernel.submit(secs(0), p, &graph(), &scope());
    assert_eq!(
        sub.verdict.rules(),
        vec![Rule::DrainBeforeRestart],
        "{}",
        sub.verdict
    );
    assert_eq!(sub.verdict.violations[0].step, Some(2));
}

/// The executor checks R3 against the world too: a hub whose drain was undone behind the
/// kernel's back is not restarted; the plan aborts and its drain is undone.
#[test]
fn a_hub_restart_finds_its_replicas_drained_at_run_time() {
    let g = graph();
    let initial = ControlState::from_graph(&g);
    let mut actuator = MemoryActuator::new(initial.clone()).settle_after(1);
    let mut kernel = Kernel::new(KernelConfig::default());
    let p = plan(
        r#"[[{"drain": {"service": "search", "replicas": "all"}}],
            [{"restart": {"service": "search", "replicas": "all"}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
    );
    let sub = kernel.submit(secs(0), p, &g, &scope());
    assert!(sub.verdict.accepted(), "{}", sub.verdict);
    kernel.poll(secs(0), &mut actuator);
    // Someone outside the kernel puts the replicas back while the drain settles.
    actuator
        .state
        .services
        .get_mut("search")
        .unwrap()
        .drained
        .clear();
    actuator.tick();
    let (outcome, _) = run_to_end(&mut kernel, &mut actuator, 1, sub.plan);
    let Outcome::Aborted { reason, .. } = outcome else {
        panic!("restarted an undrained hub: {outcome:?}");
    };
    assert!(reason.contains("R3 at run time"), "{reason}");
    assert!(actuator.state.get("search").unwrap().restarts.is_empty());
}

/// A health snapshot where `service` has this error rate and everything else is quiet.
fn health_with(service: &str, error_rate: f64) -> kernel::Health {
    let mut h = kernel::Health::new();
    for s in ["frontend", "search", "geo", "rate", "profile"] {
        h.set(s, kernel::ServiceHealth::default());
    }
    h.set(
        service,
        kernel::ServiceHealth {
            error_rate,
            slo_violated: error_rate > 0.001,
            ..kernel::ServiceHealth::default()
        },
    );
    h
}

/// The watchdog takes back a committed breaker on an edge its caller needs: the caller's
/// errors rise after the step, so 15 s later (grace 5 s + sustain 10 s, inside harm's 35 s) the
/// breaker is closed again and the state is exactly what it was before the step.
#[test]
fn the_watchdog_undoes_a_breaker_that_makes_its_caller_fail() {
    let (initial, mut actuator, mut kernel) = fresh();
    kernel.observe_health(health_with("geo", 0.5)); // geo fails: evidence for the breaker
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"circuit_break": {"caller": "search", "callee": "geo", "duration_s": 300}}]]"#,
        "[]",
    );
    assert!(
        actuator
            .state
            .get("search")
            .unwrap()
            .open_breakers
            .contains("geo")
    );
    // The caller now fails fast on every request that needs geo.
    let mut undone_at = None;
    for s in t + 1..t + 40 {
        kernel.observe_health(health_with("search", 0.3));
        kernel.poll(secs(s), &mut actuator);
        if undone_at.is_none() && events(&kernel).contains(&"watchdog_undo") {
            undone_at = Some(s);
        }
    }
    let undone_at = undone_at.expect("the watchdog took the breaker back");
    assert!(undone_at - t <= 16, "after {} s", undone_at - t);
    assert_eq!(actuator.state, initial, "exactly the pre-step state");
    assert_eq!(kernel.armed_leases(), 0, "its lease ended with it");
    assert_eq!(
        replay(&initial, kernel.journal().records()).unwrap(),
        actuator.state
    );
}

/// A breaker around a crashed service closes once the service has recovered (no failure for
/// 10 s), instead of staying open for its whole 300 s and failing the callers it shields.
#[test]
fn a_half_open_breaker_closes_after_its_callee_recovers() {
    let (initial, mut actuator, mut kernel) = fresh();
    kernel.observe_health(health_with("rate", 1.0));
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"circuit_break": {"caller": "search", "callee": "rate", "duration_s": 300}}]]"#,
        "[]",
    );
    for s in t + 1..t + 30 {
        kernel.observe_health(health_with("rate", 1.0)); // still down
        kernel.poll(secs(s), &mut actuator);
    }
    assert!(
        actuator
            .state
            .get("search")
            .unwrap()
            .open_breakers
            .contains("rate")
    );
    let healed = t + 30;
    for s in healed..healed + 12 {
        kernel.observe_health(health_with("frontend", 0.0)); // rate recovered
        kernel.poll(secs(s), &mut actuator);
    }
    assert_eq!(actuator.state, initial, "closed");
    assert!(events(&kernel).contains(&"breaker_closed"));
    assert_eq!(kernel.armed_leases(), 0);
}

/// With the guards off (the ablation's structural kernel), neither acts.
#[test]
fn guards_off_leave_the_breaker_for_its_duration() {
    let g = graph();
    let mut actuator = MemoryActuator::new(ControlState::from_graph(&g));
    let mut cfg = KernelConfig::default();
    cfg.guards.watchdog = false;
    cfg.guards.breaker_close_after_s = None;
    let mut kernel = Kernel::new(cfg);
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"circuit_break": {"caller": "search", "callee": "geo", "duration_s": 300}}]]"#,
        "[]",
    );
    for s in t + 1..t + 100 {
        kernel.observe_health(health_with("search", 0.3));
        kernel.poll(secs(s), &mut actuator);
    }
    assert!(
        actuator
            .state
            .get("search")
            .unwrap()
            .open_breakers
            .contains("geo")
    );
}

/// A plan's steps on one knob compose into their net change after commit: a hub drained,
/// restarted and put back has left its drain as it found it, so when a caller regresses
/// afterwards (say, because another plan restarted it) there is nothing to take back — undoing
/// the `restore_traffic` alone would drain the hub again and fail everything that calls it.
#[test]
fn a_drain_closed_by_its_restore_is_not_undone_after_commit() {
    let (initial, mut actuator, mut kernel) = fresh();
    kernel.observe_health(health_with("search", 0.5)); // evidence for the restart
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        r#"[[{"drain": {"service": "search", "replicas": "all"}}],
            [{"restart": {"service": "search", "replicas": "all"}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
        "[]",
    );
    for s in t + 1..t + 60 {
        kernel.observe_health(health_with("frontend", 0.3)); // search's caller fails
        kernel.poll(secs(s), &mut actuator);
    }
    assert!(
        !events(&kernel).contains(&"watchdog_undo"),
        "{:?}",
        events(&kernel)
    );
    assert_eq!(
        actuator.state.get("search").unwrap().drained,
        initial.get("search").unwrap().drained,
        "search serves again"
    );
}

/// Two scale steps on one service revert together: one undo to the count before the first.
#[test]
fn two_steps_on_one_knob_revert_to_the_value_before_the_first() {
    let (initial, mut actuator, mut kernel) = fresh();
    let before = initial.get("geo").unwrap().replicas;
    kernel.observe_health(health_with("geo", 0.5)); // geo fails: evidence for scaling it
    let t = commit(
        &mut kernel,
        &mut actuator,
        0,
        &format!(
            r#"[[{{"scale": {{"service": "geo", "replicas": {}}}}}],
                [{{"scale": {{"service": "geo", "replicas": {}}}}}]]"#,
            before + 1,
            before + 2
        ),
        "[]",
    );
    for s in t + 1..t + 40 {
        kernel.observe_health(health_with("search", 0.3)); // geo's caller fails
        kernel.poll(secs(s), &mut actuator);
    }
    let undos = events(&kernel)
        .iter()
        .filter(|e| **e == "watchdog_undo")
        .count();
    assert_eq!(undos, 1, "{:?}", events(&kernel));
    assert_eq!(actuator.state.get("geo").unwrap().replicas, before);
}
