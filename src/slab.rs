//! A generational slab: values in a vector, addressed by a key of index and
//! generation, with freed slots reused.
//!
//! Socket tables use it so that a handle is an index (O(1) access) and
//! closing and reopening sockets does not grow the table. Each slot counts
//! how often it was filled, and a key carries the count it was issued
//! with: a key kept after its value was removed finds the slot's
//! generation moved on and addresses nothing, never the value that reused
//! the slot.
//!
//! # Example
//!
//! A key kept after its value was removed addresses nothing, even once the
//! slot is reused:
//!
//! ```
//! use netstrata::slab::Slab;
//!
//! let mut slab = Slab::new();
//! let old = slab.insert("first");
//! assert_eq!(slab.remove(old), Some("first"));
//! let new = slab.insert("second");
//! assert_eq!(new.index(), old.index()); // the slot is reused...
//! assert_ne!(new.generation(), old.generation()); // ...under a new generation
//! assert_eq!(slab.get(old), None);
//! assert_eq!(slab.get(new), Some(&"second"));
//! assert_eq!(slab.len(), 1);
//! ```

/// The address of a value in a [`Slab`]: its slot and the slot's
/// generation when the value was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlabKey {
    index: u32,
    /// 64 bits: a slot reused a million times a second would take half a
    /// million years to bring a stale key's generation round again.
    generation: u64,
}

impl SlabKey {
    /// The slot.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The slot's generation when the key was issued.
    pub fn generation(self) -> u64 {
        self.generation
    }
}

#[derive(Debug, Clone)]
struct Slot<T> {
    generation: u64,
    value: Option<T>,
}

/// Values addressed by a stable, generational key.
#[derive(Debug, Clone)]
pub struct Slab<T> {
    slots: Vec<Slot<T>>,
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
    /// An empty slab.
    pub fn new() -> Slab<T> {
        Slab::default()
    }

    /// The number of values held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` (in a freed slot if there is one) and returns its
    /// key.
    pub fn insert(&mut self, value: T) -> SlabKey {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    value: None,
                });
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 slots")
            }
        };
        let slot = &mut self.slots[index as usize];
        slot.generation = slot.generation.wrapping_add(1);
        slot.value = Some(value);
        self.len += 1;
        SlabKey {
            index,
            generation: slot.generation,
        }
    }

    /// Removes and returns the value of `key`, if it is still there.
    pub fn remove(&mut self, key: SlabKey) -> Option<T> {
        let slot = self
            .slots
            .get_mut(key.index())
            .filter(|s| s.generation == key.generation)?;
        let v = slot.value.take();
        if v.is_some() {
            self.free.push(key.index);
            self.len -= 1;
        }
        v
    }

    /// The value of `key`, if it is still there.
    pub fn get(&self, key: SlabKey) -> Option<&T> {
        self.slots
            .get(key.index())
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.value.as_ref())
    }

    /// The value of `key`, mutable.
    pub fn get_mut(&mut self, key: SlabKey) -> Option<&mut T> {
        self.slots
            .get_mut(key.index())
            .filter(|s| s.generation == key.generation)
            .and_then(|s| s.value.as_mut())
    }

    /// Every key and value, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (SlabKey, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            let key = SlabKey {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_ref().map(|v| (key, v))
        })
    }

    /// Every key and value, mutable.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (SlabKey, &mut T)> {
        self.slots.iter_mut().enumerate().filter_map(|(i, s)| {
            let key = SlabKey {
                index: i as u32,
                generation: s.generation,
            };
            s.value.as_mut().map(|v| (key, v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_and_stale_keys_address_nothing() {
        let mut s = Slab::new();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!((a.index(), b.index()), (0, 1));
        assert_eq!(s.len(), 2);
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(a), None);
        let c = s.insert("c");
        assert_eq!(c.index(), a.index());
        assert_ne!(c, a);
        // The stale key does not reach the value that reused its slot.
        assert_eq!(s.get(a), None);
        assert_eq!(s.get_mut(a), None);
        assert_eq!(s.remove(a), None);
        assert_eq!(s.get(c), Some(&"c"));
        assert_eq!(
            s.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec!["c", "b"]
        );
        *s.get_mut(b).unwrap() = "B";
        assert_eq!(s.get(b), Some(&"B"));
        assert_eq!(s.len(), 2);
    }
}
