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
        let found = strongest(
            per_replica
                .chain(config)
                .chain(limiter)
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
