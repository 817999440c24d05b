//! Why an application-layer write was refused or failed.

use crate::db::{Conflict, DbError};
use crate::keys::KeyError;
use tollgate_model::FieldError;
use tollgate_translate::TranslateError;

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The document is not valid (field-level detail).
    #[error("Configuration validation failed")]
    Invalid(Vec<FieldError>),
    /// No API has this handle.
    #[error("RestAPI with handle '{0}' not found")]
    NotFound(String),
    /// No plan or subscription has this id (the message names it).
    #[error("{0}")]
    Missing(String),
    /// The thing is still used by others (the message says by what).
    #[error("{0}")]
    InUse(String),
    /// A uniqueness rule was broken.
    #[error(transparent)]
    Conflict(Conflict),
    /// A control-plane artifact already stored under one handle now comes with another.
    #[error("artifact {artifact} is stored as API '{stored}' but now has handle '{handle}'")]
    ArtifactMoved {
        artifact: String,
        stored: String,
        handle: String,
    },
    /// The control plane deployed an API whose handle a locally created API already has.
    #[error("an API with handle '{0}' was created through the management API; it is not replaced")]
    LocalApi(String),
    /// The control plane deleted an artifact whose API was created locally.
    #[error("API '{0}' was created locally; not deleted")]
    NotControlPlane(String),
    /// The body's `metadata.name` is not the handle in the path.
    #[error("handle mismatch: path has '{path}' but metadata.name is '{body}'")]
    Mismatch { path: String, body: String },
    /// A key write was refused or failed.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// Storage failed.
    #[error(transparent)]
    Db(DbError),
    /// Translation failed.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// The document could not be serialised for storage (never expected).
    #[error("cannot serialise the document: {0}")]
    Encode(#[source] serde_json::Error),
    /// An Envoy of the gateway group rejected the change (its message); nothing was stored.
    #[error("Envoy rejected the configuration: {0}")]
    Rejected(String),
    /// A secret could not be sealed or opened.
    #[error(transparent)]
    Secrets(crate::secrets::CryptoError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Task,
    /// A stored document no longer parses (never expected: it was written by this program).
    #[error("stored document is unreadable: {0}")]
    Corrupt(#[source] serde_json::Error),
}

// === impl AppError ===

impl AppError {
    /// Whether this is a refusal the caller can act on (a 4xx), not a failure of ours.
    pub fn is_conflict(&self) -> bool {
        matches!(
            self,
            AppError::Conflict(_)
                | AppError::InUse(_)
                | AppError::ArtifactMoved { .. }
                | AppError::LocalApi(_)
                | AppError::NotControlPlane(_)
                | AppError::Keys(KeyError::Conflict(_) | KeyError::ControlPlane(_))
        )
    }
}

impl From<DbError> for AppError {
    /// A storage conflict is a refusal, not a storage failure.
    fn from(e: DbError) -> AppError {
        match e {
            DbError::Conflict(c) => AppError::Conflict(c),
            other => AppError::Db(other),
        }
    }
}

impl From<Conflict> for AppError {
    fn from(c: Conflict) -> AppError {
        AppError::Conflict(c)
    }
}
