//! The REST key write paths (create, regenerate, replace, revoke) and reads, through the application
//! layer like every other write. The rules (quotas, creators, values) are the key store's; this is
//! the one place later features (subscriptions, quotas, several controllers) hook into.

use std::time::Duration;

use super::App;
use crate::db::KeyRow;
use crate::keys::{Caller, KeyError, NewKey};

// === impl App ===

impl App {
    /// The keys of `api` that `user` may see (all of them for an admin).
    pub async fn list_keys(&self, api: &str, user: &str, admin: bool) -> Result<Vec<KeyRow>, KeyError> {
        self.keys.list(api, user, admin).await
    }

    /// How many more keys `user` may create for `api`.
    pub async fn remaining_keys(&self, api: &str, user: &str) -> u32 {
        self.keys.remaining(api, user).await
    }

    /// Creates a key; returns it and, for a generated key, its value (shown once).
    pub async fn create_key(&self, api: &str, user: &str, new: NewKey) -> Result<(KeyRow, Option<String>), KeyError> {
        self.keys.create(api, user, new).await
    }

    /// Gives a key a new generated value; the old one stays valid for `grace`.
    pub async fn regenerate_key(
        &self,
        api: &str,
        name: &str,
        user: &str,
        expires_at: Option<i64>,
        grace: Option<Duration>,
    ) -> Result<(KeyRow, String), KeyError> {
        self.keys.regenerate(api, name, user, expires_at, grace).await
    }

    /// Replaces the value of an external key.
    pub async fn replace_key(
        &self,
        api: &str,
        name: &str,
        user: &str,
        admin: bool,
        value: &str,
    ) -> Result<KeyRow, KeyError> {
        self.keys.replace(api, name, user, admin, value).await
    }

    /// Revokes a key for `caller`; `false` when there was none the caller may revoke.
    pub async fn revoke_key(&self, api: &str, name: &str, caller: Caller<'_>) -> Result<bool, KeyError> {
        self.keys.revoke(api, name, caller).await
    }
}
