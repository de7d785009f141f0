//! The invariant checker (in the manner of TigerBeetle's): a pass over the whole state that
//! asserts what must hold between any two events. It reads and never writes, so a run with the
//! checker on gives the same results as one with it off; [`crate::SimConfig::check_invariants_every`]
//! runs it every N events.

use super::events::Event;
use super::{Parent, ReplicaState, Sim};
use crate::cause::Cause;
use crate::net::Network;
use crate::slab::Key;
use kernel::VirtualTime;
use std::collections::BTreeMap;
use std::fmt;

/// A broken invariant: what, where, and when (simulated time and events processed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvariantViolation {
    /// Simulated time of the check.
    pub at: VirtualTime,
    /// Events processed before the check.
    pub events: u64,
    /// What does not hold.
    pub what: String,
}

impl fmt::Display for InvariantViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invariant violated at t = {} after {} events: {}",
            self.at, self.events, self.what
        )
    }
}

impl std::error::Error for InvariantViolation {}

impl<N: Network> Sim<N> {
    /// Checks every structural invariant of the simulation's state:
    ///
    /// - **event core**: no event is scheduled before now; one payload per heap entry;
    /// - **worker pools and cores**: a replica holds at most `max_inflight` requests and computes
    ///   at most `cores`; its in-flight count equals its live executions; `busy` equals the
    ///   pending compute events of its live executions;
    /// - **slabs**: every execution is on the replica that lists it, and is in exactly one phase
    ///   (queued for a core, computing, or waiting on as many live calls as it counts pending);
    ///   every live call is resolving (an attempt awaiting a timeout or failure event, or a
    ///   retry scheduled); every request has exactly one root call and every root call its
    ///   request; messages held equal messages the network carries;
    /// - **requests end exactly once**: requests started = ended + in flight, and no root call
    ///   completed without its request;
    /// - **control state**: down or starting replicas are out of load balancing, a running one
    ///   carries no cause, the running config exists, token buckets within bounds.
    pub fn check_invariants(&self) -> Result<(), InvariantViolation> {
        self.check_all().map_err(|what| InvariantViolation {
            at: self.now,
            events: self.events,
            what,
        })
    }

