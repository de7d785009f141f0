//! Property tests of the kernel's invariants over random graphs, scopes and plans.
//!
//! (a) the validator agrees with an independent, deliberately naive checker on every plan, and
//!     accepts every plan built to be valid;
//! (b) a valid plan mutated to break one rule is rejected with that rule's id;
//! (c) with failures injected at random steps, an aborted plan leaves every target it touched
//!     only reversibly in its exact pre-plan state, journals its compensations, and holds no lock;
//! (d) replaying the journal reproduces the actuator's final state;
//! (e) once every lease of every committed plan has expired, no degradation remains;
//! (f) R3 holds by state: a hub's restarted replicas are drained when the restart runs.
//!
//! Worlds and plans are generated from a proptest-chosen seed through ChaCha, so a failing case
//! is reproduced by its seed.

use kernel::isa::{
    Action, ConfigVersion, IncidentId, Lease, LeaseSeconds, Plan, Rate, ReplicaCount,
    ReplicaSelector, RollbackClass, ServiceName,
};
use kernel::journal::{Event, replay};
use kernel::scope::{RestartGroup, ScopeFile};
use kernel::txn::{MemoryActuator, Outcome, PlanId};
use kernel::validate::{KernelView, Limits, validate};
use kernel::{
    ControlState, DependencyGraph, EdgeKind, Health, Kernel, KernelConfig, RecoveryScope, Rule,
    Service, ServiceHealth, ServiceKind, VirtualTime,
};
use proptest::prelude::*;

mod common;
use common::proptest_config;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{BTreeMap, BTreeSet};

struct World {
    graph: DependencyGraph,
    scope: RecoveryScope,
    file: ScopeFile,
    names: Vec<String>,
    outside: Vec<String>,
}

fn name(s: &str) -> ServiceName {
    ServiceName::try_from(s).unwrap()
}

fn shuffle<T>(rng: &mut ChaCha8Rng, v: &mut [T]) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i);
        v.swap(i, j);
    }
}

/// A random graph with a random scope: groups over a random subset, an acyclic group order with
/// at least one constraint, start-up pairs inside groups, at least one hub, and services outside.
fn world(seed: u64) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n = rng.random_range(6..36usize);
    let mut graph = DependencyGraph::new();
    let names: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let kind = match (i, rng.random_range(0..4)) {
            (0, _) => ServiceKind::Frontend,
            (_, 0) => ServiceKind::Cache,
            (_, 1) => ServiceKind::Db,
            _ => ServiceKind::Stateless,
        };
        let replicas = rng.random_range(1..5u32);
        let mut s = Service::new(name.clone(), kind).with_replicas(replicas);
        s.min_replicas = rng.random_range(1..=replicas);
        s.max_replicas = replicas + rng.random_range(0..4u32);
        s.config_versions = (1..=rng.random_range(1..4))
            .map(|v| format!("v{v}"))
            .collect();
        if rng.random_bool(0.3) {
            s.baseline_rps = Some(rng.random_range(1.0..500.0));
        }
        graph.add_service(s).unwrap();
    }
    for _ in 0..rng.random_range(n..3 * n) {
        let a = rng.random_range(0..n);
        let b = rng.random_range(0..n);
        let kind =
            [EdgeKind::Rpc, EdgeKind::Cache, EdgeKind::Db, EdgeKind::Mq][rng.random_range(0..4)];
        let (a, b) = (graph.id(&names[a]).unwrap(), graph.id(&names[b]).unwrap());
        graph.add_calls(a, b, kind, rng.random_range(1..2000));
    }
    // Scope: a random subset (leaving at least two services outside), split into groups.
    let mut order: Vec<usize> = (0..n).collect();
    shuffle(&mut rng, &mut order);
    let size = rng.random_range(2..=(n - 2).min(30));
    let members: Vec<String> = order[..size].iter().map(|&i| names[i].clone()).collect();
    let outside: Vec<String> = order[size..].iter().map(|&i| names[i].clone()).collect();
    let n_groups = rng.random_range(2..=size.min(8));
    let mut groups: Vec<Vec<String>> = vec![Vec::new(); n_groups];
    for (i, m) in members.iter().enumerate() {
        let g = if i < n_groups {
            i
        } else {
            rng.random_range(0..n_groups)
        };
        groups[g].push(m.clone());
    }
    let mut order_pairs = vec![(0, 1)];
    for _ in 0..rng.random_range(0..2 * n_groups) {
        let a = rng.random_range(0..n_groups);
        let b = rng.random_range(0..n_groups);
        if a < b && !order_pairs.contains(&(a, b)) {
            order_pairs.push((a, b));
        }
    }
    let mut startup_order = Vec::new();
    for g in &groups {
        if g.len() >= 2 && rng.random_bool(0.5) {
            let i = rng.random_range(0..g.len() - 1);
            let j = rng.random_range(i + 1..g.len());
            startup_order.push((g[i].clone(), g[j].clone()));
        }
    }
    let hub_count = rng.random_range(1..=members.len().min(3));
    let requires_drain: Vec<String> = members[..hub_count].to_vec();
    let file = ScopeFile {
        incident: IncidentId::try_from("inc").unwrap(),
        symptom: groups[n_groups - 1][0].clone(),
        groups: groups
            .into_iter()
            .map(|members| RestartGroup { members })
            .collect(),
        order: order_pairs,
        startup_order,
        requires_drain,
        truncated: outside[..1].to_vec(),
        truncated_total: None,
        layers: None,
    };
    let scope = RecoveryScope::new(file.clone()).expect("generated scopes are consistent");
    World {
        graph,
        scope,
        file,
        names,
        outside,
    }
}

