//! Leases: degradations a committed plan holds for a bounded time (DESIGN §6).
//!
//! A lease says "keep this step's effect for `ttl` seconds, then take it back". What "take it
//! back" means is fixed by the step's *declared inverse* (DESIGN §4), not by whatever the state
//! happened to be before the step, so that leases compose with each other and with later steps
//! on the same control. The algebra, per **knob** (one degradable control of one service: its
//! drained replicas, one breaker, its rate limit, its replica count):
//!
//! - The knob has a **base**: its value before the first live lease on it, updated by every
//!   later step that holds no lease (a permanent change).
//! - Every leased step adds a **hold** carrying the value it imposed; holds are kept in the
//!   order their steps were applied.
//! - The knob's value is the base combined with the holds: drained replicas are the union of the
//!   base's and every hold's; a breaker is open if the base or any hold opens it; a rate limit or
//!   replica count is the latest hold's value, else the base's (later writes win).
//! - When a hold expires (or the watchdog revokes it), it is removed and the knob is set to the
//!   value of what remains. So two overlapping rate limits, 150 rps for 30 s then 120 rps for
//!   600 s, leave 120 in force at 30 s and no limit at 600 s; a drain lease ends by undraining
//!   only the replicas no other hold or permanent drain still wants drained.
//! - A step that removes a degradation by its nature — `restore_traffic` — drops every hold on
//!   the service's drained replicas: there is nothing left for them to revert. Such a step may
//!   not carry a lease itself (`R17-bad-lease`), so a lease can never re-impose a degradation.
//!
//! Consequence (checked by a property test): once every lease of every committed plan has
//! expired, each knob is back at its base, so no degradation a plan introduced under a lease
//! remains.
//!
//! The book is pure bookkeeping; [`crate::txn::Kernel`] applies the operations it returns,
//! retries failed reverts with back-off and journals everything.

use crate::state::{ControlOp, ServiceControl};
use crate::time::VirtualTime;
use crate::txn::PlanId;
use std::collections::{BTreeMap, BTreeSet};

/// One degradable control of one service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Knob {
    /// The drained replicas of a service.
    Drained(String),
    /// The breaker on `caller → callee`.
    Breaker {
        /// Caller (whose side holds the breaker).
        caller: String,
        /// Callee.
        callee: String,
    },
    /// The ingress rate limit of a service.
    RateLimit(String),
    /// The replica count of a service.
    Replicas(String),
}

impl Knob {
    /// The knob `op` sets, if any (restarts and config changes set none a lease can hold).
    pub fn of(op: &ControlOp) -> Option<Knob> {
        Some(match op {
            ControlOp::SetDrained { service, .. } => Knob::Drained(service.clone()),
            ControlOp::SetBreaker { caller, callee, .. } => Knob::Breaker {
                caller: caller.clone(),
                callee: callee.clone(),
            },
            ControlOp::SetRateLimit { service, .. } => Knob::RateLimit(service.clone()),
            ControlOp::SetReplicas { service, .. } => Knob::Replicas(service.clone()),
            ControlOp::Restart { .. } | ControlOp::SetConfig { .. } => return None,
        })
    }

    /// The service whose state the knob is part of (the caller, for a breaker).
    pub fn service(&self) -> &str {
        match self {
            Knob::Drained(s) | Knob::RateLimit(s) | Knob::Replicas(s) => s,
            Knob::Breaker { caller, .. } => caller,
        }
    }
}

/// A knob's value, of the knob's own type.
#[derive(Clone, Debug, PartialEq)]
enum Value {
    Drained(BTreeSet<u32>),
    Open(bool),
    Limit(Option<f64>),
    Replicas(u32),
}

impl Value {
    /// The knob's value in `state`.
    fn read(knob: &Knob, state: &ServiceControl) -> Value {
        match knob {
            Knob::Drained(_) => Value::Drained(state.drained.clone()),
            Knob::Breaker { callee, .. } => Value::Open(state.open_breakers.contains(callee)),
            Knob::RateLimit(_) => Value::Limit(state.rate_limit),
            Knob::Replicas(_) => Value::Replicas(state.replicas),
        }
    }

