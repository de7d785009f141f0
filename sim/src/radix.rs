//! A monotone priority queue (radix heap) ordered by `(time, insertion sequence)`.
//!
//! A discrete-event simulation never schedules into its own past, so its queue can be a radix
//! heap: every entry sits in the bucket named by the highest bit in which its time differs from
//! the time popped last, and only the lowest non-empty bucket is ever examined, by spreading its
//! entries over the buckets below it. An entry moves a few times over its life instead of
//! sifting through `log n` levels of a binary heap on every push and pop.
//!
//! Entries due at the time popped last wait in bucket 0 in insertion order, so the pop order is
//! exactly `(time, insertion)` order — the order of the binary heap this replaced, which keeps
//! runs byte-identical.

use std::collections::VecDeque;

/// Bucket `b > 0` holds the entries whose time differs from the last popped time first in bit
/// `b - 1`.
const BUCKETS: usize = 65;

/// A queued value with its time and insertion sequence.
#[derive(Debug)]
struct Entry<T> {
    time: u64,
    seq: u64,
    value: T,
}

/// A min-queue of `T` by `(time, insertion order)`; times pushed must not precede the time of
/// the entry popped last.
#[derive(Debug)]
pub struct MonotoneQueue<T> {
    /// Entries due at `last`, in insertion order.
    due: VecDeque<Entry<T>>,
    /// `buckets[b]` for `b` in `1..BUCKETS`, unordered (`buckets[0]` is unused).
    buckets: Vec<Vec<Entry<T>>>,
    /// Bit `b` set ⇔ `buckets[b]` is non-empty.
    occupied: u128,
    /// The time popped last; every time pushed is at least this.
    last: u64,
    /// The earliest time queued, when known (a cache for `peek_time`).
    min: Option<u64>,
    seq: u64,
    len: usize,
}

impl<T> Default for MonotoneQueue<T> {
    fn default() -> Self {
        MonotoneQueue {
            due: VecDeque::new(),
            buckets: (0..BUCKETS).map(|_| Vec::new()).collect(),
            occupied: 0,
            last: 0,
            min: None,
            seq: 0,
            len: 0,
        }
    }
}

impl<T> MonotoneQueue<T> {
    /// Schedules `value` at `time`, after everything already queued for that time.
    ///
    /// # Panics
    /// If `time` precedes the time of the entry popped last: the simulation moved backwards,
    /// which is a bug in its caller, never a consequence of input.
    pub fn push(&mut self, time: u64, value: T) {
        assert!(
            time >= self.last,
            "scheduled at {time} µs, before the last event popped ({} µs)",
            self.last
        );
        self.seq += 1;
        self.min = match self.min {
            Some(m) => Some(m.min(time)),
            None if self.len == 0 => Some(time),
            None => None,
        };
        self.len += 1;
        let entry = Entry {
            time,
            seq: self.seq,
            value,
        };
        if time == self.last {
            // The newest entry of its time: it goes after every other one.
            self.due.push_back(entry);
        } else {
            self.put(entry);
        }
    }

    /// Files an entry later than `last` in its bucket.
    fn put(&mut self, entry: Entry<T>) {
        let b = (u64::BITS - (entry.time ^ self.last).leading_zeros()) as usize;
        self.occupied |= 1 << b;
        self.buckets[b].push(entry);
    }

    /// The earliest time in the lowest non-empty bucket.
    fn lowest_bucket_min(&self) -> Option<u64> {
        let b = self.occupied.trailing_zeros() as usize;
        let entries = self.buckets.get(b)?;
        entries.iter().map(|e| e.time).min()
    }

    /// The time of the earliest entry. Peeking does not advance the queue: what is pushed
    /// after a peek only has to follow the last *popped* entry.
    pub fn peek_time(&mut self) -> Option<u64> {
        if !self.due.is_empty() {
            return Some(self.last);
        }
        if self.min.is_none() {
            self.min = self.lowest_bucket_min();
        }
        self.min
    }