fn selector(rng: &mut ChaCha8Rng, replicas: u32) -> ReplicaSelector {
    match rng.random_range(0..3) {
        0 => ReplicaSelector::All,
        1 => ReplicaSelector::Count(rng.random_range(1..=replicas)),
        _ => {
            let mut ids: Vec<u32> = (0..replicas).filter(|_| rng.random_bool(0.5)).collect();
            if ids.is_empty() {
                ids.push(0);
            }
            ReplicaSelector::Ids(ids)
        }
    }
}

fn lease(ttl: u64) -> LeaseSeconds {
    LeaseSeconds::try_from(ttl).unwrap()
}

/// A plan built to satisfy every rule: restarts one per stage in a valid order (hubs between a
/// drain and a restore), plus closed drains, breakers on real edges, bounded scales and limits,
/// and rollbacks to known versions.
fn valid_plan(w: &World, rng: &mut ChaCha8Rng) -> Plan {
    let mut stages: Vec<Vec<Action>> = Vec::new();
    let mut leases = Vec::new();
    let members: Vec<&str> = w.scope.services().collect();
    // Replica counts as the plan's own scales leave them.
    let mut current: BTreeMap<&str, u32> = BTreeMap::new();
    let mut surged: BTreeSet<&str> = BTreeSet::new();
    let replicas = |current: &BTreeMap<&str, u32>, s: &str| {
        current
            .get(s)
            .copied()
            .unwrap_or(w.graph.service_by_name(s).unwrap().replicas)
    };
    // Restarts, sorted so that every "must restart before" pair is respected.
    let mut restarts: Vec<&str> = members
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.15))
        .take(4)
        .collect();
    let rank = |s: &str| {
        let g = w.scope.group_of(s).unwrap();
        let layer = w
            .scope
            .layers()
            .iter()
            .position(|l| l.contains(&g))
            .unwrap();
        let pos = w.file.groups[g]
            .members
            .iter()
            .position(|m| m == s)
            .unwrap();
        (layer, g, pos)
    };
    restarts.sort_by_key(|s| rank(s));
    for s in restarts {
        let sel = selector(rng, replicas(&current, s));
        if w.scope.requires_drain(s) {
            stages.push(vec![Action::Drain {
                service: name(s),
                replicas: sel.clone(),
            }]);
            stages.push(vec![Action::Restart {
                service: name(s),
                replicas: sel,
            }]);
            stages.push(vec![Action::RestoreTraffic { service: name(s) }]);
        } else {
            stages.push(vec![Action::Restart {
                service: name(s),
                replicas: sel,
            }]);
        }
    }
    for _ in 0..rng.random_range(1..6) {
        let s = members[rng.random_range(0..members.len())];
        let id = w.graph.id(s).unwrap();
        let svc = w.graph.service(id);
        match rng.random_range(0..5) {
            0 => {
                let n = replicas(&current, s);
                let sel = selector(rng, n);
                // A leased drain outlasts the plan, so it surges first (R19): as many replicas
                // serve as before the plan.
                let drained = sel.resolve(n).map_or(n, |r| r.len() as u32);
                let surge = n.max(svc.replicas) + drained;
                let leased = rng.random_bool(0.5)
                    && sel != ReplicaSelector::All
                    && surge <= svc.max_replicas;
                if leased {
                    surged.insert(s);
                    current.insert(s, surge);
                    stages.push(vec![Action::Scale {
                        service: name(s),
                        replicas: ReplicaCount::try_from(u64::from(surge)).unwrap(),
                    }]);
                }
                stages.push(vec![Action::Drain {
                    service: name(s),
                    replicas: sel,
                }]);
                if !leased {
                    stages.push(vec![Action::RestoreTraffic { service: name(s) }]);
                } else {
                    leases.push(Lease {
                        step: 0,
                        ttl_s: lease(rng.random_range(1..600)),
                    });
                    let step = stages.iter().map(Vec::len).sum::<usize>() - 1;
                    leases.last_mut().unwrap().step = step;
                }
            }
            1 => {
                if let Some((caller, _)) = w.graph.callers(id).next() {
                    let timed = rng.random_bool(0.5);
                    stages.push(vec![Action::CircuitBreak {
                        caller: name(&w.graph.service(caller).name),
                        callee: name(s),
                        duration_s: timed.then(|| lease(rng.random_range(1..600))),
                    }]);
                    if !timed {
                        let step = stages.iter().map(Vec::len).sum::<usize>() - 1;
                        leases.push(Lease {
                            step,
                            ttl_s: lease(rng.random_range(1..600)),
                        });
                    }
                }
            }
            2 => {
                if let Some(b) = w.graph.baseline_rps(id).filter(|b| *b > 0.0) {
                    let rps = Rate::try_from(b * rng.random_range(0.5..2.0)).unwrap();
                    stages.push(vec![Action::RateLimit {
                        service: name(s),
                        rps,
                    }]);
                    let step = stages.iter().map(Vec::len).sum::<usize>() - 1;
                    leases.push(Lease {
                        step,
                        ttl_s: lease(rng.random_range(1..600)),
                    });
                }
            }
            3 => {
                // Never below the count a lasting drain's surge left (R19).
                let lo = if surged.contains(s) {
                    replicas(&current, s)
                } else {
                    svc.min_replicas
                };
                let n = rng.random_range(lo..=svc.max_replicas);
                current.insert(s, n);
                stages.push(vec![Action::Scale {
                    service: name(s),
                    replicas: ReplicaCount::try_from(u64::from(n)).unwrap(),
                }]);
            }
            _ => {
                let v = &svc.config_versions[rng.random_range(0..svc.config_versions.len())];
                stages.push(vec![Action::RollbackConfig {
                    service: name(s),
                    version: ConfigVersion::try_from(v.as_str()).unwrap(),
                }]);
            }
        }
    }
    if stages.is_empty() {
        let s = members[0];
        stages.push(vec![Action::RollbackConfig {
            service: name(s),
            version: ConfigVersion::try_from(
                w.graph
                    .service_by_name(s)
                    .unwrap()
                    .current_config()
                    .unwrap(),
            )
            .unwrap(),
        }]);
    }
    let mut plan = Plan::new(w.file.incident.clone(), stages);
    plan.leases = leases;
    plan
}

