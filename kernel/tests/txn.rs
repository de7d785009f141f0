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
