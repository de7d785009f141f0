//! The request engine: arrivals, calls and their attempts (replica choice round robin, timeouts,
//! retries with back-off and budgets), admission to a replica's worker pool, CPU queueing, the
//! call tree's stages, and the answers that travel back.

use super::attribution::Flags;
use super::events::Event;
use super::{Call, Exec, Message, Outcome, Parent, ReplicaState, Request, Sim, SpanRecord};
use crate::cause::{Cause, ErrorKind};
use crate::metrics::Completion;
use crate::net::{MsgId, Network};
use crate::rng;
use crate::slab::Key;
use crate::spec::Condition;
use kernel::EdgeKind;
use rand::RngExt;

impl<N: Network> Sim<N> {
    // ---------------------------------------------------------------------------------------
    // Requests and calls.
    // ---------------------------------------------------------------------------------------

    pub(super) fn on_arrival(&mut self) {
        if !self.arrivals_on {
            return;
        }
        let gap = rng::exponential(&mut self.rng_arrivals, 1e6 / self.cfg.rate_rps) as u64;
        self.schedule_in(gap.max(1), Event::Arrival);
        let u: f64 = self.rng_arrivals.random();
        let path = self
            .path_cdf
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.path_cdf.len() - 1);
        if self.requests.len() >= self.cfg.max_requests_in_flight {
            let n = self.spec.services.len();
            self.metrics.record_path(
                n,
                path,
                Completion {
                    latency_us: 0,
                    error: Some(Cause::Overload),
                    touched_fault: false,
                },
            );
            return;
        }
        let req = self.requests.insert(Request {
            path: path as u16,
            start: self.now,
        });
        self.tally.requests_started += 1;
        #[cfg(test)]
        if self.sabotage_now(super::Sabotage::DoubleCountStart) {
            self.tally.requests_started += 1;
        }
        let call = self.calls.insert(Call {
            parent: Parent::Request(req),
            path: path as u16,
            node: 0,
            callee: self.spec.paths[path].nodes[0].service as u16,
            caller: None,
            attempt: 0,
            awaiting: false,
            target: (0, 0),
            flags: Flags::default(),
        });
        self.start_attempt(call);
    }

    pub(super) fn start_attempt(&mut self, key: Key) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        // A retry of a call whose calling process has since stopped (restarted, scaled away):
        // nobody is left to send it.
        if let Parent::Exec(exec) = call.parent
            && self.execs.get(exec).is_none()
        {
            self.calls.remove(key);
            return;
        }
        let call = self.calls.get_mut(key).expect("checked above");
        call.attempt += 1;
        call.awaiting = true;
        let (attempt, callee, caller, path, node) =
            (call.attempt, call.callee, call.caller, call.path, call.node);
        let fail = |sim: &mut Self, kind, cause, retryable| {
            sim.schedule_in(
                0,
                Event::Fail {
                    call: key,
                    attempt,
                    kind,
                    cause,
                    retryable,
                },
            );
        };
        let counters = &mut self.services[callee as usize].counters;
        if attempt == 1 {
            counters.calls += 1;
        } else {
            counters.retries += 1;
        }
        if let Some((cs, _)) = caller {
            if attempt == 1 {
                let tokens = &mut self.services[cs as usize].retry_tokens[callee as usize];
                *tokens =
                    (*tokens + self.cfg.retries.budget_ratio).min(self.cfg.retries.budget_cap);
            }
            if let Some(&cause) = self.services[cs as usize].breakers.get(&callee) {
                let cause = self.fault_outage(callee).unwrap_or(cause);
                fail(self, ErrorKind::BreakerOpen, cause, false);
                return;
            }
        }
        if attempt == 1
            && let Some(spans) = &mut self.spans
        {
            spans.push(SpanRecord {
                time: self.now,
                caller: caller.map(|c| c.0),
                callee,
            });
        }
        let Some(replica) = self.pick_replica(callee) else {
            let cause = self.unavailable_cause(callee);
            fail(self, ErrorKind::Unavailable, cause, true);
            return;
        };
        let generation = self.services[callee as usize].replicas[replica as usize].generation;
        let call = self.calls.get_mut(key).expect("checked above");
        call.target = (replica, generation);
        let timeout = self.timeouts_us[path as usize][node as usize];
        self.schedule_in(timeout, Event::Timeout { call: key, attempt });
        // Injected link faults, applied here so both network backends see them.
        let mut delay = self.services[callee as usize].replicas[replica as usize].net_delay_us;
        if let Some((cs, cr)) = caller {
            let from = &self.services[cs as usize].replicas[cr as usize];
            delay += from.net_delay_us;
            if let Some(&(_, cause)) = from.blocked.iter().find(|(to, _)| *to == callee) {
                // Dropped on the wire: the caller learns of it only by its timeout.
                let call = self.calls.get_mut(key).expect("checked above");
                call.flags.merge(Flags::of(cause));
                return;
            }
        }
        let msg = self.msgs.insert(Message::Request {
            call: key,
            attempt,
            service: callee,
            replica,
            generation,
        });
        let from = caller.map_or(self.spec.services.len(), |c| c.0 as usize);
        self.net.send(
            self.now,
            from,
            callee as usize,
            MsgId(key_to_msg(msg)),
            delay,
        );
    }

    pub(super) fn pick_replica(&mut self, service: u16) -> Option<u32> {
        let rt = &mut self.services[service as usize];
        let n = rt.replicas.len();
        for i in 0..n {
            let r = (rt.rr + i) % n;
            if rt.replicas[r].serving() {
                rt.rr = (r + 1) % n;
                return Some(r as u32);
            }
        }
        None
    }

    pub(super) fn on_deliver(&mut self, msg: MsgId) {
        let Some(message) = self.msgs.remove(msg_to_key(msg.0)) else {
            return;
        };
        match message {
            Message::Request {
                call,
                attempt,
                service,
                replica,
                generation,
            } => self.on_request(call, attempt, service, replica, generation),
            Message::Response {
                call,
                attempt,
                outcome,
            } => self.on_response(call, attempt, outcome),
        }
    }

    pub(super) fn on_request(
        &mut self,
        call: Key,
        attempt: u32,
        service: u16,
        replica: u32,
        generation: u32,
    ) {
        let Some(c) = self.calls.get(call) else {
            return;
        };
        let caller = c.caller;
        let (path, node) = (c.path, c.node);
        self.services[service as usize].counters.received += 1;
        let rt = &self.services[service as usize];
        let Some(r) = rt.replicas.get(replica as usize) else {
            let cause = rt.scale_cause.unwrap_or(Cause::Overload);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Unavailable, cause),
            );
        };
        if r.generation != generation
            || matches!(r.state, ReplicaState::Down | ReplicaState::Starting)
        {
            // Connection refused or reset: the process the caller picked is gone.
            let cause = r.cause.unwrap_or(Cause::Overload);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Unavailable, cause),
            );
        }
        if r.state == ReplicaState::Hung {
            return; // accepted, never answered: the caller times out
        }
        let now = self.now;
        let rt = &mut self.services[service as usize];
        if let Some(l) = &mut rt.limiter {
            let elapsed = now.since(l.last).as_secs_f64();
            l.tokens = (l.tokens + elapsed * l.rps).min(l.rps.max(1.0));
            l.last = now;
            if l.tokens < 1.0 {
                let cause = l.cause;
                let cause = self.fault_outage(service).unwrap_or(cause);
                return self.respond(
                    call,
                    attempt,
                    service,
                    replica,
                    caller,
                    error(ErrorKind::RateLimited, cause),
                );
            }
            l.tokens -= 1.0;
        }
        let max = self.spec.services[service as usize].max_inflight;
        if self.services[service as usize].replicas[replica as usize].inflight >= max {
            let cause = self.blame(service);
            return self.respond(
                call,
                attempt,
                service,
                replica,
                caller,
                error(ErrorKind::Rejected, cause),
            );
        }
        let exec = self.execs.insert(Exec {
            call,
            attempt,
            caller,
            service,
            replica,
            path,
            node,
            stage: 0,
            pending: 0,
            failure: None,
            prev_miss: false,
            stage_miss: false,
            miss: false,
            flags: Flags::default(),
            admitted: now,
        });
        let r = &mut self.services[service as usize].replicas[replica as usize];
        r.inflight += 1;
        r.execs.push(exec);
        self.enqueue_cpu(service, replica, exec, false);
    }

    pub(super) fn enqueue_cpu(&mut self, service: u16, replica: u32, exec: Key, post: bool) {
        self.services[service as usize].replicas[replica as usize]
            .cpu_queue
            .push_back((exec, post));
        self.start_cpu(service, replica);
    }

    pub(super) fn start_cpu(&mut self, service: u16, replica: u32) {
        let spec = &self.spec.services[service as usize];
        let (cores, st) = (spec.cores, spec.service_time);
        let limit = self.services[service as usize].cpu_limit.map(|(l, _)| l);
        loop {
            let r = &mut self.services[service as usize].replicas[replica as usize];
            if r.busy >= cores {
                return;
            }
            let Some((exec, post)) = r.cpu_queue.pop_front() else {
                return;
            };
            r.busy += 1;
            let slowdown = limit.map_or(r.slowdown, |l| cpu_limited(r.slowdown, l));
            let share = if post { 0.2 } else { 0.8 };
            let z = self.rng_work.draw();
            let us = st.median_us * (st.sigma * z).exp() * share * slowdown;
            self.schedule_in(us.max(1.0) as u64, Event::Work { exec, post });
        }
    }

    pub(super) fn on_work(&mut self, key: Key, post: bool) {
        let Some(exec) = self.execs.get(key) else {
            return;
        };
        let (service, replica) = (exec.service, exec.replica);
        self.services[service as usize].replicas[replica as usize].busy -= 1;
        self.start_cpu(service, replica);
        if post {
            self.finish_exec(key, None);
            return;
        }
        // The request has been computed: does the service's configuration let it succeed?
        let rt = &self.services[service as usize];
        let config = &rt.configs[rt.current_config];
        if config.fail_fraction > 0.0 && self.rng_branches.random::<f64>() < config.fail_fraction {
            let cause = config.cause.unwrap_or(Cause::Overload);
            self.finish_exec(key, Some((ErrorKind::BadConfig, cause)));
            return;
        }
        if let Some(cache) = self.spec.services[service as usize].cache {
            let r = &self.services[service as usize].replicas[replica as usize];
            let warm_s = r
                .warm_since
                .map_or(f64::INFINITY, |t| self.now.since(t).as_secs_f64());
            let hit = cache.hit_ratio * (1.0 - (-warm_s / cache.warmup_s.max(1e-9)).exp());
            let miss = self.rng_branches.random::<f64>() >= hit;
            let cold = r.cold_cause.filter(|_| warm_s < 3.0 * cache.warmup_s);
            let exec = self.execs.get_mut(key).expect("checked above");
            exec.miss = miss;
            if let Some(cause) = cold {
                exec.flags.merge(Flags::of(cause));
            }
        }
        self.run_stage(key, 0);
    }

    pub(super) fn run_stage(&mut self, key: Key, stage: usize) {
        let Some(exec) = self.execs.get(key) else {
            return;
        };
        let (path, node, service, replica) = (
            exec.path as usize,
            exec.node as usize,
            exec.service,
            exec.replica,
        );
        let prev_miss = exec.prev_miss;
        let stages = self.spec.paths[path].nodes[node].stages.len();
        if stage >= stages {
            self.enqueue_cpu(service, replica, key, true);
            return;
        }
        let mut issue: Vec<usize> = Vec::new();
        for &child in &self.spec.paths[path].nodes[node].stages[stage] {
            let go = match self.spec.paths[path].nodes[child].condition {
                Condition::Always => true,
                Condition::OnMiss => prev_miss,
                Condition::Probability(p) => self.rng_branches.random::<f64>() < p,
            };
            if go {
                issue.push(child);
            }
        }
        let exec = self.execs.get_mut(key).expect("checked above");
        exec.stage = stage as u16;
        exec.pending = issue.len() as u16;
        exec.stage_miss = false;
        if issue.is_empty() {
            exec.prev_miss = false;
            return self.run_stage(key, stage + 1);
        }
        for child in issue {
            let call = self.calls.insert(Call {
                parent: Parent::Exec(key),
                path: path as u16,
                node: child as u16,
                callee: self.spec.paths[path].nodes[child].service as u16,
                caller: Some((service, replica)),
                attempt: 0,
                awaiting: false,
                target: (0, 0),
                flags: Flags::default(),
            });
            self.start_attempt(call);
        }
    }

    pub(super) fn finish_exec(&mut self, key: Key, error_: Option<(ErrorKind, Cause)>) {
        let Some(exec) = self.execs.remove(key) else {
            return;
        };
        let (service, replica) = (exec.service, exec.replica);
        #[cfg(test)]
        let skip = self.sabotage_now(super::Sabotage::SkipInflightDecrement);
        #[cfg(not(test))]
        let skip = false;
        let r = &mut self.services[service as usize].replicas[replica as usize];
        if !skip {
            r.inflight -= 1;
        }
        if let Some(i) = r.execs.iter().position(|&e| e == key) {
            r.execs.swap_remove(i);
        }
        let mut flags = exec.flags;
        if let Some(cause) = self.replica_disturbance(service, replica) {
            flags.merge(Flags::of(cause));
        }
        let err = error_.or(exec.failure.map(|c| (ErrorKind::Dependency, c)));
        self.metrics.record_service(
            service as usize,
            Completion {
                latency_us: self.now.since(exec.admitted).as_micros() as u64,
                error: err.map(|e| e.1),
                touched_fault: flags.fault,
            },
        );
        let outcome = Outcome {
            error: err,
            miss: exec.miss,
            flags,
        };
        self.respond(
            exec.call,
            exec.attempt,
            service,
            replica,
            exec.caller,
            outcome,
        );
    }

    pub(super) fn respond(
        &mut self,
        call: Key,
        attempt: u32,
        service: u16,
        replica: u32,
        caller: Option<(u16, u32)>,
        outcome: Outcome,
    ) {
        let mut delay = self.services[service as usize]
            .replicas
            .get(replica as usize)
            .map_or(0, |r| r.net_delay_us);
        if let Some((cs, cr)) = caller {
            let from = &self.services[cs as usize].replicas.get(cr as usize);
            if let Some(r) = from {
                delay += r.net_delay_us;
                if r.blocked.iter().any(|(to, _)| *to == service) {
                    return; // the answer is lost on the partitioned link
                }
            }
        }
        let msg = self.msgs.insert(Message::Response {
            call,
            attempt,
            outcome,
        });
        let to = caller.map_or(self.spec.services.len(), |c| c.0 as usize);
        self.net.send(
            self.now,
            service as usize,
            to,
            MsgId(key_to_msg(msg)),
            delay,
        );
    }

    pub(super) fn on_response(&mut self, key: Key, attempt: u32, outcome: Outcome) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        if call.attempt != attempt || !call.awaiting {
            return; // a late answer to an attempt already timed out or retried
        }
        call.awaiting = false;
        call.flags.merge(outcome.flags);
        match outcome.error {
            None => self.complete_call(key, outcome),
            Some((kind, cause)) => self.attempt_failed(key, kind, cause, true),
        }
    }

    pub(super) fn on_timeout(&mut self, key: Key, attempt: u32) {
        let Some(call) = self.calls.get(key) else {
            return;
        };
        if call.attempt != attempt || !call.awaiting {
            return;
        }
        let (callee, (replica, generation)) = (call.callee, call.target);
        let r = self.services[callee as usize]
            .replicas
            .get(replica as usize);
        let cause = r
            .filter(|r| r.generation == generation)
            .and_then(|r| match r.state {
                ReplicaState::Hung | ReplicaState::Down => r.cause,
                _ => None,
            })
            .or_else(|| self.replica_disturbance(callee, replica))
            .or_else(|| self.link_disturbance(key, callee))
            .or_else(|| {
                let call = self.calls.get(key).expect("checked above");
                call.flags
                    .fault
                    .then(|| self.blame(callee))
                    .filter(|c| c.is_fault())
            })
            .unwrap_or_else(|| self.blame(callee));
        let call = self.calls.get_mut(key).expect("checked above");
        call.awaiting = false;
        self.attempt_failed(key, ErrorKind::Timeout, cause, true);
    }

    pub(super) fn attempt_failed(
        &mut self,
        key: Key,
        kind: ErrorKind,
        cause: Cause,
        retryable: bool,
    ) {
        let Some(call) = self.calls.get_mut(key) else {
            return;
        };
        call.awaiting = false;
        call.flags.merge(Flags::of(cause));
        let retries = self.cfg.retries;
        let can_retry = retryable && call.attempt <= retries.max_retries;
        if let (true, Some((cs, _))) = (can_retry, call.caller) {
            let attempt = call.attempt;
            let tokens = &mut self.services[cs as usize].retry_tokens[call.callee as usize];
            if *tokens >= 1.0 {
                *tokens -= 1.0;
                let base =
                    retries.backoff_base_ms * 1000.0 * f64::from(1u32 << (attempt - 1).min(16));
                let jitter = 1.0 + 0.5 * self.rng_retries.random::<f64>();
                self.schedule_in((base * jitter) as u64, Event::Retry { call: key });
                return;
            }
        }
        let flags = self.calls.get(key).expect("checked above").flags;
        self.complete_call(
            key,
            Outcome {
                error: Some((kind, cause)),
                miss: false,
                flags,
            },
        );
    }

    pub(super) fn complete_call(&mut self, key: Key, outcome: Outcome) {
        let Some(call) = self.calls.remove(key) else {
            return;
        };
        #[cfg(test)]
        if self.sabotage_now(super::Sabotage::LeakCall) {
            self.calls.insert(call.clone());
        }
        let mut flags = call.flags;
        flags.merge(outcome.flags);
        match call.parent {
            Parent::Request(req) => {
                let Some(r) = self.requests.remove(req) else {
                    self.tally.ends_without_request += 1;
                    return;
                };
                self.tally.requests_ended += 1;
                let n = self.spec.services.len();
                self.metrics.record_path(
                    n,
                    r.path as usize,
                    Completion {
                        latency_us: self.now.since(r.start).as_micros() as u64,
                        error: outcome.error.map(|e| e.1),
                        touched_fault: flags.fault,
                    },
                );
            }
            Parent::Exec(exec_key) => {
                let is_cache =
                    self.edge_kinds[call.path as usize][call.node as usize] == EdgeKind::Cache;
                let Some(exec) = self.execs.get_mut(exec_key) else {
                    return;
                };
                exec.flags.merge(flags);
                if let Some((_, cause)) = outcome.error {
                    exec.failure.get_or_insert(cause);
                }
                if is_cache && outcome.miss {
                    exec.stage_miss = true;
                }
                exec.pending = exec.pending.saturating_sub(1);
                if exec.pending > 0 {
                    return;
                }
                if exec.failure.is_some() {
                    self.finish_exec(exec_key, None);
                } else {
                    exec.prev_miss = exec.stage_miss;
                    let next = exec.stage as usize + 1;
                    self.run_stage(exec_key, next);
                }
            }
        }
    }
}

pub(super) fn error(kind: ErrorKind, cause: Cause) -> Outcome {
    Outcome {
        error: Some((kind, cause)),
        miss: false,
        flags: Flags::of(cause),
    }
}
pub(super) fn key_to_msg(key: Key) -> u64 {
    let (idx, generation) = key_parts(key);
    (u64::from(generation) << 32) | u64::from(idx)
}

pub(super) fn msg_to_key(id: u64) -> Key {
    key_from_parts(id as u32, (id >> 32) as u32)
}

pub(super) fn key_parts(key: Key) -> (u32, u32) {
    crate::slab::parts(key)
}

pub(super) fn key_from_parts(idx: u32, generation: u32) -> Key {
    crate::slab::from_parts(idx, generation)
}

/// The slowdown a replica runs at under a CPU limit `limit` times the spec's: a stressor's
/// `slowdown` is the share of CPU it leaves, so more headroom divides it, but no limit makes the
/// work itself faster than unstressed (1); a limit below 1 throttles even a healthy replica.
pub(super) fn cpu_limited(slowdown: f64, limit: f64) -> f64 {
    (slowdown / limit).max(1.0)
}
