//! Recovery-group inference: golden scopes for hand-checked graphs, and properties on random
//! graphs against a naive reference (reachability + Kosaraju).

use kernel::groups::{GroupConfig, Inference, Inferred};
use kernel::isa::IncidentId;
use kernel::{DependencyGraph, EdgeKind, ServiceKind};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::DiGraph;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

fn infer(g: &DependencyGraph, symptom: &str) -> Inferred {
    infer_capped(g, symptom, kernel::MAX_GROUP_SIZE)
}

fn infer_capped(g: &DependencyGraph, symptom: &str, cap: usize) -> Inferred {
    Inference::new().infer(
        g,
        g.id(symptom).expect("symptom exists"),
        IncidentId::try_from("inc").unwrap(),
        GroupConfig {
            max_group_size: cap,
            ..GroupConfig::default()
        },
    )
}

fn scope_json(r: &Inferred) -> serde_json::Value {
    let mut v = serde_json::to_value(r.scope.to_file()).unwrap();
    v.as_object_mut().unwrap().remove("incident");
    v
}

/// socialNetwork's user/social-graph corner: user-service and social-graph-service call each
/// other (Register → InsertUser, Follow → GetUserId), each with its own stores.
fn social() -> DependencyGraph {
    DependencyGraph::from_json_str(
        r#"{"services": [
            {"name": "nginx-thrift", "kind": "frontend"},
            {"name": "user-service", "kind": "stateless"},
            {"name": "social-graph-service", "kind": "stateless"},
            {"name": "user-memcached", "kind": "cache"},
            {"name": "user-mongodb", "kind": "db"},
            {"name": "social-graph-redis", "kind": "cache"},
            {"name": "social-graph-mongodb", "kind": "db"}
          ],
          "edges": [
            {"from": "nginx-thrift", "to": "user-service", "weight": 100},
            {"from": "nginx-thrift", "to": "social-graph-service", "weight": 50},
            {"from": "user-service", "to": "user-memcached", "kind": "cache", "weight": 90},
            {"from": "user-service", "to": "user-mongodb", "kind": "db", "weight": 10},
            {"from": "user-service", "to": "social-graph-service", "weight": 5},
            {"from": "social-graph-service", "to": "user-service", "weight": 20},
            {"from": "social-graph-service", "to": "social-graph-redis", "kind": "cache", "weight": 60},
            {"from": "social-graph-service", "to": "social-graph-mongodb", "kind": "db", "weight": 6}
          ]}"#,
        "social",
    )
    .unwrap()
}

#[test]
fn golden_cycle_user_and_social_graph_restart_together_after_their_stores() {
    let r = infer(&social(), "user-service");
    assert_eq!(
        scope_json(&r),
        json!({
            "symptom": "user-service",
            "groups": [
                {"members": ["user-memcached"]},
                {"members": ["user-mongodb"]},
                {"members": ["social-graph-redis"]},
                {"members": ["social-graph-mongodb"]},
                {"members": ["user-service", "social-graph-service"]}
            ],
            "order": [[0, 4], [1, 4], [2, 4], [3, 4]],
            "startup_order": [],
            "requires_drain": [],
            "truncated": [],
            "layers": [[0, 1, 2, 3], [4]]
        })
    );
}

#[test]
fn golden_startup_only_dependency_couples_geo_to_its_database() {
    let g = DependencyGraph::from_json_str(
        r#"{"services": [
            {"name": "frontend", "kind": "frontend"},
            {"name": "search", "kind": "stateless"},
            {"name": "geo", "kind": "stateless", "startup_deps": ["mongodb-geo"]},
            {"name": "rate", "kind": "stateless"},
            {"name": "memcached-rate", "kind": "cache"},
            {"name": "mongodb-rate", "kind": "db"},
            {"name": "mongodb-geo", "kind": "db"}
          ],
          "edges": [
            {"from": "frontend", "to": "search", "weight": 600},
            {"from": "search", "to": "geo", "weight": 600},
            {"from": "search", "to": "rate", "weight": 600},
            {"from": "rate", "to": "memcached-rate", "kind": "cache", "weight": 600},
            {"from": "rate", "to": "mongodb-rate", "kind": "db", "weight": 60}
          ]}"#,
        "hotel",
    )
    .unwrap();
    let r = infer(&g, "search");
    assert_eq!(
        scope_json(&r),
        json!({
            "symptom": "search",
            "groups": [
                {"members": ["geo", "mongodb-geo"]},
                {"members": ["memcached-rate"]},
                {"members": ["mongodb-rate"]},
                {"members": ["rate"]},
                {"members": ["search"]}
            ],
            "order": [[0, 4], [1, 3], [2, 3], [3, 4]],
            "startup_order": [["mongodb-geo", "geo"]],
            "requires_drain": [],
            "truncated": [],
            "layers": [[0, 1, 2], [3], [4]]
        })
    );
    assert!(r.scope.must_restart_before("mongodb-geo", "geo"));
    assert!(!r.scope.must_restart_before("geo", "mongodb-geo"));
}

