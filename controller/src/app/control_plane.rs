//! What the control plane pushes besides APIs: API keys (as digests), key revocations, and the
//! subscriptions, plans and applications Tollgate stores but does not enforce yet. Every call is
//! idempotent and runs its SQLite work on the blocking pool.

use super::{App, AppError, blocking};
use crate::db::{CpKind, CpObject, KeyRow};
use crate::keys::{KeyError, Pushed, PushedKey};

/// What storing a control-plane object did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stored {
    Applied,
    /// The same object was already stored.
    Unchanged,
}

// === impl App ===

impl App {
    /// Stores a key the control plane pushed (idempotent; see [`crate::keys::Keys::put_pushed`]).
    pub async fn put_pushed_key(&self, key: PushedKey) -> Result<Pushed, AppError> {
        let keys = self.keys.clone();
        Ok(blocking(move || keys.blocking().put_pushed(key)).await??)
    }

    /// Stores many pushed keys with one index update (sync); the outcome of each, by key UUID.
    pub async fn put_pushed_keys(
        &self,
        batch: Vec<PushedKey>,
    ) -> Result<Vec<(String, Result<Pushed, KeyError>)>, AppError> {
        let keys = self.keys.clone();
        blocking(move || keys.blocking().put_pushed_all(batch)).await
    }

    /// Revokes a key the control plane revoked, leaving a tombstone; false when there was none.
    pub async fn revoke_pushed_key(&self, api: &str, name: &str) -> Result<bool, AppError> {
        let (keys, api, name) = (self.keys.clone(), api.to_string(), name.to_string());
        Ok(blocking(move || keys.blocking().revoke_pushed(&api, &name)).await??)
    }

    /// Removes a control-plane key the platform API no longer lists, leaving no tombstone; false
    /// when there was none.
    pub async fn forget_pushed_key(&self, api: &str, name: &str) -> Result<bool, AppError> {
        let (keys, api, name) = (self.keys.clone(), api.to_string(), name.to_string());
        Ok(blocking(move || keys.blocking().forget_pushed(&api, &name)).await??)
    }

    /// Records that the control plane lists key `uuid` as revoked (bulk sync).
    pub async fn tombstone_key(&self, uuid: &str, api: &str, name: &str) -> Result<(), AppError> {
        let keys = self.keys.clone();
        let (uuid, api, name) = (uuid.to_string(), api.to_string(), name.to_string());
        Ok(blocking(move || keys.blocking().tombstone(&uuid, &api, &name)).await??)
    }

    /// Every key the control plane pushed.
    pub async fn pushed_keys(&self) -> Result<Vec<KeyRow>, AppError> {
        let keys = self.keys.clone();
        Ok(blocking(move || keys.blocking().pushed()).await??)
    }

    /// Stores a control-plane object unless the same one is already stored.
    pub async fn put_cp_object(&self, o: CpObject) -> Result<Stored, AppError> {
        let db = self.db.clone();
        let stored = blocking(move || {
            let same = db
                .get_cp_object(o.kind, &o.id)?
                .is_some_and(|x| x.body == o.body && x.api == o.api);
            if same {
                return Ok(Stored::Unchanged);
            }
            db.put_cp_object(&o).map(|()| Stored::Applied)
        })
        .await??;
        Ok(stored)
    }

    /// Deletes a control-plane object; false when there was none.
    pub async fn delete_cp_object(&self, kind: CpKind, id: &str) -> Result<bool, AppError> {
        let (db, id) = (self.db.clone(), id.to_string());
        Ok(blocking(move || db.delete_cp_object(kind, &id)).await??)
    }

    /// Replaces every object of `kind` (of artifact `api`, when given) with `objects`, at once.
    pub async fn replace_cp_objects(
        &self,
        kind: CpKind,
        api: Option<String>,
        objects: Vec<CpObject>,
    ) -> Result<(), AppError> {
        let db = self.db.clone();
        Ok(blocking(move || db.replace_cp_objects(kind, api.as_deref(), &objects)).await??)
    }

    /// How many control-plane objects of `kind` are stored (for the admin API).
    pub async fn count_cp_objects(&self, kind: CpKind) -> Result<u64, AppError> {
        let db = self.db.clone();
        Ok(blocking(move || db.count_cp_objects(kind)).await??)
    }
}
