//! Secrets an artifact names (`{{ secret "handle" }}`) that this gateway does not hold yet are
//! pulled from the platform API before the artifact is deployed (`GET /secrets/{handle}/value`,
//! protocol §3.8: there is no event for secrets, they are fetched on demand) and stored like a
//! local secret, so the API renders again after a restart without the platform API.

use serde_json::Value;
use tollgate_model::RestApiDoc;
use tracing::{info, warn};

use super::{Dispatcher, EventError};
use crate::secrets::SecretDoc;

// === impl Dispatcher (secrets) ===

impl Dispatcher {
    /// Fetches and stores the secrets `doc` names that are not stored here. One the platform API
    /// does not have is left missing: rendering then refuses the artifact naming the field.
    pub(super) async fn pull_secrets(&self, doc: &RestApiDoc) -> Result<(), EventError> {
        let spec = serde_json::to_value(&doc.spec).unwrap_or(Value::Null);
        for handle in crate::secrets::render::secret_refs(&spec) {
            let plain = !handle.is_empty() && handle.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !plain || handle.len() > 253 || self.app.secret_store().value(&handle).is_some() {
                continue;
            }
            let Some(value) = self.client.secret_value(&handle).await? else {
                warn!(secret = %handle, "an artifact names a secret the platform API does not have");
                continue;
            };
            let doc = SecretDoc {
                id: handle.clone(),
                display_name: handle.clone(),
                description: Some("pulled from the platform API".into()),
                value,
            };
            match self.app.store_pulled_secret(doc).await {
                Ok(()) => info!(secret = %handle, "secret pulled from the platform API"),
                Err(e) => warn!(secret = %handle, error = %e, "cannot store a secret pulled from the platform API"),
            }
        }
        Ok(())
    }
}
