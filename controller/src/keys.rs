//! Per-API keys (reference §1.6 and §4): generated from the OS random source, shown once, stored
//! as SHA-256 digests, and published to the ext_authz index before a write returns, so a revoked
//! key fails on the very next request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::rand::{SecureRandom, SystemRandom};
use tollgate_policies::authz::index::Digest;
use tollgate_policies::authz::{IndexWriter, KeyRecord, SharedIndex, digest_of};
use tollgate_proto::keys::{ApiKeyDigest, ApiKeySet};
use tollgate_xds::{DEFAULT_GROUP, Resource, Store, TypeKind, Update};
use tracing::warn;

use crate::db::{Db, DbError, KeyRow};

/// The longest rotation grace period.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);

/// The key store and the index it feeds. SQLite holds the keys; memory holds only the authz
/// index (digest, API, name, application, expiry), so a key costs about a hundred bytes here.
#[derive(Debug)]
pub struct Keys {
    db: Arc<Db>,
    quota: u32,
    /// Serialises writes; each one updates the index before it returns.
    index: Mutex<IndexWriter>,
    /// Where each API's key set is published for remote authz replicas, when enabled.
    replicas: Option<Arc<Store>>,
}

/// What a key is created with.
#[derive(Clone, Debug, Default)]
pub struct NewKey {
    pub name: Option<String>,
    /// An external value; generated when absent.
    pub value: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub application_id: Option<String>,
    pub application_name: Option<String>,
    pub plan: Option<String>,
}

/// A key pushed by the control plane: its digest, never its value.
#[derive(Clone, Debug, Default)]
pub struct PushedKey {
    /// The platform API's key UUID; empty when the event does not carry one (`apikey.updated`).
    pub uuid: String,
    /// The API handle.
    pub api: String,
    pub name: String,
    /// Lower-case hex SHA-256 of the trimmed key.
    pub digest: String,
    pub masked: String,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub created_by: String,
}

/// What storing a pushed key did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    Applied,
    /// The same key was already stored.
    Unchanged,
    /// Stale, or revoked before.
    Ignored,
}

/// The `cp_objects` kind that marks a key the control plane revoked.
pub const TOMBSTONE: crate::db::CpKind = crate::db::CpKind::RevokedKey;

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("API key '{0}' not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("only the creator of API key '{0}' may regenerate it")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("no OS randomness available")]
    Random,
}

// === impl Keys ===

impl Keys {
    /// Loads every stored key and publishes the index.
    pub fn load(db: Arc<Db>, index: Arc<SharedIndex>, quota: u32) -> Result<Keys, KeyError> {
        Self::load_with(db, index, quota, None)
    }

    /// [`Keys::load`], and with `replicas` also publishes every API's keys (digests, names,
    /// expiry) as `tollgate.keys.v1.ApiKeySet` xDS resources for remote authz replicas, now and
    /// after every write. The keys of an API are split into up to 256 sets by the first byte of
    /// their digest (resource `{api}/{byte:02x}`), so a write republishes one or two small sets,
    /// not all of the API's keys. The stored keys are read once for both.
    pub fn load_with(
        db: Arc<Db>,
        index: Arc<SharedIndex>,
        quota: u32,
        replicas: Option<Arc<Store>>,
    ) -> Result<Keys, KeyError> {
        let now = unix_now();
        let rows = db.list_keys()?;
        let writer = IndexWriter::new(index, rows.iter().flat_map(|k| entries_of(k, now)));
        if let Some(store) = &replicas {
            let mut shards: BTreeMap<(&str, u8), Vec<(Digest, KeyRecord)>> = BTreeMap::new();
            for k in &rows {
                for (d, r) in entries_of(k, now) {
                    shards.entry((k.api.as_str(), d[0])).or_default().push((d, r));
                }
            }
            let mut update = Update::new();
            for ((api, shard), entries) in shards {
                if let Some(r) = key_set(api, shard, entries) {
                    update.upsert(r);
                }
            }
            store.publish(DEFAULT_GROUP, update);
        }
        drop(rows);
        Ok(Keys {
            db,
            quota,
            index: Mutex::new(writer),
            replicas,
        })
    }

