//! Recovery-group inference: from a dependency graph and a symptom service to the incident's
//! [`RecoveryScope`] (DESIGN §3, paper §5.2).
//!
//! 1. **Scope.** Breadth-first from the symptom over synchronous edges (`rpc`, `cache`, `db`) and
//!    start-up-only dependencies. Each service's callees are visited by descending edge weight
//!    (ties by id); once [`GroupConfig::max_group_size`] services are admitted the search stops
//!    and the callees of admitted services left outside are reported as truncated. Asynchronous
//!    (`mq`) callees never enter: a queue decouples failure.
//! 2. **Restart-coupled groups.** Strongly connected components of the scope's subgraph, where a
//!    service `a` that reads `b` only at start-up contributes both its dependency `a → b` and a
//!    coupling edge `b → a`: the two must restart together, `b` first (recorded as a start-up
//!    order pair inside the group).
//! 3. **Order.** Components come out of Tarjan's algorithm in reverse topological order of the
//!    caller → callee condensation, i.e. **callees first**, which is the restart order; an edge
//!    `u → v` between components becomes the constraint "group of `v` before group of `u`".
//!    Groups with no path between them share a layer and may restart in parallel.
//! 4. **Hubs.** A member with more than [`GroupConfig::hub_fan_in`] distinct callers (anywhere
//!    in the graph) is marked `requires_drain`.
//!
//! Cost is linear in the scope — the admitted services and their out-edges — never in the
//! graph: buffers indexed by service id are allocated once per [`Inference`] and reused, with
//! epoch stamps instead of clearing.

use crate::graph::{DependencyGraph, ServiceId};
use crate::isa::IncidentId;
use crate::scope::{RecoveryScope, RestartGroup, ScopeFile};

/// Inference parameters (DESIGN §3 defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// Largest scope, in services.
    pub max_group_size: usize,
    /// Fan-in above which a service needs a drain around a restart.
    pub hub_fan_in: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            max_group_size: crate::MAX_GROUP_SIZE,
            hub_fan_in: crate::HUB_FAN_IN,
        }
    }
}

/// Reusable inference state. One per thread; queries reuse its buffers.
#[derive(Debug, Default)]
pub struct Inference {
    /// `stamp[id] == epoch` when `id` was seen in the current query.
    stamp: Vec<u32>,
    /// Local index of a seen service (valid when stamped).
    local: Vec<u32>,
    epoch: u32,
    members: Vec<ServiceId>,
    /// Synchronous callees of each member, member after member (`out_start[i]..out_start[i +
    /// 1]` for member `i`), in the graph's order: one walk of the graph's edge lists per
    /// member serves the search, the truncation report and the subgraph.
    sync_out: Vec<ServiceId>,
    out_start: Vec<u32>,
    candidates: Vec<(u64, ServiceId)>,
    frontier: Vec<ServiceId>,
    adjacency: Vec<Vec<u32>>,
    tarjan: Tarjan,
    scratch: OrderScratch,
}

/// Buffers for ordering the groups, reused across queries.
#[derive(Debug, Default)]
struct OrderScratch {
    condensed: Vec<(u32, u32)>,
    by_dependency: Vec<(u32, u32)>,
    rank: Vec<u32>,
    waiting: Vec<usize>,
    position: Vec<usize>,
    ready: std::collections::BinaryHeap<std::cmp::Reverse<(u32, u32)>>,
}

/// Result of one inference.
#[derive(Clone, Debug)]
pub struct Inferred {
    /// The incident's scope.
    pub scope: RecoveryScope,
    /// Whether the scope hit the size cap.
    pub truncated: bool,
}

impl Inference {
    /// Fresh state; buffers grow on first use.
    pub fn new() -> Self {
        Self::default()
    }

    /// Infers the recovery scope of an incident whose symptom is `symptom`.
    pub fn infer(
        &mut self,
        graph: &DependencyGraph,
        symptom: ServiceId,
        incident: IncidentId,
        config: GroupConfig,
    ) -> Inferred {
        let truncated = self.collect_scope(graph, symptom, config.max_group_size.max(1));
        self.build_local_edges(graph);
        self.tarjan.run(&self.adjacency[..self.members.len()]);
        let file = self.scope_file(graph, symptom, incident, config);
        let scope = RecoveryScope::new(file)
            .expect("inference produces consistent scopes (groups partition, order is acyclic)");
        Inferred { scope, truncated }
    }

