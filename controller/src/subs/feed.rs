//! Feeds usable subscriptions into the authz service's subscription index.
//! (Interim: holds them in memory until the hot-path index lands.)

use std::collections::HashMap;

use super::Usable;

/// The index the authz service reads.
pub type SubsIndex = ();

/// Writes the subscription index.
#[derive(Debug, Default)]
pub struct Feed {
    held: HashMap<String, Usable>,
}

// === impl Feed ===

impl Feed {
    /// Replaces everything with `all`.
    pub fn replace_all(&mut self, all: impl Iterator<Item = Usable>) {
        self.held = all.map(|u| (u.id.clone(), u)).collect();
    }

    /// Adds or replaces one subscription.
    pub fn put(&mut self, u: Usable) {
        self.held.insert(u.id.clone(), u);
    }

    /// Removes one subscription.
    pub fn remove(&mut self, id: &str) {
        self.held.remove(id);
    }

    /// The subscription with `id`, if usable.
    pub fn get(&self, id: &str) -> Option<&Usable> {
        self.held.get(id)
    }
}