    /// What `op` sets the knob to, relative to `before` for drains: the replicas the op added.
    fn imposed(op: &ControlOp, before: &ServiceControl) -> Value {
        match op {
            ControlOp::SetDrained { drained, .. } => {
                Value::Drained(drained.difference(&before.drained).copied().collect())
            }
            ControlOp::SetBreaker { open, .. } => Value::Open(*open),
            ControlOp::SetRateLimit { rps, .. } => Value::Limit(*rps),
            ControlOp::SetReplicas { replicas, .. } => Value::Replicas(*replicas),
            ControlOp::Restart { .. } | ControlOp::SetConfig { .. } => {
                unreachable!("Knob::of returns None for restarts and config changes")
            }
        }
    }
}

/// Which lease: the step of a committed plan that holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LeaseId {
    /// The plan.
    pub plan: PlanId,
    /// The step, numbered from 0 across the plan's stages.
    pub step: usize,
}

#[derive(Clone, Debug)]
struct Hold {
    id: LeaseId,
    value: Value,
    expires: VirtualTime,
    /// Reverts tried and failed so far.
    failures: u32,
}

#[derive(Clone, Debug)]
struct KnobHolds {
    base: Value,
    /// In the order their steps were applied.
    holds: Vec<Hold>,
}

impl KnobHolds {
    /// The knob's value with the holds `keep` selects.
    fn value(&self, keep: impl Fn(&Hold) -> bool) -> Value {
        let live = self.holds.iter().filter(|h| keep(h));
        match &self.base {
            Value::Drained(base) => {
                let mut all = base.clone();
                for h in live {
                    if let Value::Drained(d) = &h.value {
                        all.extend(d);
                    }
                }
                Value::Drained(all)
            }
            Value::Open(base) => Value::Open(
                *base
                    || live
                        .into_iter()
                        .any(|h| matches!(h.value, Value::Open(true))),
            ),
            base => live
                .last()
                .map_or_else(|| base.clone(), |h| h.value.clone()),
        }
    }
}

/// What ending one hold does to the system.
#[derive(Clone, Debug, PartialEq)]
pub struct Revert {
    /// The lease that ends.
    pub id: LeaseId,
    /// The operation that puts the knob at the value of what remains; `None` when the remaining
    /// holds or base keep the knob where it is (nothing to change).
    pub op: Option<ControlOp>,
}

/// Every live lease, kernel-wide. See the [module documentation](self).
#[derive(Clone, Debug, Default)]
pub struct LeaseBook {
    knobs: BTreeMap<Knob, KnobHolds>,
    /// Expiry order: (when, which) → knob.
    due: BTreeMap<(VirtualTime, LeaseId), Knob>,
}

/// Back-off before retrying a failed revert: 1, 2, 4, … seconds, at most a minute.
pub fn retry_backoff(failures: u32) -> std::time::Duration {
    std::time::Duration::from_secs(1u64 << failures.min(6)).min(std::time::Duration::from_secs(60))
}

impl LeaseBook {
    /// Live leases.
    pub fn len(&self) -> usize {
        self.due.len()
    }

    /// Whether no lease is live.
    pub fn is_empty(&self) -> bool {
        self.due.is_empty()
    }

    /// The earliest expiry (or retry) time.
    pub fn next_expiry(&self) -> Option<VirtualTime> {
        self.due.keys().next().map(|(t, _)| *t)
    }

    /// Leases due at `now`, earliest first, with the service each one's revert touches.
    pub fn due(&self, now: VirtualTime) -> Vec<(LeaseId, String)> {
        self.due
            .range(..=(now, LeaseId::max()))
            .map(|((_, id), knob)| (*id, knob.service().to_string()))
            .collect()
    }

