//! Each validation rule, triggered on the example graph and scope, and the example plans.

mod common;

use common::{example, graph, plan, plan_with, scope};
use kernel::txn::PlanId;
use kernel::validate::{KernelView, Limits, validate};
use kernel::{Plan, Rule};
use std::collections::BTreeMap;

fn rules_of(plan: &Plan) -> Vec<Rule> {
    validate(plan, &graph(), &scope(), &KernelView::idle()).rules()
}

#[test]
fn example_plans_are_judged_as_documented() {
    let accepted = Plan::from_json_str(&example("plan-accepted.json"), "a").unwrap();
    let verdict = validate(&accepted, &graph(), &scope(), &KernelView::idle());
    assert!(verdict.accepted(), "{verdict}");

    let rejected = Plan::from_json_str(&example("plan-rejected.json"), "r").unwrap();
    let verdict = validate(&rejected, &graph(), &scope(), &KernelView::idle());
    assert_eq!(
        verdict.rules(),
        vec![
            Rule::OutOfScope,
            Rule::DrainBeforeRestart,
            Rule::RestartOrder,
            Rule::ReplicaBounds,
            Rule::RateLimitFloor,
            Rule::UnknownConfigVersion,
            Rule::UnclosedReversible,
            Rule::DrainWithoutSurge,
        ],
        "{verdict}"
    );
    // Violations are ordered by step and name their step and target.
    let steps: Vec<_> = verdict.violations.iter().map(|v| v.step).collect();
    let mut sorted = steps.clone();
    sorted.sort();
    assert_eq!(steps, sorted);
    assert!(
        verdict
            .violations
            .iter()
            .any(|v| v.rule == Rule::RestartOrder
                && v.step == Some(0)
                && v.target.as_deref() == Some("search"))
    );
}

#[test]
fn r1_unknown_service_or_replica() {
    assert_eq!(
        rules_of(&plan(r#"[[{"restart": {"service": "nope"}}]]"#)),
        [Rule::UnknownTarget]
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"restart": {"service": "rate", "replicas": [5]}}]]"#
        )),
        [Rule::UnknownTarget]
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"restart": {"service": "rate", "replicas": 3}}]]"#
        )),
        [Rule::UnknownTarget]
    );
}

#[test]
fn r2_out_of_scope_but_breaker_callers_may_be_upstream() {
    assert_eq!(
        rules_of(&plan(r#"[[{"restart": {"service": "profile"}}]]"#)),
        [Rule::OutOfScope]
    );
    assert!(
        rules_of(&plan(
            r#"[[{"circuit_break": {"caller": "frontend", "callee": "search", "duration_s": 30}}]]"#
        ))
        .is_empty()
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"circuit_break": {"caller": "frontend", "callee": "profile", "duration_s": 30}}]]"#
        )),
        [Rule::OutOfScope]
    );
}

