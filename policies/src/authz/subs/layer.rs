//! A digest-keyed map as a large immutable base plus a small layer of changes: the structure
//! behind both lookups of the subscription index.

use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::super::index::{Digest, DigestHasher};

type Map<V> = HashMap<Digest, V, BuildHasherDefault<DigestHasher>>;
type Set = HashSet<Digest, BuildHasherDefault<DigestHasher>>;

/// The read side: a published, immutable view.
#[derive(Debug)]
pub(super) struct Layer<V> {
    base: Arc<Map<V>>,
    /// Added or replaced since `base`; wins over it.
    added: Map<V>,
    /// In `base` but gone.
    removed: Set,
}

/// The write side: the same shape, changed in place and copied into a [`Layer`] to publish.
#[derive(Debug)]
pub(super) struct LayerWriter<V> {
    base: Arc<Map<V>>,
    added: Map<V>,
    removed: Set,
}

impl<V> Default for Layer<V> {
    fn default() -> Self {
        Layer {
            base: Arc::default(),
            added: Map::default(),
            removed: Set::default(),
        }
    }
}

impl<V> Layer<V> {
    /// The value of `d`; allocates nothing.
    pub(super) fn get(&self, d: &Digest) -> Option<&V> {
        if let Some(v) = self.added.get(d) {
            return Some(v);
        }
        if self.removed.contains(d) {
            return None;
        }
        self.base.get(d)
    }

    pub(super) fn len(&self) -> usize {
        let shadowed = self.added.keys().filter(|d| self.base.contains_key(*d)).count();
        self.base.len() - self.removed.len() - shadowed + self.added.len()
    }

    pub(super) fn layered(&self) -> usize {
        self.added.len() + self.removed.len()
    }
}

impl<V: Clone> LayerWriter<V> {
    /// A writer whose base holds `entries`.
    pub(super) fn new(entries: impl IntoIterator<Item = (Digest, V)>) -> Self {
        LayerWriter {
            base: Arc::new(entries.into_iter().collect()),
            added: Map::default(),
            removed: Set::default(),
        }
    }

    pub(super) fn insert(&mut self, d: Digest, v: V) {
        self.removed.remove(&d);
        self.added.insert(d, v);
    }

    pub(super) fn remove(&mut self, d: &Digest) {
        self.added.remove(d);
        if self.base.contains_key(d) {
            self.removed.insert(*d);
        }
    }

    pub(super) fn get(&self, d: &Digest) -> Option<&V> {
        if let Some(v) = self.added.get(d) {
            return Some(v);
        }
        if self.removed.contains(d) {
            return None;
        }
        self.base.get(d)
    }

    /// Changes held over the base.
    pub(super) fn layered(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// Merges the layer into a new base, keeping only what `keep` accepts. O(entries).
    pub(super) fn compact(&mut self, keep: impl Fn(&V) -> bool) {
        let added = std::mem::take(&mut self.added);
        let removed = std::mem::take(&mut self.removed);
        let mut base: Map<V> = Map::with_capacity_and_hasher(self.base.len() + added.len(), Default::default());
        for (d, v) in self.base.iter() {
            if !removed.contains(d) && !added.contains_key(d) && keep(v) {
                base.insert(*d, v.clone());
            }
        }
        base.extend(added.into_iter().filter(|(_, v)| keep(v)));
        self.base = Arc::new(base);
    }

    /// The view to publish: the base shared, the layer copied (O(layer)).
    pub(super) fn view(&self) -> Layer<V> {
        Layer {
            base: self.base.clone(),
            added: self.added.clone(),
            removed: self.removed.clone(),
        }
    }
}
