//! The API repository: every stored API in memory (row plus resolved model), persisted in SQLite
//! and translated into the xDS store. One writer at a time; reads never wait for Envoy or SQLite.
//! Its writes are reachable only through [`super::App`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use tollgate_policies::Catalogue;
use tollgate_xds::{DEFAULT_GROUP, Store};
use tracing::{error, info, warn};

use super::{AppError, DeploymentState, blocking};
use crate::clock;
use crate::db::{ApiRow, Conflict, Db};
use crate::origin::Origin;
use tollgate_model::{Api, RestApiDoc, VhostDefaults};
use tollgate_translate::Translator;

/// The stored APIs and the translator that turns them into Envoy resources.
#[derive(Debug)]
pub struct ApiRepo {
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

/// A control-plane deployment: which artifact, which deployment of it, and when.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub artifact_id: String,
    pub deployment_id: String,
    /// The event's `performedAt` (or the list's `deployedAt`), verbatim.
    pub performed_at: String,
}

/// The outcome of a write: the entry and the store generation that carries it.
#[derive(Debug)]
pub struct Written {
    pub entry: Option<Arc<ApiEntry>>,
    pub generation: u64,
}

// === impl ApiEntry ===

impl ApiEntry {
    /// The source document.
    pub fn doc(&self) -> Result<RestApiDoc, AppError> {
        serde_json::from_str(&self.row.document).map_err(AppError::Corrupt)
    }

    /// The source document as JSON (`{}`, logged, if it no longer parses: never expected, as
    /// this program wrote it).
    pub fn doc_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.row.document).unwrap_or_else(|e| {
            error!(handle = %self.row.handle, error = %e, "stored document is unreadable");
            serde_json::json!({})
        })
    }

    /// Whether the API is served.
    pub fn state(&self) -> DeploymentState {
        DeploymentState::of(self.api.deployed)
    }

    /// Whether the control plane pushed this API.
    pub fn from_control_plane(&self) -> bool {
        self.row.origin == Origin::ControlPlane
    }
}

// === impl ApiRepo ===

