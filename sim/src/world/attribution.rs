//! Cause attribution: which [`Cause`] a failure carries, the precedence among causes (any fault
//! beats any action, which beats overload), and the blame of a service that failed to answer.

use super::{ReplicaState, Sim};
use crate::cause::Cause;
use crate::net::Network;
use crate::slab::Key;

/// Whether a call or execution touched something a fault or an action disturbed (a request is
/// counted as "touched by a fault" even when it succeeds).
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Flags {
    pub(super) fault: bool,
    pub(super) action: bool,
}

impl Flags {
    pub(super) fn merge(&mut self, other: Flags) {
        self.fault |= other.fault;
        self.action |= other.action;
    }
    pub(super) fn of(cause: Cause) -> Flags {
        Flags {
            fault: cause.is_fault(),
            action: cause.is_action(),
        }
    }
}

impl<N: Network> Sim<N> {
    /// Why `service` has no replica to send to. A replica an action took out of service
    /// would otherwise have served, so actions are blamed before faults — unless the fault
    /// has every replica down anyway ([`Sim::fault_outage`]).
    pub(super) fn unavailable_cause(&self, service: u16) -> Cause {
        if let Some(fault) = self.fault_outage(service) {
            return fault;
        }
        let rt = &self.services[service as usize];
        if rt.replicas.is_empty() {
            return rt.scale_cause.unwrap_or(Cause::Overload);
        }
        let (mut action, mut fault) = (None, None);
        for r in &rt.replicas {
            let cause = if r.drained {
                r.drain_cause
            } else if r.state != ReplicaState::Running || !r.in_lb {
                r.cause
            } else {
                None
            };
            match cause {
                Some(c @ Cause::Action(_)) => action = action.or(Some(c)),
                Some(c @ Cause::Fault(_)) => fault = fault.or(Some(c)),
                _ => {}
            }
        }
        action.or(fault).unwrap_or(Cause::Overload)
    }

    /// The fault, if an injected fault leaves `service` unable to answer anything: every
    /// replica hung, down or restarting because of it, or a configuration it pushed failing
    /// every request. Requests an action turns away from such a service (a breaker, a rate
    /// limit, a drain) would have failed anyway, so they keep the fault's tag.
    pub(super) fn fault_outage(&self, service: u16) -> Option<Cause> {
        let rt = &self.services[service as usize];
        let config = &rt.configs[rt.current_config];
        if config.fail_fraction >= 1.0
            && let Some(c @ Cause::Fault(_)) = config.cause
        {
            return Some(c);
        }
        let mut found = None;
        for r in &rt.replicas {
            match (r.state, r.cause) {
                (ReplicaState::Running, _) => return None,
                (_, Some(c @ Cause::Fault(_))) => found = Some(c),
                _ => return None,
            }
        }
        found
    }

    /// A fault in `service` or anything it depends on; else an action there; else overload.
    pub(super) fn blame(&self, service: u16) -> Cause {
        let mut found: Option<Cause> = None;
        for &s in &self.downstream[service as usize] {
            let own = self.disturbance(s);
            found = match (found, own) {
                (Some(Cause::Fault(f)), _) => Some(Cause::Fault(f)),
                (_, Some(Cause::Fault(f))) => Some(Cause::Fault(f)),
                (None, Some(c)) => Some(c),
                (f, _) => f,
            };
        }
        found.unwrap_or(Cause::Overload)
    }

    /// The strongest cause of anything wrong with `service` right now.
    pub(super) fn disturbance(&self, service: u16) -> Option<Cause> {
        let rt = &self.services[service as usize];
        let per_replica = rt.replicas.iter().flat_map(|r| {
            let state = (r.state != ReplicaState::Running)
                .then_some(r.cause)
                .flatten();
            [
                state,
                r.slowdown_cause,
                r.net_delay_cause,
                r.drain_cause.filter(|_| r.drained),
            ]
            .into_iter()
            .flatten()
            .chain(r.blocked.iter().map(|b| b.1))
        });
        let config = rt.configs[rt.current_config]
            .cause
            .filter(|_| rt.configs[rt.current_config].fail_fraction > 0.0);
        let limiter = rt.limiter.as_ref().map(|l| l.cause);
        // A CPU limit below the spec's throttles the service.
        let throttle = rt.cpu_limit.filter(|(l, _)| *l < 1.0).map(|(_, c)| c);
        let found = strongest(
            per_replica
                .chain(config)
                .chain(limiter)
                .chain(throttle)
                .chain(rt.scale_cause),
        );
        (found != Cause::Overload).then_some(found)
    }