    /// Records a committed step. `before` is the service's state just before the step, `lease`
    /// its expiry if it holds one. A step without a lease is a permanent change: it becomes the
    /// knob's base, and a `restore_traffic` (drained set emptied) drops the knob's holds.
    /// Returns the leases that this step made moot.
    pub fn record(
        &mut self,
        id: LeaseId,
        op: &ControlOp,
        before: &ServiceControl,
        lease: Option<VirtualTime>,
    ) -> Vec<LeaseId> {
        let Some(knob) = Knob::of(op) else {
            return Vec::new();
        };
        let imposed = Value::imposed(op, before);
        match lease {
            Some(expires) => {
                let entry = self.knobs.entry(knob.clone()).or_insert_with(|| KnobHolds {
                    base: Value::read(&knob, before),
                    holds: Vec::new(),
                });
                entry.holds.push(Hold {
                    id,
                    value: imposed,
                    expires,
                    failures: 0,
                });
                self.due.insert((expires, id), knob);
                Vec::new()
            }
            None => {
                let Some(entry) = self.knobs.get_mut(&knob) else {
                    return Vec::new();
                };
                let restore =
                    matches!(op, ControlOp::SetDrained { drained, .. } if drained.is_empty());
                match (&mut entry.base, imposed) {
                    (Value::Drained(base), Value::Drained(added)) if !restore => {
                        base.extend(added);
                        Vec::new()
                    }
                    (base, value) => {
                        *base = value;
                        self.drop_knob(&knob)
                    }
                }
            }
        }
    }

    /// Removes every hold on `knob`; returns their ids.
    fn drop_knob(&mut self, knob: &Knob) -> Vec<LeaseId> {
        let Some(entry) = self.knobs.remove(knob) else {
            return Vec::new();
        };
        entry
            .holds
            .into_iter()
            .map(|h| {
                self.due.remove(&(h.expires, h.id));
                h.id
            })
            .collect()
    }

    /// What ending lease `id` must do, given the service's current state; `None` if no such
    /// lease is live. Nothing changes until [`end`](Self::end) or [`postpone`](Self::postpone).
    pub fn revert(&self, id: LeaseId, current: &ServiceControl) -> Option<Revert> {
        let (knob, entry) = self.find(id)?;
        let rest = entry.value(|h| h.id != id);
        let with = entry.value(|_| true);
        let service = knob.service().to_string();
        let op = match (knob, rest) {
            (Knob::Drained(_), Value::Drained(keep)) => {
                let Value::Drained(all) = with else {
                    unreachable!("a drain knob's values are replica sets")
                };
                // Undrain only what this hold alone wanted drained; leave other changes be.
                let release: BTreeSet<u32> = all.difference(&keep).copied().collect();
                let drained: BTreeSet<u32> =
                    current.drained.difference(&release).copied().collect();
                (drained != current.drained).then_some(ControlOp::SetDrained { service, drained })
            }
            (Knob::Breaker { callee, .. }, Value::Open(open)) => {
                (open != current.open_breakers.contains(callee)).then(|| ControlOp::SetBreaker {
                    caller: service,
                    callee: callee.clone(),
                    open,
                })
            }
            (Knob::RateLimit(_), Value::Limit(rps)) => {
                (rps != current.rate_limit).then_some(ControlOp::SetRateLimit { service, rps })
            }
            (Knob::Replicas(_), Value::Replicas(n)) => {
                (n != current.replicas).then_some(ControlOp::SetReplicas {
                    service,
                    replicas: n,
                })
            }
            _ => unreachable!("a knob's holds and base share its value type"),
        };
        Some(Revert { id, op })
    }

