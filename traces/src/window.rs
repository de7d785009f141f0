//! The online dependency graph: calls over a sliding window of trace time.
//!
//! Calls arrive in (roughly) time order. Each is added to the graph at once — the edge weight
//! grows by one, fan-in changes if the edge is new — and its edge id is appended to a
//! per-bucket list (buckets of one second by default). When the newest call moves the window
//! past a bucket, each of its calls is subtracted by edge id (no lookup): edges whose weight
//! reaches zero disappear and their callee's fan-in (and so its hub flag) drops. Expiry is
//! therefore incremental, proportional to the expired calls, never a rebuild. Calls older than the window when they arrive
//! are counted as late and not added; calls out of order within the window go to their own
//! bucket.

use crate::Call;
use kernel::graph::EdgeId;
use kernel::{DependencyGraph, ServiceId, ServiceKind};
use std::collections::VecDeque;

/// Default window: 60 s of trace time (DESIGN §2).
pub const DEFAULT_WINDOW_US: u64 = 60_000_000;

#[derive(Debug)]
struct Bucket {
    start_us: u64,
    /// The edge of every call in this bucket. An edge id stays valid while a bucket holding
    /// it lives: an edge only disappears when every call that counted on it has expired.
    calls: Vec<EdgeId>,
}

/// A dependency graph over the calls of a sliding window. See the [module documentation](self).
#[derive(Debug)]
pub struct WindowedGraph {
    graph: DependencyGraph,
    /// Window length; `None` keeps every call.
    window_us: Option<u64>,
    bucket_us: u64,
    buckets: VecDeque<Bucket>,
    newest_us: u64,
    late: u64,
    calls: u64,
    /// Calls that were in the graph and left it as the window moved on.
    expired: u64,
    /// Per service id: still known only as "stateless" (the default guess).
    stateless: Vec<bool>,
    /// Emptied call lists of expired buckets, reused by new buckets.
    spare: Vec<Vec<EdgeId>>,
    /// No bucket can expire before the window's end reaches this time.
    next_expiry_us: u64,
}

impl Default for WindowedGraph {
    fn default() -> Self {
        Self::new(Some(DEFAULT_WINDOW_US))
    }
}

impl WindowedGraph {
    /// A graph over a window of `window_us` microseconds (`None`: unbounded), with buckets of
    /// a sixtieth of the window (at least 1 ms).
    pub fn new(window_us: Option<u64>) -> Self {
        Self::with_capacity(window_us, 0, 0)
    }

    /// Like [`new`](Self::new), with room for `services` services and `edges` edges.
    pub fn with_capacity(window_us: Option<u64>, services: usize, edges: usize) -> Self {
        let bucket_us = window_us.map_or(u64::MAX, |w| (w / 60).max(1_000));
        let window_s = window_us.map_or(60.0, |w| w as f64 / 1e6);
        WindowedGraph {
            graph: DependencyGraph::with_capacity(window_s, services, edges),
            window_us,
            bucket_us,
            buckets: VecDeque::new(),
            newest_us: 0,
            late: 0,
            calls: 0,
            expired: 0,
            stateless: Vec::with_capacity(services),
            spare: Vec::new(),
            next_expiry_us: 0,
        }
    }

    /// The graph as of the newest call.
    pub fn graph(&self) -> &DependencyGraph {
        &self.graph
    }

    /// Mutable graph access (e.g. to set replica counts or start-up dependencies that traces
    /// cannot show). Edge weights belong to the window; change them only through calls.
    pub fn graph_mut(&mut self) -> &mut DependencyGraph {
        &mut self.graph
    }

    /// Forgets every call and service, keeping allocated capacity, so that the graph can be
    /// rebuilt from a window's spans without fresh allocations.
    pub fn clear(&mut self) {
        self.graph.clear();
        for bucket in &mut self.buckets {
            bucket.calls.clear();
        }
        self.spare.extend(self.buckets.drain(..).map(|b| b.calls));
        self.newest_us = 0;
        self.late = 0;
        self.calls = 0;
        self.expired = 0;
        self.next_expiry_us = 0;
        self.stateless.clear();
    }