/// A random, usually invalid plan over all services and some ghosts.
fn junk_plan(w: &World, rng: &mut ChaCha8Rng) -> Plan {
    let pick = |rng: &mut ChaCha8Rng| -> String {
        if rng.random_bool(0.05) {
            "ghost".to_string()
        } else {
            w.names[rng.random_range(0..w.names.len())].clone()
        }
    };
    let mut stages = Vec::new();
    for _ in 0..rng.random_range(0..7) {
        let mut stage = Vec::new();
        for _ in 0..rng.random_range(0..4) {
            let s = pick(rng);
            let replicas = w.graph.service_by_name(&s).map_or(3, |x| x.replicas + 1);
            let action = match rng.random_range(0..7) {
                0 => Action::Restart {
                    service: name(&s),
                    replicas: selector(rng, replicas),
                },
                1 => Action::Drain {
                    service: name(&s),
                    replicas: selector(rng, replicas),
                },
                2 => Action::RestoreTraffic { service: name(&s) },
                3 => Action::CircuitBreak {
                    caller: name(&pick(rng)),
                    callee: name(&s),
                    duration_s: rng.random_bool(0.5).then(|| lease(30)),
                },
                4 => Action::RateLimit {
                    service: name(&s),
                    rps: Rate::try_from(rng.random_range(0.1..600.0)).unwrap(),
                },
                5 => Action::Scale {
                    service: name(&s),
                    replicas: ReplicaCount::try_from(rng.random_range(1..9u64)).unwrap(),
                },
                _ => Action::RollbackConfig {
                    service: name(&s),
                    version: ConfigVersion::try_from(format!("v{}", rng.random_range(0..5)))
                        .unwrap(),
                },
            };
            stage.push(action);
        }
        stages.push(stage);
    }
    let steps: usize = stages.iter().map(Vec::len).sum();
    let incident = if rng.random_bool(0.05) {
        "other"
    } else {
        "inc"
    };
    let mut plan = Plan::new(IncidentId::try_from(incident).unwrap(), stages);
    for _ in 0..rng.random_range(0..3) {
        plan.leases.push(Lease {
            step: rng.random_range(0..steps + 2),
            ttl_s: lease(60),
        });
    }
    plan
}

// ---------------------------------------------------------------------------------------------
// The independent checker: each rule restated as plainly as possible from DESIGN §5.
// ---------------------------------------------------------------------------------------------

fn naive_precedes(file: &ScopeFile, a: &str, b: &str) -> bool {
    let group = |s: &str| {
        file.groups
            .iter()
            .position(|g| g.members.iter().any(|m| m == s))
    };
    let (Some(ga), Some(gb)) = (group(a), group(b)) else {
        return false;
    };
    if ga == gb {
        // reachability over start-up pairs
        let mut seen = vec![a.to_string()];
        let mut frontier = vec![a.to_string()];
        while let Some(x) = frontier.pop() {
            for (p, q) in &file.startup_order {
                if *p == x && !seen.contains(q) {
                    seen.push(q.clone());
                    frontier.push(q.clone());
                }
            }
        }
        return a != b && seen.iter().any(|s| s == b);
    }
    let mut seen = BTreeSet::from([ga]);
    let mut frontier = vec![ga];
    while let Some(x) = frontier.pop() {
        for &(p, q) in &file.order {
            if p == x && seen.insert(q) {
                frontier.push(q);
            }
        }
    }
    seen.contains(&gb)
}

