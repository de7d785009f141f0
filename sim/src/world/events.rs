//! The event core: a monotone queue of events ordered by `(time, insertion sequence)`
//! ([`MonotoneQueue`]). Ties in time break by insertion order, so a run is a pure function of
//! its inputs.

use super::Sim;
use crate::cause::{Cause, ErrorKind};
use crate::net::Network;
use crate::radix::MonotoneQueue;
use crate::slab::Key;

/// Something that happens at a point of simulated time.
#[derive(Clone, Copy, Debug)]
pub(super) enum Event {
    Arrival,
    Work {
        exec: Key,
        post: bool,
    },
    Timeout {
        call: Key,
        attempt: u32,
    },
    Retry {
        call: Key,
    },
    Fail {
        call: Key,
        attempt: u32,
        kind: ErrorKind,
        cause: Cause,
        retryable: bool,
    },
    Up {
        service: u16,
        replica: u32,
        generation: u32,
    },
    Probe,
    Second,
}

/// The time-ordered queue of scheduled events.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    queue: MonotoneQueue<Event>,
}

impl EventQueue {
    /// Schedules `event` at `at_us`, after everything already scheduled for that time.
    pub(super) fn push(&mut self, at_us: u64, event: Event) {
        self.queue.push(at_us, event);
    }

    /// When the earliest event is due.
    pub(super) fn peek_time(&mut self) -> Option<u64> {
        self.queue.peek_time()
    }

    /// Removes the earliest event, with its time.
    pub(super) fn pop(&mut self) -> Option<(u64, Event)> {
        self.queue.pop()
    }

    /// Events scheduled.
    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    /// The scheduled events, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Event> {
        self.queue.iter().map(|(_, e)| e)
    }

    /// The earliest time of any entry, scanning every entry (the queue's order itself is not
    /// trusted: this is for the invariant checker).
    pub(super) fn min_time_scan(&self) -> Option<u64> {
        self.queue.iter().map(|(t, _)| t).min()
    }
}

impl<N: Network> Sim<N> {
    pub(super) fn schedule_at(&mut self, at_us: u64, event: Event) {
        self.queue.push(at_us, event);
    }

    pub(super) fn schedule_in(&mut self, delay_us: u64, event: Event) {
        self.schedule_at(self.now.as_micros().saturating_add(delay_us), event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn earliest_first_and_ties_in_insertion_order() {
        let mut q = EventQueue::default();
        q.push(30, Event::Second);
        q.push(10, Event::Probe);
        q.push(10, Event::Arrival);
        q.push(20, Event::Second);
        assert_eq!(q.len(), 4);
        assert_eq!(q.peek_time(), Some(10));
        assert_eq!(q.min_time_scan(), Some(10));
        let order: Vec<(u64, &str)> = std::iter::from_fn(|| q.pop())
            .map(|(t, e)| {
                let name = match e {
                    Event::Probe => "probe",
                    Event::Arrival => "arrival",
                    Event::Second => "second",
                    _ => "other",
                };
                (t, name)
            })
            .collect();
        assert_eq!(
            order,
            vec![
                (10, "probe"),
                (10, "arrival"),
                (20, "second"),
                (30, "second")
            ]
        );
        assert_eq!(q.len(), 0);
        assert_eq!(q.pop().map(|(t, _)| t), None);
    }
}
