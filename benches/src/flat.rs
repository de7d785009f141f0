//! The in-run peer of recovery-group queries: the same bounded breadth-first scope over a
//! flat, cache-resident adjacency (CSR: one offsets array, one targets array), with each
//! service's synchronous callees pre-sorted by descending weight (ties by id) so that a query
//! is a single pass with no selection, no hashing and no allocation.
//!
//! It visits what the query visits — the scope's members, then their callees, to find the
//! scope's internal edges and the callees the size cap left outside — but builds nothing: no
//! restart groups, order, hubs or names. So it is a floor for the query, not a replacement
//! for [`kernel::groups`]. The benchmark checks that it finds the same members and the same
//! number of left-out callees as the real inference.

use kernel::{DependencyGraph, ServiceId};

/// Synchronous callee adjacency of a graph in CSR form, indexed by service id.
pub struct FlatGraph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    stamp: Vec<u32>,
    queue: Vec<u32>,
    epoch: u32,
}

impl FlatGraph {
    /// Flattens `graph`'s synchronous edges; callees of each service heaviest first (ties by
    /// id), the order in which the inference admits them.
    pub fn new(graph: &DependencyGraph) -> Self {
        let n = graph.id_bound();
        let mut offsets = Vec::with_capacity(n + 1);
        let mut targets = Vec::with_capacity(graph.edge_count());
        let mut callees: Vec<(u64, ServiceId)> = Vec::new();
        offsets.push(0);
        for i in 0..n {
            let id = ServiceId::new(i);
            if graph.contains(id) {
                callees.clear();
                callees.extend(
                    graph
                        .callees(id)
                        .filter(|(_, d)| d.kind.is_sync())
                        .map(|(v, d)| (d.weight, v)),
                );
                callees.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
                targets.extend(callees.iter().map(|&(_, v)| v.index() as u32));
            }
            offsets.push(targets.len() as u32);
        }
        FlatGraph {
            offsets,
            targets,
            stamp: vec![0; n],
            // Epochs: `epoch - 1` marks members, `epoch` the callees outside.
            queue: Vec::with_capacity(kernel::MAX_GROUP_SIZE),
            epoch: 0,
        }
    }

    /// Traverses the scope of `symptom`: the first `cap` services breadth-first, then every
    /// member's callees, counting the scope's internal edges and the callees left outside
    /// (each once). Returns `(members, internal edges, outside callees)`.
    pub fn scope(&mut self, symptom: ServiceId, cap: usize) -> (usize, usize, usize) {
        self.epoch += 2;
        let (member, outside) = (self.epoch - 1, self.epoch);
        self.queue.clear();
        self.queue.push(symptom.index() as u32);
        self.stamp[symptom.index()] = member;
        let mut head = 0;
        'bfs: while head < self.queue.len() {
            let u = self.queue[head] as usize;
            head += 1;
            let (from, to) = (self.offsets[u] as usize, self.offsets[u + 1] as usize);
            for &v in &self.targets[from..to] {
                if self.stamp[v as usize] != member {
                    if self.queue.len() == cap {
                        break 'bfs;
                    }
                    self.stamp[v as usize] = member;
                    self.queue.push(v);
                }
            }
        }
        let (mut internal, mut cut) = (0, 0);
        for &u in &self.queue {
            let (from, to) = (
                self.offsets[u as usize] as usize,
                self.offsets[u as usize + 1] as usize,
            );
            for &v in &self.targets[from..to] {
                let s = &mut self.stamp[v as usize];
                if *s == member {
                    internal += 1;
                } else if *s != outside {
                    *s = outside;
                    cut += 1;
                }
            }
        }
        (self.queue.len(), internal, cut)
    }
}
