//! The network between services, behind a trait with two backends.
//!
//! The simulator's core decides *what* is sent (requests and responses, identified by a
//! [`MsgId`]) and applies injected link faults itself (extra delay, loss), so that both
//! backends see the same fault semantics. A [`Network`] only transports: it decides when a
//! message arrives. [`DesNetwork`] computes the arrival time at once from a latency model (µs
//! resolution, exact ordering); the turmoil backend ([`crate::turmoil_net`]) moves real UDP
//! datagrams between one turmoil host per service and reports arrivals on turmoil's 1 ms ticks.

use crate::config::NetworkConfig;
use crate::radix::MonotoneQueue;
use kernel::VirtualTime;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Identifies a message in flight (the core keeps its payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId(pub u64);

/// Transport between services. Services are numbered as in the application spec.
pub trait Network {
    /// Hands a message from service `from` to service `to` to the network at `now`, to arrive
    /// no earlier than `now + extra_delay_us` (an injected link delay).
    fn send(&mut self, now: VirtualTime, from: usize, to: usize, msg: MsgId, extra_delay_us: u64);
    /// The earliest time the network may have something to deliver, if anything is in flight.
    /// (`&mut`: a backend may cache what it finds.)
    fn next_delivery(&mut self) -> Option<VirtualTime>;
    /// Moves the network's clock to `t` and appends every message that has arrived by then,
    /// with its arrival time, in arrival order.
    fn deliver_until(&mut self, t: VirtualTime, out: &mut Vec<(VirtualTime, MsgId)>);
    /// Messages in flight.
    fn in_flight(&self) -> usize;
}

/// The event-driven backend: per-hop latency `base + Exp(jitter)`, seeded.
#[derive(Debug)]
pub struct DesNetwork {
    config: NetworkConfig,
    rng: ChaCha8Rng,
    queue: MonotoneQueue<MsgId>,
}

impl DesNetwork {
    /// A network with `config`, drawing latencies from `rng`.
    pub fn new(config: NetworkConfig, rng: ChaCha8Rng) -> Self {
        DesNetwork {
            config,
            rng,
            queue: MonotoneQueue::default(),
        }
    }

    /// A network with `config` and a fresh stream from `seed`.
    pub fn seeded(config: NetworkConfig, seed: u64) -> Self {
        Self::new(config, ChaCha8Rng::seed_from_u64(seed))
    }
}

impl Network for DesNetwork {
    fn send(
        &mut self,
        now: VirtualTime,
        _from: usize,
        _to: usize,
        msg: MsgId,
        extra_delay_us: u64,
    ) {
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        let jitter = -self.config.jitter_mean_us * u.ln();
        let latency = (self.config.base_latency_us + jitter).max(0.0) as u64 + extra_delay_us;
        self.queue.push(now.as_micros() + latency, msg);
    }

    fn next_delivery(&mut self) -> Option<VirtualTime> {
        self.queue.peek_time().map(VirtualTime)
    }

    fn deliver_until(&mut self, t: VirtualTime, out: &mut Vec<(VirtualTime, MsgId)>) {
        while self.queue.peek_time().is_some_and(|at| at <= t.as_micros()) {
            let (at, msg) = self.queue.pop().expect("peeked");
            out.push((VirtualTime(at), msg));
        }
    }

    fn in_flight(&self) -> usize {
        self.queue.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_in_time_order_with_latency_and_extra_delay() {
        let mut n = DesNetwork::seeded(
            NetworkConfig {
                base_latency_us: 100.0,
                jitter_mean_us: 0.0,
            },
            1,
        );
        n.send(VirtualTime(0), 0, 1, MsgId(1), 500);
        n.send(VirtualTime(10), 0, 1, MsgId(2), 0);
        assert_eq!(n.next_delivery(), Some(VirtualTime(110)));
        let mut out = Vec::new();
        n.deliver_until(VirtualTime(200), &mut out);
        assert_eq!(out, vec![(VirtualTime(110), MsgId(2))]);
        n.deliver_until(VirtualTime(600), &mut out);
        assert_eq!(out[1], (VirtualTime(600), MsgId(1)));
        assert_eq!(n.in_flight(), 0);
    }
}