    /// Republishes the key sets `(api, shard)` (no-op unless replicas are enabled).
    fn publish_sets(&self, sets: impl IntoIterator<Item = (String, u8)>) {
        let Some(store) = &self.replicas else { return };
        let now = unix_now();
        let mut update = Update::new();
        let sets: BTreeSet<(String, u8)> = sets.into_iter().collect();
        for (api, shard) in sets {
            let rows = match self.db.list_keys_in_shard(&api, shard) {
                Ok(rows) => rows,
                Err(e) => {
                    warn!(api, error = %e, "cannot read keys to publish to replicas");
                    continue;
                }
            };
            let entries = rows
                .iter()
                .flat_map(|k| entries_of(k, now))
                .filter(|(d, _)| d[0] == shard)
                .collect();
            match key_set(&api, shard, entries) {
                Some(r) => update.upsert(r),
                None => update.remove(TypeKind::KeySet, set_name(&api, shard)),
            };
        }
        store.publish(DEFAULT_GROUP, update);
    }

    /// Active keys of `api`: all of them for an admin, else the caller's own.
    pub fn list(&self, api: &str, user: &str, admin: bool) -> Result<Vec<KeyRow>, KeyError> {
        let mut rows = self.db.list_keys_of(api)?;
        rows.retain(|k| admin || k.created_by == user);
        Ok(rows)
    }

    /// How many more keys `user` may create for `api` (0 if that cannot be read).
    pub fn remaining(&self, api: &str, user: &str) -> u32 {
        match self.db.count_keys(api, user) {
            Ok(used) => self.quota.saturating_sub(used),
            Err(e) => {
                warn!(error = %e, "cannot count keys");
                0
            }
        }
    }

    /// Creates a key for `api`; returns it and, for generated keys, the plaintext (shown once).
    pub fn create(&self, api: &str, user: &str, new: NewKey) -> Result<(KeyRow, Option<String>), KeyError> {
        let now = unix_now();
        check_expiry(new.expires_at, now)?;
        let name = match new.name {
            Some(n) => {
                check_name(&n)?;
                n
            }
            None => generated_name(api)?,
        };
        let (value, source) = match new.value {
            Some(v) => {
                check_external(&v)?;
                (v, "external")
            }
            None => (generate()?, "local"),
        };
        let mut index = self.lock();
        if self.db.get_key(api, &name)?.is_some() {
            return Err(KeyError::Conflict(format!(
                "an API key named '{name}' already exists for API '{api}'"
            )));
        }
        if self.db.count_keys(api, user)? >= self.quota {
            return Err(KeyError::Invalid(format!(
                "API key quota reached ({} per user per API)",
                self.quota
            )));
        }
        let stamp = crate::clock::rfc3339_now();
        let row = KeyRow {
            uuid: uuid::Uuid::now_v7().to_string(),
            api: api.to_string(),
            name,
            digest: hex(&digest_of(value.trim().as_bytes())),
            masked: mask(&value),
            status: "active".into(),
            source: source.into(),
            created_at: stamp.clone(),
            created_by: user.to_string(),
            updated_at: stamp,
            expires_at: new.expires_at,
            application_id: new.application_id,
            application_name: new.application_name,
            plan: new.plan,
            previous_digest: None,
            previous_expires_at: None,
            origin: "gateway_api".into(),
        };
        self.db.put_key(&row).map_err(conflict)?;
        index.change([], entries_of(&row, now));
        self.publish_sets(sets_of(api, digests_of(&row)));
        Ok((row, (source == "local").then_some(value)))
    }

    /// Gives key `name` a new generated value. With a grace period the old value keeps working
    /// until it ends; without, it stops before this returns.
    pub fn regenerate(
        &self,
        api: &str,
        name: &str,
        user: &str,
        expires_at: Option<i64>,
        grace: Option<Duration>,
    ) -> Result<(KeyRow, String), KeyError> {
        let now = unix_now();
        check_expiry(expires_at, now)?;
        if grace.is_some_and(|g| g > MAX_GRACE) {
            return Err(KeyError::Invalid("gracePeriod must not exceed 30 days".into()));
        }
        let mut index = self.lock();
        let old = self
            .db
            .get_key(api, name)?
            .ok_or_else(|| KeyError::NotFound(name.into()))?;
        if old.created_by != user {
            return Err(KeyError::Forbidden(name.into()));
        }
        let value = generate()?;
        let grace_end = grace
            .map(|g| now + g.as_secs() as i64)
            .map(|end| old.expires_at.map_or(end, |e| e.min(end)));
        let row = KeyRow {
            digest: hex(&digest_of(value.as_bytes())),
            masked: mask(&value),
            source: "local".into(),
            updated_at: crate::clock::rfc3339_now(),
            expires_at: expires_at.or(old.expires_at),
            previous_digest: grace_end.map(|_| old.digest.clone()),
            previous_expires_at: grace_end,
            ..old.clone()
        };
        self.db.put_key(&row).map_err(conflict)?;
        index.change(digests_of(&old), entries_of(&row, now));
        self.publish_sets(sets_of(api, digests_of(&old).into_iter().chain(digests_of(&row))));
        Ok((row, value))
    }

