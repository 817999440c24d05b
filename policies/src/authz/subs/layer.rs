//! A digest-keyed map as 256 shards, each a base plus a small layer of changes: the structure
//! behind both lookups of the subscription index.
//!
//! A write changes one shard; publishing copies that shard's small layer and 256 pointers, and a
//! shard's layer is merged into a new base of that shard alone (about 1/256 of the entries) past
//! a few changes. So neither a write nor a merge costs O(entries), and no write stalls on a
//! full rebuild.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::super::index::{Digest, DigestHasher};

type Map<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;
type Set = HashSet<Digest, BuildHasherDefault<DigestHasher>>;

const SHARDS: usize = 256;

/// The shard of a digest: its last byte (the hasher uses the first eight, which must vary
/// within a shard).
fn shard(d: &Digest) -> usize {
    usize::from(d[31])
}

/// One shard: the base and the changes since, as published.
#[derive(Debug)]
struct Part<V> {
    base: Arc<Map<V>>,
    /// Added or replaced since `base`; wins over it.
    added: Map<V>,
    /// In `base` but gone.
    removed: Set,
}

/// The read side: a published, immutable view.
#[derive(Debug)]
pub(super) struct Layer<V> {
    parts: Box<[Arc<Part<V>>]>,
}

/// The write side: every shard's state, the last published parts and which shards changed.
#[derive(Debug)]
pub(super) struct LayerWriter<V> {
    parts: Vec<Part<V>>,
    published: Vec<Arc<Part<V>>>,
    /// Shards changed since the last view.
    dirty: Vec<bool>,
    /// Changes a shard holds before they are merged into its base.
    merge_at: usize,
    merges: usize,
}

impl<V> Default for Part<V> {
    fn default() -> Self {
        Part {
            base: Arc::default(),
            added: Map::default(),
            removed: Set::default(),
        }
    }
}

impl<V> Part<V> {
    fn get(&self, d: &Digest) -> Option<&V> {
        if let Some(v) = self.added.get(d) {
            return Some(v);
        }
        if self.removed.contains(d) {
            return None;
        }
        self.base.get(d)
    }

    fn len(&self) -> usize {
        let shadowed = self.added.keys().filter(|d| self.base.contains_key(*d)).count();
        self.base.len() - self.removed.len() - shadowed + self.added.len()
    }

    fn layered(&self) -> usize {
        self.added.len() + self.removed.len()
    }
}

impl<V: Clone> Part<V> {
    fn copy(&self) -> Part<V> {
        Part {
            base: self.base.clone(),
            added: self.added.clone(),
            removed: self.removed.clone(),
        }
    }

    fn merge(&mut self) {
        let added = std::mem::take(&mut self.added);
        let removed = std::mem::take(&mut self.removed);
        let mut base: Map<V> = Map::with_capacity_and_hasher(self.base.len() + added.len(), Default::default());
        for (d, v) in self.base.iter() {
            if !removed.contains(d) && !added.contains_key(d) {
                base.insert(*d, v.clone());
            }
        }
        base.extend(added);
        self.base = Arc::new(base);
    }
}

impl<V> Default for Layer<V> {
    fn default() -> Self {
        Layer {
            parts: (0..SHARDS).map(|_| Arc::new(Part::default())).collect(),
        }
    }
}

impl<V> Layer<V> {
    /// The value of `d`; allocates nothing.
    pub(super) fn get(&self, d: &Digest) -> Option<&V> {
        self.parts.get(shard(d)).and_then(|p| p.get(d))
    }

    pub(super) fn len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    pub(super) fn layered(&self) -> usize {
        self.parts.iter().map(|p| p.layered()).sum()
    }
}

impl<V: Clone> LayerWriter<V> {
    /// An empty writer merging a shard's layer past `merge_at` changes.
    pub(super) fn new(merge_at: usize) -> Self {
        let published: Vec<Arc<Part<V>>> = (0..SHARDS).map(|_| Arc::new(Part::default())).collect();
        LayerWriter {
            parts: (0..SHARDS).map(|_| Part::default()).collect(),
            published,
            dirty: vec![false; SHARDS],
            merge_at,
            merges: 0,
        }
    }

    fn part_mut(&mut self, d: &Digest) -> Option<&mut Part<V>> {
        let s = shard(d);
        if let Some(flag) = self.dirty.get_mut(s) {
            *flag = true;
        }
        self.parts.get_mut(s)
    }

    pub(super) fn insert(&mut self, d: Digest, v: V) {
        if let Some(p) = self.part_mut(&d) {
            p.removed.remove(&d);
            p.added.insert(d, v);
        }
    }

    pub(super) fn remove(&mut self, d: &Digest) {
        if let Some(p) = self.part_mut(d) {
            p.added.remove(d);
            if p.base.contains_key(d) {
                p.removed.insert(*d);
            }
        }
    }

    pub(super) fn get(&self, d: &Digest) -> Option<&V> {
        self.parts.get(shard(d)).and_then(|p| p.get(d))
    }

    pub(super) fn merge_at(&self) -> usize {
        self.merge_at
    }

    pub(super) fn set_merge_at(&mut self, n: usize) {
        self.merge_at = n;
    }

    /// How many shard layers have been merged so far.
    #[cfg(test)]
    pub(super) fn merges(&self) -> usize {
        self.merges
    }

    /// Merges every shard's layer into its base now. O(entries).
    pub(super) fn merge_all(&mut self) {
        self.dirty.fill(true);
        for p in &mut self.parts {
            p.merge();
        }
        self.merges += SHARDS;
    }

    /// The view to publish: the changed shards copied (merged first if their layer is past
    /// `merge_at`), the others shared.
    pub(super) fn view(&mut self) -> Layer<V> {
        let changed = self
            .dirty
            .iter_mut()
            .zip(self.parts.iter_mut().zip(self.published.iter_mut()));
        for (dirty, (part, slot)) in changed {
            if !std::mem::take(dirty) {
                continue;
            }
            if part.layered() > self.merge_at {
                part.merge();
                self.merges += 1;
            }
            *slot = Arc::new(part.copy());
        }
        Layer {
            parts: self.published.iter().cloned().collect(),
        }
    }
}
