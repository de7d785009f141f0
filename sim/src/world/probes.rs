//! Replica lifecycle over time: start-up completing, readiness/liveness probes, and the
//! once-a-second tick (metrics flush, leaks growing).

use super::events::Event;
use super::{ReplicaState, Sim};
use crate::net::Network;

impl<N: Network> Sim<N> {
    // ---------------------------------------------------------------------------------------
    // Lifecycle: start-up, probes, seconds.
    // ---------------------------------------------------------------------------------------

    pub(super) fn on_up(&mut self, service: u16, replica: u32, generation: u32) {
        let now = self.now;
        let Some(r) = self.services[service as usize]
            .replicas
            .get_mut(replica as usize)
        else {
            return;
        };
        if r.generation != generation || r.state != ReplicaState::Starting {
            return;
        }
        r.state = ReplicaState::Running;
        r.in_lb = true;
        r.probe_failures = 0;
        r.warm_since = Some(now);
        r.cold_cause = r.cause;
        r.cause = None;
    }

    pub(super) fn on_probe(&mut self) {
        let threshold = self.cfg.probes.failure_threshold;
        for rt in &mut self.services {
            for r in &mut rt.replicas {
                match r.state {
                    ReplicaState::Running => {
                        r.probe_failures = 0;
                        r.in_lb = true;
                    }
                    ReplicaState::Hung => {
                        r.probe_failures += 1;
                        if r.probe_failures >= threshold {
                            r.in_lb = false;
                        }
                    }
                    ReplicaState::Down | ReplicaState::Starting => {
                        r.probe_failures += 1;
                        r.in_lb = false;
                    }
                }
            }
        }
        let period = (self.cfg.probes.period_s * 1e6) as u64;
        self.schedule_in(period.max(1), Event::Probe);
    }

    pub(super) fn on_second(&mut self) {
        self.metrics.flush_second();
        for rt in &mut self.services {
            for r in &mut rt.replicas {
                if let Some((per_s, max, cause)) = r.leak {
                    r.slowdown = (r.slowdown + per_s).min(max);
                    r.slowdown_cause = Some(cause);
                }
            }
        }
        self.schedule_in(1_000_000, Event::Second);
    }
}
