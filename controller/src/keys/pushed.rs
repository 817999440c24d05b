//! Keys the control plane pushes (digests only): idempotent puts, stale updates ignored, and
//! revocations that leave a tombstone so that a replayed creation does not bring a key back.

use tollgate_proto::hex;

use super::KeyError;
use super::index::{Change, digests_of, sets_of};
use super::rules::{KeySource, KeyStatus};
use super::store::{KeyStore, conflict};
use crate::clock;
use crate::db::{CpObject, KeyRow};
use crate::origin::Origin;

/// The `cp_objects` kind that marks a key the control plane revoked.
pub const TOMBSTONE: crate::db::CpKind = crate::db::CpKind::RevokedKey;

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

/// What a pushed key meets in the store.
enum Meets {
    /// Nothing to do: the answer is this.
    Done(Pushed),
    /// Store it; `replaces` is a key of the same name under another UUID, deleted first.
    Store { replaces: bool },
}

// === impl KeyStore ===

impl KeyStore {
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

    /// [`KeyStore::put_pushed`] for many keys, with one index update at the end (sync).
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
        if hex::decode_digest(&k.digest).is_none() {
            return Err(KeyError::Invalid("apiKeyHashes.sha256 must be 64 hex digits".into()));
        }
        if self.db.has_cp_object(TOMBSTONE, &k.uuid)? {
            return Ok(Pushed::Ignored);
        }
        let existing = self.db.get_key(&k.api, &k.name)?;
        let replaces = match meets(existing.as_ref(), &k)? {
            Meets::Done(out) => return Ok(out),
            Meets::Store { replaces } => replaces,
        };
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
            status: KeyStatus::Active,
            source: KeySource::External,
            created_at: k.created_at,
            created_by: k.created_by,
            updated_at: k.updated_at,
            expires_at: k.expires_at,
            application_id: None,
            application_name: None,
            plan: None,
            previous_digest: None,
            previous_expires_at: None,
            origin: Origin::ControlPlane,
        };
        // One transaction keyed on the API and name, checked against the origin read above: a
        // failed insert leaves the old key as it was (in the database and the index alike).
        match existing.as_ref() {
            Some(old) if replaces => self.db.replace_key(&row, Some(old.origin)),
            _ => self.db.put_key(&row),
        }
        .map_err(conflict)?;
        change.replace(existing.as_ref(), &row, clock::unix_secs());
        Ok(Pushed::Applied)
    }

    /// Revokes a key the control plane revoked, leaving a tombstone so that a replayed creation
    /// does not bring it back.
    pub fn revoke_pushed(&self, api: &str, name: &str) -> Result<bool, KeyError> {
        self.remove_pushed_key(api, name, true)
    }

    /// Removes a control-plane key the platform API no longer lists, without a tombstone: absence
    /// from a listing is not a revocation, so a later event or listing may bring the key back.
    /// False when there was no such key.
    pub fn forget_pushed(&self, api: &str, name: &str) -> Result<bool, KeyError> {
        self.remove_pushed_key(api, name, false)
    }

    fn remove_pushed_key(&self, api: &str, name: &str, with_tombstone: bool) -> Result<bool, KeyError> {
        let mut index = self.lock();
        let Some(old) = self.db.get_key(api, name)? else {
            return Ok(false);
        };
        if with_tombstone {
            self.db.put_cp_object(&tombstone(&old.uuid, api, name))?;
        }
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
            self.db.put_cp_object(&tombstone(uuid, api, name))?;
        }
        Ok(())
    }

    /// Every key the control plane pushed.
    pub fn pushed(&self) -> Result<Vec<KeyRow>, KeyError> {
        Ok(self.db.list_keys_by_origin(Origin::ControlPlane)?)
    }
}

/// Decides what a pushed key `k` does given the key of the same name already stored.
fn meets(existing: Option<&KeyRow>, k: &PushedKey) -> Result<Meets, KeyError> {
    let Some(old) = existing else {
        return Ok(Meets::Store { replaces: false });
    };
    if old.origin != Origin::ControlPlane {
        return Err(KeyError::Conflict(format!(
            "a locally created API key named '{}' already exists for API '{}'",
            k.name, k.api
        )));
    }
    if old.uuid != k.uuid && !k.uuid.is_empty() {
        return Ok(Meets::Store { replaces: true });
    }
    let stale = match (clock::parse_millis(&old.updated_at), clock::parse_millis(&k.updated_at)) {
        (Some(have), Some(got)) => got < have,
        _ => false,
    };
    if stale {
        return Ok(Meets::Done(Pushed::Ignored));
    }
    if old.digest == k.digest && old.expires_at == k.expires_at && old.masked == k.masked {
        return Ok(Meets::Done(Pushed::Unchanged));
    }
    Ok(Meets::Store { replaces: false })
}

/// The tombstone of key `uuid` (`name` of `api`).
fn tombstone(uuid: &str, api: &str, name: &str) -> CpObject {
    CpObject {
        kind: TOMBSTONE,
        id: uuid.into(),
        api: Some(api.into()),
        body: serde_json::json!({"name": name}).to_string(),
        updated_at: clock::rfc3339_now(),
    }
}