#[test]
fn r3_hub_restart_needs_drain_and_restore() {
    let bare = plan(r#"[[{"restart": {"service": "search"}}]]"#);
    assert_eq!(rules_of(&bare), [Rule::DrainBeforeRestart]);
    let partial_drain = plan(
        r#"[[{"drain": {"service": "search", "replicas": [0]}}],
            [{"restart": {"service": "search", "replicas": [0, 1]}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
    );
    assert_eq!(rules_of(&partial_drain), [Rule::DrainBeforeRestart]);
    let no_restore = plan_with(
        r#"[[{"drain": {"service": "search"}}], [{"restart": {"service": "search"}}]]"#,
        r#"[{"step": 0, "ttl_s": 60}]"#,
    );
    // Without its restore the drain also outlasts the plan with nothing serving (R19).
    assert_eq!(
        rules_of(&no_restore),
        [Rule::DrainBeforeRestart, Rule::DrainWithoutSurge]
    );
    let good = plan(
        r#"[[{"drain": {"service": "search"}}], [{"restart": {"service": "search"}}],
            [{"restore_traffic": {"service": "search"}}]]"#,
    );
    assert!(rules_of(&good).is_empty());
}

/// A drain that outlasts its plan must not cost capacity: surge first, by as many replicas as it
/// drains; a drain bracketing a restart (restored in the same plan) is R3's business.
#[test]
fn r19_a_drain_that_outlasts_its_plan_surges_first() {
    let leased = |stages: &str, step: usize| {
        rules_of(&plan_with(
            stages,
            &format!(r#"[{{"step": {step}, "ttl_s": 60}}]"#),
        ))
    };
    // geo has 2 replicas: draining one leaves 1 of 2 serving.
    let one = r#"[[{"drain": {"service": "geo", "replicas": [1]}}]]"#;
    assert_eq!(leased(one, 0), [Rule::DrainWithoutSurge]);
    let too_little = r#"[[{"scale": {"service": "geo", "replicas": 2}}],
        [{"drain": {"service": "geo", "replicas": [0, 1]}}]]"#;
    assert_eq!(leased(too_little, 1), [Rule::DrainWithoutSurge]);
    let surged = r#"[[{"scale": {"service": "geo", "replicas": 3}}],
        [{"drain": {"service": "geo", "replicas": [1]}}]]"#;
    assert!(leased(surged, 1).is_empty());
    // The scale must come in an earlier stage, not beside the drain.
    let beside = r#"[[{"scale": {"service": "geo", "replicas": 3}},
        {"drain": {"service": "rate", "replicas": [0]}}],
        [{"drain": {"service": "geo", "replicas": [1]}}]]"#;
    let rules = rules_of(&plan_with(
        beside,
        r#"[{"step": 1, "ttl_s": 60}, {"step": 2, "ttl_s": 60}]"#,
    ));
    assert_eq!(
        rules,
        [Rule::DrainWithoutSurge],
        "rate's drain is not surged"
    );
    let restored = r#"[[{"drain": {"service": "geo", "replicas": [1]}}],
        [{"restore_traffic": {"service": "geo"}}]]"#;
    assert!(rules_of(&plan(restored)).is_empty());
    // Lasting drains of one service add up: one surge does not cover two drains.
    let two_drains = plan_with(
        r#"[[{"scale": {"service": "geo", "replicas": 3}}],
            [{"drain": {"service": "geo", "replicas": [0]}}],
            [{"drain": {"service": "geo", "replicas": [1]}}]]"#,
        r#"[{"step": 1, "ttl_s": 60}, {"step": 2, "ttl_s": 60}]"#,
    );
    let verdict = validate(&two_drains, &graph(), &scope(), &KernelView::idle());
    assert_eq!(verdict.rules(), [Rule::DrainWithoutSurge]);
    assert_eq!(verdict.violations[0].step, Some(2), "{verdict}");
    // A surge under a lease lapses while the drain may still hold: it does not count.
    let leased_surge = plan_with(
        r#"[[{"scale": {"service": "geo", "replicas": 3}}],
            [{"drain": {"service": "geo", "replicas": [1]}}]]"#,
        r#"[{"step": 0, "ttl_s": 30}, {"step": 1, "ttl_s": 300}]"#,
    );
    assert_eq!(rules_of(&leased_surge), [Rule::DrainWithoutSurge]);
    // Nor may a later scale take the surge back.
    let scaled_back = plan_with(
        r#"[[{"scale": {"service": "geo", "replicas": 3}}],
            [{"drain": {"service": "geo", "replicas": [1]}}],
            [{"scale": {"service": "geo", "replicas": 2}}]]"#,
        r#"[{"step": 1, "ttl_s": 60}]"#,
    );
    let verdict = validate(&scaled_back, &graph(), &scope(), &KernelView::idle());
    assert_eq!(verdict.rules(), [Rule::DrainWithoutSurge]);
    assert_eq!(verdict.violations[0].step, Some(2), "{verdict}");
    // Draining "all" drains the surged replicas too; the verdict says to name the failing ones.
    let all = plan_with(
        r#"[[{"scale": {"service": "geo", "replicas": 4}}],
            [{"drain": {"service": "geo", "replicas": "all"}}]]"#,
        r#"[{"step": 1, "ttl_s": 60}]"#,
    );
    let verdict = validate(&all, &graph(), &scope(), &KernelView::idle());
    assert!(
        verdict.violations[0]
            .detail
            .contains("Name the failing replicas"),
        "{verdict}"
    );
}

