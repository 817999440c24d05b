//! The write path: validate, persist in one transaction, re-translate only the affected API, and
//! publish to the xDS store before answering. One writer at a time; reads never wait for Envoy.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tollgate_policies::Catalogue;
use tollgate_xds::{DEFAULT_GROUP, Store};
use tracing::{error, info, warn};

use crate::db::{ApiRow, Db, DbError};
use crate::model::{self, Api, FieldError, RestApiDoc, VhostDefaults};
use crate::translate::{TranslateError, Translator};

/// The gateway's API state and its write path.
#[derive(Debug)]
pub struct Gateway {
    db: Arc<Db>,
    xds: Arc<Store>,
    group: String,
    catalogue: Catalogue,
    vhosts: VhostDefaults,
    apis: RwLock<BTreeMap<String, Arc<ApiEntry>>>,
    writer: tokio::sync::Mutex<Translator>,
}

/// One stored API: its row (with the source document as stored: JSON text) and its resolved model.
/// The source document is kept as text, not parsed: it is only read to answer `GET`s, and the text
/// is several times smaller than the parsed document (which matters with 10,000 APIs).
#[derive(Clone, Debug)]
pub struct ApiEntry {
    pub row: ApiRow,
    pub api: Api,
}

// === impl ApiEntry ===

impl ApiEntry {
    /// The source document.
    pub fn doc(&self) -> Result<RestApiDoc, GatewayError> {
        serde_json::from_str(&self.row.document).map_err(|e| GatewayError::Corrupt(e.to_string()))
    }

    /// The source document as JSON.
    pub fn doc_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.row.document).unwrap_or_else(|_| serde_json::json!({}))
    }
}

/// Why a write was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The document is not valid (field-level detail).
    #[error("Configuration validation failed")]
    Invalid(Vec<FieldError>),
    /// No API has this handle.
    #[error("RestAPI with handle '{0}' not found")]
    NotFound(String),
    /// A uniqueness rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// The body's `metadata.name` is not the handle in the path.
    #[error("handle mismatch: path has '{path}' but metadata.name is '{body}'")]
    Mismatch { path: String, body: String },
    /// Storage failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Translation failed.
    #[error(transparent)]
    Translate(#[from] TranslateError),
    /// A blocking task panicked or was cancelled.
    #[error("internal task failed")]
    Task,
    /// A stored document no longer parses (never expected: it was written by this program).
    #[error("stored document is unreadable: {0}")]
    Corrupt(String),
}

/// Where a control-plane API comes from.
pub const CONTROL_PLANE: &str = "control_plane";

/// A control-plane deployment to apply.
#[derive(Clone, Debug)]
pub struct CpDeploy {
    pub artifact_id: String,
    pub deployment_id: String,
    /// The event's `performedAt`, verbatim.
    pub performed_at: String,
    /// False for an undeploy: the API stays stored but is not served.
    pub deployed: bool,
}

/// The outcome of a write: the entry and the store generation that carries it.
#[derive(Debug)]
pub struct Written {
    pub entry: Option<Arc<ApiEntry>>,
    pub generation: u64,
}

// === impl Gateway ===

impl Gateway {
    /// Loads every stored API, translates them all and publishes the result.
    pub fn load(
        db: Arc<Db>,
        xds: Arc<Store>,
        catalogue: Catalogue,
        vhosts: VhostDefaults,
        mut translator: Translator,
    ) -> Result<Gateway, GatewayError> {
        let mut apis = BTreeMap::new();
        for row in db.list_apis()? {
            let doc: RestApiDoc = match serde_json::from_str(&row.document) {
                Ok(d) => d,
                Err(e) => {
                    error!(handle = %row.handle, error = %e, "stored document does not parse; skipped");
                    continue;
                }
            };
            match model::resolve(&doc, &vhosts, &catalogue) {
                Ok(api) => {
                    translator.set_api(&api)?;
                    apis.insert(row.handle.clone(), Arc::new(ApiEntry { row, api }));
                }
                Err(errors) => warn!(handle = %row.handle, ?errors, "stored API no longer validates; skipped"),
            }
        }
        let generation = xds.publish(DEFAULT_GROUP, translator.all()?);
        info!(apis = apis.len(), generation, "configuration restored");
        Ok(Gateway {
            db,
            xds,
            group: DEFAULT_GROUP.to_string(),
            catalogue,
            vhosts,
            apis: RwLock::new(apis),
            writer: tokio::sync::Mutex::new(translator),
        })
    }

