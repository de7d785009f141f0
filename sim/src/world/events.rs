//! The event core: a min-heap of `(time, insertion sequence)` entries whose payloads wait in a
//! slab. Ties in time break by insertion order, so a run is a pure function of its inputs.

use super::Sim;
use crate::cause::{Cause, ErrorKind};
use crate::net::Network;
use crate::slab::{Key, Slab};
use std::collections::BinaryHeap;

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

/// A queue entry: small, ordered by (time, insertion sequence) only, earliest first; the event
/// itself waits in a slab.
#[derive(Clone, Copy, Debug)]
struct Scheduled {
    time: u64,
    seq: u64,
    payload: Key,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.time, self.seq) == (other.time, other.seq)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        // Reversed: BinaryHeap is a max-heap and the earliest event must come out first.
        (other.time, other.seq).cmp(&(self.time, self.seq))
    }
}

/// The time-ordered queue of scheduled events.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    payloads: Slab<Event>,
    seq: u64,
}

impl EventQueue {
    /// Schedules `event` at `at_us`, after everything already scheduled for that time.
    pub(super) fn push(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        let payload = self.payloads.insert(event);
        self.heap.push(Scheduled {
            time: at_us,
            seq: self.seq,
            payload,
        });
    }

    /// When the earliest event is due.
    pub(super) fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|s| s.time)
    }

    /// Removes the earliest event, with its time.
    pub(super) fn pop(&mut self) -> Option<(u64, Event)> {
        let scheduled = self.heap.pop()?;
        let event = self
            .payloads
            .remove(scheduled.payload)
            .expect("every entry has its payload");
        Some((scheduled.time, event))
    }

    /// Events scheduled.
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }

    /// Payloads stored (equal to [`EventQueue::len`] unless the queue is corrupt).
    pub(super) fn payloads(&self) -> usize {
        self.payloads.len()
    }

    /// The scheduled events, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Event> {
        self.payloads.iter().map(|(_, e)| e)
    }

    /// The earliest time of any entry, scanning the whole heap (the heap order itself is not
    /// trusted: this is for the invariant checker).
    pub(super) fn min_time_scan(&self) -> Option<u64> {
        self.heap.iter().map(|s| s.time).min()
    }
}

impl<N: Network> Sim<N> {
    pub(super) fn schedule_at(&mut self, at_us: u64, event: Event) {
        self.queue.push(at_us, event);
    }

    pub(super) fn schedule_in(&mut self, delay_us: u64, event: Event) {
        self.schedule_at(self.now.as_micros() + delay_us, event);
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
        assert_eq!(q.payloads(), 0);
        assert_eq!(q.pop().map(|(t, _)| t), None);
    }

    #[test]
    fn payload_slots_are_reused_without_aliasing() {
        let mut q = EventQueue::default();
        for round in 0..3u64 {
            for t in 0..100 {
                q.push(round * 1000 + t, Event::Second);
            }
            for _ in 0..100 {
                q.pop().expect("scheduled");
            }
        }
        assert_eq!((q.len(), q.payloads()), (0, 0));
    }
}