    fn next_epoch(&mut self, bound: usize) {
        if self.stamp.len() < bound {
            self.stamp.resize(bound, 0);
            self.local.resize(bound, 0);
        }
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.epoch = 1;
        }
    }

    fn seen(&self, id: ServiceId) -> bool {
        self.stamp[id.index()] == self.epoch
    }

    /// Step 1: bounded BFS. Returns whether the cap cut the scope.
    fn collect_scope(&mut self, graph: &DependencyGraph, symptom: ServiceId, cap: usize) -> bool {
        self.next_epoch(graph.id_bound());
        self.members.clear();
        self.frontier.clear();
        self.sync_out.clear();
        self.out_start.clear();
        self.out_start.push(0);
        self.admit(symptom);
        let mut head = 0;
        let mut full = false;
        while head < self.members.len() {
            let u = self.members[head];
            head += 1;
            self.candidates.clear();
            for (v, dep) in graph.callees(u) {
                if dep.kind.is_sync() {
                    self.sync_out.push(v);
                    if !self.seen(v) {
                        self.candidates.push((dep.weight, v));
                    }
                }
            }
            self.out_start.push(self.sync_out.len() as u32);
            for &b in graph.service(u).startup_deps() {
                let also_called = graph.edge(u, b).is_some_and(|d| d.kind.is_sync());
                if !self.seen(b) && !also_called {
                    self.candidates.push((0, b));
                }
            }
            let room = cap - self.members.len();
            if room == 0 {
                full = !self.candidates.is_empty();
                if full {
                    break;
                }
                continue;
            }
            if self.candidates.len() > room {
                // Only the `room` heaviest are admitted: select them in linear time.
                self.candidates
                    .select_nth_unstable_by(room - 1, |a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            }
            let take = room.min(self.candidates.len());
            self.candidates[..take].sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            for i in 0..take {
                let v = self.candidates[i].1;
                self.admit(v);
            }
            if take < self.candidates.len() {
                full = true;
                break;
            }
        }
        // Members admitted but not searched from (the cap was reached first).
        for i in self.out_start.len() - 1..self.members.len() {
            let u = self.members[i];
            self.sync_out.extend(
                graph
                    .callees(u)
                    .filter(|(_, d)| d.kind.is_sync())
                    .map(|(v, _)| v),
            );
            self.out_start.push(self.sync_out.len() as u32);
        }
        if full {
            // Report the callees of members that were left out (each once, in discovery order).
            for i in 0..self.members.len() {
                let u = self.members[i];
                let outside = self.sync_out
                    [self.out_start[i] as usize..self.out_start[i + 1] as usize]
                    .iter()
                    .chain(graph.service(u).startup_deps())
                    .copied();
                for v in outside {
                    if !self.seen(v) {
                        self.stamp[v.index()] = self.epoch;
                        self.local[v.index()] = u32::MAX;
                        self.frontier.push(v);
                    }
                }
            }
        }
        full
    }

    /// Start-up order pairs `(read first, reader)` inside groups. Couplings that form a cycle
    /// (each service reads the other at start-up) cannot be ordered: those services restart
    /// together with no order between them.
    fn startup_pairs(&self, graph: &DependencyGraph) -> Vec<(String, String)> {
        let comp = &self.tarjan.component;
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for (i, &u) in self.members.iter().enumerate() {
            for &b in graph.service(u).startup_deps() {
                if let Some(j) = self.local_of(b)
                    && comp[j as usize] == comp[i]
                {
                    pairs.push((j, i as u32));
                }
            }
        }
        if pairs.is_empty() {
            return Vec::new();
        }
        // Drop pairs on or behind a cycle: Kahn over the pairs leaves those nodes unprocessed.
        let n = self.members.len();
        let mut indegree = vec![0usize; n];
        for &(_, b) in &pairs {
            indegree[b as usize] += 1;
        }
        let mut stack: Vec<u32> = (0..n as u32)
            .filter(|&v| indegree[v as usize] == 0)
            .collect();
        let mut done = vec![false; n];
        while let Some(v) = stack.pop() {
            done[v as usize] = true;
            for &(a, b) in &pairs {
                if a == v {
                    indegree[b as usize] -= 1;
                    if indegree[b as usize] == 0 {
                        stack.push(b);
                    }
                }
            }
        }
        let name = |i: u32| graph.service(self.members[i as usize]).name.clone();
        let mut out: Vec<(String, String)> = pairs
            .into_iter()
            .filter(|&(a, b)| done[a as usize] && done[b as usize])
            .map(|(a, b)| (name(a), name(b)))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    fn admit(&mut self, id: ServiceId) {
        self.stamp[id.index()] = self.epoch;
        self.local[id.index()] = self.members.len() as u32;
        self.members.push(id);
    }

    fn local_of(&self, id: ServiceId) -> Option<u32> {
        (self.seen(id) && self.local[id.index()] != u32::MAX).then(|| self.local[id.index()])
    }

    /// Step 2: the scope's subgraph with start-up couplings, in local indices.
    fn build_local_edges(&mut self, graph: &DependencyGraph) {
        let n = self.members.len();
        if self.adjacency.len() < n {
            self.adjacency.resize_with(n, Vec::new);
        }
        for adj in &mut self.adjacency[..n] {
            adj.clear();
        }
        for i in 0..n {
            let u = self.members[i];
            for e in self.out_start[i]..self.out_start[i + 1] {
                if let Some(j) = self.local_of(self.sync_out[e as usize]) {
                    self.adjacency[i].push(j);
                }
            }
            for &b in graph.service(u).startup_deps() {
                if let Some(j) = self.local_of(b) {
                    self.adjacency[i].push(j);
                    self.adjacency[j as usize].push(i as u32);
                }
            }
        }
    }

    /// Steps 3 and 4: groups in a canonical callee-first order (among groups whose callees have
    /// all been placed, the one reached first by the BFS goes next), constraints, start-up
    /// pairs, hubs.
    fn scope_file(
        &mut self,
        graph: &DependencyGraph,
        symptom: ServiceId,
        incident: IncidentId,
        config: GroupConfig,
    ) -> ScopeFile {
        let n = self.members.len();
        let k = self.tarjan.count;
        let comp = &self.tarjan.component;
        // Condensation edges as (dependent component, dependency component), deduplicated.
        let cond = &mut self.scratch.condensed;
        cond.clear();
        for (i, adj) in self.adjacency[..n].iter().enumerate() {
            for &j in adj {
                let (ci, cj) = (comp[i], comp[j as usize]);
                if ci != cj {
                    cond.push((ci, cj));
                }
            }
        }
        cond.sort_unstable();
        cond.dedup();
        // BFS rank of a component = rank of its first-admitted member (members are in BFS order).
        let rank = &mut self.scratch.rank;
        rank.clear();
        rank.resize(k, u32::MAX);
        for i in (0..n).rev() {
            rank[comp[i] as usize] = i as u32;
        }
        // Kahn, callees first, ready components taken by BFS rank. `waiting[c]` counts the
        // dependencies of c not yet placed; dependents are found through `by_dependency`.
        let waiting = &mut self.scratch.waiting;
        waiting.clear();
        waiting.resize(k, 0);
        for &(c, _) in cond.iter() {
            waiting[c as usize] += 1;
        }
        let by_dep = &mut self.scratch.by_dependency;
        by_dep.clear();
        by_dep.extend(cond.iter().map(|&(c, d)| (d, c)));
        by_dep.sort_unstable();
        let ready = &mut self.scratch.ready;
        ready.clear();
        ready.extend(
            (0..k)
                .filter(|&c| waiting[c] == 0)
                .map(|c| std::cmp::Reverse((rank[c], c as u32))),
        );
        let position = &mut self.scratch.position;
        position.clear();
        position.resize(k, 0);
        let mut placed = 0;
        while let Some(std::cmp::Reverse((_, c))) = ready.pop() {
            position[c as usize] = placed;
            placed += 1;
            let from = by_dep.partition_point(|&(d, _)| d < c);
            for &(_, dependent) in by_dep[from..].iter().take_while(|&&(d, _)| d == c) {
                waiting[dependent as usize] -= 1;
                if waiting[dependent as usize] == 0 {
                    ready.push(std::cmp::Reverse((rank[dependent as usize], dependent)));
                }
            }
        }
        debug_assert_eq!(placed, k, "the condensation of SCCs is acyclic");

        let name = |id: ServiceId| graph.service(id).name.clone();
        let mut groups: Vec<RestartGroup> = (0..k)
            .map(|_| RestartGroup {
                members: Vec::new(),
            })
            .collect();
        for (i, &id) in self.members.iter().enumerate() {
            groups[position[comp[i] as usize]].members.push(name(id));
        }
        let mut order: Vec<(usize, usize)> = cond
            .iter()
            .map(|&(c, d)| (position[d as usize], position[c as usize]))
            .collect();
        order.sort_unstable();
        let startup_order = self.startup_pairs(graph);
        ScopeFile {
            incident,
            symptom: name(symptom),
            groups,
            order,
            startup_order,
            requires_drain: self
                .members
                .iter()
                .filter(|&&id| graph.fan_in(id) > config.hub_fan_in)
                .map(|&id| name(id))
                .collect(),
            truncated: self
                .frontier
                .iter()
                .take(crate::scope::MAX_TRUNCATED_LISTED)
                .map(|&id| name(id))
                .collect(),
            truncated_total: (!self.frontier.is_empty()).then_some(self.frontier.len()),
            layers: None,
        }
    }
}

/// Iterative Tarjan over a small local graph; components numbered in completion order, which
/// for caller → callee edges is callees first.
#[derive(Debug, Default)]
struct Tarjan {
    index: Vec<u32>,
    lowlink: Vec<u32>,
    on_stack: Vec<bool>,
    stack: Vec<u32>,
    call: Vec<(u32, usize)>,
    component: Vec<u32>,
    count: usize,
}

impl Tarjan {
    const UNVISITED: u32 = u32::MAX;

    fn run(&mut self, adjacency: &[Vec<u32>]) {
        let n = adjacency.len();
        self.index.clear();
        self.index.resize(n, Self::UNVISITED);
        self.lowlink.clear();
        self.lowlink.resize(n, 0);
        self.on_stack.clear();
        self.on_stack.resize(n, false);
        self.component.clear();
        self.component.resize(n, 0);
        self.stack.clear();
        self.count = 0;
        let mut next = 0u32;
        for root in 0..n as u32 {
            if self.index[root as usize] != Self::UNVISITED {
                continue;
            }
            self.call.push((root, 0));
            while let Some(&mut (v, ref mut edge)) = self.call.last_mut() {
                let vi = v as usize;
                if *edge == 0 && self.index[vi] == Self::UNVISITED {
                    self.index[vi] = next;
                    self.lowlink[vi] = next;
                    next += 1;
                    self.stack.push(v);
                    self.on_stack[vi] = true;
                }
                if let Some(&w) = adjacency[vi].get(*edge) {
                    *edge += 1;
                    let wi = w as usize;
                    if self.index[wi] == Self::UNVISITED {
                        self.call.push((w, 0));
                    } else if self.on_stack[wi] {
                        self.lowlink[vi] = self.lowlink[vi].min(self.index[wi]);
                    }
                    continue;
                }
                self.call.pop();
                if let Some(&(parent, _)) = self.call.last() {
                    let pi = parent as usize;
                    self.lowlink[pi] = self.lowlink[pi].min(self.lowlink[vi]);
                }
                if self.lowlink[vi] == self.index[vi] {
                    loop {
                        let w = self.stack.pop().expect("v is on the stack");
                        self.on_stack[w as usize] = false;
                        self.component[w as usize] = self.count as u32;
                        if w == v {
                            break;
                        }
                    }
                    self.count += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EdgeKind, ServiceKind};

    fn graph(edges: &[(&str, &str, u64)]) -> DependencyGraph {
        let mut g = DependencyGraph::new();
        for &(a, b, w) in edges {
            let a = g.ensure_service(a, ServiceKind::Stateless);
            let b = g.ensure_service(b, ServiceKind::Stateless);
            g.add_calls(a, b, EdgeKind::Rpc, w);
        }
        g
    }

    fn infer(g: &DependencyGraph, symptom: &str, cap: usize) -> Inferred {
        Inference::new().infer(
            g,
            g.id(symptom).unwrap(),
            IncidentId::try_from("i").unwrap(),
            GroupConfig {
                max_group_size: cap,
                ..GroupConfig::default()
            },
        )
    }

    #[test]
    fn chain_restarts_callees_first() {
        let g = graph(&[("a", "b", 1), ("b", "c", 1), ("x", "a", 1)]);
        let r = infer(&g, "a", 30);
        let names: Vec<&str> = r
            .scope
            .groups()
            .iter()
            .map(|g| g.members[0].as_str())
            .collect();
        assert_eq!(names, ["c", "b", "a"]);
        assert!(!r.truncated);
        assert!(!r.scope.contains("x"), "callers are not in scope");
        assert!(r.scope.must_restart_before("c", "a"));
    }

    #[test]
    fn cap_keeps_heaviest_callees_and_reports_the_rest() {
        let g = graph(&[
            ("s", "light", 1),
            ("s", "heavy", 100),
            ("s", "mid", 10),
            ("heavy", "deep", 5),
        ]);
        let r = infer(&g, "s", 3);
        assert!(r.truncated);
        let mut members: Vec<&str> = r.scope.services().collect();
        members.sort();
        assert_eq!(members, ["heavy", "mid", "s"]);
        assert_eq!(r.scope.truncated(), ["light", "deep"]);
    }

    #[test]
    fn async_edges_do_not_widen_the_scope() {
        let mut g = graph(&[("a", "b", 1)]);
        let a = g.id("a").unwrap();
        let q = g.ensure_service("queue-consumer", ServiceKind::Stateless);
        g.add_calls(a, q, EdgeKind::Mq, 50);
        assert!(!infer(&g, "a", 30).scope.contains("queue-consumer"));
    }

    #[test]
    fn tarjan_finds_nested_cycles() {
        let mut t = Tarjan::default();
        // 0 -> 1 -> 2 -> 0, 2 -> 3, 3 -> 4 -> 3
        t.run(&[vec![1], vec![2], vec![0, 3], vec![4], vec![3]]);
        assert_eq!(t.count, 2);
        assert_eq!(t.component[3], t.component[4]);
        assert_eq!(t.component[0], t.component[2]);
        assert!(
            t.component[3] < t.component[0],
            "callee component completes first"
        );
    }
}
