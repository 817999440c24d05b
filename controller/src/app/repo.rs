//! The API repository: every stored API in memory (row plus resolved model), persisted in SQLite
//! and translated into the xDS store. One writer at a time; reads never wait for Envoy or SQLite.
//! Its writes are reachable only through [`super::App`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tollgate_policies::Catalogue;
use tollgate_xds::{DEFAULT_GROUP, Settled, StatusRegistry, Store};
use tracing::{error, info, warn};

use super::serving::Serving;
use super::{AppError, DeploymentState, blocking};
use crate::clock;
use crate::db::{ApiFailure, ApiRow, Conflict, Db};
use crate::origin::Origin;
use crate::secrets::Secrets;
use tollgate_model::{Api, RestApiDoc, VhostDefaults};
use tollgate_translate::Translator;

/// The stored APIs and the translator that turns them into Envoy resources.
#[derive(Debug)]
pub struct ApiRepo {
    pub(super) db: Arc<Db>,
    pub(super) xds: Arc<Store>,
    /// What each connected Envoy ACKed or rejected.
    pub(super) status: Arc<StatusRegistry>,
    /// How long a write waits for every connected Envoy's answer before it answers `pending`.
    pub(super) ack_timeout: Duration,
    pub(super) group: String,
    catalogue: Catalogue,
    vhosts: VhostDefaults,
    apis: RwLock<BTreeMap<String, Arc<ApiEntry>>>,
    /// Handles of the entries in the `Pending` state.
    pub(super) pending: Mutex<BTreeSet<String>>,
    /// Rejections of responses built at or before this generation have been dealt with.
    pub(super) handled_nack: AtomicU64,
    pub(super) writer: tokio::sync::Mutex<Translator>,
    /// What `{{ secret "id" }}` reads; also the values redacted from messages.
    pub(super) secrets: Arc<Secrets>,
}

/// What [`ApiRepo::load`] starts from.
#[derive(Debug)]
pub struct RepoParts {
    pub db: Arc<Db>,
    pub xds: Arc<Store>,
    pub status: Arc<StatusRegistry>,
    pub ack_timeout: Duration,
    pub catalogue: Catalogue,
    pub vhosts: VhostDefaults,
    pub translator: Translator,
    pub secrets: Arc<Secrets>,
}

/// One stored API: its row (with the source document as stored: JSON text) and its resolved model.
/// The source document is kept as text, not parsed: it is only read to answer `GET`s, and the text
/// is several times smaller than the parsed document (which matters with 10,000 APIs).
#[derive(Clone, Debug)]
pub struct ApiEntry {
    pub row: ApiRow,
    pub api: Api,
    /// What the group's Envoys did with it.
    pub serving: Serving,
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

    /// Whether the control plane pushed this API.
    pub fn from_control_plane(&self) -> bool {
        self.row.origin == Origin::ControlPlane
    }
}

// === impl ApiRepo ===