#[test]
fn golden_hub_needs_a_drain_and_the_cap_truncates() {
    let mut g = DependencyGraph::new();
    let hub = g.ensure_service("auth", ServiceKind::Stateless);
    let store = g.ensure_service("auth-db", ServiceKind::Db);
    g.add_calls(hub, store, EdgeKind::Db, 10);
    for i in 0..25 {
        let caller = g.ensure_service(&format!("app-{i:02}"), ServiceKind::Stateless);
        g.add_calls(caller, hub, EdgeKind::Rpc, 1 + i);
        let own = g.ensure_service(&format!("app-{i:02}-cache"), ServiceKind::Cache);
        g.add_calls(caller, own, EdgeKind::Cache, 100);
    }
    let r = infer(&g, "app-03");
    assert_eq!(
        scope_json(&r),
        json!({
            "symptom": "app-03",
            "groups": [{"members": ["app-03-cache"]}, {"members": ["auth-db"]}, {"members": ["auth"]}, {"members": ["app-03"]}],
            "order": [[0, 3], [1, 2], [2, 3]],
            "startup_order": [],
            "requires_drain": ["auth"],
            "truncated": [],
            "layers": [[0, 1], [2], [3]]
        })
    );
    // With room for two services, the heavier callee (the cache, 100 calls) wins over auth (4).
    let small = infer_capped(&g, "app-03", 2);
    assert!(small.truncated);
    assert_eq!(
        small.scope.services().collect::<Vec<_>>(),
        ["app-03-cache", "app-03"]
    );
    assert_eq!(small.scope.truncated(), ["auth"]);
}

// ---------------------------------------------------------------------------------------------

fn random_graph(seed: u64) -> DependencyGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(2..40usize);
    let mut g = DependencyGraph::new();
    let ids: Vec<_> = (0..n)
        .map(|i| g.ensure_service(&format!("v{i}"), ServiceKind::Stateless))
        .collect();
    for _ in 0..rng.random_range(0..3 * n) {
        let (a, b) = (ids[rng.random_range(0..n)], ids[rng.random_range(0..n)]);
        let kind =
            [EdgeKind::Rpc, EdgeKind::Cache, EdgeKind::Db, EdgeKind::Mq][rng.random_range(0..4)];
        g.add_calls(a, b, kind, rng.random_range(1..100));
    }
    for _ in 0..rng.random_range(0..3) {
        let (a, b) = (ids[rng.random_range(0..n)], ids[rng.random_range(0..n)]);
        g.add_startup_dep(a, b);
    }
    g
}

/// Dependencies as the inference sees them: sync edges and start-up deps.
fn dependencies(g: &DependencyGraph) -> BTreeSet<(String, String)> {
    let name = |id| g.service(id).name.clone();
    let mut deps: BTreeSet<(String, String)> = g
        .edges()
        .filter(|(a, b, d)| d.kind.is_sync() && a != b)
        .map(|(a, b, _)| (name(a), name(b)))
        .collect();
    for (id, s) in g.services() {
        for &b in s.startup_deps() {
            deps.insert((name(id), name(b)));
        }
    }
    deps
}