    /// Ends lease `id` (its revert was applied, or the watchdog took the step back).
    pub fn end(&mut self, id: LeaseId) {
        let Some((knob, _)) = self.find(id) else {
            return;
        };
        let knob = knob.clone();
        let entry = self.knobs.get_mut(&knob).expect("found above");
        let at = entry
            .holds
            .iter()
            .position(|h| h.id == id)
            .expect("found above");
        let hold = entry.holds.remove(at);
        self.due.remove(&(hold.expires, id));
        if entry.holds.is_empty() {
            self.knobs.remove(&knob);
        }
    }

    /// A revert of lease `id` failed: keep the hold and try again after a back-off. Returns the
    /// number of failures so far and the retry time.
    pub fn postpone(&mut self, id: LeaseId, now: VirtualTime) -> Option<(u32, VirtualTime)> {
        let knob = self.find(id)?.0.clone();
        let entry = self.knobs.get_mut(&knob).expect("found above");
        let hold = entry.holds.iter_mut().find(|h| h.id == id)?;
        self.due.remove(&(hold.expires, id));
        hold.failures += 1;
        hold.expires = now.saturating_add(retry_backoff(hold.failures - 1));
        self.due.insert((hold.expires, id), knob);
        Some((hold.failures, hold.expires))
    }

    /// Extends lease `id` to expire at `expires`; false if no such lease is live.
    pub fn renew(&mut self, id: LeaseId, expires: VirtualTime) -> bool {
        let Some(knob) = self.find(id).map(|(k, _)| k.clone()) else {
            return false;
        };
        let entry = self.knobs.get_mut(&knob).expect("found above");
        let hold = entry
            .holds
            .iter_mut()
            .find(|h| h.id == id)
            .expect("found above");
        self.due.remove(&(hold.expires, id));
        hold.expires = expires;
        self.due.insert((expires, id), knob);
        true
    }

    /// Live leases that hold a breaker open, with the breaker's callee, in expiry order.
    pub fn open_breakers(&self) -> Vec<(LeaseId, String)> {
        self.due
            .iter()
            .filter_map(|((_, id), knob)| match knob {
                Knob::Breaker { callee, .. } => Some((*id, callee.clone())),
                _ => None,
            })
            .collect()
    }

    /// The expiry of lease `id`, if live.
    pub fn expiry(&self, id: LeaseId) -> Option<VirtualTime> {
        self.find(id)
            .and_then(|(_, e)| e.holds.iter().find(|h| h.id == id))
            .map(|h| h.expires)
    }

    /// Live leases of `plan`.
    pub fn of_plan(&self, plan: PlanId) -> impl Iterator<Item = LeaseId> + '_ {
        self.due
            .keys()
            .map(|(_, id)| *id)
            .filter(move |id| id.plan == plan)
    }

    fn find(&self, id: LeaseId) -> Option<(&Knob, &KnobHolds)> {
        let knob = self.due.iter().find(|((_, l), _)| *l == id)?.1;
        Some((knob, &self.knobs[knob]))
    }
}