impl ApiRepo {
    /// Loads every stored API (off the async workers), translates them all and publishes the result.
    /// An API an Envoy rejected before stays failed and serves what was accepted before it.
    pub async fn load(parts: RepoParts) -> Result<ApiRepo, AppError> {
        let RepoParts {
            db,
            xds,
            status,
            ack_timeout,
            catalogue,
            vhosts,
            mut translator,
            secrets,
        } = parts;
        let (rows, mut failures) = {
            let db = db.clone();
            blocking(move || Ok::<_, crate::db::DbError>((db.list_apis()?, db.api_failures()?))).await??
        };
        let mut apis = BTreeMap::new();
        for row in rows {
            let Some(api) = restore(&row.handle, &row.document, (&vhosts, &catalogue), &secrets) else {
                continue;
            };
            let serving = match failures.remove(&row.handle) {
                Some(f) => failed_serving(&row, f, (&vhosts, &catalogue), &secrets),
                None => Serving::Current,
            };
            let entry = Arc::new(ApiEntry { row, api, serving });
            if let Some(served) = entry.served() {
                translator.set_api(&served.api)?;
            }
            apis.insert(entry.row.handle.clone(), entry);
        }
        let generation = xds.publish(DEFAULT_GROUP, translator.all()?);
        info!(apis = apis.len(), generation, "configuration restored");
        Ok(ApiRepo {
            db,
            xds,
            status,
            ack_timeout,
            group: DEFAULT_GROUP.to_string(),
            catalogue,
            vhosts,
            apis: RwLock::new(apis),
            pending: Mutex::new(BTreeSet::new()),
            handled_nack: AtomicU64::new(0),
            writer: tokio::sync::Mutex::new(translator),
            secrets,
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

    /// Validates and resolves a document as it would be stored (vhosts filled in): the source
    /// is kept, its rendering (templates resolved) is what gets resolved and served.
    fn prepare(&self, mut doc: RestApiDoc) -> Result<(RestApiDoc, Api), AppError> {
        tollgate_model::validate::fill_vhosts(&mut doc, &self.vhosts);
        let api = crate::secrets::render::resolve(&doc, (&self.vhosts, &self.catalogue), &*self.secrets)
            .map_err(AppError::Invalid)?;
        Ok((doc, api))
    }

    /// `text` with every secret value replaced by `[redacted]` (Envoy's messages may quote the
    /// rendered configuration).
    pub(super) fn redact(&self, text: &str) -> String {
        crate::secrets::render::redact(text, &self.secrets.values())
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
        self.apply(&mut translator, row, api, Persist::Insert).await
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
        self.apply(&mut translator, row, api, Persist::Update).await
    }

    /// Deletes an API (its keys go with it in the database, by cascade).
    pub(super) async fn delete(&self, handle: &str) -> Result<Written, AppError> {
        let mut translator = self.writer.lock().await;
        let (db, h) = (self.db.clone(), handle.to_string());
        if !blocking(move || db.delete_api(&h)).await?? {
            return Err(AppError::NotFound(handle.into()));
        }
        self.remove_entry(handle);
        let (generation, settled) = self.publish_and_wait(translator.remove_api(handle)?).await;
        info!(handle, generation, answer = ?settled, "api deleted");
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
        let persist = if existing.is_some() {
            Persist::Update
        } else {
            Persist::Insert
        };
        self.apply(&mut translator, row, api, persist).await
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

    /// Publishes the new content of an API, waits for the group's answer, then stores it. A
    /// rejection puts back what Envoy served before and stores nothing; no answer in time (or no
    /// Envoy) stores it as pending.
    async fn apply(
        &self,
        translator: &mut Translator,
        row: ApiRow,
        api: Api,
        persist: Persist,
    ) -> Result<Written, AppError> {
        let previous = self.get(&row.handle);
        let accepted = previous.as_ref().and_then(|p| p.accepted());
        let (generation, settled) = self.publish_and_wait(translator.set_api(&api)?).await;
        let serving = match settled {
            Settled::Accepted => Serving::Current,
            Settled::Rejected { message, node_id, .. } => {
                let reverted = self.restore(translator, &row.handle, served_of(previous.as_ref()).as_deref())?;
                self.handled_nack.fetch_max(reverted, Ordering::SeqCst);
                let message = self.redact(&message);
                warn!(handle = %row.handle, node = %node_id, %message, "Envoy rejected the change; refused");
                return Err(AppError::Rejected(message));
            }
            Settled::Behind(_) | Settled::Unobserved => Serving::Pending {
                generation,
                fallback: accepted,
            },
        };
        let (db, r) = (self.db.clone(), row.clone());
        let stored = blocking(move || {
            let found = match persist {
                Persist::Insert => db.insert_api(&r).map(|()| true),
                Persist::Update => db.update_api(&r),
            }?;
            db.set_api_failure(&r.handle, None)?;
            Ok::<_, crate::db::DbError>(found)
        })
        .await
        .and_then(|r| r.map_err(AppError::from));
        if !matches!(stored, Ok(true)) {
            self.restore(translator, &row.handle, served_of(previous.as_ref()).as_deref())?;
            return Err(stored.err().unwrap_or_else(|| AppError::NotFound(row.handle.clone())));
        }
        let mut row = row;
        row.document.shrink_to_fit();
        let entry = Arc::new(ApiEntry { row, api, serving });
        self.put_entry(entry.clone());
        info!(handle = %entry.row.handle, state = entry.state().as_str(), generation, "api written");
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

    pub(super) fn write(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<ApiEntry>>> {
        self.apis.write().unwrap_or_else(|p| p.into_inner())
    }
}

/// How [`ApiRepo::apply`] stores a row.
#[derive(Clone, Copy, Debug)]
enum Persist {
    Insert,
    Update,
}

/// What the translator holds for `entry` (nothing when there is no entry).
fn served_of(entry: Option<&Arc<ApiEntry>>) -> Option<Arc<ApiEntry>> {
    entry.and_then(|e| e.served())
}

/// The resolved model of a stored document; `None` (logged) when it no longer parses or validates.
fn restore(
    handle: &str,
    document: &str,
    (vhosts, catalogue): (&VhostDefaults, &Catalogue),
    secrets: &Secrets,
) -> Option<Api> {
    let doc: RestApiDoc = match serde_json::from_str(document) {
        Ok(d) => d,
        Err(e) => {
            error!(%handle, error = %e, "stored document does not parse; skipped");
            return None;
        }
    };
    match crate::secrets::render::resolve(&doc, (vhosts, catalogue), secrets) {
        Ok(api) => Some(api),
        Err(errors) => {
            warn!(%handle, ?errors, "stored API no longer validates; skipped");
            None
        }
    }
}

/// The serving state of a stored failure: what it served in place of the rejected content.
fn failed_serving(row: &ApiRow, f: ApiFailure, model: (&VhostDefaults, &Catalogue), secrets: &Secrets) -> Serving {
    let fallback = f.served_document.and_then(|document| {
        let api = restore(&row.handle, &document, model, secrets)?;
        let row = ApiRow {
            document,
            ..row.clone()
        };
        Some(Arc::new(ApiEntry {
            row,
            api,
            serving: Serving::Current,
        }))
    });
    Serving::Failed {
        message: f.message,
        fallback,
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