    /// Consumes the window, keeping the graph.
    pub fn into_graph(self) -> DependencyGraph {
        self.graph
    }

    /// Calls added (not counting late ones).
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Calls that were added and have since left the window (an offline reader reports them,
    /// so that a graph of the last minute is never mistaken for the graph of the whole file).
    pub fn expired(&self) -> u64 {
        self.expired
    }

    /// Calls that arrived after the window had moved past them.
    pub fn late(&self) -> u64 {
        self.late
    }

    /// The newest trace time seen, microseconds.
    pub fn newest_us(&self) -> u64 {
        self.newest_us
    }

    #[inline]
    fn service(&mut self, name: &str, kind: ServiceKind, unknown: bool) -> ServiceId {
        match self.graph.id(name) {
            Some(id) => {
                // A later call may say more about what the service is (a cache, a frontend).
                // The kinds are mirrored in a dense vector so this check stays in cache.
                if kind != ServiceKind::Stateless && self.stateless[id.index()] {
                    self.learn_kind(id, kind);
                }
                id
            }
            None => self.new_service(name, kind, unknown),
        }
    }

    #[cold]
    #[inline(never)]
    fn learn_kind(&mut self, id: ServiceId, kind: ServiceKind) {
        let s = self.graph.service_mut(id);
        s.kind = kind;
        s.stateful = kind.stateful_by_default();
        self.stateless[id.index()] = false;
    }

    #[cold]
    #[inline(never)]
    fn new_service(&mut self, name: &str, kind: ServiceKind, unknown: bool) -> ServiceId {
        let id = self.graph.ensure_service(name, kind);
        self.graph.service_mut(id).unknown = unknown;
        if self.stateless.len() <= id.index() {
            self.stateless.resize(id.index() + 1, false);
        }
        self.stateless[id.index()] = kind == ServiceKind::Stateless;
        id
    }

    /// Adds one call.
    pub fn ingest(&mut self, call: &Call<'_>) {
        let t = call.time_us;
        if t > self.newest_us {
            self.advance_to(t);
        }
        if let Some(w) = self.window_us
            && t.saturating_add(w) < self.newest_us
        {
            self.late += 1;
            return;
        }
        let from = self.service(call.caller.name, call.caller.kind, call.caller.unknown);
        let to = self.service(call.callee.name, call.callee.kind, call.callee.unknown);
        if from == to {
            return;
        }
        self.calls += 1;
        if self.window_us.is_none() {
            self.graph.add_calls(from, to, call.kind, 1);
            return;
        }
        let edge = self
            .graph
            .add_calls(from, to, call.kind, 1)
            .expect("not a self-call");
        let bucket = self.bucket_index(t);
        self.buckets[bucket].calls.push(edge);
    }

    /// Adds `n` calls at once (an aggregated dependency link's `callCount`). Unbounded graphs
    /// add them in one step; windowed graphs record each call for its expiry.
    pub fn ingest_count(&mut self, call: &Call<'_>, n: u64) {
        if n == 1 {
            return self.ingest(call);
        }
        if self.window_us.is_some() {
            for _ in 0..n {
                self.ingest(call);
            }
            return;
        }
        if call.time_us > self.newest_us {
            self.newest_us = call.time_us;
        }
        let from = self.service(call.caller.name, call.caller.kind, call.caller.unknown);
        let to = self.service(call.callee.name, call.callee.kind, call.callee.unknown);
        if from == to || n == 0 {
            return;
        }
        self.calls += n;
        self.graph.add_calls(from, to, call.kind, n);
    }

    fn bucket_index(&mut self, t: u64) -> usize {
        let start_us = t - t % self.bucket_us;
        // In-order input always hits the newest bucket; search only when out of order.
        match self.buckets.back() {
            Some(b) if b.start_us == start_us => self.buckets.len() - 1,
            Some(b) if b.start_us < start_us => {
                self.buckets.push_back(Bucket {
                    start_us,
                    calls: self.spare.pop().unwrap_or_default(),
                });
                self.buckets.len() - 1
            }
            None => {
                self.buckets.push_back(Bucket {
                    start_us,
                    calls: self.spare.pop().unwrap_or_default(),
                });
                0
            }
            Some(_) => match self.buckets.binary_search_by_key(&start_us, |b| b.start_us) {
                Ok(i) => i,
                Err(i) => {
                    self.buckets.insert(
                        i,
                        Bucket {
                            start_us,
                            calls: self.spare.pop().unwrap_or_default(),
                        },
                    );
                    i
                }
            },
        }
    }

    /// Moves the window's end to `t` (if later), expiring calls that fall out of it.
    pub fn advance_to(&mut self, t: u64) {
        if t <= self.newest_us {
            return;
        }
        self.newest_us = t;
        if t < self.next_expiry_us {
            return;
        }
        self.expire(t);
    }

    fn expire(&mut self, t: u64) {
        let Some(w) = self.window_us else {
            self.next_expiry_us = u64::MAX;
            return;
        };
        let cutoff = t.saturating_sub(w);
        while let Some(front) = self.buckets.front() {
            if front.start_us.saturating_add(self.bucket_us) > cutoff {
                break;
            }
            let mut bucket = self.buckets.pop_front().expect("checked above");
            self.expired += bucket.calls.len() as u64;
            for &edge in &bucket.calls {
                self.graph.remove_calls_on(edge, 1);
            }
            bucket.calls.clear();
            self.spare.push(bucket.calls);
        }
        // The oldest bucket expires once the window's end passes its end plus the window.
        self.next_expiry_us = self.buckets.front().map_or(0, |b| {
            b.start_us.saturating_add(self.bucket_us).saturating_add(w)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;
    use kernel::EdgeKind;

    fn call(t_s: u64, from: &'static str, to: &'static str) -> Call<'static> {
        let e = |name| Endpoint {
            name,
            kind: ServiceKind::Stateless,
            unknown: false,
        };
        Call {
            time_us: t_s * 1_000_000,
            caller: e(from),
            callee: e(to),
            kind: EdgeKind::Rpc,
        }
    }

    #[test]
    fn edges_expire_incrementally_and_fan_in_follows() {
        let mut w = WindowedGraph::new(Some(60_000_000));
        w.ingest(&call(0, "a", "hub"));
        w.ingest(&call(10, "b", "hub"));
        w.ingest(&call(10, "b", "hub"));
        let hub = w.graph().id("hub").unwrap();
        assert_eq!(w.graph().fan_in(hub), 2);
        w.advance_to(65_000_000);
        assert_eq!(w.graph().fan_in(hub), 1, "a's call left the window");
        let b = w.graph().id("b").unwrap();
        assert_eq!(w.graph().edge(b, hub).unwrap().weight, 2);
        w.ingest(&call(71, "c", "hub"));
        assert_eq!(w.graph().fan_in(hub), 1, "b's calls expired, c's arrived");
        w.ingest(&call(5, "late", "hub"));
        assert_eq!(w.late(), 1);
        assert!(w.graph().id("late").is_none());
    }

    #[test]
    fn out_of_order_calls_within_the_window_expire_on_time() {
        let mut w = WindowedGraph::new(Some(60_000_000));
        w.ingest(&call(30, "a", "b"));
        w.ingest(&call(20, "c", "b"));
        let b = w.graph().id("b").unwrap();
        w.advance_to(81_500_000);
        assert_eq!(
            w.graph().fan_in(b),
            1,
            "c's call (t=20) expired before a's (t=30)"
        );
        w.advance_to(91_500_000);
        assert_eq!(w.graph().fan_in(b), 0);
    }

    #[test]
    fn unbounded_window_keeps_everything() {
        let mut w = WindowedGraph::new(None);
        w.ingest(&call(0, "a", "b"));
        w.ingest(&call(1_000_000, "a", "b"));
        assert_eq!(w.graph().edge_count(), 1);
        assert_eq!(w.calls(), 2);
    }
}
