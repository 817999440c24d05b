//! Secret writes: stored sealed, and the deployed APIs that use a secret follow its changes.
//!
//! A changed value is re-rendered into every deployed API that names the secret and redeployed,
//! so Envoy serves the new value when the `PUT` answers; if one of them cannot take it (Envoy
//! rejects it), the old value is put back everywhere and the `PUT` fails. Deleting a secret that
//! a stored API names is refused with 409 listing those APIs: there is nothing to re-render them
//! with, and dropping the header or URL silently would be worse than asking the operator first.

use std::sync::Arc;

use serde_json::Value;
use tracing::{info, warn};

use super::{App, AppError, blocking};
use crate::secret::Secret;
use crate::secrets::{SecretDoc, SecretMeta, Secrets, SecretsError};

// === impl App (secrets) ===

impl App {
    /// The secret store.
    pub fn secret_store(&self) -> &Arc<Secrets> {
        &self.repo.secrets
    }

    /// Every secret's metadata.
    pub fn secrets(&self) -> Vec<SecretMeta> {
        self.repo.secrets.list()
    }

    /// One secret with its value.
    pub fn secret(&self, id: &str) -> Result<(SecretMeta, Secret<String>), AppError> {
        self.repo.secrets.get(id).ok_or_else(|| not_found(id))
    }

    /// Stores a new secret from a request body.
    pub async fn create_secret(&self, body: Value) -> Result<SecretMeta, AppError> {
        let doc = SecretDoc::parse(&body, None).map_err(AppError::Invalid)?;
        let store = self.repo.secrets.clone();
        let _writes = self.secret_writes.lock().await;
        let meta = blocking(move || store.create(&doc)).await?.map_err(from_secrets)?;
        info!(secret = %meta.id, "secret created");
        Ok(meta)
    }

    /// Stores a secret the platform API served for an artifact (already checked by the caller;
    /// a value over the limit or empty is refused like a request's).
    pub async fn store_pulled_secret(&self, doc: SecretDoc) -> Result<(), AppError> {
        let size = doc.value.expose().len();
        if size == 0 || size > crate::secrets::doc::MAX_VALUE {
            return Err(AppError::Invalid(vec![tollgate_model::FieldError {
                field: "spec.value".into(),
                message: "spec.value is required: 1 byte to 10 KiB".into(),
            }]));
        }
        let store = self.repo.secrets.clone();
        let _writes = self.secret_writes.lock().await;
        blocking(move || store.create(&doc)).await?.map_err(from_secrets)?;
        Ok(())
    }

    /// Replaces a secret and redeploys the deployed APIs that use it; returns their handles.
    pub async fn update_secret(&self, id: &str, body: Value) -> Result<(SecretMeta, Vec<String>), AppError> {
        let doc = SecretDoc::parse(&body, Some(id)).map_err(AppError::Invalid)?;
        let _writes = self.secret_writes.lock().await;
        let store = self.repo.secrets.clone();
        let new = doc.clone();
        let (meta, old_value) = blocking(move || store.update(&new))
            .await?
            .map_err(from_secrets)?
            .ok_or_else(|| not_found(id))?;
        let users: Vec<String> = self
            .secret_users(id)
            .into_iter()
            .filter(|(_, deployed)| *deployed)
            .map(|(h, _)| h)
            .collect();
        let mut done = Vec::new();
        for handle in &users {
            match self.repo.rerender(handle).await {
                Ok(()) => done.push(handle.clone()),
                Err(e) => {
                    warn!(secret = %id, api = %handle, error = %e, "an API cannot take the new secret value; putting the old one back");
                    self.restore_secret(
                        SecretDoc {
                            value: old_value,
                            ..doc
                        },
                        &done,
                    )
                    .await;
                    return Err(e);
                }
            }
        }
        info!(secret = %meta.id, redeployed = users.len(), "secret updated");
        Ok((meta, users))
    }

    /// Deletes a secret no stored API names.
    pub async fn delete_secret(&self, id: &str) -> Result<(), AppError> {
        let _writes = self.secret_writes.lock().await;
        // Held so no API naming the secret is written between the check and the delete.
        let _translator = self.repo.writer.lock().await;
        let users: Vec<String> = self.secret_users(id).into_iter().map(|(h, _)| h).collect();
        if !users.is_empty() {
            return Err(AppError::InUse(format!(
                "secret '{id}' is used by API(s) {}; remove the references first",
                users.join(", ")
            )));
        }
        let (store, key) = (self.repo.secrets.clone(), id.to_string());
        if !blocking(move || store.delete(&key)).await?.map_err(from_secrets)? {
            return Err(not_found(id));
        }
        info!(secret = %id, "secret deleted");
        Ok(())
    }

    /// The stored APIs whose source names secret `id`, with whether each is deployed.
    fn secret_users(&self, id: &str) -> Vec<(String, bool)> {
        self.repo
            .list()
            .into_iter()
            .filter(|e| {
                let doc = e.doc_json();
                crate::secrets::render::secret_refs(doc.get("spec").unwrap_or(&Value::Null))
                    .iter()
                    .any(|r| r == id)
            })
            .map(|e| (e.row.handle.clone(), e.api.deployed))
            .collect()
    }

    /// Puts a secret's previous value back and re-renders the APIs already redeployed with the
    /// new one (best effort: the failure being reported is the original one).
    async fn restore_secret(&self, old: SecretDoc, redeployed: &[String]) {
        let store = self.repo.secrets.clone();
        if let Err(e) = blocking(move || store.update(&old))
            .await
            .map(|r| r.map_err(from_secrets))
        {
            warn!(error = %e, "cannot put the previous secret value back");
        }
        for handle in redeployed {
            if let Err(e) = self.repo.rerender(handle).await {
                warn!(api = %handle, error = %e, "cannot redeploy an API with the previous secret value");
            }
        }
    }
}

// === impl ApiRepo (secrets) ===

impl super::ApiRepo {
    /// Renders an API's stored source again (a secret it names changed) and redeploys it.
    pub(super) async fn rerender(&self, handle: &str) -> Result<(), AppError> {
        let entry = self.get(handle).ok_or_else(|| AppError::NotFound(handle.into()))?;
        self.update(handle, entry.doc()?).await.map(|_| ())
    }
}

fn not_found(id: &str) -> AppError {
    AppError::Missing(format!("secret with id '{id}' not found"))
}

fn from_secrets(e: SecretsError) -> AppError {
    match e {
        SecretsError::Db(d) => d.into(),
        SecretsError::Crypto(c) => AppError::Secrets(c),
    }
}