    /// Replaces the value of external key `name` with a caller-supplied one; the old value stops.
    pub fn replace(&self, api: &str, name: &str, user: &str, admin: bool, value: &str) -> Result<KeyRow, KeyError> {
        check_external(value)?;
        let mut index = self.lock();
        let old = self
            .db
            .get_key(api, name)?
            .ok_or_else(|| KeyError::NotFound(name.into()))?;
        if old.created_by != user && !admin {
            return Err(KeyError::Forbidden(name.into()));
        }
        if old.source != "external" {
            return Err(KeyError::Invalid(format!(
                "API key '{name}' was generated here: regenerate it instead"
            )));
        }
        let row = KeyRow {
            digest: hex(&digest_of(value.trim().as_bytes())),
            masked: mask(value),
            updated_at: crate::clock::rfc3339_now(),
            previous_digest: None,
            previous_expires_at: None,
            ..old.clone()
        };
        self.db.put_key(&row).map_err(conflict)?;
        index.change(digests_of(&old), entries_of(&row, unix_now()));
        self.publish_sets(sets_of(api, digests_of(&old).into_iter().chain(digests_of(&row))));
        Ok(row)
    }

    /// Revokes key `name` of `api`. Revoking an unknown key is not an error.
    pub fn revoke(&self, api: &str, name: &str) -> Result<bool, KeyError> {
        let mut index = self.lock();
        let old = self.db.get_key(api, name)?;
        let existed = self.db.delete_key(api, name)?;
        if let Some(old) = old {
            index.change(digests_of(&old), []);
            self.publish_sets(sets_of(api, digests_of(&old)));
        }
        Ok(existed)
    }

    /// Stores a key the control plane pushed (digest only). Idempotent: the same key twice, a
    /// stale update or a key that was revoked change nothing.
    pub fn put_pushed(&self, k: PushedKey) -> Result<Pushed, KeyError> {
        let mut index = self.lock();
        let mut change = Change::default();
        let out = self.put_pushed_locked(&mut change, k)?;
        change.apply(&mut index);
        self.publish_sets(std::mem::take(&mut change.sets));
        Ok(out)
    }

    /// [`Keys::put_pushed`] for many keys, with one index update at the end (sync).
    pub fn put_pushed_all(&self, keys: Vec<PushedKey>) -> Vec<(String, Result<Pushed, KeyError>)> {
        let mut index = self.lock();
        let mut change = Change::default();
        let out = keys
            .into_iter()
            .map(|k| {
                let uuid = k.uuid.clone();
                (uuid, self.put_pushed_locked(&mut change, k))
            })
            .collect();
        change.apply(&mut index);
        self.publish_sets(std::mem::take(&mut change.sets));
        out
    }