#[test]
fn r4_callees_restart_first_transitively_and_not_in_parallel() {
    let same_stage =
        plan(r#"[[{"restart": {"service": "rate"}}, {"restart": {"service": "memcached-rate"}}]]"#);
    assert_eq!(rules_of(&same_stage), [Rule::RestartOrder]);
    let callee_first = plan(
        r#"[[{"restart": {"service": "memcached-rate"}}], [{"restart": {"service": "rate"}}]]"#,
    );
    assert!(rules_of(&callee_first).is_empty());
    // geo and rate have no path between them: any order.
    let unrelated =
        plan(r#"[[{"restart": {"service": "rate"}}, {"restart": {"service": "geo"}}]]"#);
    assert!(rules_of(&unrelated).is_empty());
}

#[test]
fn r5_to_r8_bounds_floors_edges_versions() {
    assert_eq!(
        rules_of(&plan(
            r#"[[{"scale": {"service": "geo", "replicas": 11}}]]"#
        )),
        [Rule::ReplicaBounds]
    );
    assert_eq!(
        rules_of(&plan_with(
            r#"[[{"rate_limit": {"service": "rate", "rps": 89}}]]"#,
            r#"[{"step": 0, "ttl_s": 60}]"#
        )),
        [Rule::RateLimitFloor]
    );
    assert!(
        rules_of(&plan_with(
            r#"[[{"rate_limit": {"service": "rate", "rps": 90}}]]"#,
            r#"[{"step": 0, "ttl_s": 60}]"#
        ))
        .is_empty()
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"circuit_break": {"caller": "geo", "callee": "rate", "duration_s": 5}}]]"#
        )),
        [Rule::UnknownEdge]
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"rollback_config": {"service": "rate", "version": "v0"}}]]"#
        )),
        [Rule::UnknownConfigVersion]
    );
}

#[test]
fn r9_degrading_actions_must_be_closed() {
    // An unclosed drain of every replica also leaves nothing serving (R19).
    let both = [Rule::UnclosedReversible, Rule::DrainWithoutSurge];
    assert_eq!(
        rules_of(&plan(r#"[[{"drain": {"service": "rate"}}]]"#)),
        both
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"drain": {"service": "rate"}}, {"restore_traffic": {"service": "geo"}}]]"#
        )),
        both
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"circuit_break": {"caller": "search", "callee": "rate"}}]]"#
        )),
        [Rule::UnclosedReversible]
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"rate_limit": {"service": "rate", "rps": 100}}]]"#
        )),
        [Rule::UnclosedReversible]
    );
    assert!(
        rules_of(&plan(
            r#"[[{"drain": {"service": "rate"}}], [{"restore_traffic": {"service": "rate"}}]]"#
        ))
        .is_empty()
    );
}

