//! Exact numbers end to end: a rate that is validated, executed and journaled is the same f64
//! bits at every stage, so the journal alone replays to the actuator's state and a journaled
//! plan re-validates to the same verdict, also at the R6 floor where one ulp decides.
//!
//! 100,000 cases from a fixed seed (`PROPTEST_CASES` / `PROPTEST_RNG_SEED` explore others).

use kernel::isa::{Action, IncidentId, Plan, Rate, ServiceName};
use kernel::journal::{Event, read_jsonl, replay};
use kernel::scope::{RestartGroup, ScopeFile};
use kernel::txn::{MemoryActuator, Outcome};
use kernel::validate::{KernelView, validate};
use kernel::{
    ControlState, DependencyGraph, Kernel, KernelConfig, RecoveryScope, Service, ServiceKind,
    VirtualTime,
};
use proptest::prelude::*;

mod common;
use common::proptest_config;

/// A one-service world whose baseline is `baseline` requests per second.
fn world(baseline: f64) -> (DependencyGraph, RecoveryScope) {
    let mut graph = DependencyGraph::new();
    let mut s = Service::new("api", ServiceKind::Stateless);
    s.baseline_rps = Some(baseline);
    graph.add_service(s).unwrap();
    let scope = RecoveryScope::new(ScopeFile {
        incident: IncidentId::try_from("inc").unwrap(),
        symptom: "api".into(),
        groups: vec![RestartGroup {
            members: vec!["api".into()],
        }],
        order: Vec::new(),
        startup_order: Vec::new(),
        requires_drain: Vec::new(),
        truncated: Vec::new(),
        truncated_total: None,
        layers: None,
    })
    .unwrap();
    (graph, scope)
}

/// `x` moved by `ulps` units in the last place.
fn nudge(x: f64, ulps: i64) -> f64 {
    f64::from_bits((x.to_bits() as i64 + ulps) as u64)
}

proptest! {
    #![proptest_config(proptest_config(100_000))]

    #[test]
    fn validated_executed_and_journaled_rates_are_the_same_bits(
        mantissa in 1u64..(1 << 52),
        exponent in -20i32..20,
        ulps in -2i64..=2,
    ) {
        // A rate with a full random mantissa, and a baseline that puts the R6 floor at it or
        // within two ulps (doubling is exact, so the floor 0.5 × baseline is exactly `floor`).
        let floor = f64::from_bits((1023u64 << 52) | mantissa) * 2f64.powi(exponent);
        let rps = nudge(floor, ulps);
        let (graph, scope) = world(2.0 * floor);
        let plan = {
            let mut p = Plan::new(
                IncidentId::try_from("inc").unwrap(),
                vec![vec![Action::RateLimit {
                    service: ServiceName::try_from("api").unwrap(),
                    rps: Rate::try_from(rps).unwrap(),
                }]],
            );
            p.leases = vec![kernel::isa::Lease { step: 0, ttl_s: 60u64.try_into().unwrap() }];
            p
        };
        let verdict = validate(&plan, &graph, &scope, &KernelView::idle());
        prop_assert_eq!(verdict.accepted(), ulps >= 0, "{}", verdict);

        // The plan as an agent would send it, parsed back: same bits, same verdict.
        let parsed = Plan::from_json_str(&plan.to_json_pretty(), "plan").unwrap();
        prop_assert_eq!(&parsed, &plan);
        prop_assert_eq!(validate(&parsed, &graph, &scope, &KernelView::idle()), verdict.clone());
        if !verdict.accepted() {
            return Ok(());
        }

        // Executed, journaled, written, read back and replayed: the actuator's exact state.
        let initial = ControlState::from_graph(&graph);
        let mut actuator = MemoryActuator::new(initial.clone());
        let mut kernel = Kernel::new(KernelConfig::default());
        let sub = kernel.submit(VirtualTime::ZERO, parsed, &graph, &scope);
        let finished = kernel.poll(VirtualTime::ZERO, &mut actuator);
        prop_assert_eq!(finished, vec![(sub.plan, Outcome::Committed)]);
        prop_assert_eq!(actuator.state.get("api").unwrap().rate_limit.map(f64::to_bits), Some(rps.to_bits()));
        let text = kernel.journal().to_jsonl();
        let records = read_jsonl(text.as_bytes(), "journal").unwrap();
        prop_assert_eq!(&records[..], kernel.journal().records());
        prop_assert_eq!(&replay(&initial, &records).unwrap(), &actuator.state);
        // The proposal inside the journal re-validates to the same verdict.
        let Event::Proposal { plan: journaled, .. } = &records[0].event else {
            panic!("first record is the proposal");
        };
        prop_assert!(validate(journaled, &graph, &scope, &KernelView::idle()).accepted());
    }
}