fn naive_rules(plan: &Plan, w: &World, view: &KernelView<'_>) -> BTreeSet<&'static str> {
    let g = &w.graph;
    let f = &w.file;
    let in_scope = |s: &str| f.groups.iter().any(|gr| gr.members.iter().any(|m| m == s));
    let mut out = BTreeSet::new();
    let steps: Vec<(usize, &Action)> = plan
        .stages
        .iter()
        .enumerate()
        .flat_map(|(i, st)| st.iter().map(move |a| (i, a)))
        .collect();
    if plan.incident != f.incident {
        out.insert("R14-incident-mismatch");
    }
    if steps.is_empty() || plan.stages.iter().any(Vec::is_empty) {
        out.insert("R15-empty-plan");
    }
    if steps.len() > view.limits.max_plan_steps {
        out.insert("R12-plan-length");
    }
    let targets = |a: &Action| -> Vec<String> {
        match a {
            Action::CircuitBreak { caller, callee, .. } => {
                vec![caller.to_string(), callee.to_string()]
            }
            other => vec![other.service().to_string()],
        }
    };
    let has_lease = |i: usize| plan.leases.iter().any(|l| l.step == i);
    // Replicas of each step's service when it runs: scales of earlier stages count.
    let replicas_at: Vec<u32> = steps
        .iter()
        .map(|&(stage, a)| {
            let base = g
                .service_by_name(a.service().as_str())
                .map_or(0, |s| s.replicas);
            steps
                .iter()
                .filter(|(s2, a2)| *s2 < stage && a2.service() == a.service())
                .filter_map(|(_, a2)| match a2 {
                    Action::Scale { replicas, .. } => Some(replicas.get()),
                    _ => None,
                })
                .next_back()
                .unwrap_or(base)
        })
        .collect();
    for (i, &(stage, a)) in steps.iter().enumerate() {
        for t in targets(a) {
            if g.id(&t).is_none() {
                out.insert("R1-unknown-target");
            }
            if view.locks.contains_key(&t) {
                out.insert("R13-lock-conflict");
            }
            if steps[..i]
                .iter()
                .any(|&(s2, a2)| s2 == stage && targets(a2).contains(&t))
            {
                out.insert("R16-stage-conflict");
            }
        }
        let scoped = match a {
            Action::CircuitBreak { callee, .. } => callee.to_string(),
            other => other.service().to_string(),
        };
        if g.id(&scoped).is_some() && !in_scope(&scoped) {
            out.insert("R2-out-of-scope");
        }
        let Some(svc) = g.service_by_name(a.service().as_str()) else {
            continue;
        };
        match a {
            Action::Restart { replicas, .. } | Action::Drain { replicas, .. } => {
                let n = replicas_at[i];
                let ok = match replicas {
                    ReplicaSelector::All => true,
                    ReplicaSelector::Count(k) => *k <= n,
                    ReplicaSelector::Ids(ids) => ids.iter().all(|&r| r < n),
                };
                if !ok {
                    out.insert("R1-unknown-target");
                }
            }
            Action::Scale { replicas, .. } => {
                if replicas.get() < svc.min_replicas || replicas.get() > svc.max_replicas {
                    out.insert("R5-replica-bounds");
                }
            }
            Action::RateLimit { rps, .. } => {
                let id = g.id(&svc.name).unwrap();
                let incoming: u64 = g.edges().filter(|e| e.1 == id).map(|e| e.2.weight).sum();
                let baseline = svc
                    .baseline_rps
                    .or((incoming > 0).then(|| incoming as f64 / g.window_s()));
                if baseline.is_none_or(|b| rps.get() < 0.5 * b) {
                    out.insert("R6-rate-limit-floor");
                }
            }
            Action::CircuitBreak { callee, .. } => {
                if let Some(c) = g.id(callee.as_str()) {
                    let caller = g.id(&svc.name).unwrap();
                    if !g.edges().any(|e| e.0 == caller && e.1 == c) {
                        out.insert("R7-unknown-edge");
                    }
                }
            }
            Action::RollbackConfig { version, .. } => {
                if !svc.config_versions.contains(&version.as_str().to_string()) {
                    out.insert("R8-unknown-config-version");
                }
            }
            Action::RestoreTraffic { .. } => {}
        }
        let closed = has_lease(i)
            || match a {
                Action::Drain { service, .. } => steps.iter().any(|&(s2, a2)| {
                    s2 > stage
                        && matches!(a2, Action::RestoreTraffic { service: x } if x == service)
                }),
                Action::CircuitBreak { duration_s, .. } => duration_s.is_some(),
                Action::RateLimit { .. } => false,
                _ => true,
            };
        if !closed {
            out.insert("R9-unclosed-reversible");
        }
    }
    // R19, replayed step by step on a model of each service: its replica count (a leased scale
    // at the lower of its two counts) and one flag per replica ordinal that a drain no later
    // restore closes holds out of load balancing.
    let mut model: BTreeMap<&str, (u32, Vec<bool>)> = BTreeMap::new();
    for (i, &(stage, a)) in steps.iter().enumerate() {
        let s = a.service().as_str();
        let Some(svc) = g.service_by_name(s) else {
            continue;
        };
        let lasting = |a: &Action| {
            !steps.iter().any(|&(s2, a2)| {
                s2 > stage
                    && matches!(a2, Action::RestoreTraffic { service } if service == a.service())
            })
        };
        let touched = match a {
            Action::Drain { replicas, .. } if lasting(a) => {
                let n = replicas_at[i];
                let picked: Vec<u32> = match replicas {
                    ReplicaSelector::All => (0..n).collect(),
                    ReplicaSelector::Count(k) if *k <= n => (n - k..n).collect(),
                    ReplicaSelector::Ids(ids) if ids.iter().all(|&r| r < n) => ids.clone(),
                    _ => continue,
                };
                let (_, flags) = model.entry(s).or_insert((svc.replicas, Vec::new()));
                for r in picked {
                    if flags.len() <= r as usize {
                        flags.resize(r as usize + 1, false);
                    }
                    flags[r as usize] = true;
                }
                true
            }
            Action::Scale { replicas, .. } => {
                let (count, flags) = model.entry(s).or_insert((svc.replicas, Vec::new()));
                *count = if has_lease(i) {
                    (*count).min(replicas.get())
                } else {
                    replicas.get()
                };
                flags.iter().any(|&f| f)
            }
            _ => false,
        };
        if let (true, Some(&(count, ref flags))) = (touched, model.get(s)) {
            let serving = (0..count)
                .filter(|&r| !flags.get(r as usize).copied().unwrap_or(false))
                .count() as u32;
            if serving < svc.replicas {
                out.insert("R19-drain-without-surge");
            }
        }
    }
    let restarts: Vec<(usize, &str, &ReplicaSelector, u32)> = steps
        .iter()
        .zip(&replicas_at)
        .filter_map(|(&(st, a), &n)| match a {
            Action::Restart { service, replicas } => Some((st, service.as_str(), replicas, n)),
            _ => None,
        })
        .collect();
    for &(st, s, sel, reps) in &restarts {
        if f.requires_drain.iter().any(|h| h == s) {
            let restarted = sel.resolve(reps);
            let mut drained = BTreeSet::new();
            // What the earlier stages leave drained: drains add, a restore empties, a scale-down
            // removes ordinals.
            for (&(st2, a2), &n2) in steps.iter().zip(&replicas_at) {
                if st2 >= st || a2.service().as_str() != s {
                    continue;
                }
                match a2 {
                    Action::Drain { replicas, .. } => {
                        drained.extend(replicas.resolve(n2).unwrap_or_default());
                    }
                    Action::RestoreTraffic { .. } => drained.clear(),
                    Action::Scale { replicas, .. } => drained.retain(|&r| r < replicas.get()),
                    _ => {}
                }
            }
            let covered = restarted.is_some_and(|r| r.iter().all(|x| drained.contains(x)));
            let restored = steps.iter().any(|&(st2, a2)| {
                st2 > st
                    && matches!(a2, Action::RestoreTraffic { service } if service.as_str() == s)
            });
            if !covered || !restored {
                out.insert("R3-drain-before-restart");
            }
        }
        for &(st2, s2, _, _) in &restarts {
            if s2 != s && st2 >= st && naive_precedes(f, s2, s) {
                out.insert("R4-restart-order");
            }
        }
    }
    let distinct: BTreeSet<&str> = restarts.iter().map(|r| r.1).collect();
    if distinct.len() > view.limits.max_group_size {
        out.insert("R10-group-size");
    }
    if !restarts.is_empty()
        && view.restarts_in_window + restarts.len() as u32 > view.limits.restart_intensity
    {
        out.insert("R11-restart-budget");
    }
    if let Some(h) = view.health {
        // R18: act only on a failing service or one in the same group as a failing one; roll
        // back only a recent config change.
        let group_of = |s: &str| f.groups.iter().find(|g| g.members.iter().any(|m| m == s));
        for &(_, a) in &steps {
            let unsupported = match a {
                Action::RollbackConfig { service, .. } => !h.config_changed(service.as_str()),
                Action::Restart { service, .. }
                | Action::Drain { service, .. }
                | Action::Scale { service, .. }
                | Action::CircuitBreak {
                    callee: service, ..
                } => {
                    let s = service.as_str();
                    !h.failing(s)
                        && !group_of(s).is_some_and(|g| g.members.iter().any(|m| h.failing(m)))
                }
                Action::RateLimit { .. } | Action::RestoreTraffic { .. } => false,
            };
            let target = match a {
                Action::CircuitBreak { callee, .. } => callee.as_str(),
                other => other.service().as_str(),
            };
            if unsupported && g.id(target).is_some() {
                out.insert("R18-no-failure-evidence");
            }
        }
    }
    for (i, l) in plan.leases.iter().enumerate() {
        let bad = match steps.get(l.step) {
            None => true,
            Some((_, a)) => {
                matches!(
                    a,
                    Action::Restart { .. }
                        | Action::RollbackConfig { .. }
                        | Action::RestoreTraffic { .. }
                ) || plan.leases[..i].iter().any(|m| m.step == l.step)
            }
        };
        if bad {
            out.insert("R17-bad-lease");
        }
    }
    out
}

fn rule_ids(plan: &Plan, w: &World, view: &KernelView<'_>) -> BTreeSet<&'static str> {
    validate(plan, &w.graph, &w.scope, view)
        .rules()
        .into_iter()
        .map(Rule::id)
        .collect()
}

/// Breaks `rule` in an accepted plan; returns the view to validate it under.
fn break_rule(
    rule: Rule,
    w: &World,
    plan: &mut Plan,
    locks: &mut BTreeMap<String, PlanId>,
) -> (u32, Limits) {
    let mut limits = Limits::default();
    let mut spent = 0;
    let scoped_plain = w
        .scope
        .services()
        .find(|s| !w.scope.requires_drain(s))
        .unwrap_or("s0");
    let current = |s: &str| {
        ConfigVersion::try_from(
            w.graph
                .service_by_name(s)
                .unwrap()
                .current_config()
                .unwrap(),
        )
        .unwrap()
    };
    let rollback = |s: &str| Action::RollbackConfig {
        service: name(s),
        version: current(s),
    };
    match rule {
        Rule::UnknownTarget => plan.stages.push(vec![Action::Restart {
            service: name("ghost"),
            replicas: ReplicaSelector::All,
        }]),
        Rule::OutOfScope => plan.stages.push(vec![rollback(&w.outside[0])]),
        Rule::DrainBeforeRestart => plan.stages.push(vec![Action::Restart {
            service: name(&w.file.requires_drain[0]),
            replicas: ReplicaSelector::All,
        }]),
        Rule::RestartOrder => {
            let (a, b) = w.file.order[0];
            let first = &w.file.groups[a].members[0];
            let second = &w.file.groups[b].members[0];
            plan.stages.push(vec![Action::Restart {
                service: name(second),
                replicas: ReplicaSelector::All,
            }]);
            plan.stages.push(vec![Action::Restart {
                service: name(first),
                replicas: ReplicaSelector::All,
            }]);
        }
        Rule::ReplicaBounds => {
            let max = w.graph.service_by_name(scoped_plain).unwrap().max_replicas;
            plan.stages.push(vec![Action::Scale {
                service: name(scoped_plain),
                replicas: ReplicaCount::try_from(u64::from(max) + 1).unwrap(),
            }]);
        }
        Rule::RateLimitFloor => {
            let id = w.graph.id(scoped_plain).unwrap();
            let rps = w.graph.baseline_rps(id).map_or(1.0, |b| b * 0.4);
            plan.stages.push(vec![Action::RateLimit {
                service: name(scoped_plain),
                rps: Rate::try_from(rps).unwrap(),
            }]);
            let step = plan.step_count() - 1;
            plan.leases.push(Lease {
                step,
                ttl_s: lease(60),
            });
        }
        Rule::UnknownEdge => plan.stages.push(vec![Action::CircuitBreak {
            caller: name(scoped_plain),
            callee: name(scoped_plain),
            duration_s: Some(lease(30)),
        }]),
        Rule::UnknownConfigVersion => plan.stages.push(vec![Action::RollbackConfig {
            service: name(scoped_plain),
            version: ConfigVersion::try_from("v-missing").unwrap(),
        }]),
        Rule::UnclosedReversible => plan.stages.push(vec![Action::Drain {
            service: name(scoped_plain),
            replicas: ReplicaSelector::All,
        }]),
        Rule::GroupSize => {
            plan.stages.push(vec![Action::Restart {
                service: name(scoped_plain),
                replicas: ReplicaSelector::All,
            }]);
            limits.max_group_size = 0;
        }
        Rule::RestartBudget => {
            plan.stages.push(vec![Action::Restart {
                service: name(scoped_plain),
                replicas: ReplicaSelector::All,
            }]);
            spent = limits.restart_intensity;
        }
        Rule::PlanLength => {
            while plan.step_count() <= limits.max_plan_steps {
                plan.stages.push(vec![rollback(scoped_plain)]);
            }
        }
        Rule::LockConflict => {
            let target = plan.stages[0][0].service().to_string();
            locks.insert(target, PlanId(99));
        }
        Rule::IncidentMismatch => plan.incident = IncidentId::try_from("another").unwrap(),
        Rule::EmptyPlan => plan.stages.push(Vec::new()),
        Rule::StageConflict => {
            let last = plan.stages.last_mut().unwrap();
            let copy = last[0].clone();
            last.push(copy);
        }
        Rule::BadLease => plan.leases.push(Lease {
            step: plan.step_count() + 5,
            ttl_s: lease(5),
        }),
        Rule::DrainWithoutSurge => {
            // Every replica, so no earlier scale of the valid plan can have surged enough.
            plan.stages.push(vec![Action::Drain {
                service: name(scoped_plain),
                replicas: ReplicaSelector::All,
            }]);
            let step = plan.step_count() - 1;
            plan.leases.push(Lease {
                step,
                ttl_s: lease(60),
            });
        }
        // Validated against an empty health snapshot (see the caller): nothing shows failure.
        Rule::NoFailureEvidence => plan.stages.push(vec![rollback(scoped_plain)]),
    }
    (spent, limits)
}

/// A random health snapshot: some services fail, some had a config change.
fn random_health(w: &World, rng: &mut ChaCha8Rng) -> Health {
    let mut health = Health::new();
    for n in &w.names {
        health.set(
            n.clone(),
            ServiceHealth {
                alerting: rng.random_bool(0.1),
                failing_replicas: u32::from(rng.random_bool(0.1)),
                slo_violated: rng.random_bool(0.1),
                config_changed: rng.random_bool(0.3),
                ..ServiceHealth::default()
            },
        );
    }
    health
}

fn run_to_end(kernel: &mut Kernel, actuator: &mut MemoryActuator, id: PlanId) -> Outcome {
    for t in 0..10_000u64 {
        if let Some((_, outcome)) = kernel
            .poll(VirtualTime::from_secs(t), actuator)
            .into_iter()
            .find(|(p, _)| *p == id)
        {
            return outcome;
        }
        actuator.tick();
    }
    panic!("plan never finished")
}

proptest! {
    #![proptest_config(proptest_config(2000))]

    /// (a) Valid plans are accepted, and on any plan the validator's rule set equals the naive
    /// checker's, so every accepted plan satisfies every rule.
    #[test]
    fn validator_agrees_with_the_naive_checker(seed in any::<u64>()) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9);
        let view = KernelView::idle();
        let valid = valid_plan(&w, &mut rng);
        let verdict = validate(&valid, &w.graph, &w.scope, &view);
        prop_assert!(verdict.accepted(), "valid plan rejected: {verdict}\n{}", valid.to_json_pretty());
        prop_assert!(naive_rules(&valid, &w, &view).is_empty());
        for _ in 0..4 {
            let junk = junk_plan(&w, &mut rng);
            prop_assert_eq!(rule_ids(&junk, &w, &view), naive_rules(&junk, &w, &view), "plan: {}", junk.to_json_pretty());
            // And under a random health snapshot (R18).
            let health = random_health(&w, &mut rng);
            let judged = KernelView { health: Some(&health), ..view };
            prop_assert_eq!(rule_ids(&junk, &w, &judged), naive_rules(&junk, &w, &judged), "plan: {}", junk.to_json_pretty());
            prop_assert_eq!(rule_ids(&valid, &w, &judged), naive_rules(&valid, &w, &judged), "plan: {}", valid.to_json_pretty());
        }
    }

    /// (b) Breaking any one rule in a valid plan gets that rule's id in the verdict.
    #[test]
    fn broken_rules_are_named(seed in any::<u64>(), which in 0..Rule::ALL.len()) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x51);
        let rule = Rule::ALL[which];
        let mut plan = valid_plan(&w, &mut rng);
        let mut locks = BTreeMap::new();
        let (spent, limits) = break_rule(rule, &w, &mut plan, &mut locks);
        let nothing_fails = Health::new();
        let health = (rule == Rule::NoFailureEvidence).then_some(&nothing_fails);
        let view = KernelView { locks: &locks, restarts_in_window: spent, limits, health };
        let verdict = validate(&plan, &w.graph, &w.scope, &view);
        prop_assert!(verdict.rules().contains(&rule), "{} not reported: {verdict}", rule);
        prop_assert_eq!(rule_ids(&plan, &w, &view), naive_rules(&plan, &w, &view));
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    /// (c) and (d): execution with a failure injected at a random step.
    #[test]
    fn aborts_restore_reversible_targets_and_journals_replay(
        seed in any::<u64>(),
        fail_at in 0u64..40,
        fail_check in any::<bool>(),
        settle in 0u64..3,
    ) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xc0ffee);
        let plan = valid_plan(&w, &mut rng);
        let steps = plan.step_count() as u64;
        let initial = ControlState::from_graph(&w.graph);
        let base = MemoryActuator::new(initial.clone()).settle_after(settle);
        let fail_at = fail_at % (steps + 1); // == steps: no failure
        let mut actuator = match (fail_at < steps, fail_check) {
            (false, _) => base,
            (true, true) => base.fail_check_at(fail_at),
            (true, false) => base.fail_apply_at(fail_at),
        };
        let mut kernel = Kernel::new(KernelConfig::default());
        let sub = kernel.submit(VirtualTime::ZERO, plan, &w.graph, &w.scope);
        prop_assert!(sub.verdict.accepted(), "{}", sub.verdict);
        let outcome = run_to_end(&mut kernel, &mut actuator, sub.plan);
        prop_assert!(kernel.locks().is_empty(), "locks left: {:?}", kernel.locks());
        prop_assert_eq!(kernel.executing().count(), 0);
        prop_assert_eq!(outcome == Outcome::Committed, fail_at == steps, "{:?}", outcome);

        let records = kernel.journal().records();
        let mut classes: BTreeMap<String, Vec<RollbackClass>> = BTreeMap::new();
        let mut compensatable = BTreeSet::new();
        let mut compensated = BTreeSet::new();
        for r in records {
            match &r.event {
                Event::StepApplied { op, class, step, .. } => {
                    classes.entry(op.service().to_string()).or_default().push(*class);
                    if *class == RollbackClass::Compensatable {
                        compensatable.insert(*step);
                    }
                }
                Event::Compensate { step, .. } | Event::UndoFailed { step, .. } => {
                    compensated.insert(*step);
                }
                _ => {}
            }
        }
        if let Outcome::Aborted { .. } = outcome {
            for (service, cs) in &classes {
                if cs.iter().all(|c| *c == RollbackClass::Reversible) {
                    prop_assert_eq!(actuator.state.get(service), initial.get(service), "{} not restored", service);
                }
            }
            prop_assert!(compensatable.is_subset(&compensated), "compensations missing: {:?} vs {:?}", compensatable, compensated);
        }
        // (d) the journal alone replays to the actuator's state, now and after leases expire.
        prop_assert_eq!(&replay(&initial, records).unwrap(), &actuator.state);
        kernel.poll(VirtualTime::from_secs(1_000_000), &mut actuator);
        prop_assert_eq!(kernel.armed_leases(), 0);
        prop_assert_eq!(&replay(&initial, kernel.journal().records()).unwrap(), &actuator.state);
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    /// (e) Lease algebra: several valid plans commit one after another, leases overlapping, some
    /// applies (steps or reverts) failing. Once every lease has expired — failed reverts retried
    /// with back-off until they succeed — no drain, open breaker or rate limit that a plan
    /// imposed remains, and the journal still replays to the actuator's state.
    #[test]
    fn once_every_lease_expires_no_degradation_remains(
        seed in any::<u64>(),
        plans in 1usize..5,
        fail in proptest::collection::vec(0u64..60, 0..4),
        gaps in proptest::collection::vec(0u64..400, 4),
    ) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x1ea5e);
        let initial = ControlState::from_graph(&w.graph);
        let mut actuator = MemoryActuator::new(initial.clone());
        for n in fail {
            actuator = actuator.fail_apply_at(n);
        }
        let mut kernel = Kernel::new(KernelConfig {
            limits: Limits { restart_intensity: 1000, ..Limits::default() },
            ..KernelConfig::default()
        });
        let mut t = 0;
        for gap in gaps.iter().take(plans) {
            let sub = kernel.submit(VirtualTime::from_secs(t), valid_plan(&w, &mut rng), &w.graph, &w.scope);
            prop_assert!(sub.verdict.accepted(), "{}", sub.verdict);
            while kernel.is_executing(sub.plan) {
                kernel.poll(VirtualTime::from_secs(t), &mut actuator);
                t += 1;
            }
            t += gap;
            kernel.poll(VirtualTime::from_secs(t), &mut actuator);
        }
        // Long enough for the longest lease (600 s) and every back-off (≤ 60 s per retry).
        for _ in 0..20 {
            t += 60;
            kernel.poll(VirtualTime::from_secs(t), &mut actuator);
        }
        prop_assert_eq!(kernel.armed_leases(), 0, "leases left: {:?}", kernel.leases());
        // An undo the actuator refused leaves its residue, on the record (abort not clean).
        let dirty: BTreeSet<&str> = kernel.journal().records().iter().filter_map(|r| match &r.event {
            Event::UndoFailed { op, .. } => Some(op.service()),
            _ => None,
        }).collect();
        for (name, s) in actuator.state.services.iter().filter(|(n, _)| !dirty.contains(n.as_str())) {
            prop_assert!(s.drained.is_empty(), "{} still drained {:?}", name, s.drained);
            prop_assert!(s.open_breakers.is_empty(), "{} breakers open {:?}", name, s.open_breakers);
            prop_assert_eq!(s.rate_limit, None, "{} still limited", name);
        }
        prop_assert_eq!(&replay(&initial, kernel.journal().records()).unwrap(), &actuator.state);
    }

    /// (f) R3 by state: random drain / restore / scale / restart sequences on a hub. The
    /// validator agrees with the naive checker, and an accepted plan never finds a replica it
    /// restarts in load balancing at run time (the executor's own R3 check never fires).
    #[test]
    fn hub_restarts_find_their_replicas_drained(seed in any::<u64>()) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x4b);
        let hub = w.file.requires_drain[0].as_str();
        let svc = w.graph.service_by_name(hub).unwrap();
        let mut replicas = svc.replicas;
        let mut stages = Vec::new();
        for _ in 0..rng.random_range(2..7) {
            let action = match rng.random_range(0..6) {
                0 | 1 => Action::Drain { service: name(hub), replicas: selector(&mut rng, replicas) },
                2 => Action::RestoreTraffic { service: name(hub) },
                3 => {
                    replicas = rng.random_range(svc.min_replicas..=svc.max_replicas);
                    Action::Scale {
                        service: name(hub),
                        replicas: ReplicaCount::try_from(u64::from(replicas)).unwrap(),
                    }
                }
                _ => Action::Restart { service: name(hub), replicas: selector(&mut rng, replicas) },
            };
            stages.push(vec![action]);
        }
        let mut plan = Plan::new(w.file.incident.clone(), stages);
        let last = plan.step_count() - 1;
        // Close every drain: by a final restore, or by a lease on each.
        if rng.random_bool(0.5) {
            plan.stages.push(vec![Action::RestoreTraffic { service: name(hub) }]);
        } else {
            plan.leases = (0..=last)
                .filter(|&i| matches!(plan.stages[i][0], Action::Drain { .. }))
                .map(|step| Lease { step, ttl_s: lease(30) })
                .collect();
        }
        let view = KernelView::idle();
        prop_assert_eq!(rule_ids(&plan, &w, &view), naive_rules(&plan, &w, &view), "{}", plan.to_json_pretty());
        let mut kernel = Kernel::new(KernelConfig::default());
        let mut actuator = MemoryActuator::new(ControlState::from_graph(&w.graph));
        let sub = kernel.submit(VirtualTime::ZERO, plan, &w.graph, &w.scope);
        if sub.verdict.accepted() {
            let outcome = run_to_end(&mut kernel, &mut actuator, sub.plan);
            prop_assert_eq!(outcome, Outcome::Committed);
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(10_000))]

    /// (g) The watchdog's undo restores the exact pre-step state: one reversible or
    /// compensatable step of a valid plan (with its lease, if it has one) commits while every
    /// service shows failure (so the evidence rule lets it through); then every service's error
    /// rate rises, the watchdog takes the step back, and the state is exactly as before it.
    #[test]
    fn watchdog_undo_restores_the_exact_pre_step_state(seed in any::<u64>()) {
        let w = world(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3a7c);
        let full = valid_plan(&w, &mut rng);
        let Some((step, action)) = full
            .steps()
            .find(|(r, a)| match a {
                Action::Restart { .. } | Action::RestoreTraffic { .. } => false,
                // A drain stands alone only with its lease (its restore is another step).
                Action::Drain { .. } => full.lease(r.step).is_some(),
                _ => true,
            })
            .map(|(r, a)| (r.step, a.clone()))
        else {
            return Ok(());
        };
        let mut plan = Plan::new(full.incident.clone(), vec![vec![action]]);
        plan.leases = full
            .leases
            .iter()
            .filter(|l| l.step == step)
            .map(|l| Lease { step: 0, ttl_s: l.ttl_s })
            .collect();
        let initial = ControlState::from_graph(&w.graph);
        let mut actuator = MemoryActuator::new(initial.clone());
        let mut kernel = Kernel::new(KernelConfig::default());
        let with = |error_rate: f64| {
            let mut h = Health::new();
            for n in &w.names {
                h.set(n.clone(), ServiceHealth {
                    slo_violated: true,
                    config_changed: true,
                    error_rate,
                    ..ServiceHealth::default()
                });
            }
            h
        };
        kernel.observe_health(with(0.1));
        let sub = kernel.submit(VirtualTime::ZERO, plan, &w.graph, &w.scope);
        prop_assert!(sub.verdict.accepted(), "{}", sub.verdict);
        let mut t = 0;
        while kernel.is_executing(sub.plan) {
            kernel.poll(VirtualTime::from_secs(t), &mut actuator);
            t += 1;
        }
        prop_assert!(kernel.journal().records().iter().any(|r| r.event == Event::Commit));
        for s in t..t + 40 {
            kernel.observe_health(with(0.9));
            kernel.poll(VirtualTime::from_secs(s), &mut actuator);
        }
        prop_assert_eq!(&actuator.state, &initial);
        prop_assert_eq!(&replay(&initial, kernel.journal().records()).unwrap(), &actuator.state);
    }
}