    /// The policy catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        &self.catalogue
    }

    /// The xDS store.
    pub fn xds(&self) -> &Arc<Store> {
        &self.xds
    }

    /// One API.
    pub fn get(&self, handle: &str) -> Option<Arc<ApiEntry>> {
        self.read().get(handle).cloned()
    }

    /// The API stored under artifact UUID `uuid`.
    pub fn by_uuid(&self, uuid: &str) -> Option<Arc<ApiEntry>> {
        self.read().values().find(|e| e.row.uuid == uuid).cloned()
    }

    /// Every API, by handle.
    pub fn list(&self) -> Vec<Arc<ApiEntry>> {
        self.read().values().cloned().collect()
    }

    /// Validates and resolves a document as it would be stored (vhosts filled in).
    pub fn prepare(&self, mut doc: RestApiDoc) -> Result<(RestApiDoc, Api), GatewayError> {
        model::validate::fill_vhosts(&mut doc, &self.vhosts);
        let api = model::resolve(&doc, &self.vhosts, &self.catalogue).map_err(GatewayError::Invalid)?;
        Ok((doc, api))
    }

    /// Creates an API.
    pub async fn create(&self, doc: RestApiDoc, origin: &str) -> Result<Written, GatewayError> {
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        self.check_unique(&api, None)?;
        let now = now();
        let row = ApiRow {
            handle: api.handle.clone(),
            uuid: uuid::Uuid::now_v7().to_string(),
            display_name: api.display_name.clone(),
            version: api.version.clone(),
            document: serde_json::to_string(&doc).unwrap_or_default(),
            deployed: api.deployed,
            origin: origin.to_string(),
            created_at: now.clone(),
            updated_at: now.clone(),
            deployed_at: api.deployed.then_some(now),
            cp_deployment_id: None,
            cp_performed_at: None,
        };
        let db = self.db.clone();
        let r = row.clone();
        blocking(move || db.insert_api(&r)).await?.map_err(conflict)?;
        self.apply(&mut translator, row, api).await
    }

    /// Replaces an API (also how it is undeployed).
    pub async fn update(&self, handle: &str, doc: RestApiDoc) -> Result<Written, GatewayError> {
        let body = doc.metadata.name.clone().unwrap_or_default();
        if !body.is_empty() && body != handle {
            return Err(GatewayError::Mismatch {
                path: handle.into(),
                body,
            });
        }
        let old = self.get(handle).ok_or_else(|| GatewayError::NotFound(handle.into()))?;
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        self.check_unique(&api, Some(handle))?;
        let now = now();
        let row = ApiRow {
            display_name: api.display_name.clone(),
            version: api.version.clone(),
            document: serde_json::to_string(&doc).unwrap_or_default(),
            deployed: api.deployed,
            updated_at: now.clone(),
            deployed_at: if api.deployed {
                Some(now)
            } else {
                old.row.deployed_at.clone()
            },
            ..old.row.clone()
        };
        let db = self.db.clone();
        let r = row.clone();
        if !blocking(move || db.update_api(&r)).await?.map_err(conflict)? {
            return Err(GatewayError::NotFound(handle.into()));
        }
        self.apply(&mut translator, row, api).await
    }

    /// Deletes an API.
    pub async fn delete(&self, handle: &str) -> Result<Written, GatewayError> {
        let mut translator = self.writer.lock().await;
        let db = self.db.clone();
        let h = handle.to_string();
        if !blocking(move || db.delete_api(&h)).await?? {
            return Err(GatewayError::NotFound(handle.into()));
        }
        self.write().remove(handle);
        let update = translator.remove_api(handle)?;
        let generation = self.xds.publish(&self.group, update);
        info!(handle, generation, "api deleted");
        Ok(Written {
            entry: None,
            generation,
        })
    }

    /// Stores and serves (or, with `deployed` false, keeps but stops serving) an API the control
    /// plane deployed. The artifact UUID becomes the API's id. A locally created API with the same
    /// handle is never overwritten.
    pub async fn apply_cp(&self, mut doc: RestApiDoc, d: &CpDeploy) -> Result<Written, GatewayError> {
        doc.spec.deployment_state = (!d.deployed).then(|| "undeployed".to_string());
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        let by_uuid = self.by_uuid(&d.artifact_id);
        if let Some(old) = &by_uuid
            && old.row.handle != api.handle
        {
            return Err(GatewayError::Conflict(format!(
                "artifact {} is stored as API '{}' but now has handle '{}'",
                d.artifact_id, old.row.handle, api.handle
            )));
        }
        let now = now();
        let existing = self.get(&api.handle);
        if let Some(old) = &existing
            && old.row.origin != CONTROL_PLANE
            && old.row.uuid != d.artifact_id
        {
            return Err(GatewayError::Conflict(format!(
                "an API with handle '{}' was created through the management API; it is not replaced",
                api.handle
            )));
        }
        self.check_unique(&api, existing.as_ref().map(|_| api.handle.as_str()))?;
        let old = existing.as_ref().map(|e| &e.row);
        let row = ApiRow {
            handle: api.handle.clone(),
            uuid: d.artifact_id.clone(),
            display_name: api.display_name.clone(),
            version: api.version.clone(),
            document: serde_json::to_string(&doc).unwrap_or_default(),
            deployed: api.deployed,
            origin: CONTROL_PLANE.into(),
            created_at: old.map_or_else(|| now.clone(), |o| o.created_at.clone()),
            updated_at: now.clone(),
            deployed_at: if api.deployed {
                Some(now)
            } else {
                old.and_then(|o| o.deployed_at.clone())
            },
            cp_deployment_id: Some(d.deployment_id.clone()),
            cp_performed_at: Some(d.performed_at.clone()),
        };
        let db = self.db.clone();
        let r = row.clone();
        let update = existing.is_some();
        blocking(move || {
            if update {
                db.update_api(&r).map(|_| ())
            } else {
                db.insert_api(&r)
            }
        })
        .await?
        .map_err(conflict)?;
        self.apply(&mut translator, row, api).await
    }

    async fn apply(&self, translator: &mut Translator, row: ApiRow, api: Api) -> Result<Written, GatewayError> {
        let update = translator.set_api(&api)?;
        let generation = self.xds.publish(&self.group, update);
        let mut row = row;
        row.document.shrink_to_fit();
        let entry = Arc::new(ApiEntry { row, api });
        self.write().insert(entry.row.handle.clone(), entry.clone());
        info!(handle = %entry.row.handle, deployed = entry.api.deployed, generation, "api written");
        Ok(Written {
            entry: Some(entry),
            generation,
        })
    }

    /// Handle and name+version must be unique (the current API `except` aside).
    fn check_unique(&self, api: &Api, except: Option<&str>) -> Result<(), GatewayError> {
        let apis = self.read();
        if except.is_none() && apis.contains_key(&api.handle) {
            return Err(GatewayError::Conflict(format!(
                "configuration with handle '{}' already exists",
                api.handle
            )));
        }
        let clash = apis.values().any(|e| {
            Some(e.row.handle.as_str()) != except
                && e.row.handle != api.handle
                && e.api.display_name == api.display_name
                && e.api.version == api.version
        });
        if clash {
            return Err(GatewayError::Conflict(format!(
                "configuration with name '{}' and version '{}' already exists",
                api.display_name, api.version
            )));
        }
        Ok(())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<ApiEntry>>> {
        self.apis.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<ApiEntry>>> {
        self.apis.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn conflict(e: DbError) -> GatewayError {
    match e {
        DbError::Conflict(m) => GatewayError::Conflict(m),
        other => GatewayError::Db(other),
    }
}

/// Runs SQLite work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, GatewayError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| GatewayError::Task)
}

/// RFC 3339 UTC, second precision.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
