//! The key store: CRUD of the management API's keys in SQLite, each write reflected in the authz
//! index (and the replicas' key sets) before it returns. Blocking: run it off the async workers
//! (see [`Keys`](super::Keys)).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tollgate_policies::authz::{IndexWriter, SharedIndex};
use tracing::warn;

use super::index::{digests_of, entries_of, sets_of};
use super::rules::{self, KeySource, KeyStatus, MAX_GRACE};
use super::{Caller, KeyError, NewKey};
use crate::clock;
use crate::db::{Db, DbError, KeyRow};
use crate::origin::Origin;
use crate::replica::publish::KeySetPublisher;

/// The key store and the index it feeds. SQLite holds the keys; memory holds only the authz
/// index (digest, API, name, application, expiry), so a key costs about a hundred bytes here.
#[derive(Debug)]
pub struct KeyStore {
    pub(super) db: Arc<Db>,
    quota: u32,
    /// Serialises writes; each one updates the index before it returns.
    index: Mutex<IndexWriter>,
    /// Where each API's key set is published for remote authz replicas, when enabled.
    replicas: Option<KeySetPublisher>,
}

// === impl KeyStore ===

impl KeyStore {
    /// Loads every stored key, publishes the index and, with `replicas`, every API's key sets.
    /// The stored keys are read once for both.
    pub fn load(
        db: Arc<Db>,
        index: Arc<SharedIndex>,
        quota: u32,
        replicas: Option<KeySetPublisher>,
    ) -> Result<KeyStore, KeyError> {
        let now = clock::unix_secs();
        let rows = db.list_keys()?;
        let writer = IndexWriter::new(index, rows.iter().flat_map(|k| entries_of(k, now)));
        if let Some(p) = &replicas {
            p.publish_all(
                rows.iter()
                    .flat_map(|k| entries_of(k, now).into_iter().map(|(d, r)| (k.api.as_str(), d, r))),
            );
        }
        Ok(KeyStore {
            db,
            quota,
            index: Mutex::new(writer),
            replicas,
        })
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
        let now = clock::unix_secs();
        rules::check_expiry(new.expires_at, now)?;
        let name = match new.name {
            Some(n) => {
                rules::check_name(&n)?;
                n
            }
            None => rules::generated_name(api)?,
        };
        let (value, source) = match new.value {
            Some(v) => {
                rules::check_external(&v)?;
                (v, KeySource::External)
            }
            None => (rules::generate()?, KeySource::Local),
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
        let stamp = clock::rfc3339_now();
        let row = KeyRow {
            uuid: uuid::Uuid::now_v7().to_string(),
            api: api.to_string(),
            name,
            digest: rules::digest_hex(&value),
            masked: rules::mask(&value),
            status: KeyStatus::Active,
            source,
            created_at: stamp.clone(),
            created_by: user.to_string(),
            updated_at: stamp,
            expires_at: new.expires_at,
            application_id: new.application_id,
            application_name: new.application_name,
            plan: new.plan,
            previous_digest: None,
            previous_expires_at: None,
            origin: Origin::GatewayApi,
        };
        self.db.put_key(&row).map_err(conflict)?;
        index.change([], entries_of(&row, now));
        self.publish_sets(sets_of(api, digests_of(&row)));
        Ok((row, (source == KeySource::Local).then_some(value)))
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
        let now = clock::unix_secs();
        rules::check_expiry(expires_at, now)?;
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
        let value = rules::generate()?;
        let grace_end = grace
            .map(|g| now + g.as_secs() as i64)
            .map(|end| old.expires_at.map_or(end, |e| e.min(end)));
        let row = KeyRow {
            digest: rules::digest_hex(&value),
            masked: rules::mask(&value),
            source: KeySource::Local,
            updated_at: clock::rfc3339_now(),
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
        rules::check_external(value)?;
        let mut index = self.lock();
        let old = self
            .db
            .get_key(api, name)?
            .ok_or_else(|| KeyError::NotFound(name.into()))?;
        if old.created_by != user && !admin {
            return Err(KeyError::Forbidden(name.into()));
        }
        if old.source != KeySource::External {
            return Err(KeyError::Invalid(format!(
                "API key '{name}' was generated here: regenerate it instead"
            )));
        }
        let row = KeyRow {
            digest: rules::digest_hex(value),
            masked: rules::mask(value),
            updated_at: clock::rfc3339_now(),
            previous_digest: None,
            previous_expires_at: None,
            ..old.clone()
        };
        self.db.put_key(&row).map_err(conflict)?;
        index.change(digests_of(&old), entries_of(&row, clock::unix_secs()));
        self.publish_sets(sets_of(api, digests_of(&old).into_iter().chain(digests_of(&row))));
        Ok(row)
    }

    /// Revokes key `name` of `api` for `caller`. Only its creator or an admin may; a key the control
    /// plane pushed only an admin who says so (`control_plane_ok`), since the platform API owns it.
    /// Another user's key is treated exactly like an unknown one (`Ok(false)`, nothing changes), so
    /// the answer does not reveal that it exists; revoking an unknown key is not an error.
    pub fn revoke(&self, api: &str, name: &str, caller: &Caller<'_>) -> Result<bool, KeyError> {
        let mut index = self.lock();
        let Some(old) = self.db.get_key(api, name)? else {
            return Ok(false);
        };
        let from_control_plane = old.origin == Origin::ControlPlane;
        let own = !from_control_plane && old.created_by == caller.user;
        if !own && !caller.admin {
            return Ok(false);
        }
        if from_control_plane && !caller.control_plane_ok {
            return Err(KeyError::ControlPlane(name.into()));
        }
        let existed = self.db.delete_key(api, name)?;
        index.change(digests_of(&old), []);
        self.publish_sets(sets_of(api, digests_of(&old)));
        Ok(existed)
    }

    /// Forgets the keys of a deleted API (the database cascades).
    pub fn api_deleted(&self, api: &str) {
        let mut index = self.lock();
        index.remove_api(api);
        if let Some(p) = &self.replicas {
            p.api_deleted(api);
        }
    }

    /// Republishes the key sets `(api, shard)` from the database (no-op unless replicas are
    /// enabled). A set that cannot be read is left as it was, and logged.
    pub(super) fn publish_sets(&self, sets: impl IntoIterator<Item = (String, u8)>) {
        let Some(publisher) = &self.replicas else { return };
        let now = clock::unix_secs();
        let sets: BTreeSet<(String, u8)> = sets.into_iter().collect();
        let mut fresh = BTreeMap::new();
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
                .filter(|(d, _)| tollgate_proto::keys::shard_of(d) == shard)
                .collect();
            fresh.insert((api, shard), entries);
        }
        publisher.republish(fresh);
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, IndexWriter> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A storage conflict is the caller's (a duplicate name or value), not a failure.
pub(super) fn conflict(e: DbError) -> KeyError {
    match e {
        DbError::Conflict(m) => KeyError::Conflict(m.to_string()),
        other => KeyError::Db(other),
    }
}
