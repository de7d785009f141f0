//! A slab with generational keys: slots are reused deterministically (last freed first), and a
//! key to a freed slot never aliases its successor.

/// A key into a [`Slab`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    idx: u32,
    generation: u32,
}

/// Generational slab.
#[derive(Debug)]
pub struct Slab<T> {
    slots: Vec<(u32, Option<T>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T> Slab<T> {
    /// Stores `value`.
    pub fn insert(&mut self, value: T) -> Key {
        self.len += 1;
        if let Some(idx) = self.free.pop() {
            let slot = &mut self.slots[idx as usize];
            slot.0 = slot.0.wrapping_add(1);
            slot.1 = Some(value);
            return Key {
                idx,
                generation: slot.0,
            };
        }
        self.slots.push((0, Some(value)));
        Key {
            idx: (self.slots.len() - 1) as u32,
            generation: 0,
        }
    }

    /// The value under `key`, if it is still there.
    pub fn get(&self, key: Key) -> Option<&T> {
        match self.slots.get(key.idx as usize) {
            Some((generation, Some(v))) if *generation == key.generation => Some(v),
            _ => None,
        }
    }

    /// Mutable access to the value under `key`.
    pub fn get_mut(&mut self, key: Key) -> Option<&mut T> {
        match self.slots.get_mut(key.idx as usize) {
            Some((generation, Some(v))) if *generation == key.generation => Some(v),
            _ => None,
        }
    }

    /// Removes and returns the value under `key`.
    pub fn remove(&mut self, key: Key) -> Option<T> {
        match self.slots.get_mut(key.idx as usize) {
            Some((generation, slot @ Some(_))) if *generation == key.generation => {
                self.len -= 1;
                self.free.push(key.idx);
                slot.take()
            }
            _ => None,
        }
    }

    /// The values stored, with their keys, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &T)> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, (generation, v))| {
                v.as_ref().map(|v| {
                    (
                        Key {
                            idx: i as u32,
                            generation: *generation,
                        },
                        v,
                    )
                })
            })
    }

    /// Values stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The raw parts of a key, to pass it through a network message id.
pub(crate) fn parts(key: Key) -> (u32, u32) {
    (key.idx, key.generation)
}

/// A key from its raw parts.
pub(crate) fn from_parts(idx: u32, generation: u32) -> Key {
    Key { idx, generation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_keys_do_not_alias_reused_slots() {
        let mut s = Slab::default();
        let a = s.insert("a");
        assert_eq!(s.remove(a), Some("a"));
        let b = s.insert("b");
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&"b"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.len(), 1);
    }
}