#[test]
fn r10_r11_r12_r13_limits_budget_and_locks() {
    let two = plan(r#"[[{"restart": {"service": "geo"}}], [{"restart": {"service": "rate"}}]]"#);
    let tight = KernelView {
        limits: Limits {
            max_group_size: 1,
            ..Limits::default()
        },
        ..KernelView::idle()
    };
    assert_eq!(
        validate(&two, &graph(), &scope(), &tight).rules(),
        [Rule::GroupSize]
    );
    let spent = KernelView {
        restarts_in_window: 9,
        ..KernelView::idle()
    };
    assert_eq!(
        validate(&two, &graph(), &scope(), &spent).rules(),
        [Rule::RestartBudget]
    );
    let long = plan(&format!(
        "[{}]",
        vec![r#"[{"rollback_config": {"service": "rate", "version": "v1"}}]"#; 33].join(",")
    ));
    assert_eq!(rules_of(&long), [Rule::PlanLength]);
    let locks: BTreeMap<String, PlanId> = [("rate".to_string(), PlanId(7))].into();
    let locked = KernelView {
        locks: &locks,
        ..KernelView::idle()
    };
    let verdict = validate(&two, &graph(), &scope(), &locked);
    assert_eq!(verdict.rules(), [Rule::LockConflict]);
    assert!(verdict.to_string().contains("plan-7"), "{verdict}");
}

#[test]
fn r14_to_r17_structure() {
    let other = Plan::from_json_str(
        r#"{"incident": "inc-other", "stages": [[{"restart": {"service": "geo"}}]]}"#,
        "p",
    )
    .unwrap();
    assert_eq!(rules_of(&other), [Rule::IncidentMismatch]);
    assert_eq!(rules_of(&plan("[]")), [Rule::EmptyPlan]);
    assert_eq!(
        rules_of(&plan(r#"[[{"restart": {"service": "geo"}}], []]"#)),
        [Rule::EmptyPlan]
    );
    assert_eq!(
        rules_of(&plan(
            r#"[[{"restart": {"service": "geo"}}, {"scale": {"service": "geo", "replicas": 3}}]]"#
        )),
        [Rule::StageConflict]
    );
    assert_eq!(
        rules_of(&plan_with(
            r#"[[{"restart": {"service": "geo"}}]]"#,
            r#"[{"step": 0, "ttl_s": 5}]"#
        )),
        [Rule::BadLease]
    );
    assert_eq!(
        rules_of(&plan_with(
            r#"[[{"restart": {"service": "geo"}}]]"#,
            r#"[{"step": 3, "ttl_s": 5}]"#
        )),
        [Rule::BadLease]
    );
    assert_eq!(
        rules_of(&plan_with(
            r#"[[{"rate_limit": {"service": "rate", "rps": 100}}]]"#,
            r#"[{"step": 0, "ttl_s": 5}, {"step": 0, "ttl_s": 9}]"#
        )),
        [Rule::BadLease]
    );
}

#[test]
fn rule_ids_are_stable_and_round_trip() {
    for rule in Rule::ALL {
        assert_eq!(Rule::from_id(rule.id()), Some(rule));
        assert_eq!(
            serde_json::to_string(&rule).unwrap(),
            format!("\"{}\"", rule.id())
        );
    }
    assert_eq!(Rule::DrainBeforeRestart.id(), "R3-drain-before-restart");
}

#[test]
fn r18_acts_only_where_monitoring_shows_failure() {
    use kernel::{Health, ServiceHealth};
    let failing = ServiceHealth {
        slo_violated: true,
        ..ServiceHealth::default()
    };
    let mut health = Health::new();
    health.set("rate", failing.clone());
    health.set(
        "profile",
        ServiceHealth {
            config_changed: true,
            ..ServiceHealth::default()
        },
    );
    let view = KernelView {
        health: Some(&health),
        ..KernelView::idle()
    };
    let judge = |stages: &str| validate(&plan(stages), &graph(), &scope(), &view);
    // The failing service may be restarted, drained, scaled, broken around.
    for ok in [
        r#"[[{"restart": {"service": "rate"}}]]"#,
        r#"[[{"scale": {"service": "rate", "replicas": 3}}]]"#,
    ] {
        assert!(judge(ok).accepted(), "{}", judge(ok));
    }
    // A healthy cache, restarted because it sits in scope, is refused with the reason.
    let verdict = judge(r#"[[{"restart": {"service": "memcached-rate"}}]]"#);
    assert_eq!(verdict.rules(), [Rule::NoFailureEvidence], "{verdict}");
    assert!(
        verdict.violations[0].detail.contains("healthy service"),
        "{verdict}"
    );
    // A rollback needs a recent config change, not a failure.
    let rollback =
        |s: &str| format!(r#"[[{{"rollback_config": {{"service": "{s}", "version": "v1"}}}}]]"#);
    assert_eq!(judge(&rollback("rate")).rules(), [Rule::NoFailureEvidence]);
    // Without a snapshot (the structural-only kernel) the same plan passes.
    let structural = validate(
        &plan(r#"[[{"restart": {"service": "memcached-rate"}}]]"#),
        &graph(),
        &scope(),
        &KernelView::idle(),
    );
    assert!(structural.accepted(), "{structural}");
}
