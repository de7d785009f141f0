//! The control API: how faults and actions take effect (restart, kill, hang, recover, drain,
//! breakers, rate limits, scaling, configuration, slowdowns, link delays and partitions), each
//! tagged with the [`Cause`] the failures it produces will carry.

use super::engine::error;
use super::events::Event;
use super::{ConfigVersion, Limiter, Replica, ReplicaState, Sim, SimError};
use crate::cause::{Cause, ErrorKind};
use crate::metrics::Completion;
use crate::net::Network;
use std::collections::BTreeSet;

/// Emits the structured `tracing` event of one control call (debug level, target
/// `sim::control`): the operation, service, replicas or value, cause, and the virtual time.
/// Diagnostics only: nothing of it reaches results.
macro_rules! control_event {
    ($sim:expr, $op:expr, $service:expr, $what:expr, $cause:expr) => {
        tracing::debug!(
            target: "sim::control",
            op = $op,
            service = $service,
            what = ?$what,
            cause = %$cause,
            t_us = $sim.now.as_micros(),
            "control"
        )
    };
}

impl<N: Network> Sim<N> {
    // ---------------------------------------------------------------------------------------
    // Control: how faults and actions take effect.
    // ---------------------------------------------------------------------------------------

    pub(super) fn service_index(&self, name: &str) -> Result<u16, SimError> {
        self.spec
            .service_index(name)
            .map(|i| i as u16)
            .ok_or_else(|| SimError::BadControl(format!("unknown service `{name}`")))
    }

    pub(super) fn check_replicas(&self, s: u16, replicas: &[u32]) -> Result<(), SimError> {
        let n = self.services[s as usize].replicas.len() as u32;
        match replicas.iter().find(|&&r| r >= n) {
            Some(r) => Err(SimError::BadControl(format!(
                "`{}` has no replica {r} ({n} replicas)",
                self.spec.services[s as usize].name
            ))),
            None => Ok(()),
        }
    }

    /// Number of replicas of `service`.
    pub fn replica_count(&self, service: &str) -> Result<u32, SimError> {
        let s = self.service_index(service)?;
        Ok(self.services[s as usize].replicas.len() as u32)
    }

    /// Stops `replica`'s process: in-flight requests fail (connection reset) with `cause`,
    /// queued work is lost.
    pub(super) fn stop_process(
        &mut self,
        s: u16,
        replica: u32,
        cause: Cause,
        answer_in_flight: bool,
    ) {
        let execs = std::mem::take(&mut self.services[s as usize].replicas[replica as usize].execs);
        for key in execs {
            if let Some(exec) = self.execs.remove(key)
                && answer_in_flight
            {
                {
                    self.metrics.record_service(
                        s as usize,
                        Completion {
                            latency_us: self.now.since(exec.admitted).as_micros() as u64,
                            error: Some(cause),
                            touched_fault: cause.is_fault(),
                        },
                    );
                    let outcome = error(ErrorKind::Unavailable, cause);
                    self.respond(exec.call, exec.attempt, s, replica, exec.caller, outcome);
                }
            }
        }
        let r = &mut self.services[s as usize].replicas[replica as usize];
        r.generation = r.generation.wrapping_add(1);
        r.inflight = 0;
        r.busy = 0;
        r.cpu_queue.clear();
    }

