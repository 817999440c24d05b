//! The controller's side of the replica feature: each API's keys (digests, names, expiry) as
//! `tollgate.keys.v1.ApiKeySet` xDS resources, sent only to streams presenting the replica
//! token, and the wait for the replicas' ACKs that a key (or subscription) write answers after.
//! Subscription sets are published by [`super::sub_sets`].
//!
//! The keys of an API are split into up to 256 sets by the first byte of their digest (resource
//! `{api}/{byte:02x}`), so a write republishes one or two small sets, not all of the API's keys.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tollgate_policies::authz::KeyRecord;
use tollgate_policies::authz::index::Digest;
use tollgate_proto::keys::{self, ApiKeyDigest, ApiKeySet, set_name, shard_of};
use tollgate_xds::{CustomType, DEFAULT_GROUP, Resource, StatusRegistry, Store, TypeKind, Update, XdsServer};
use tracing::{info, warn};

use super::ReplicaError;
use super::token::{self, TokenRule};

/// Key sets, as xDS serves them beside Envoy's types (`keys` in the admin API's reports).
pub const KEY_SETS: CustomType = CustomType {
    type_url: keys::TYPE_URL,
    short: "keys",
};

/// Publishes key sets into the xDS store.
#[derive(Clone, Debug)]
pub struct KeySetPublisher {
    store: Arc<Store>,
}

/// How a key write waits for the remote authz replicas to hold it.
#[derive(Clone, Debug)]
pub struct ReplicaSync {
    pub store: Arc<tollgate_xds::Store>,
    pub status: Arc<tollgate_xds::StatusRegistry>,
    pub timeout: Duration,
}

/// Everything publishing to replicas needs, set up once at start.
#[derive(Debug)]
pub struct Publishing {
    /// Feeds the key store's writes to the replicas.
    pub publisher: KeySetPublisher,
    /// What REST key writes wait on.
    pub sync: ReplicaSync,
    rule: Arc<TokenRule>,
}

/// Registers the key-set and subscription-set types with xDS. The controller does this at start
/// whether or not it publishes, so its reports name the types (`keys`, `subs`) the same either way.
pub fn register_key_sets() -> Result<(), ReplicaError> {
    KEY_SETS.register()?;
    super::sub_sets::register_sub_sets()
}

// === impl Publishing ===

impl Publishing {
    /// Registers the key-set type with xDS and reads (or creates) the replica token in
    /// `data_dir`.
    pub fn prepare(
        data_dir: &Path,
        store: &Arc<Store>,
        status: &Arc<StatusRegistry>,
        timeout: Duration,
    ) -> Result<Publishing, ReplicaError> {
        let publisher = KeySetPublisher::new(store.clone())?;
        let (token, created) = token::replica_token(data_dir)?;
        if created {
            let file = data_dir.join(token::REPLICA_TOKEN_FILE);
            info!(file = %file.display(), "created the token authz replicas must present (copy it to them)");
        }
        Ok(Publishing {
            publisher,
            sync: ReplicaSync {
                store: store.clone(),
                status: status.clone(),
                timeout,
            },
            rule: Arc::new(TokenRule::new(&token)),
        })
    }

    /// `server`, sending key and subscription sets only to streams that present the token.
    pub fn guard(&self, server: XdsServer) -> XdsServer {
        server
            .with_access_rule(TypeKind::Custom, self.rule.clone())
            .with_access_rule(TypeKind::Custom2, self.rule.clone())
    }

    /// A publisher of subscription sets into the same store, holding nothing yet.
    pub fn sub_sets(&self) -> Result<super::SubSetPublisher, ReplicaError> {
        super::SubSetPublisher::new(self.sync.store.clone())
    }
}

// === impl ReplicaSync ===

impl ReplicaSync {
    /// Waits until every connected replica has ACKed everything published so far (at most the
    /// timeout); returns the node ids of those still behind. A zero timeout waits for nobody (the
    /// operator chose not to have writes confirmed).
    pub async fn wait(&self) -> Vec<String> {
        if self.timeout.is_zero() {
            return Vec::new();
        }
        let generation = self.store.group(DEFAULT_GROUP).generation();
        let started = tokio::time::Instant::now();
        let mut behind = self
            .status
            .wait_synced(TypeKind::Custom, generation, self.timeout)
            .await;
        // Replicas that do not follow subscription sets (older ones) are not waited for.
        let left = self.timeout.saturating_sub(started.elapsed());
        for node in self.status.wait_synced(TypeKind::Custom2, generation, left).await {
            if !behind.contains(&node) {
                behind.push(node);
            }
        }
        behind
    }
}

// === impl KeySetPublisher ===

impl KeySetPublisher {
    /// A publisher into `store`; registers the key-set type with xDS.
    pub fn new(store: Arc<Store>) -> Result<Self, ReplicaError> {
        KEY_SETS.register()?;
        Ok(KeySetPublisher { store })
    }

    /// Publishes every set, from all index entries of all keys (`(api, digest, record)`).
    pub fn publish_all<'a>(&self, entries: impl IntoIterator<Item = (&'a str, Digest, KeyRecord)>) {
        let mut shards: BTreeMap<(String, u8), Vec<(Digest, KeyRecord)>> = BTreeMap::new();
        for (api, d, r) in entries {
            shards.entry((api.to_string(), shard_of(&d))).or_default().push((d, r));
        }
        self.republish(shards);
    }

    /// Replaces each set `(api, shard)` with the given entries; a set left empty is removed.
    pub fn republish(&self, sets: BTreeMap<(String, u8), Vec<(Digest, KeyRecord)>>) {
        let mut update = Update::new();
        for ((api, shard), entries) in sets {
            match key_set(&api, shard, entries) {
                Some(r) => update.upsert(r),
                None => update.remove(TypeKind::Custom, set_name(&api, shard)),
            };
        }
        self.store.publish(DEFAULT_GROUP, update);
    }

    /// Removes every set of a deleted API.
    pub fn api_deleted(&self, api: &str) {
        let prefix = format!("{api}/");
        let mut update = Update::new();
        for name in self.store.group(DEFAULT_GROUP).names(TypeKind::Custom) {
            if name.starts_with(&prefix) {
                update.remove(TypeKind::Custom, name);
            }
        }
        self.store.publish(DEFAULT_GROUP, update);
    }
}

/// The key set resource `(api, shard)`; `None` when it has no key (or cannot be encoded).
fn key_set(api: &str, shard: u8, entries: Vec<(Digest, KeyRecord)>) -> Option<Arc<Resource>> {
    let keys = entries
        .iter()
        .map(|(d, r)| ApiKeyDigest::new(d, &r.name, r.application.as_deref(), r.expires_at));
    let set = ApiKeySet::build(api, keys)?;
    match Resource::custom(set_name(api, shard), &set, Vec::new()) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(api, error = %e, "cannot encode a key set");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sets_are_the_custom_type_named_keys() {
        register_key_sets().unwrap();
        assert_eq!(TypeKind::Custom.type_url(), keys::TYPE_URL);
        assert_eq!(TypeKind::Custom.short(), "keys");
        assert_eq!(TypeKind::from_type_url(keys::TYPE_URL), Some(TypeKind::Custom));
    }
}
