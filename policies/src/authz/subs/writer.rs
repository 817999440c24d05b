//! [`SubscriptionWriter`]: applies subscription changes and publishes them to the checks.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::super::index::{Digest, DigestHasher};
use super::layer::LayerWriter;
use super::{COMPACT_AT, Entry, SharedSubscriptions, SubsSnapshot, SubscriptionRecord, TokenSlot, app_digest};

/// Applies subscription changes to a [`SharedSubscriptions`]. Not shared: the owner serialises
/// writes. Every method publishes: checks that start after it returns see the change.
#[derive(Debug)]
pub struct SubscriptionWriter {
    shared: Arc<SharedSubscriptions>,
    /// Every subscription, by id: the truth the lookup maps are derived from.
    subs: HashMap<Arc<str>, Held>,
    /// Ids of the subscriptions of each (API, application) key; the map points at the smallest.
    app_ids: HashMap<Digest, Vec<Arc<str>>, BuildHasherDefault<DigestHasher>>,
    /// Token digest → the subscriptions it opens (one per API; a token may serve several APIs).
    tokens: LayerWriter<Arc<[TokenSlot]>>,
    apps: LayerWriter<Arc<Entry>>,
}

/// One subscription as the writer holds it.
#[derive(Debug)]
struct Held {
    entry: Arc<Entry>,
    token: Option<Digest>,
    /// A replaced token's digest, valid until the deadline (Unix seconds).
    grace: Option<(Digest, u64)>,
}

impl SubscriptionWriter {
    /// A writer of `shared`, starting empty (and publishing that).
    pub fn new(shared: Arc<SharedSubscriptions>) -> Self {
        let mut w = SubscriptionWriter {
            shared,
            subs: HashMap::new(),
            app_ids: HashMap::default(),
            tokens: LayerWriter::new(COMPACT_AT),
            apps: LayerWriter::new(COMPACT_AT),
        };
        w.publish();
        w
    }

    /// Merges a shard's layer once it holds more than `n` changes (default [`COMPACT_AT`]).
    pub fn compact_at(mut self, n: usize) -> Self {
        self.tokens.set_merge_at(n);
        self.apps.set_merge_at(n);
        self
    }

    /// Replaces every subscription by `entries` (token digest, record); a record without a digest
    /// is reachable only through its application. Quota counts are kept by subscription id.
    /// O(subscriptions).
    pub fn replace_all(&mut self, entries: impl IntoIterator<Item = (Option<Digest>, SubscriptionRecord)>) {
        self.subs.clear();
        self.app_ids.clear();
        self.tokens = LayerWriter::new(self.tokens.merge_at());
        self.apps = LayerWriter::new(self.apps.merge_at());
        for (token, record) in entries {
            self.detach(&record.id);
            let entry = self.entry(record);
            self.attach(Held {
                entry,
                token,
                grace: None,
            });
        }
        self.compact(super::super::unix_now());
    }

    /// Adds or replaces subscription `record.id`, opened by `token_digest` (if any). A grace
    /// digest left by [`SubscriptionWriter::set_token`] keeps working until its deadline.
    pub fn upsert(&mut self, token_digest: Option<Digest>, record: SubscriptionRecord) {
        let grace = self.detach(&record.id).and_then(|h| h.grace);
        let entry = self.entry(record);
        self.attach(Held {
            entry,
            token: token_digest,
            grace,
        });
        self.publish();
    }

    /// Removes subscription `id`; `false` if it was not there.
    pub fn remove(&mut self, id: &str) -> bool {
        let found = self.detach(id).is_some();
        if found {
            self.publish();
        }
        found
    }

    /// Removes every subscription of `api` (the API was deleted). O(subscriptions).
    pub fn remove_api(&mut self, api: &str) {
        let ids: Vec<Arc<str>> = self
            .subs
            .values()
            .filter(|h| &*h.entry.record.api == api)
            .map(|h| h.entry.record.id.clone())
            .collect();
        for id in &ids {
            self.detach(id);
        }
        self.publish();
    }

    /// Changes the token of subscription `id` (regeneration) to `token_digest`. With
    /// `grace_until` (Unix seconds), the previous token keeps working until then; without, it is
    /// refused from the next check on. `false` if `id` is unknown.
    pub fn set_token(&mut self, id: &str, token_digest: Option<Digest>, grace_until: Option<u64>) -> bool {
        let Some(held) = self.detach(id) else { return false };
        let grace = match (held.token, grace_until) {
            (Some(old), Some(until)) if Some(old) != token_digest => Some((old, until)),
            _ => None,
        };
        self.attach(Held {
            entry: held.entry,
            token: token_digest,
            grace,
        });
        self.publish();
        true
    }