    /// A disturbance of the calling replica's own network — a delay on it, or a partition from
    /// the callee — which makes its calls time out however healthy the callee is.
    pub(super) fn link_disturbance(&self, key: Key, callee: u16) -> Option<Cause> {
        let (cs, cr) = self.calls.get(key)?.caller?;
        let r = self.services[cs as usize].replicas.get(cr as usize)?;
        r.blocked
            .iter()
            .find(|(to, _)| *to == callee)
            .map(|b| b.1)
            .or(r.net_delay_cause)
    }

    pub(super) fn replica_disturbance(&self, service: u16, replica: u32) -> Option<Cause> {
        // The replica may have been scaled away while a call to it was pending.
        let r = self.services[service as usize]
            .replicas
            .get(replica as usize)?;
        let found = strongest([r.slowdown_cause, r.net_delay_cause].into_iter().flatten());
        (found != Cause::Overload).then_some(found)
    }
}

/// The strongest of some causes: any fault beats any action, which beats overload.
pub(super) fn strongest(causes: impl IntoIterator<Item = Cause>) -> Cause {
    let mut best = Cause::Overload;
    for c in causes {
        best = match (best, c) {
            (Cause::Fault(_), _) => best,
            (_, Cause::Fault(_)) => c,
            (Cause::Action(_), _) => best,
            (_, c) => c,
        };
    }
    best
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{ACTION, FAULT, chain};
    use super::*;
    use crate::config::SimConfig;
    use crate::metrics::ScopeKind;
    use kernel::VirtualTime;
    use std::collections::BTreeSet;

    const FAULT2: Cause = Cause::Fault(2);
    const ACTION2: Cause = Cause::Action(2);
    // Services of `chain()`.
    const FRONTEND: u16 = 0;
    const BACKEND: u16 = 1;
    const DB: u16 = 2;
    const OTHER: u16 = 3;

    fn sim() -> Sim {
        let cfg = SimConfig {
            seed: 11,
            rate_rps: 200.0,
            ..SimConfig::default()
        };
        Sim::new(chain(), cfg).unwrap()
    }

    #[test]
    fn any_fault_beats_any_action_which_beats_overload() {
        use Cause::Overload;
        assert_eq!(strongest([]), Overload);
        assert_eq!(strongest([Overload]), Overload);
        assert_eq!(strongest([Overload, ACTION]), ACTION);
        assert_eq!(strongest([ACTION, Overload]), ACTION);
        assert_eq!(strongest([ACTION, FAULT]), FAULT);
        assert_eq!(strongest([FAULT, ACTION]), FAULT);
        assert_eq!(strongest([ACTION, Overload, FAULT, ACTION2]), FAULT);
        // Among equals the first seen wins (deterministic, by replica order).
        assert_eq!(strongest([FAULT2, FAULT]), FAULT2);
        assert_eq!(strongest([ACTION2, ACTION]), ACTION2);
    }

    #[test]
    fn flags_accumulate_and_never_forget() {
        let mut f = Flags::of(ACTION);
        assert!(f.action && !f.fault);
        f.merge(Flags::of(Cause::Overload));
        assert!(f.action && !f.fault);
        f.merge(Flags::of(FAULT));
        assert!(f.action && f.fault);
        f.merge(Flags::default());
        assert!(f.action && f.fault);
    }

    #[test]
    fn blame_looks_downstream_fault_first_and_never_upstream_or_sideways() {
        let mut s = sim();
        for svc in [FRONTEND, BACKEND, DB, OTHER] {
            assert_eq!(s.blame(svc), Cause::Overload, "nothing wrong anywhere");
        }
        // An action on the backend: blamed for the backend and its callers, not for the db.
        s.set_drained("backend", &BTreeSet::from([0]), ACTION)
            .unwrap();
        assert_eq!(s.blame(FRONTEND), ACTION);
        assert_eq!(s.blame(BACKEND), ACTION);
        assert_eq!(s.blame(DB), Cause::Overload);
        assert_eq!(s.blame(OTHER), Cause::Overload);
        // A fault further down outweighs the action on the way.
        s.set_slowdown("db", &[0], 5.0, None, FAULT).unwrap();
        assert_eq!(s.blame(FRONTEND), FAULT);
        assert_eq!(s.blame(BACKEND), FAULT);
        assert_eq!(s.blame(DB), FAULT);
        assert_eq!(
            s.blame(OTHER),
            Cause::Overload,
            "a sibling is not downstream"
        );
        // Once the fault is gone the action is blamed again.
        s.set_slowdown("db", &[0], 1.0, None, FAULT).unwrap();
        assert_eq!(s.blame(FRONTEND), ACTION);
    }

    #[test]
    fn disturbance_counts_only_what_is_in_force() {
        let mut s = sim();
        // Undrained: the drain's cause no longer counts.
        s.set_drained("db", &BTreeSet::from([0]), ACTION).unwrap();
        assert_eq!(s.disturbance(DB), Some(ACTION));
        s.set_drained("db", &BTreeSet::new(), ACTION).unwrap();
        assert_eq!(s.disturbance(DB), None);
        // A good config carries no blame even if an action chose it; a bad one does.
        s.set_config("db", "v1", ACTION).unwrap();
        assert_eq!(s.disturbance(DB), None);
        s.push_bad_config("db", 0.3, FAULT).unwrap();
        assert_eq!(s.disturbance(DB), Some(FAULT));
        // Limiters, breakers' callee-side effects and scale-downs.
        let mut s = sim();
        s.set_rate_limit("backend", Some(10.0), ACTION).unwrap();
        assert_eq!(s.disturbance(BACKEND), Some(ACTION));
        s.set_rate_limit("backend", None, ACTION).unwrap();
        s.set_replicas("backend", 1, ACTION2).unwrap();
        assert_eq!(s.disturbance(BACKEND), Some(ACTION2));
        s.set_partition("backend", &[0], "db", true, FAULT).unwrap();
        assert_eq!(s.disturbance(BACKEND), Some(FAULT));
    }

    #[test]
    fn no_endpoint_blames_the_action_before_the_fault_unless_the_fault_took_everything() {
        let mut s = sim();
        // One replica hung by a fault (and out of LB), the other drained by an action: the
        // drained one would have served, so the action is charged.
        s.hang("backend", &[0], FAULT).unwrap();
        s.services[BACKEND as usize].replicas[0].in_lb = false;
        s.set_drained("backend", &BTreeSet::from([1]), ACTION)
            .unwrap();
        assert_eq!(s.fault_outage(BACKEND), None);
        assert_eq!(s.unavailable_cause(BACKEND), ACTION);
        // Both hung by the fault: whatever the action does, the fault has the service down.
        s.hang("backend", &[1], FAULT).unwrap();
        assert_eq!(s.fault_outage(BACKEND), Some(FAULT));
        assert_eq!(s.unavailable_cause(BACKEND), FAULT);
        // Killed by an action instead: not a fault outage.
        let mut s = sim();
        s.kill("backend", &[0, 1], ACTION).unwrap();
        assert_eq!(s.fault_outage(BACKEND), None);
        assert_eq!(s.unavailable_cause(BACKEND), ACTION);
        // Scaled to zero: the scale's cause.
        let mut s = sim();
        s.set_replicas("backend", 0, ACTION2).unwrap();
        assert_eq!(s.unavailable_cause(BACKEND), ACTION2);
        // Nothing wrong but nothing serving (all starting after a fault-free scale-up is not
        // possible here): overload.
        let s = sim();
        assert_eq!(s.unavailable_cause(BACKEND), Cause::Overload);
    }

    #[test]
    fn a_config_that_fails_everything_is_a_fault_outage_only_if_a_fault_pushed_it() {
        let mut s = sim();
        s.push_bad_config("db", 0.5, FAULT).unwrap();
        assert_eq!(s.fault_outage(DB), None, "half the requests still succeed");
        s.push_bad_config("db", 1.0, FAULT).unwrap();
        assert_eq!(s.fault_outage(DB), Some(FAULT));
        s.set_config("db", "v-by-hand", ACTION).unwrap();
        assert_eq!(
            s.fault_outage(DB),
            None,
            "an unknown version pushed by an action"
        );
        assert!(s.config_is_bad("db").unwrap());
    }

    #[test]
    fn a_replicas_own_disturbance_fault_first() {
        let mut s = sim();
        assert_eq!(s.replica_disturbance(BACKEND, 0), None);
        s.set_slowdown("backend", &[0], 2.0, None, ACTION).unwrap();
        assert_eq!(s.replica_disturbance(BACKEND, 0), Some(ACTION));
        s.set_net_delay("backend", &[0], 1_000, FAULT).unwrap();
        assert_eq!(s.replica_disturbance(BACKEND, 0), Some(FAULT));
        assert_eq!(s.replica_disturbance(BACKEND, 1), None);
        assert_eq!(s.replica_disturbance(BACKEND, 7), None, "scaled away");
    }

    /// Errors of the path over seconds `[from, to)`: (all, fault's, action's).
    fn errors(s: &Sim, from: u32, to: u32) -> (u64, u64, u64) {
        s.metrics()
            .series(ScopeKind::Path, "read")
            .into_iter()
            .filter(|r| (from..to).contains(&r.second))
            .fold((0, 0, 0), |(a, f, x), r| {
                (a + r.errors(), f + r.errors_fault, x + r.errors_action)
            })
    }

    #[test]
    fn a_breaker_an_action_opens_is_charged_unless_the_fault_had_the_callee_down() {
        // The action alone.
        let mut s = sim();
        s.run_until(VirtualTime::from_secs(2)).unwrap();
        s.set_breaker("frontend", "backend", true, ACTION).unwrap();
        s.run_until(VirtualTime::from_secs(6)).unwrap();
        let (all, fault, action) = errors(&s, 3, 6);
        assert!(all > 100, "{all}");
        assert_eq!((fault, action), (0, all));
        // Fault AND action: every backend replica hung by the fault, then the breaker opened;
        // what the breaker turns away would have failed anyway.
        let mut s = sim();
        s.run_until(VirtualTime::from_secs(2)).unwrap();
        s.hang("backend", &[0, 1], FAULT).unwrap();
        s.set_breaker("frontend", "backend", true, ACTION).unwrap();
        s.run_until(VirtualTime::from_secs(6)).unwrap();
        let (all, fault, action) = errors(&s, 3, 6);
        assert!(all > 100, "{all}");
        assert_eq!((fault, action), (all, 0));
    }

    #[test]
    fn overload_is_the_faults_only_where_the_fault_is_downstream() {
        // A saturated backend (2 × 2 cores, 32 workers, ~1 ms) at 9 000 rps: rejections and
        // timeouts with nothing injected are organic overload.
        let overloaded = |fault: bool| {
            let cfg = SimConfig {
                seed: 3,
                rate_rps: 9_000.0,
                ..SimConfig::default()
            };
            let mut s = Sim::new(chain(), cfg).unwrap();
            if fault {
                s.set_net_delay("db", &[0], 50, FAULT).unwrap();
            }
            s.run_until(VirtualTime::from_secs(4)).unwrap();
            errors(&s, 1, 4)
        };
        let (all, fault, action) = overloaded(false);
        assert!(all > 1000, "{all}");
        assert_eq!((fault, action), (0, 0), "organic overload");
        // The same overload with a (small) fault under the backend: what the backend fails is
        // charged to the fault (it is downstream), what the overloaded sibling `other` fails
        // stays organic (the fault is not downstream of it).
        let (all, fault, action) = overloaded(true);
        assert!(all > 1000, "{all}");
        assert_eq!(action, 0);
        assert!(fault > all / 10 && fault < all, "{fault} of {all}");
    }
}