    fn put_pushed_locked(&self, change: &mut Change, k: PushedKey) -> Result<Pushed, KeyError> {
        if unhex(&k.digest).is_none() {
            return Err(KeyError::Invalid("apiKeyHashes.sha256 must be 64 hex digits".into()));
        }
        if self.db.has_cp_object(TOMBSTONE, &k.uuid)? {
            return Ok(Pushed::Ignored);
        }
        let existing = self.db.get_key(&k.api, &k.name)?;
        let mut replaced = false;
        if let Some(old) = &existing {
            if old.origin != "control_plane" {
                return Err(KeyError::Conflict(format!(
                    "a locally created API key named '{}' already exists for API '{}'",
                    k.name, k.api
                )));
            }
            if old.uuid == k.uuid || k.uuid.is_empty() {
                let stale = match (
                    crate::clock::parse_millis(&old.updated_at),
                    crate::clock::parse_millis(&k.updated_at),
                ) {
                    (Some(have), Some(got)) => got < have,
                    _ => false,
                };
                if stale {
                    return Ok(Pushed::Ignored);
                }
                if old.digest == k.digest && old.expires_at == k.expires_at && old.masked == k.masked {
                    return Ok(Pushed::Unchanged);
                }
            } else {
                replaced = true;
            }
        }
        let uuid = match (&k.uuid, &existing) {
            (u, _) if !u.is_empty() => u.clone(),
            (_, Some(old)) => old.uuid.clone(),
            _ => uuid::Uuid::now_v7().to_string(),
        };
        let row = KeyRow {
            uuid,
            api: k.api.clone(),
            name: k.name.clone(),
            digest: k.digest,
            masked: k.masked,
            status: "active".into(),
            source: "external".into(),
            created_at: k.created_at,
            created_by: k.created_by,
            updated_at: k.updated_at,
            expires_at: k.expires_at,
            application_id: None,
            application_name: None,
            plan: None,
            previous_digest: None,
            previous_expires_at: None,
            origin: "control_plane".into(),
        };
        if replaced {
            self.db.delete_key(&k.api, &k.name)?;
        }
        self.db.put_key(&row).map_err(conflict)?;
        if let Some(old) = &existing {
            change.sets.extend(sets_of(&row.api, digests_of(old)));
            change.remove.extend(digests_of(old));
        }
        change.add.extend(entries_of(&row, unix_now()));
        change.sets.extend(sets_of(&row.api, digests_of(&row)));
        Ok(Pushed::Applied)
    }

    /// Revokes a key the control plane revoked, leaving a tombstone so that a replayed creation
    /// does not bring it back.
    pub fn revoke_pushed(&self, api: &str, name: &str) -> Result<bool, KeyError> {
        let mut index = self.lock();
        let Some(old) = self.db.get_key(api, name)? else {
            return Ok(false);
        };
        self.db.put_cp_object(&crate::db::CpObject {
            kind: TOMBSTONE,
            id: old.uuid.clone(),
            api: Some(api.into()),
            body: serde_json::json!({"name": name}).to_string(),
            updated_at: crate::clock::rfc3339_now(),
        })?;
        self.db.delete_key(api, name)?;
        index.change(digests_of(&old), []);
        self.publish_sets(sets_of(api, digests_of(&old)));
        Ok(true)
    }

    /// Records that the control plane lists key `uuid` as revoked (bulk sync).
    pub fn tombstone(&self, uuid: &str, api: &str, name: &str) -> Result<(), KeyError> {
        if let Some(k) = self.db.key_by_uuid(uuid)? {
            self.revoke_pushed(&k.api, &k.name)?;
        } else {
            self.db.put_cp_object(&crate::db::CpObject {
                kind: TOMBSTONE,
                id: uuid.into(),
                api: Some(api.into()),
                body: serde_json::json!({"name": name}).to_string(),
                updated_at: crate::clock::rfc3339_now(),
            })?;
        }
        Ok(())
    }

    /// Every key the control plane pushed.
    pub fn pushed(&self) -> Result<Vec<KeyRow>, KeyError> {
        Ok(self.db.list_keys_by_origin("control_plane")?)
    }