    /// The subscription `id`, if indexed.
    pub fn get(&self, id: &str) -> Option<&SubscriptionRecord> {
        self.subs.get(id).map(|h| &h.entry.record)
    }

    /// How many subscriptions are indexed.
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    /// Merges the layers into new bases now, drops grace digests whose deadline is at or before
    /// `now`, and purges counters of subscriptions gone whose window is over. O(subscriptions):
    /// for a periodic sweep (a minute, say), not for every write.
    pub fn compact(&mut self, now: u64) {
        let ended: Vec<Arc<str>> = self
            .subs
            .iter()
            .filter(|(_, h)| h.grace.is_some_and(|(_, t)| t <= now))
            .map(|(id, _)| id.clone())
            .collect();
        for id in ended {
            if let Some(mut held) = self.detach(&id) {
                held.grace = None;
                self.attach(held);
            }
        }
        self.tokens.merge_all();
        self.apps.merge_all();
        self.publish();
        self.shared.quotas().purge(now);
    }

    fn entry(&self, record: SubscriptionRecord) -> Arc<Entry> {
        let counter = self.shared.quotas().counter(&record.id);
        Arc::new(Entry::new(record, counter))
    }

    /// Takes `id` out of every lookup map.
    fn detach(&mut self, id: &str) -> Option<Held> {
        let held = self.subs.remove(id)?;
        let digests = held.token.into_iter().chain(held.grace.map(|(d, _)| d));
        for d in digests {
            self.drop_token(&d, id);
        }
        let r = &held.entry.record;
        if let Some(app) = &r.application {
            let key = app_digest(&r.api, app);
            if let Some(ids) = self.app_ids.get_mut(&key) {
                ids.retain(|i| &**i != id);
                if ids.is_empty() {
                    self.app_ids.remove(&key);
                }
            }
            self.refresh_app(&key);
        }
        Some(held)
    }

    /// Puts `held` in every lookup map it belongs to.
    fn attach(&mut self, held: Held) {
        let entry = held.entry.clone();
        if let Some((d, until)) = held.grace {
            self.put_token(d, &entry, until);
        }
        if let Some(d) = held.token {
            self.put_token(d, &entry, u64::MAX);
        }
        let r = &entry.record;
        self.subs.insert(r.id.clone(), held);
        if let Some(app) = &r.application {
            let key = app_digest(&r.api, app);
            self.app_ids.entry(key).or_default().push(r.id.clone());
            self.refresh_app(&key);
        }
    }

    fn put_token(&mut self, d: Digest, entry: &Arc<Entry>, valid_until: u64) {
        let id = &entry.record.id;
        let mut slots: Vec<TokenSlot> = self
            .tokens
            .get(&d)
            .map(|s| s.iter().filter(|t| t.entry.record.id != *id).cloned().collect())
            .unwrap_or_default();
        slots.push(TokenSlot {
            entry: entry.clone(),
            valid_until,
        });
        self.tokens.insert(d, slots.into());
    }

    fn drop_token(&mut self, d: &Digest, id: &str) {
        let Some(slots) = self.tokens.get(d) else { return };
        let rest: Vec<TokenSlot> = slots.iter().filter(|t| &*t.entry.record.id != id).cloned().collect();
        if rest.is_empty() {
            self.tokens.remove(d);
        } else {
            self.tokens.insert(*d, rest.into());
        }
    }

    /// Points the (API, application) key at its smallest subscription id, or removes it.
    fn refresh_app(&mut self, key: &Digest) {
        let first = self
            .app_ids
            .get(key)
            .and_then(|ids| ids.iter().filter(|i| self.subs.contains_key(*i)).min().cloned());
        match first.and_then(|id| self.subs.get(&id)) {
            Some(h) => self.apps.insert(*key, h.entry.clone()),
            None => self.apps.remove(key),
        }
    }

    /// How many shard layers have been merged (for tests).
    #[cfg(test)]
    pub(super) fn merges(&self) -> usize {
        self.tokens.merges() + self.apps.merges()
    }

    fn publish(&mut self) {
        let snapshot = SubsSnapshot {
            tokens: self.tokens.view(),
            apps: self.apps.view(),
        };
        self.shared.publish(snapshot);
    }
}
