//! Secrets that API documents reference with `{{ secret "id" }}` (reference §1.9): stored sealed
//! with AES-256-GCM ([`crypto`]), held decrypted in memory so rendering never waits on SQLite,
//! and rendered into documents at deploy time ([`template`], [`render`]).
//!
//! Not to be confused with [`crate::secret`], the wrapper that keeps passwords and tokens out of
//! `Debug` output (used here for the decrypted values too).

pub mod crypto;
pub mod doc;
pub mod render;
pub mod template;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crate::clock;
use crate::db::{Db, DbError, SecretRow};
use crate::secret::Secret;
pub use crypto::{CryptoError, KeySource, Keyring};
pub use doc::SecretDoc;

/// The secrets, decrypted in memory, and the database that keeps them sealed.
#[derive(Debug)]
pub struct Secrets {
    db: Arc<Db>,
    keyring: Keyring,
    entries: RwLock<BTreeMap<String, Entry>>,
}

/// A secret's metadata (everything but its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretMeta {
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug)]
struct Entry {
    meta: SecretMeta,
    value: Secret<String>,
}

/// Why a secret could not be loaded, stored or read.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// Sealing or opening failed, or the keys are missing.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// Storage failed (or the id is taken: `DbError::Conflict`).
    #[error(transparent)]
    Db(#[from] DbError),
}

// === impl Secrets ===

impl Secrets {
    /// Loads and decrypts every stored secret (blocking). A value that does not decrypt is an
    /// error here, at start, rather than a wrong value served later.
    pub fn load(db: Arc<Db>, keyring: Keyring) -> Result<Secrets, SecretsError> {
        let mut entries = BTreeMap::new();
        for row in db.list_secrets()? {
            let value = keyring.decrypt(&row.id, &row.ciphertext)?;
            entries.insert(
                row.id.clone(),
                Entry {
                    meta: meta(&row),
                    value,
                },
            );
        }
        Ok(Secrets {
            db,
            keyring,
            entries: RwLock::new(entries),
        })
    }

    /// The keys in use.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Every secret's metadata, by id.
    pub fn list(&self) -> Vec<SecretMeta> {
        self.read().values().map(|e| e.meta.clone()).collect()
    }

    /// One secret's metadata and value.
    pub fn get(&self, id: &str) -> Option<(SecretMeta, Secret<String>)> {
        self.read().get(id).map(|e| (e.meta.clone(), e.value.clone()))
    }

    /// One secret's value (for rendering).
    pub fn value(&self, id: &str) -> Option<Secret<String>> {
        self.read().get(id).map(|e| e.value.clone())
    }

    /// Every value, for redacting text that may hold one.
    pub fn values(&self) -> Vec<Secret<String>> {
        self.read().values().map(|e| e.value.clone()).collect()
    }

    /// Stores a new secret (blocking); a taken id is `DbError::Conflict`.
    pub fn create(&self, doc: &SecretDoc) -> Result<SecretMeta, SecretsError> {
        let now = clock::rfc3339_now();
        let row = self.sealed(doc, now.clone(), now)?;
        self.db.insert_secret(&row)?;
        Ok(self.put(&row, doc.value.clone()))
    }

    /// Replaces a secret (blocking); `None` when there is none with this id. Returns the old
    /// value too, so a caller can put it back.
    pub fn update(&self, doc: &SecretDoc) -> Result<Option<(SecretMeta, Secret<String>)>, SecretsError> {
        let Some((old, old_value)) = self.get(&doc.id) else {
            return Ok(None);
        };
        let row = self.sealed(doc, old.created_at, clock::rfc3339_now())?;
        if !self.db.update_secret(&row)? {
            return Ok(None);
        }
        Ok(Some((self.put(&row, doc.value.clone()), old_value)))
    }

    /// Deletes a secret (blocking); false when there was none.
    pub fn delete(&self, id: &str) -> Result<bool, SecretsError> {
        let found = self.db.delete_secret(id)?;
        self.write().remove(id);
        Ok(found)
    }

    fn sealed(&self, doc: &SecretDoc, created_at: String, updated_at: String) -> Result<SecretRow, SecretsError> {
        Ok(SecretRow {
            id: doc.id.clone(),
            display_name: doc.display_name.clone(),
            description: doc.description.clone(),
            ciphertext: self.keyring.encrypt(&doc.id, doc.value.expose())?,
            created_at,
            updated_at,
        })
    }

    fn put(&self, row: &SecretRow, value: Secret<String>) -> SecretMeta {
        let m = meta(row);
        self.write().insert(row.id.clone(), Entry { meta: m.clone(), value });
        m
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Entry>> {
        self.entries.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Entry>> {
        self.entries.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl template::Lookup for Secrets {
    /// The controller's own variables (`TOLLGATE_*`: keys, tokens, passwords) read as unset, so
    /// a document cannot copy them into a request.
    fn env(&self, name: &str) -> Option<String> {
        if name.starts_with("TOLLGATE_") {
            return None;
        }
        std::env::var(name).ok()
    }

    fn secret(&self, id: &str) -> Option<Secret<String>> {
        self.value(id)
    }
}

/// Re-encrypts every stored value sealed with another key than `keyring`'s current one, in one
/// transaction (blocking). Returns how many were re-encrypted; a value no configured key opens
/// stops it with nothing changed.
pub fn rotate(db: &Db, keyring: &Keyring) -> Result<usize, SecretsError> {
    let mut sealed = Vec::new();
    for row in db.list_secrets()? {
        if Keyring::version_of(&row.ciphertext) == Some(keyring.current()) {
            continue;
        }
        let value = keyring.decrypt(&row.id, &row.ciphertext)?;
        sealed.push((row.id.clone(), keyring.encrypt(&row.id, value.expose())?));
    }
    Ok(db.reseal_secrets(&sealed)?)
}

fn meta(row: &SecretRow) -> SecretMeta {
    SecretMeta {
        id: row.id.clone(),
        display_name: row.display_name.clone(),
        description: row.description.clone(),
        created_at: row.created_at.clone(),
        updated_at: row.updated_at.clone(),
    }
}

#[cfg(test)]
mod tests;