    /// Which injected faults still have an effect in force: `(service, cause, what)` for each
    /// replica hung or down, slowed, delayed or partitioned by a fault, and each service running
    /// a configuration a fault pushed. Empty once every fault has been retracted (a replica still
    /// restarting from a fault is recovering, not faulty).
    pub fn fault_residue(&self) -> Vec<(String, Cause, &'static str)> {
        let mut out = Vec::new();
        for (s, rt) in self.services.iter().enumerate() {
            let name = &self.spec.services[s].name;
            let mut push = |c: Option<Cause>, what: &'static str| {
                if let Some(c @ Cause::Fault(_)) = c {
                    out.push((name.clone(), c, what));
                }
            };
            for r in &rt.replicas {
                if matches!(r.state, ReplicaState::Hung | ReplicaState::Down) {
                    push(r.cause, "replica hung or down");
                }
                if r.slowdown > 1.0 || r.leak.is_some() {
                    push(r.slowdown_cause, "replica slowed");
                }
                if r.net_delay_us > 0 {
                    push(r.net_delay_cause, "replica's links delayed");
                }
                for &(_, c) in &r.blocked {
                    push(Some(c), "replica partitioned");
                }
            }
            let config = &rt.configs[rt.current_config];
            if config.fail_fraction > 0.0 {
                push(config.cause, "bad configuration running");
            }
        }
        out
    }

    fn check_all(&self) -> Result<(), String> {
        let now = self.now.as_micros();
        // Event core.
        if let Some(t) = self.queue.min_time_scan()
            && t < now
        {
            return Err(format!(
                "an event is scheduled at {t} µs, before now ({now} µs)"
            ));
        }
        if self.queue.iter().count() != self.queue.len() {
            return Err(format!(
                "the event queue counts {} entries but holds {}",
                self.queue.len(),
                self.queue.iter().count()
            ));
        }

        // What the pending events say about executions and calls.
        let mut computing: BTreeMap<Key, u32> = BTreeMap::new();
        let mut resolving: BTreeMap<Key, u32> = BTreeMap::new(); // call -> attempts' events
        let mut retrying: BTreeMap<Key, u32> = BTreeMap::new();
        for e in self.queue.iter() {
            match *e {
                Event::Work { exec, .. } if self.execs.get(exec).is_some() => {
                    *computing.entry(exec).or_default() += 1;
                }
                Event::Timeout { call, attempt } | Event::Fail { call, attempt, .. }
                    if self.calls.get(call).is_some_and(|c| c.attempt == attempt) =>
                {
                    *resolving.entry(call).or_default() += 1;
                }
                Event::Retry { call } => *retrying.entry(call).or_default() += 1,
                _ => {}
            }
        }
        let mut pending_calls: BTreeMap<Key, u32> = BTreeMap::new();
        let mut root_calls: BTreeMap<Key, u32> = BTreeMap::new();
        for (key, call) in self.calls.iter() {
            let retries = retrying.get(&key).copied().unwrap_or(0);
            match (
                call.awaiting,
                resolving.get(&key).copied().unwrap_or(0),
                retries,
            ) {
                (true, 0, _) => {
                    return Err(format!(
                        "call {key:?} awaits attempt {} with no timeout or failure scheduled",
                        call.attempt
                    ));
                }
                (false, _, 0) => {
                    return Err(format!(
                        "call {key:?} (to {}) is neither awaiting an answer nor waiting to retry: leaked",
                        self.spec.services[call.callee as usize].name
                    ));
                }
                (_, _, r) if r > 1 => {
                    return Err(format!("call {key:?} has {r} retries scheduled"));
                }
                _ => {}
            }
            match call.parent {
                Parent::Exec(e) => *pending_calls.entry(e).or_default() += 1,
                Parent::Request(r) => {
                    if self.requests.get(r).is_none() {
                        return Err(format!("root call {key:?} has no request {r:?}"));
                    }
                    *root_calls.entry(r).or_default() += 1;
                }
            }
        }
        for (key, _) in self.requests.iter() {
            let n = root_calls.get(&key).copied().unwrap_or(0);
            if n != 1 {
                return Err(format!("request {key:?} has {n} root calls"));
            }
        }

        // Requests end exactly once.
        let t = &self.tally;
        if t.ends_without_request > 0 {
            return Err(format!(
                "{} root calls completed without their request (a request ended twice)",
                t.ends_without_request
            ));
        }
        if t.requests_started != t.requests_ended + self.requests.len() as u64 {
            return Err(format!(
                "{} requests started but {} ended and {} in flight",
                t.requests_started,
                t.requests_ended,
                self.requests.len()
            ));
        }

        // Messages.
        if self.msgs.len() != self.net.in_flight() {
            return Err(format!(
                "{} messages held but {} in the network",
                self.msgs.len(),
                self.net.in_flight()
            ));
        }

        // Replicas, worker pools, cores.
        let mut listed = 0usize;
        for (s, rt) in self.services.iter().enumerate() {
            let spec = &self.spec.services[s];
            let name = &spec.name;
            if rt.current_config >= rt.configs.len() {
                return Err(format!(
                    "{name}: running config {} unknown",
                    rt.current_config
                ));
            }
            if let Some(l) = &rt.limiter
                && !(l.tokens >= 0.0 && l.tokens <= l.rps.max(1.0))
            {
                return Err(format!("{name}: rate limiter holds {} tokens", l.tokens));
            }
            if let Some(tokens) = rt
                .retry_tokens
                .iter()
                .find(|&&x| !(x >= 0.0 && x <= self.cfg.retries.budget_cap))
            {
                return Err(format!("{name}: retry budget holds {tokens} tokens"));
            }
            let c = rt.counters;
            if c.received > c.calls + c.retries {
                return Err(format!(
                    "{name}: received {} attempts of {} sent",
                    c.received,
                    c.calls + c.retries
                ));
            }
            for (i, r) in rt.replicas.iter().enumerate() {
                let at = format!("{name}[{i}]");
                if r.inflight > spec.max_inflight {
                    return Err(format!(
                        "{at}: {} requests in flight, limit {}",
                        r.inflight, spec.max_inflight
                    ));
                }
                if r.busy > spec.cores {
                    return Err(format!("{at}: {} cores busy of {}", r.busy, spec.cores));
                }
                if r.inflight as usize != r.execs.len() {
                    return Err(format!(
                        "{at}: in-flight count {} but {} executions",
                        r.inflight,
                        r.execs.len()
                    ));
                }
                if matches!(r.state, ReplicaState::Down | ReplicaState::Starting) && r.in_lb {
                    return Err(format!("{at}: {:?} but in load balancing", r.state));
                }
                if r.state == ReplicaState::Running && r.cause.is_some() {
                    return Err(format!("{at}: running but tagged {:?}", r.cause));
                }
                let mut queued: BTreeMap<Key, u32> = BTreeMap::new();
                for &(e, _) in &r.cpu_queue {
                    *queued.entry(e).or_default() += 1;
                }
                let mut busy = 0;
                for &key in &r.execs {
                    let Some(exec) = self.execs.get(key) else {
                        return Err(format!("{at}: lists execution {key:?}, which is gone"));
                    };
                    if (exec.service as usize, exec.replica as usize) != (s, i) {
                        return Err(format!(
                            "{at}: lists execution {key:?} of {}[{}]",
                            exec.service, exec.replica
                        ));
                    }
                    let q = queued.remove(&key).unwrap_or(0);
                    let w = computing.get(&key).copied().unwrap_or(0);
                    let p = pending_calls.get(&key).copied().unwrap_or(0);
                    if u32::from(exec.pending) != p {
                        return Err(format!(
                            "{at}: execution {key:?} counts {} pending calls, {p} live",
                            exec.pending
                        ));
                    }
                    let phases = q + w + u32::from(p > 0);
                    if phases != 1 {
                        return Err(format!(
                            "{at}: execution {key:?} is in {phases} phases \
                             (queued {q}, computing {w}, waiting on {p} calls)"
                        ));
                    }
                    busy += w;
                }
                if let Some((key, _)) = queued.first_key_value() {
                    return Err(format!("{at}: queues execution {key:?}, not its own"));
                }
                if busy != r.busy {
                    return Err(format!(
                        "{at}: {} cores counted busy, {busy} computing",
                        r.busy
                    ));
                }
                listed += r.execs.len();
            }
        }
        if listed != self.execs.len() {
            return Err(format!(
                "{} executions live but replicas list {listed}",
                self.execs.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{ACTION, FAULT, chain};
    use super::super::{Sabotage, Sim};
    use super::*;
    use crate::config::SimConfig;
    use crate::world::SimError;

    fn sim(every: Option<u64>) -> Sim {
        let cfg = SimConfig {
            seed: 5,
            rate_rps: 400.0,
            check_invariants_every: every,
            ..SimConfig::default()
        };
        Sim::new(chain(), cfg).unwrap()
    }

    /// A run that exercises faults, actions and overload, checked after every event.
    fn eventful(sim: &mut Sim) -> Result<(), SimError> {
        let t = VirtualTime::from_secs;
        sim.run_until(t(2))?;
        sim.hang("backend", &[0], FAULT)?;
        sim.run_until(t(4))?;
        sim.restart("backend", &[0, 1], ACTION)?;
        sim.set_slowdown("db", &[0], 8.0, None, FAULT)?;
        sim.run_until(t(6))?;
        sim.set_replicas("backend", 1, ACTION)?;
        sim.set_breaker("frontend", "backend", true, ACTION)?;
        sim.run_until(t(7))?;
        sim.set_breaker("frontend", "backend", false, ACTION)?;
        sim.set_replicas("backend", 3, ACTION)?;
        sim.set_partition("backend", &[0], "db", true, FAULT)?;
        sim.run_until(t(9))?;
        sim.set_partition("backend", &[0], "db", false, FAULT)?;
        sim.set_slowdown("db", &[0], 1.0, None, FAULT)?;
        sim.set_arrivals(false);
        sim.run_until(t(30))
    }

    #[test]
    fn an_eventful_run_keeps_every_invariant_and_checking_changes_nothing() {
        let mut on = sim(Some(1));
        eventful(&mut on).unwrap();
        on.check_invariants().unwrap();
        assert!(on.fault_residue().is_empty(), "{:?}", on.fault_residue());
        assert_eq!(on.requests_in_flight(), 0);
        assert!(on.tally.requests_started > 1000);
        let mut off = sim(None);
        eventful(&mut off).unwrap();
        let csv = |s: &Sim| {
            let mut out = Vec::new();
            s.metrics().write_csv(&mut out).unwrap();
            out
        };
        assert_eq!(csv(&on), csv(&off));
        assert_eq!(on.events_processed(), off.events_processed());
    }

    /// Plants `bug` at 3 s into the eventful run and returns what the checker says.
    fn caught(bug: Sabotage) -> InvariantViolation {
        let mut s = sim(Some(1));
        s.sabotage = Some((bug, 3_000_000));
        match eventful(&mut s) {
            Err(SimError::Invariant(v)) => {
                assert!(v.at >= VirtualTime::from_secs(3), "{v}");
                v
            }
            other => panic!("{bug:?} went unnoticed: {other:?}"),
        }
    }

    #[test]
    fn the_checker_catches_a_corrupted_worker_count() {
        let v = caught(Sabotage::SkipInflightDecrement);
        assert!(v.what.contains("in-flight count"), "{v}");
    }

    #[test]
    fn the_checker_catches_a_leaked_call() {
        let v = caught(Sabotage::LeakCall);
        assert!(v.what.contains("leaked"), "{v}");
    }

    #[test]
    fn the_checker_catches_a_request_counted_twice() {
        let v = caught(Sabotage::DoubleCountStart);
        assert!(v.what.contains("requests started"), "{v}");
    }

    #[test]
    fn the_checker_catches_corrupted_state_directly() {
        let mut s = sim(None);
        s.run_until(VirtualTime::from_secs(1)).unwrap();
        s.check_invariants().unwrap();
        s.services[1].replicas[0].busy += 1;
        assert!(s.check_invariants().is_err());
        s.services[1].replicas[0].busy -= 1;
        s.services[1].replicas[0].in_lb = true;
        s.services[1].replicas[0].state = ReplicaState::Down;
        let v = s.check_invariants().unwrap_err();
        assert!(v.what.contains("in load balancing"), "{v}");
        assert!(v.to_string().starts_with("invariant violated at t = "));
    }

    #[test]
    fn fault_residue_lists_what_a_fault_left_in_force() {
        let mut s = sim(None);
        s.set_net_delay("db", &[0], 5_000, FAULT).unwrap();
        s.set_drained("db", &[0].into(), ACTION).unwrap();
        assert_eq!(
            s.fault_residue(),
            vec![("db".to_string(), FAULT, "replica's links delayed")]
        );
        s.set_net_delay("db", &[0], 0, FAULT).unwrap();
        assert!(s.fault_residue().is_empty());
    }
}