    /// Restarts replicas: the process stops (in-flight requests fail with `cause` unless the
    /// replica was drained and idle), in-memory state is lost, and the replica serves again
    /// after the service's start-up time with a cold cache. A CPU hog or leak in the old process
    /// is gone; network faults and the configuration are not (they live outside the process).
    ///
    /// Restarting a replica an injected fault has hung, killed or slowed is a remedy: what fails
    /// while it restarts would have failed under the fault anyway, so those failures keep the
    /// fault's tag (the harm oracle does not charge the remedy with the fault's cost).
    pub fn restart(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "restart", service, replicas, cause);
        self.restart_replicas(service, replicas, cause)
    }

    fn restart_replicas(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        let startup = (self.spec.services[s as usize].startup_s * 1e6) as u64;
        for &r in replicas {
            let rep = &self.services[s as usize].replicas[r as usize];
            let stuck = matches!(rep.state, ReplicaState::Hung | ReplicaState::Down);
            let fault = [rep.cause.filter(|_| stuck), rep.slowdown_cause]
                .into_iter()
                .flatten()
                .find(|c| c.is_fault());
            let cause = fault.unwrap_or(cause);
            self.stop_process(s, r, cause, true);
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.state = ReplicaState::Starting;
            rep.cause = Some(cause);
            rep.in_lb = false;
            rep.restarts += 1;
            rep.slowdown = 1.0;
            if rep.leak.is_none() {
                rep.slowdown_cause = None;
            }
            let generation = rep.generation;
            self.schedule_in(
                startup,
                Event::Up {
                    service: s,
                    replica: r,
                    generation,
                },
            );
        }
        Ok(())
    }

    /// Kills replicas (they stay down and refuse connections) — a crash fault's "kill" mode.
    pub fn kill(&mut self, service: &str, replicas: &[u32], cause: Cause) -> Result<(), SimError> {
        control_event!(self, "kill", service, replicas, cause);
        self.stop(service, replicas, cause, ReplicaState::Down)
    }

    /// Hangs replicas: they keep accepting connections and never answer (callers time out)
    /// until probes take them out of load balancing — a crash fault's "hang" mode.
    pub fn hang(&mut self, service: &str, replicas: &[u32], cause: Cause) -> Result<(), SimError> {
        control_event!(self, "hang", service, replicas, cause);
        self.stop(service, replicas, cause, ReplicaState::Hung)
    }

    /// Stops replicas' processes, leaving them `state` (down: refusing and out of load
    /// balancing at once; hung: until probes notice).
    pub(super) fn stop(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
        state: ReplicaState,
    ) -> Result<(), SimError> {
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        let down = state == ReplicaState::Down;
        for &r in replicas {
            self.stop_process(s, r, cause, down);
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.state = state;
            rep.cause = Some(cause);
            if down {
                rep.in_lb = false;
            }
        }
        Ok(())
    }

    /// Brings back replicas a crash left down or hung (the orchestrator replacing the pod when
    /// the fault ends): they restart, still tagged with the fault.
    pub fn recover(
        &mut self,
        service: &str,
        replicas: &[u32],
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "recover", service, replicas, cause);
        let s = self.service_index(service)?;
        let stuck: Vec<u32> = replicas
            .iter()
            .copied()
            .filter(|&r| {
                self.services[s as usize]
                    .replicas
                    .get(r as usize)
                    .is_some_and(|rep| matches!(rep.state, ReplicaState::Down | ReplicaState::Hung))
            })
            .collect();
        self.restart_replicas(service, &stuck, cause)
    }

    /// Sets which replicas are drained (out of load balancing; in-flight requests finish).
    pub fn set_drained(
        &mut self,
        service: &str,
        drained: &BTreeSet<u32>,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "set_drained", service, drained, cause);
        let s = self.service_index(service)?;
        let list: Vec<u32> = drained.iter().copied().collect();
        self.check_replicas(s, &list)?;
        for (i, r) in self.services[s as usize].replicas.iter_mut().enumerate() {
            let d = drained.contains(&(i as u32));
            if d && !r.drained {
                r.drain_cause = Some(cause);
            }
            r.drained = d;
        }
        Ok(())
    }

    /// Opens or closes the breaker `caller → callee`.
    pub fn set_breaker(
        &mut self,
        caller: &str,
        callee: &str,
        open: bool,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(
            self,
            if open {
                "open_breaker"
            } else {
                "close_breaker"
            },
            caller,
            callee,
            cause
        );
        let (a, b) = (self.service_index(caller)?, self.service_index(callee)?);
        let breakers = &mut self.services[a as usize].breakers;
        if open {
            breakers.insert(b, cause);
        } else {
            breakers.remove(&b);
        }
        Ok(())
    }

    /// Sets or clears `service`'s ingress rate limit (requests per second, token bucket with a
    /// one-second burst).
    pub fn set_rate_limit(
        &mut self,
        service: &str,
        rps: Option<f64>,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "set_rate_limit", service, rps, cause);
        let s = self.service_index(service)?;
        let now = self.now;
        self.services[s as usize].limiter = match rps {
            Some(rps) if rps.is_finite() && rps >= 0.0 => Some(Limiter {
                rps,
                tokens: rps.max(1.0),
                last: now,
                cause,
            }),
            Some(bad) => return Err(SimError::BadControl(format!("rate {bad} is not a rate"))),
            None => None,
        };
        Ok(())
    }

    /// Patches `service`'s CPU limit to `factor` times the spec's (`kubectl set resources`,
    /// applied in place): service times are divided by it, never below the unstressed time, so
    /// raising it gives a CPU hog or leak headroom without removing it and lowering it
    /// throttles. 1 restores the spec's limit.
    pub fn set_cpu_limit(
        &mut self,
        service: &str,
        factor: f64,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "set_cpu_limit", service, factor, cause);
        let s = self.service_index(service)?;
        if !(factor.is_finite() && factor > 0.0) {
            return Err(SimError::BadControl(format!(
                "CPU limit ×{factor} is not a limit"
            )));
        }
        self.services[s as usize].cpu_limit = (factor != 1.0).then_some((factor, cause));
        Ok(())
    }

    /// Sets an environment variable on `service`'s pod template (`kubectl set env`): the
    /// simulator's services read no variable, so what it does is the rollout it starts — every
    /// replica restarts at once, with no drain, on the configuration it already runs.
    pub fn set_env(&mut self, service: &str, cause: Cause) -> Result<(), SimError> {
        control_event!(self, "set_env", service, (), cause);
        let all: Vec<u32> = (0..self.replica_count(service)?).collect();
        self.restart(service, &all, cause)
    }

    /// Changes the replica count: new replicas start (and warm) from scratch; removed ones are
    /// the highest ordinals, and their in-flight requests fail with `cause`. Zero is allowed here
    /// (raw commands can do it); the kernel's ISA cannot express it.
    pub fn set_replicas(&mut self, service: &str, n: u32, cause: Cause) -> Result<(), SimError> {
        control_event!(self, "set_replicas", service, n, cause);
        let s = self.service_index(service)?;
        let current = self.services[s as usize].replicas.len() as u32;
        let startup = (self.spec.services[s as usize].startup_s * 1e6) as u64;
        if n < current {
            for r in n..current {
                self.stop_process(s, r, cause, true);
            }
            self.services[s as usize].replicas.truncate(n as usize);
        }
        let now = self.now;
        for r in current..n {
            let mut rep = Replica::new(ReplicaState::Starting, Some(cause), now);
            rep.in_lb = false;
            self.services[s as usize].replicas.push(rep);
            self.schedule_in(
                startup,
                Event::Up {
                    service: s,
                    replica: r,
                    generation: 0,
                },
            );
        }
        let rt = &mut self.services[s as usize];
        rt.rr = 0;
        rt.scale_cause = (n < self.spec.services[s as usize].replicas).then_some(cause);
        Ok(())
    }

    /// Runs configuration `version`. A version the service has never had is unknown to it and
    /// makes every request fail (an arbitrary config pushed by hand).
    pub fn set_config(
        &mut self,
        service: &str,
        version: &str,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "set_config", service, version, cause);
        let s = self.service_index(service)?;
        let rt = &mut self.services[s as usize];
        match rt.configs.iter().position(|c| c.name == version) {
            Some(i) => rt.current_config = i,
            None => {
                rt.configs.push(ConfigVersion {
                    name: version.into(),
                    fail_fraction: 1.0,
                    cause: Some(cause),
                });
                rt.current_config = rt.configs.len() - 1;
            }
        }
        Ok(())
    }

    /// Pushes a new, bad configuration version that fails `fail_fraction` of requests — a
    /// misconfiguration fault. Returns the version's name.
    pub fn push_bad_config(
        &mut self,
        service: &str,
        fail_fraction: f64,
        cause: Cause,
    ) -> Result<String, SimError> {
        control_event!(self, "push_bad_config", service, fail_fraction, cause);
        let s = self.service_index(service)?;
        let rt = &mut self.services[s as usize];
        let name = format!("v{}-bad", rt.configs.len() + 1);
        rt.configs.push(ConfigVersion {
            name: name.clone(),
            fail_fraction: fail_fraction.clamp(0.0, 1.0),
            cause: Some(cause),
        });
        rt.current_config = rt.configs.len() - 1;
        Ok(name)
    }

    /// Sets a CPU slowdown on replicas (service times × `factor`); 1.0 clears it. With
    /// `leak_per_s`, the slowdown grows by that much every second up to `factor` (a memory leak's
    /// garbage-collection pressure).
    pub fn set_slowdown(
        &mut self,
        service: &str,
        replicas: &[u32],
        factor: f64,
        leak_per_s: Option<f64>,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(
            self,
            "set_slowdown",
            service,
            (replicas, factor, leak_per_s),
            cause
        );
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let rep = &mut self.services[s as usize].replicas[r as usize];
            if factor <= 1.0 {
                rep.slowdown = 1.0;
                rep.slowdown_cause = None;
                rep.leak = None;
            } else if let Some(per_s) = leak_per_s {
                rep.leak = Some((per_s, factor, cause));
                rep.slowdown_cause = Some(cause);
            } else {
                rep.slowdown = factor;
                rep.slowdown_cause = Some(cause);
            }
        }
        Ok(())
    }

    /// Adds `delay_us` to every message to or from replicas (NetworkChaos delay); 0 clears it.
    pub fn set_net_delay(
        &mut self,
        service: &str,
        replicas: &[u32],
        delay_us: u64,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(self, "set_net_delay", service, (replicas, delay_us), cause);
        let s = self.service_index(service)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let rep = &mut self.services[s as usize].replicas[r as usize];
            rep.net_delay_us = delay_us;
            rep.net_delay_cause = (delay_us > 0).then_some(cause);
        }
        Ok(())
    }

    /// Partitions replicas of `service` from `dependency` (messages both ways are lost), or
    /// repairs the partition.
    pub fn set_partition(
        &mut self,
        service: &str,
        replicas: &[u32],
        dependency: &str,
        partitioned: bool,
        cause: Cause,
    ) -> Result<(), SimError> {
        control_event!(
            self,
            if partitioned {
                "partition"
            } else {
                "repair_partition"
            },
            service,
            (replicas, dependency),
            cause
        );
        let s = self.service_index(service)?;
        let d = self.service_index(dependency)?;
        self.check_replicas(s, replicas)?;
        for &r in replicas {
            let blocked = &mut self.services[s as usize].replicas[r as usize].blocked;
            blocked.retain(|(to, _)| *to != d);
            if partitioned {
                blocked.push((d, cause));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests_support::{ACTION, chain};
    use crate::{Sim, SimConfig};
    use kernel::VirtualTime;
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use tracing::field::{Field, Visit};

    /// A subscriber that records every event as one line.
    struct Capture(Arc<Mutex<Vec<String>>>);

    impl tracing::Subscriber for Capture {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            struct Line(String);
            impl Visit for Line {
                fn record_debug(&mut self, f: &Field, v: &dyn std::fmt::Debug) {
                    self.0 += &format!(" {}={v:?}", f.name());
                }
            }
            let m = e.metadata();
            let mut line = Line(format!("{} {}", m.level(), m.target()));
            e.record(&mut line);
            self.0.lock().unwrap().push(line.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn run(sim: &mut Sim) {
        sim.run_until(VirtualTime::from_millis(1500)).unwrap();
        sim.restart("backend", &[0], ACTION).unwrap();
        sim.recover("backend", &[1], ACTION).unwrap();
        sim.set_drained("db", &BTreeSet::from([0]), ACTION).unwrap();
        sim.set_breaker("frontend", "other", true, ACTION).unwrap();
        sim.run_until(VirtualTime::from_secs(3)).unwrap();
    }

    #[test]
    fn every_control_call_emits_one_debug_event_on_virtual_time_and_changes_nothing() {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let cfg = SimConfig::default();
        let mut traced = Sim::new(chain(), cfg).unwrap();
        tracing::subscriber::with_default(Capture(lines.clone()), || run(&mut traced));
        let lines = lines.lock().unwrap().clone();
        assert_eq!(lines.len(), 4, "{lines:#?}");
        for (line, op) in lines
            .iter()
            .zip(["restart", "recover", "set_drained", "open_breaker"])
        {
            assert!(line.starts_with("DEBUG sim::control"), "{line}");
            assert!(line.contains(&format!("op=\"{op}\"")), "{line}");
            assert!(line.contains("cause=action#1"), "{line}");
            assert!(line.contains("t_us=1500000"), "{line}");
        }
        assert!(
            lines[0].contains("service=\"backend\" what=[0]"),
            "{}",
            lines[0]
        );
        let mut plain = Sim::new(chain(), cfg).unwrap();
        run(&mut plain);
        let csv = |s: &Sim| {
            let mut out = Vec::new();
            s.metrics().write_csv(&mut out).unwrap();
            out
        };
        assert_eq!(csv(&traced), csv(&plain));
    }

    /// P99 of `service` over seconds 2..6 with `backend` slowed ×`slowdown` under CPU limit ×`limit`.
    fn p99_under(slowdown: f64, limit: f64) -> f64 {
        let mut sim = Sim::new(chain(), SimConfig::default()).unwrap();
        let all: Vec<u32> = (0..sim.replica_count("backend").unwrap()).collect();
        sim.set_slowdown("backend", &all, slowdown, None, ACTION)
            .unwrap();
        sim.set_cpu_limit("backend", limit, ACTION).unwrap();
        sim.run_until(VirtualTime::from_secs(6)).unwrap();
        let rows: Vec<f64> = sim
            .metrics()
            .rows()
            .iter()
            .filter(|r| r.name == "backend" && r.second >= 2)
            .map(|r| r.p99_ms)
            .collect();
        rows.iter().sum::<f64>() / rows.len() as f64
    }

    #[test]
    fn a_cpu_limit_divides_a_slowdown_and_throttles_below_the_spec() {
        assert_eq!(super::super::engine::cpu_limited(4.0, 2.0), 2.0);
        assert_eq!(
            super::super::engine::cpu_limited(1.0, 2.0),
            1.0,
            "no faster than unstressed"
        );
        assert_eq!(super::super::engine::cpu_limited(1.0, 0.5), 2.0);
        let (slowed, headroom, healthy, throttled) = (
            p99_under(4.0, 1.0),
            p99_under(4.0, 4.0),
            p99_under(1.0, 1.0),
            p99_under(1.0, 0.5),
        );
        assert!(
            headroom < slowed,
            "more CPU hides a hog: {headroom} vs {slowed}"
        );
        assert!(
            throttled > healthy,
            "less CPU throttles: {throttled} vs {healthy}"
        );
        let mut sim = Sim::new(chain(), SimConfig::default()).unwrap();
        assert!(sim.set_cpu_limit("backend", 0.0, ACTION).is_err());
        sim.set_cpu_limit("backend", 0.5, ACTION).unwrap();
        assert_eq!(sim.cpu_limit("backend").unwrap(), 0.5);
        sim.set_cpu_limit("backend", 1.0, ACTION).unwrap();
        assert_eq!(sim.cpu_limit("backend").unwrap(), 1.0);
    }
}
