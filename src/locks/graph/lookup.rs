//! The graph's lookup tables, kept only while it is read: a table of 4-byte
//! indexes (a map with the key beside each index took 16 to 24 bytes a
//! slot), the key read back from the thread or lock itself.

use std::hash::Hasher;

use super::{FastHasher, Lock, Thread};

/// Thread ids and lock addresses are alike in their low bits (`0x7f3a…000`,
/// multiples of 8 or 64), which pick the slot: mixed so that they differ
/// (FxHash of one word leaves them as they are).
pub(super) fn mix(value: u64) -> u64 {
    let mixed = (value ^ value >> 31).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    mixed ^ mixed >> 29
}

fn text_hash(text: &[u8]) -> u64 {
    let mut hasher = FastHasher::default();
    hasher.write(text);
    mix(hasher.finish())
}

/// Locks by address value.
#[derive(Debug, Default, Clone)]
pub(super) struct LocksByValue(hashbrown::HashTable<u32>);

impl LocksByValue {
    fn value_at(locks: &[Lock], index: u32) -> Option<u64> {
        locks
            .get(index as usize)
            .and_then(|lock| lock.addr.as_value())
    }

    pub(super) fn get(&self, locks: &[Lock], value: u64) -> Option<u32> {
        self.0
            .find(mix(value), |&index| {
                Self::value_at(locks, index) == Some(value)
            })
            .copied()
    }

    pub(super) fn insert(&mut self, locks: &[Lock], value: u64, index: u32) {
        self.0.insert_unique(mix(value), index, |&index| {
            mix(Self::value_at(locks, index).unwrap_or(0))
        });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Threads by id (the cleaned id each thread keeps).
#[derive(Debug, Default, Clone)]
pub(super) struct ThreadsById(hashbrown::HashTable<u32>);

impl ThreadsById {
    fn id_at(threads: &[Thread], index: u32) -> &[u8] {
        threads
            .get(index as usize)
            .map_or(&[], |thread| thread.id.as_bytes())
    }

    pub(super) fn get(&self, threads: &[Thread], id: &str) -> Option<u32> {
        let id = id.as_bytes();
        self.0
            .find(text_hash(id), |&index| Self::id_at(threads, index) == id)
            .copied()
    }

    /// Points `id` at `index`, replacing an older thread of the same id (as
    /// a map's insert does: ids that clean to the same text).
    pub(super) fn insert(&mut self, threads: &[Thread], id: &[u8], index: u32) {
        let hash = text_hash(id);
        if let Some(slot) = self
            .0
            .find_mut(hash, |&other| Self::id_at(threads, other) == id)
        {
            *slot = index;
            return;
        }
        self.0
            .insert_unique(hash, index, |&other| text_hash(Self::id_at(threads, other)));
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