impl ApiRepo {
    /// Loads every stored API (off the async workers), translates them all and publishes the result.
    pub async fn load(
        db: Arc<Db>,
        xds: Arc<Store>,
        catalogue: Catalogue,
        vhosts: VhostDefaults,
        mut translator: Translator,
    ) -> Result<ApiRepo, AppError> {
        let rows = {
            let db = db.clone();
            blocking(move || db.list_apis()).await??
        };
        let mut apis = BTreeMap::new();
        for row in rows {
            if let Some(api) = restore(&row, &vhosts, &catalogue) {
                translator.set_api(&api)?;
                apis.insert(row.handle.clone(), Arc::new(ApiEntry { row, api }));
            }
        }
        let generation = xds.publish(DEFAULT_GROUP, translator.all()?);
        info!(apis = apis.len(), generation, "configuration restored");
        Ok(ApiRepo {
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
    fn prepare(&self, mut doc: RestApiDoc) -> Result<(RestApiDoc, Api), AppError> {
        tollgate_model::validate::fill_vhosts(&mut doc, &self.vhosts);
        let api = tollgate_model::resolve(&doc, &self.vhosts, &self.catalogue).map_err(AppError::Invalid)?;
        Ok((doc, api))
    }

    /// Creates an API.
    pub(super) async fn create(&self, doc: RestApiDoc, origin: Origin) -> Result<Written, AppError> {
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        self.check_unique(&api, None)?;
        let now = clock::rfc3339_now();
        let row = ApiRow {
            handle: api.handle.clone(),
            uuid: uuid::Uuid::now_v7().to_string(),
            display_name: api.display_name.clone(),
            version: api.version.clone(),
            document: serde_json::to_string(&doc).map_err(AppError::Encode)?,
            deployed: api.deployed,
            origin,
            created_at: now.clone(),
            updated_at: now.clone(),
            deployed_at: api.deployed.then_some(now),
            cp_deployment_id: None,
            cp_performed_at: None,
        };
        let (db, r) = (self.db.clone(), row.clone());
        blocking(move || db.insert_api(&r)).await??;
        self.apply(&mut translator, row, api).await
    }

    /// Replaces an API (also how it is undeployed).
    pub(super) async fn update(&self, handle: &str, doc: RestApiDoc) -> Result<Written, AppError> {
        let body = doc.metadata.name.clone().unwrap_or_default();
        if !body.is_empty() && body != handle {
            return Err(AppError::Mismatch {
                path: handle.into(),
                body,
            });
        }
        let old = self.get(handle).ok_or_else(|| AppError::NotFound(handle.into()))?;
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        self.check_unique(&api, Some(handle))?;
        let now = clock::rfc3339_now();
        let row = ApiRow {
            display_name: api.display_name.clone(),
            version: api.version.clone(),
            document: serde_json::to_string(&doc).map_err(AppError::Encode)?,
            deployed: api.deployed,
            updated_at: now.clone(),
            deployed_at: if api.deployed {
                Some(now)
            } else {
                old.row.deployed_at.clone()
            },
            ..old.row.clone()
        };
        let (db, r) = (self.db.clone(), row.clone());
        if !blocking(move || db.update_api(&r)).await?? {
            return Err(AppError::NotFound(handle.into()));
        }
        self.apply(&mut translator, row, api).await
    }

    /// Deletes an API (its keys go with it in the database, by cascade).
    pub(super) async fn delete(&self, handle: &str) -> Result<Written, AppError> {
        let mut translator = self.writer.lock().await;
        let (db, h) = (self.db.clone(), handle.to_string());
        if !blocking(move || db.delete_api(&h)).await?? {
            return Err(AppError::NotFound(handle.into()));
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

    /// Stores and serves (or, undeployed, keeps but stops serving) an API the control plane
    /// deployed. The artifact UUID becomes the API's id. A locally created API with the same
    /// handle is never overwritten.
    pub(super) async fn put_deployment(
        &self,
        mut doc: RestApiDoc,
        d: &Deployment,
        state: DeploymentState,
    ) -> Result<Written, AppError> {
        doc.spec.deployment_state = (state == DeploymentState::Undeployed).then(|| state.as_str().to_string());
        let (doc, api) = self.prepare(doc)?;
        let mut translator = self.writer.lock().await;
        let existing = self.check_deployment(&api, d)?;
        let document = serde_json::to_string(&doc).map_err(AppError::Encode)?;
        let row = deployed_row(&api, d, document, existing.as_ref().map(|e| &e.row));
        let (db, r, update) = (self.db.clone(), row.clone(), existing.is_some());
        blocking(move || {
            if update {
                db.update_api(&r).map(|_| ())
            } else {
                db.insert_api(&r)
            }
        })
        .await??;
        self.apply(&mut translator, row, api).await
    }

    /// The stored API a deployment replaces, if any, once it is known the deployment may replace it.
    fn check_deployment(&self, api: &Api, d: &Deployment) -> Result<Option<Arc<ApiEntry>>, AppError> {
        if let Some(old) = self.by_uuid(&d.artifact_id)
            && old.row.handle != api.handle
        {
            return Err(AppError::ArtifactMoved {
                artifact: d.artifact_id.clone(),
                stored: old.row.handle.clone(),
                handle: api.handle.clone(),
            });
        }
        let existing = self.get(&api.handle);
        if let Some(old) = &existing
            && !old.from_control_plane()
            && old.row.uuid != d.artifact_id
        {
            return Err(AppError::LocalApi(api.handle.clone()));
        }
        self.check_unique(api, existing.as_ref().map(|_| api.handle.as_str()))?;
        Ok(existing)
    }

    async fn apply(&self, translator: &mut Translator, row: ApiRow, api: Api) -> Result<Written, AppError> {
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

    /// Handle and name+version must be unique, and no operation may overlap another API's (the
    /// current API `except` aside).
    fn check_unique(&self, api: &Api, except: Option<&str>) -> Result<(), AppError> {
        let apis = self.read();
        if except.is_none() && apis.contains_key(&api.handle) {
            return Err(Conflict::Handle(api.handle.clone()).into());
        }
        let clash = apis.values().any(|e| {
            Some(e.row.handle.as_str()) != except
                && e.row.handle != api.handle
                && e.api.display_name == api.display_name
                && e.api.version == api.version
        });
        if clash {
            return Err(Conflict::NameVersion {
                name: api.display_name.clone(),
                version: api.version.clone(),
            }
            .into());
        }
        let others = apis
            .values()
            .filter(|e| Some(e.row.handle.as_str()) != except && e.row.handle != api.handle);
        for e in others {
            if let Some(o) = tollgate_model::overlap::first_overlap(api, &e.api) {
                return Err(Conflict::Overlap {
                    other: e.row.handle.clone(),
                    vhost: o.vhost,
                    method: o.method.as_str(),
                    path: o.path,
                    other_path: o.other_path,
                }
                .into());
            }
        }
        Ok(())
    }

    fn read(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<ApiEntry>>> {
        self.apis.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<ApiEntry>>> {
        self.apis.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// The resolved model of a stored row; `None` (logged) when it no longer parses or validates.
fn restore(row: &ApiRow, vhosts: &VhostDefaults, catalogue: &Catalogue) -> Option<Api> {
    let doc: RestApiDoc = match serde_json::from_str(&row.document) {
        Ok(d) => d,
        Err(e) => {
            error!(handle = %row.handle, error = %e, "stored document does not parse; skipped");
            return None;
        }
    };
    match tollgate_model::resolve(&doc, vhosts, catalogue) {
        Ok(api) => Some(api),
        Err(errors) => {
            warn!(handle = %row.handle, ?errors, "stored API no longer validates; skipped");
            None
        }
    }
}

/// The row of a control-plane deployment, keeping what `old` had.
fn deployed_row(api: &Api, d: &Deployment, document: String, old: Option<&ApiRow>) -> ApiRow {
    let now = clock::rfc3339_now();
    ApiRow {
        handle: api.handle.clone(),
        uuid: d.artifact_id.clone(),
        display_name: api.display_name.clone(),
        version: api.version.clone(),
        document,
        deployed: api.deployed,
        origin: Origin::ControlPlane,
        created_at: old.map_or_else(|| now.clone(), |o| o.created_at.clone()),
        updated_at: now.clone(),
        deployed_at: if api.deployed {
            Some(now)
        } else {
            old.and_then(|o| o.deployed_at.clone())
        },
        cp_deployment_id: Some(d.deployment_id.clone()),
        cp_performed_at: Some(d.performed_at.clone()),
    }
}