fn reachable(deps: &BTreeSet<(String, String)>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::from([from.to_string()]);
    let mut stack = vec![from.to_string()];
    while let Some(v) = stack.pop() {
        for (a, b) in deps {
            if *a == v && seen.insert(b.clone()) {
                stack.push(b.clone());
            }
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x67726f757073),
        ..ProptestConfig::default()
    })]

    /// Without truncation the scope is exactly the reachable set, the groups are exactly
    /// Kosaraju's SCCs of it (with coupling edges), and every dependency inside the scope is
    /// respected by the restart order.
    #[test]
    fn inference_matches_reachability_and_kosaraju(seed in any::<u64>(), pick in any::<usize>()) {
        let g = random_graph(seed);
        let symptom = format!("v{}", pick % g.service_count());
        let deps = dependencies(&g);
        let reach = reachable(&deps, &symptom);
        prop_assume!(reach.len() <= kernel::MAX_GROUP_SIZE);
        let r = infer(&g, &symptom);
        prop_assert!(!r.truncated);
        let scope: BTreeSet<String> = r.scope.services().map(str::to_string).collect();
        prop_assert_eq!(&scope, &reach);

        // Kosaraju over the scope with coupling edges.
        let mut pg = DiGraph::<String, ()>::new();
        let index: BTreeMap<String, _> = reach.iter().map(|s| (s.clone(), pg.add_node(s.clone()))).collect();
        for (a, b) in &deps {
            if let (Some(&x), Some(&y)) = (index.get(a), index.get(b)) {
                pg.add_edge(x, y, ());
            }
        }
        for (id, s) in g.services() {
            for &b in s.startup_deps() {
                if let (Some(&x), Some(&y)) = (index.get(&g.service(b).name), index.get(&s.name)) {
                    let _ = id;
                    pg.add_edge(x, y, ());
                }
            }
        }
        let expected: BTreeSet<BTreeSet<String>> = kosaraju_scc(&pg)
            .into_iter()
            .map(|c| c.into_iter().map(|n| pg[n].clone()).collect())
            .collect();
        let got: BTreeSet<BTreeSet<String>> = r.scope.groups().iter()
            .map(|g| g.members.iter().cloned().collect())
            .collect();
        prop_assert_eq!(&got, &expected);
        // Partition: every service in exactly one group.
        let total: usize = r.scope.groups().iter().map(|g| g.members.len()).sum();
        prop_assert_eq!(total, scope.len());
        // Order respects every dependency: callee before caller, or same group.
        for (a, b) in &deps {
            if scope.contains(a) && scope.contains(b) {
                let (ga, gb) = (r.scope.group_of(a).unwrap(), r.scope.group_of(b).unwrap());
                prop_assert!(ga == gb || r.scope.must_restart_before(b, a), "{} -> {} not ordered", a, b);
                prop_assert!(gb <= ga, "groups are listed callees first");
            }
        }
    }

    /// With a small cap: the scope has exactly `cap` reachable services including the symptom,
    /// every member but the symptom is called by an earlier member, and the truncated services
    /// are reachable, outside, and called by a member.
    #[test]
    fn truncation_keeps_a_connected_prefix(seed in any::<u64>(), pick in any::<usize>(), cap in 1usize..6) {
        let g = random_graph(seed);
        let symptom = format!("v{}", pick % g.service_count());
        let deps = dependencies(&g);
        let reach = reachable(&deps, &symptom);
        let r = infer_capped(&g, &symptom, cap);
        let members: Vec<&str> = r.scope.services().collect();
        prop_assert_eq!(r.truncated, reach.len() > cap);
        prop_assert_eq!(members.len(), reach.len().min(cap));
        prop_assert!(r.scope.contains(&symptom));
        for m in &members {
            prop_assert!(reach.contains(*m));
            if *m != symptom {
                prop_assert!(deps.iter().any(|(a, b)| b == m && members.contains(&a.as_str())));
            }
        }
        for t in r.scope.truncated() {
            prop_assert!(reach.contains(t) && !members.contains(&t.as_str()));
            prop_assert!(deps.iter().any(|(a, b)| b == t && members.contains(&a.as_str())));
        }
        prop_assert_eq!(r.truncated, !r.scope.truncated().is_empty());
    }

    /// One `Inference` reused across queries gives the same answers as fresh ones.
    #[test]
    fn reused_buffers_give_fresh_answers(seed in any::<u64>()) {
        let g = random_graph(seed);
        let mut shared = Inference::new();
        for (id, s) in g.services() {
            let a = shared.infer(&g, id, IncidentId::try_from("inc").unwrap(), GroupConfig::default());
            let b = infer(&g, &s.name);
            prop_assert_eq!(a.scope.to_file(), b.scope.to_file());
        }
    }
}
