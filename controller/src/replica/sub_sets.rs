//! The controller's side of subscriptions for replicas: every usable subscription (token digest,
//! grace digest and deadline, id, application, plan limit and expiry; never a token) as
//! `tollgate.subs.v1.SubscriptionSet` xDS resources, sent only to streams presenting the replica
//! token, beside the key sets.
//!
//! The subscriptions of an API are split into up to 256 sets by the FNV hash of their id
//! (`tollgate_proto::subs::shard_of`), so a write republishes one small set. The publisher keeps
//! its own copy of what it published: a write changes the copy, and [`SubSetPublisher::flush`]
//! republishes only the sets it touched.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use tollgate_proto::hex::decode_digest;
use tollgate_proto::subs::{self, SubscriptionDigest, SubscriptionSet, set_name, shard_of};
use tollgate_xds::{CustomType, DEFAULT_GROUP, Resource, Store, TypeKind, Update};
use tracing::warn;

use super::ReplicaError;
use crate::subs::Usable;

/// Subscription sets, as xDS serves them (`subs` in the admin API's reports).
pub const SUB_SETS: CustomType = CustomType {
    type_url: subs::TYPE_URL,
    short: "subs",
};

/// Registers the subscription-set type with xDS (as its second custom type).
pub fn register_sub_sets() -> Result<(), ReplicaError> {
    Ok(SUB_SETS.register_second()?)
}

/// A set: its API and shard.
type SetKey = (String, u8);

/// Publishes subscription sets into the xDS store. Not shared: its owner serialises writes.
#[derive(Debug)]
pub struct SubSetPublisher {
    store: Arc<Store>,
    /// What each set holds, by subscription id.
    sets: BTreeMap<SetKey, BTreeMap<String, SubscriptionDigest>>,
    /// The set each subscription is in.
    placed: HashMap<String, SetKey>,
    /// Sets changed since the last flush.
    touched: BTreeSet<SetKey>,
}

// === impl SubSetPublisher ===

impl SubSetPublisher {
    /// A publisher into `store`, holding nothing yet; registers the type with xDS.
    pub fn new(store: Arc<Store>) -> Result<Self, ReplicaError> {
        register_sub_sets()?;
        Ok(SubSetPublisher {
            store,
            sets: BTreeMap::new(),
            placed: HashMap::new(),
            touched: BTreeSet::new(),
        })
    }

    /// Adds or replaces subscription `u` (published at the next flush).
    pub fn put(&mut self, u: &crate::subs::Usable) {
        let key = (u.api.clone(), shard_of(&u.id));
        if self.placed.get(&u.id).is_some_and(|k| *k != key) {
            self.remove(&u.id);
        }
        self.sets.entry(key.clone()).or_default().insert(u.id.clone(), wire(u));
        self.placed.insert(u.id.clone(), key.clone());
        self.touched.insert(key);
    }

    /// Removes subscription `id` (at the next flush); nothing if it was not there.
    pub fn remove(&mut self, id: &str) {
        let Some(key) = self.placed.remove(id) else { return };
        if let Some(set) = self.sets.get_mut(&key) {
            set.remove(id);
            if set.is_empty() {
                self.sets.remove(&key);
            }
        }
        self.touched.insert(key);
    }

    /// Republishes every set touched since the last flush (a set left empty is removed), in one
    /// store update.
    pub fn flush(&mut self) {
        if self.touched.is_empty() {
            return;
        }
        let mut update = Update::new();
        for key in std::mem::take(&mut self.touched) {
            let name = set_name(&key.0, key.1);
            match self.sets.get(&key).and_then(|s| resource(&key.0, &name, s)) {
                Some(r) => update.upsert(r),
                None => update.remove(TypeKind::Custom2, name),
            };
        }
        self.store.publish(DEFAULT_GROUP, update);
    }

    /// The set `(api, shard)` as it would be published (tests and reports).
    pub fn set(&self, api: &str, shard: u8) -> Option<SubscriptionSet> {
        let members = self.sets.get(&(api.to_string(), shard))?;
        SubscriptionSet::build(api, members.values().cloned())
    }
}

/// The wire form of `u`: digests only.
fn wire(u: &Usable) -> SubscriptionDigest {
    let record = crate::subs::record(u);
    let token = u.token_hash.as_deref().and_then(decode_digest);
    let grace = u
        .previous
        .as_ref()
        .and_then(|(h, until)| decode_digest(h).map(|d| (d, *until)));
    tollgate_policies::authz::subs::to_wire(token.as_ref(), &record, grace.as_ref().map(|(d, t)| (d, *t)))
}

/// The resource of set `name`; `None` when it is empty (or cannot be encoded).
fn resource(api: &str, name: &str, members: &BTreeMap<String, SubscriptionDigest>) -> Option<Arc<Resource>> {
    let set = SubscriptionSet::build(api, members.values().cloned())?;
    match Resource::custom(name, &set, Vec::new()) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(api, error = %e, "cannot encode a subscription set");
            None
        }
    }
}

#[cfg(test)]
mod tests;
