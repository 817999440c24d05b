//! Per-API keys (reference §1.6 and §4): generated from the OS random source, shown once, stored
//! as SHA-256 digests, and published to the ext_authz index before a write returns, so a revoked
//! key fails on the very next request.
//!
//! - [`Keys`] is the async handle callers hold: every method runs the SQLite work of a
//!   [`KeyStore`] on the blocking pool, never on the async workers.
//! - [`KeyStore`] (`store`) is that work, blocking: CRUD for the management API; `pushed` adds
//!   the control plane's digest-only keys and tombstones.
//! - `rules` says what names, values and expiries must look like, and holds the typed states.
//! - `index` maps key rows onto the authz index.
//!
//! Publishing key sets to remote authz replicas is the replica feature's
//! ([`crate::replica::publish`]); the store only tells it which sets changed.

mod index;
mod pushed;
mod rules;
mod store;

use std::sync::Arc;
use std::time::Duration;

use tollgate_policies::authz::SharedIndex;

pub use pushed::{Pushed, PushedKey, TOMBSTONE};
pub use rules::{KeySource, KeyStatus, MAX_GRACE, UnknownKeyState, check_name, mask};
pub use store::KeyStore;

use crate::db::{Db, DbError, KeyRow};
use crate::replica::publish::KeySetPublisher;

/// The key store, for async callers: each call runs on the blocking pool.
#[derive(Clone, Debug)]
pub struct Keys {
    store: Arc<KeyStore>,
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

/// Who asks for a key write through the REST API.
#[derive(Clone, Copy, Debug)]
pub struct Caller<'a> {
    pub user: &'a str,
    pub admin: bool,
    /// An admin's explicit consent to change a key the control plane pushed.
    pub control_plane_ok: bool,
}

/// Why a key operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The request breaks a rule (name, value, expiry, quota); the message says which.
    #[error("{0}")]
    Invalid(String),
    /// No key of that name.
    #[error("API key '{0}' not found")]
    NotFound(String),
    /// The name or value is taken.
    #[error("{0}")]
    Conflict(String),
    /// A key the control plane pushed, revoked through the REST API without saying so.
    #[error(
        "API key '{0}' was pushed by the control plane: revoke it there, or as an admin with allowControlPlane=true"
    )]
    ControlPlane(String),
    /// Only the key's creator may do this.
    #[error("only the creator of API key '{0}' may regenerate it")]
    Forbidden(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The OS random source failed.
    #[error("no OS randomness available")]
    Random,
    /// The blocking task running the operation did not finish (it panicked, or the runtime is
    /// shutting down).
    #[error("the key store task did not finish")]
    Task,
}

// === impl Keys ===

impl Keys {
    /// Loads every stored key and publishes the index (and, with `replicas`, every API's key
    /// sets). Called once at start, before serving.
    pub fn load(
        db: Arc<Db>,
        index: Arc<SharedIndex>,
        quota: u32,
        replicas: Option<KeySetPublisher>,
    ) -> Result<Keys, KeyError> {
        Ok(Keys::from(KeyStore::load(db, index, quota, replicas)?))
    }

    /// The blocking store, for callers already off the async workers (inside `spawn_blocking`).
    pub fn blocking(&self) -> &KeyStore {
        &self.store
    }

    /// Active keys of `api`: all of them for an admin, else the caller's own.
    pub async fn list(&self, api: &str, user: &str, admin: bool) -> Result<Vec<KeyRow>, KeyError> {
        let (api, user) = (api.to_string(), user.to_string());
        self.run(move |s| s.list(&api, &user, admin)).await?
    }

    /// How many more keys `user` may create for `api` (0 if that cannot be read).
    pub async fn remaining(&self, api: &str, user: &str) -> u32 {
        let (api, user) = (api.to_string(), user.to_string());
        self.run(move |s| s.remaining(&api, &user)).await.unwrap_or(0)
    }

    /// Creates a key for `api`; returns it and, for generated keys, the plaintext (shown once).
    pub async fn create(&self, api: &str, user: &str, new: NewKey) -> Result<(KeyRow, Option<String>), KeyError> {
        let (api, user) = (api.to_string(), user.to_string());
        self.run(move |s| s.create(&api, &user, new)).await?
    }

    /// Gives key `name` a new generated value; see [`KeyStore::regenerate`].
    pub async fn regenerate(
        &self,
        api: &str,
        name: &str,
        user: &str,
        expires_at: Option<i64>,
        grace: Option<Duration>,
    ) -> Result<(KeyRow, String), KeyError> {
        let (api, name, user) = (api.to_string(), name.to_string(), user.to_string());
        self.run(move |s| s.regenerate(&api, &name, &user, expires_at, grace))
            .await?
    }

    /// Replaces the value of external key `name`; see [`KeyStore::replace`].
    pub async fn replace(
        &self,
        api: &str,
        name: &str,
        user: &str,
        admin: bool,
        value: &str,
    ) -> Result<KeyRow, KeyError> {
        let (api, name, user, value) = (api.to_string(), name.to_string(), user.to_string(), value.to_string());
        self.run(move |s| s.replace(&api, &name, &user, admin, &value)).await?
    }

    /// Revokes key `name` of `api` for `caller`; see [`KeyStore::revoke`].
    pub async fn revoke(&self, api: &str, name: &str, caller: Caller<'_>) -> Result<bool, KeyError> {
        let (api, name) = (api.to_string(), name.to_string());
        let (user, admin, control_plane_ok) = (caller.user.to_string(), caller.admin, caller.control_plane_ok);
        self.run(move |s| {
            let caller = Caller {
                user: &user,
                admin,
                control_plane_ok,
            };
            s.revoke(&api, &name, &caller)
        })
        .await?
    }

    /// Stores a key the control plane pushed; see [`KeyStore::put_pushed`].
    pub async fn put_pushed(&self, k: PushedKey) -> Result<Pushed, KeyError> {
        self.run(move |s| s.put_pushed(k)).await?
    }

    /// Revokes a key the control plane revoked; see [`KeyStore::revoke_pushed`].
    pub async fn revoke_pushed(&self, api: &str, name: &str) -> Result<bool, KeyError> {
        let (api, name) = (api.to_string(), name.to_string());
        self.run(move |s| s.revoke_pushed(&api, &name)).await?
    }

    /// Forgets the keys of a deleted API (the database cascades).
    pub async fn api_deleted(&self, api: &str) -> Result<(), KeyError> {
        let api = api.to_string();
        self.run(move |s| s.api_deleted(&api)).await
    }

    /// Runs `f` on the store, on the blocking pool.
    async fn run<T: Send + 'static>(&self, f: impl FnOnce(&KeyStore) -> T + Send + 'static) -> Result<T, KeyError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| KeyError::Task)
    }
}

impl From<KeyStore> for Keys {
    fn from(store: KeyStore) -> Self {
        Keys { store: Arc::new(store) }
    }
}

#[cfg(test)]
mod tests;