    /// Forgets the keys of a deleted API (the database cascades).
    pub fn api_deleted(&self, api: &str) {
        let mut index = self.lock();
        index.remove_api(api);
        if let Some(store) = &self.replicas {
            let prefix = format!("{api}/");
            let mut update = Update::new();
            for name in store.group(DEFAULT_GROUP).names(TypeKind::KeySet) {
                if name.starts_with(&prefix) {
                    update.remove(TypeKind::KeySet, name);
                }
            }
            store.publish(DEFAULT_GROUP, update);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, IndexWriter> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Index changes collected over several pushed keys, applied at once.
#[derive(Default)]
struct Change {
    remove: Vec<Digest>,
    add: Vec<(Digest, KeyRecord)>,
    /// The key sets `(api, shard)` that changed.
    sets: BTreeSet<(String, u8)>,
}

impl Change {
    fn apply(&mut self, index: &mut IndexWriter) {
        if !self.remove.is_empty() || !self.add.is_empty() {
            index.change(std::mem::take(&mut self.remove), std::mem::take(&mut self.add));
        }
    }
}

/// What a stored key puts in the index: its digest, and its previous one while a rotation's grace
/// period lasts.
fn entries_of(k: &KeyRow, now: i64) -> Vec<(Digest, KeyRecord)> {
    let record = |expires_at: Option<i64>| KeyRecord {
        api: Arc::from(k.api.as_str()),
        name: Arc::from(k.name.as_str()),
        application: k
            .application_name
            .as_deref()
            .or(k.application_id.as_deref())
            .map(Arc::from),
        expires_at: expires_at.map(|t| t.max(0) as u64),
    };
    let mut out = Vec::with_capacity(2);
    if let Some(d) = unhex(&k.digest) {
        out.push((d, record(k.expires_at)));
    }
    if let (Some(d), Some(until)) = (k.previous_digest.as_deref().and_then(unhex), k.previous_expires_at)
        && until > now
    {
        out.push((d, record(Some(until))));
    }
    out
}

/// The resource name of a key set.
fn set_name(api: &str, shard: u8) -> String {
    format!("{api}/{shard:02x}")
}

/// The key sets that hold these digests.
fn sets_of(api: &str, digests: impl IntoIterator<Item = Digest>) -> Vec<(String, u8)> {
    digests.into_iter().map(|d| (api.to_string(), d[0])).collect()
}

/// The key set resource `(api, shard)` for remote replicas; `None` when it has no key.
fn key_set(api: &str, shard: u8, entries: Vec<(Digest, KeyRecord)>) -> Option<Arc<Resource>> {
    let mut keys: Vec<ApiKeyDigest> = entries
        .into_iter()
        .map(|(d, r)| ApiKeyDigest {
            sha256: d.to_vec(),
            name: r.name.to_string(),
            application: r.application.as_deref().unwrap_or("").to_string(),
            expires_at: r.expires_at.unwrap_or(0),
        })
        .collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort();
    let set = ApiKeySet {
        api: api.to_string(),
        keys,
    };
    let name = set_name(api, shard);
    match Resource::new(name, &set, Vec::new()) {
        Ok(r) => Some(r),
        Err(e) => {
            warn!(api, error = %e, "cannot encode a key set");
            None
        }
    }
}

/// The digests a stored key may have put in the index.
fn digests_of(k: &KeyRow) -> Vec<Digest> {
    [Some(k.digest.as_str()), k.previous_digest.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(unhex)
        .collect()
}

fn conflict(e: DbError) -> KeyError {
    match e {
        DbError::Conflict(m) => KeyError::Conflict(m.to_string()),
        other => KeyError::Db(other),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn check_expiry(expires_at: Option<i64>, now: i64) -> Result<(), KeyError> {
    match expires_at {
        Some(t) if t <= now => Err(KeyError::Invalid("expiry must be in the future".into())),
        _ => Ok(()),
    }
}

/// `^[a-z0-9]+([_-][a-z0-9]+)*$`, 3–63 characters.
pub fn check_name(name: &str) -> Result<(), KeyError> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let ok_shape = !name.starts_with(['-', '_'])
        && !name.ends_with(['-', '_'])
        && !name.contains("--")
        && !name.contains("__")
        && !name.contains("-_")
        && !name.contains("_-");
    if (3..=63).contains(&name.len()) && ok_chars && ok_shape {
        Ok(())
    } else {
        Err(KeyError::Invalid(format!(
            "invalid API key name '{name}': use 3-63 lower-case letters, digits, '-' or '_' (not at the ends, not doubled)"
        )))
    }
}

fn check_external(value: &str) -> Result<(), KeyError> {
    let len = value.trim().len();
    if (36..=128).contains(&len) && value.trim().bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(KeyError::Invalid("apiKey must be 36-128 printable characters".into()))
    }
}

/// `apip_` and 64 hex digits: 256 bits from the OS random source.
fn generate() -> Result<String, KeyError> {
    let mut bytes = [0u8; 32];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
    Ok(format!("apip_{}", hex(&bytes)))
}

fn generated_name(api: &str) -> Result<String, KeyError> {
    let mut bytes = [0u8; 4];
    SystemRandom::new().fill(&mut bytes).map_err(|_| KeyError::Random)?;
    let base: String = api
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let base: String = base.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    let base = if base.is_empty() {
        "api".to_string()
    } else {
        base.chars().take(40).collect()
    };
    Ok(format!("{base}-key-{}", hex(&bytes)))
}

/// `***` and the last five characters (`********` for five or fewer).
pub fn mask(value: &str) -> String {
    let v = value.trim();
    if v.len() <= 5 {
        "********".into()
    } else {
        format!("***{}", &v[v.len() - 5..])
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