impl LeaseId {
    fn max() -> LeaseId {
        LeaseId {
            plan: PlanId(u64::MAX),
            step: usize::MAX,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ControlState;

    fn id(plan: u64, step: usize) -> LeaseId {
        LeaseId {
            plan: PlanId(plan),
            step,
        }
    }

    fn state() -> ControlState {
        let mut s = ControlState::default();
        s.services
            .insert("geo".into(), ServiceControl::new(3, "v1"));
        s
    }

    /// Applies `op` with a lease expiring at `t` (or none), as the kernel does at commit.
    fn step(
        book: &mut LeaseBook,
        s: &mut ControlState,
        lease: LeaseId,
        op: ControlOp,
        t: Option<u64>,
    ) {
        let before = s.get("geo").unwrap().clone();
        s.apply(&op).unwrap();
        book.record(lease, &op, &before, t.map(VirtualTime::from_secs));
    }

    fn expire(book: &mut LeaseBook, s: &mut ControlState, now: u64) {
        for (lease, _) in book.due(VirtualTime::from_secs(now)) {
            let revert = book.revert(lease, s.get("geo").unwrap()).unwrap();
            if let Some(op) = revert.op {
                s.apply(&op).unwrap();
            }
            book.end(lease);
        }
    }

    fn limit(rps: f64) -> ControlOp {
        ControlOp::SetRateLimit {
            service: "geo".into(),
            rps: Some(rps),
        }
    }

    #[test]
    fn overlapping_rate_limits_end_in_order_and_leave_no_limit() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        step(&mut book, &mut s, id(1, 0), limit(150.0), Some(30));
        step(&mut book, &mut s, id(2, 0), limit(120.0), Some(600));
        expire(&mut book, &mut s, 30);
        assert_eq!(s.get("geo").unwrap().rate_limit, Some(120.0));
        expire(&mut book, &mut s, 600);
        assert_eq!(s.get("geo").unwrap().rate_limit, None);
        assert!(book.is_empty());
    }

    #[test]
    fn a_later_write_wins_until_it_expires() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        step(&mut book, &mut s, id(1, 0), limit(150.0), Some(600));
        step(&mut book, &mut s, id(2, 0), limit(120.0), Some(30));
        expire(&mut book, &mut s, 30);
        assert_eq!(s.get("geo").unwrap().rate_limit, Some(150.0));
        expire(&mut book, &mut s, 600);
        assert_eq!(s.get("geo").unwrap().rate_limit, None);
    }

    #[test]
    fn drain_leases_release_only_their_own_replicas() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        let drain = |d: &[u32]| ControlOp::SetDrained {
            service: "geo".into(),
            drained: d.iter().copied().collect(),
        };
        step(&mut book, &mut s, id(1, 0), drain(&[0]), Some(30));
        step(&mut book, &mut s, id(2, 0), drain(&[0, 1]), Some(60));
        expire(&mut book, &mut s, 30);
        assert_eq!(s.get("geo").unwrap().drained, [1].into());
        expire(&mut book, &mut s, 60);
        assert!(s.get("geo").unwrap().drained.is_empty());
    }

    #[test]
    fn restore_traffic_makes_drain_leases_moot() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        let op = ControlOp::SetDrained {
            service: "geo".into(),
            drained: [2].into(),
        };
        step(&mut book, &mut s, id(1, 0), op, Some(30));
        let before = s.get("geo").unwrap().clone();
        let restore = ControlOp::SetDrained {
            service: "geo".into(),
            drained: BTreeSet::new(),
        };
        s.apply(&restore).unwrap();
        assert_eq!(
            book.record(id(2, 0), &restore, &before, None),
            vec![id(1, 0)]
        );
        assert!(book.is_empty());
    }

    #[test]
    fn a_permanent_scale_supersedes_a_leased_one() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        let scale = |n| ControlOp::SetReplicas {
            service: "geo".into(),
            replicas: n,
        };
        step(&mut book, &mut s, id(1, 0), scale(5), Some(30));
        step(&mut book, &mut s, id(2, 0), scale(4), None);
        assert!(book.is_empty());
        assert_eq!(s.get("geo").unwrap().replicas, 4);
    }

    #[test]
    fn failed_reverts_back_off_and_stay_held() {
        let (mut book, mut s) = (LeaseBook::default(), state());
        step(&mut book, &mut s, id(1, 0), limit(150.0), Some(30));
        let now = VirtualTime::from_secs(30);
        assert_eq!(
            book.postpone(id(1, 0), now),
            Some((1, VirtualTime::from_secs(31)))
        );
        assert_eq!(
            book.postpone(id(1, 0), now),
            Some((2, VirtualTime::from_secs(32)))
        );
        assert_eq!(
            book.postpone(id(1, 0), now),
            Some((3, VirtualTime::from_secs(34)))
        );
        assert_eq!(book.len(), 1);
        assert!(book.due(VirtualTime::from_secs(33)).is_empty());
        assert_eq!(retry_backoff(20), std::time::Duration::from_secs(60));
    }
}