    /// Removes the earliest entry, with its time.
    pub fn pop(&mut self) -> Option<(u64, T)> {
        if self.due.is_empty() {
            let earliest = match self.min {
                Some(m) => m,
                None => self.lowest_bucket_min()?,
            };
            // Spread the lowest bucket below it: its earliest entries become due.
            let b = self.occupied.trailing_zeros() as usize;
            self.occupied &= !(1 << b);
            self.last = earliest;
            let mut entries = std::mem::take(&mut self.buckets[b]);
            for entry in entries.drain(..) {
                if entry.time == earliest {
                    self.due.push_back(entry);
                } else {
                    self.put(entry);
                }
            }
            // Hand the emptied vector back so the bucket keeps its capacity.
            self.buckets[b] = entries;
            // A bucket is unordered: restore insertion order among the entries now due.
            self.due.make_contiguous().sort_unstable_by_key(|e| e.seq);
        }
        let entry = self.due.pop_front()?;
        self.min = None;
        self.len -= 1;
        Some((entry.time, entry.value))
    }

    /// Entries queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries with their times, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &T)> {
        self.due
            .iter()
            .chain(self.buckets.iter().flatten())
            .map(|e| (e.time, &e.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;

    #[test]
    fn earliest_first_ties_in_insertion_order() {
        let mut q = MonotoneQueue::default();
        for (t, v) in [(30, 'a'), (10, 'b'), (10, 'c'), (20, 'd'), (u64::MAX, 'e')] {
            q.push(t, v);
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.peek_time(), Some(10));
        assert_eq!(q.pop(), Some((10, 'b')));
        q.push(10, 'f');
        let order: Vec<_> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            vec![(10, 'c'), (10, 'f'), (20, 'd'), (30, 'a'), (u64::MAX, 'e')]
        );
        assert!(q.is_empty());
        assert_eq!(q.peek_time(), None);
    }

    #[test]
    fn a_peek_does_not_forbid_pushing_before_the_peeked_entry() {
        let mut q = MonotoneQueue::default();
        q.push(100, 'a');
        assert_eq!(q.peek_time(), Some(100));
        q.push(50, 'b');
        assert_eq!(q.peek_time(), Some(50));
        assert_eq!(q.pop(), Some((50, 'b')));
        q.push(60, 'c');
        assert_eq!(q.pop(), Some((60, 'c')));
        assert_eq!(q.pop(), Some((100, 'a')));
    }

    #[test]
    #[should_panic(expected = "before the last event popped")]
    fn scheduling_into_the_past_is_refused() {
        let mut q = MonotoneQueue::default();
        q.push(10, ());
        q.pop();
        q.push(9, ());
    }

    proptest! {
        /// Against the binary heap of `(time, sequence)` it replaced: any interleaving of
        /// pushes (never before the last pop), peeks and pops gives the same answers. Delays
        /// span twelve orders of magnitude (every bucket) and repeat often, so ties are common.
        #[test]
        fn answers_as_a_binary_heap_does(
            ops in proptest::collection::vec((0u8..3, 0u64..20, 0u32..7), 1..400)
        ) {
            let mut q = MonotoneQueue::default();
            let mut reference = BinaryHeap::new();
            let (mut now, mut seq) = (0u64, 0u64);
            for (i, (op, delay, scale)) in ops.into_iter().enumerate() {
                match op {
                    0 => {
                        let t = now + delay * 10u64.pow(2 * scale);
                        seq += 1;
                        q.push(t, i);
                        reference.push(Reverse((t, seq, i)));
                    }
                    1 => {
                        let got = q.pop();
                        prop_assert_eq!(got, reference.pop().map(|Reverse((t, _, v))| (t, v)));
                        if let Some((t, _)) = got {
                            now = t;
                        }
                    }
                    _ => {
                        let want = reference.peek().map(|Reverse((t, _, _))| *t);
                        prop_assert_eq!(q.peek_time(), want);
                    }
                }
                prop_assert_eq!(q.len(), reference.len());
                prop_assert_eq!(q.iter().count(), reference.len());
            }
        }
    }
}
