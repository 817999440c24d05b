//! The application layer: the one place that owns every write path. REST handlers and the
//! control-plane link parse what they receive, call [`App`], and map the result; the database,
//! the API repository, the key store and the xDS store are only written from here. SQLite work
//! runs on the blocking pool, never on an async worker.
//!
//! - [`repo`]: the API repository (stored APIs, their translation and publication).
//! - [`control_plane`]: what the platform API pushes besides APIs: keys, subscriptions, plans.

mod control_plane;
mod error;
mod keys;
mod pushed_subs;
pub mod repo;
mod secrets;
mod serving;
mod subscriptions;

use std::sync::Arc;

use tollgate_policies::Catalogue;
use tollgate_xds::Store;
use tracing::{info, warn};

pub use control_plane::Stored;
pub use error::AppError;
pub use repo::{ApiEntry, ApiRepo, Deployment, RepoParts, Written};
pub use serving::{ApiState, Serving};
pub use subscriptions::{PlanWrite, SubscriptionWrite};

use crate::db::Db;
use crate::keys::Keys;
use crate::origin::Origin;
use crate::subs::Subs;
use tollgate_model::RestApiDoc;

/// The application: stored APIs, their keys, and what the control plane pushed.
#[derive(Debug)]
pub struct App {
    repo: ApiRepo,
    keys: Arc<Keys>,
    subs: Arc<Subs>,
    db: Arc<Db>,
    /// One secret write at a time (a write may redeploy the APIs that use the secret).
    secret_writes: tokio::sync::Mutex<()>,
}

/// Whether an API is served (`deployed`) or stored but not served (`undeployed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeploymentState {
    Deployed,
    Undeployed,
}

// === impl DeploymentState ===

impl DeploymentState {
    /// `Deployed` when `deployed`.
    pub fn of(deployed: bool) -> DeploymentState {
        if deployed {
            DeploymentState::Deployed
        } else {
            DeploymentState::Undeployed
        }
    }

    /// The REST and document form.
    pub fn as_str(self) -> &'static str {
        match self {
            DeploymentState::Deployed => "deployed",
            DeploymentState::Undeployed => "undeployed",
        }
    }
}

// === impl App ===

impl App {
    /// The application over a loaded repository, key store, subscription index and database.
    pub fn new(repo: ApiRepo, keys: Arc<Keys>, subs: Arc<Subs>, db: Arc<Db>) -> App {
        App {
            repo,
            keys,
            subs,
            db,
            secret_writes: tokio::sync::Mutex::new(()),
        }
    }

    /// The policy catalogue.
    pub fn catalogue(&self) -> &Catalogue {
        self.repo.catalogue()
    }

    /// The xDS store.
    pub fn xds(&self) -> &Arc<Store> {
        self.repo.xds()
    }

    /// One API, by handle.
    pub fn api(&self, handle: &str) -> Option<Arc<ApiEntry>> {
        self.repo.get(handle)
    }

    /// The API stored under a control-plane artifact id.
    pub fn api_by_artifact(&self, artifact_id: &str) -> Option<Arc<ApiEntry>> {
        self.repo.by_uuid(artifact_id)
    }

    /// Whether the database answers (off the async workers).
    pub async fn database_answers(&self) -> bool {
        let db = self.db.clone();
        blocking(move || db.answers()).await.unwrap_or(false)
    }

    /// Every API, by handle.
    pub fn apis(&self) -> Vec<Arc<ApiEntry>> {
        self.repo.list()
    }

    /// Settles pending APIs and quarantines rejected ones whenever an Envoy's status changes,
    /// until the task is dropped.
    pub async fn settle_forever(self: Arc<Self>) {
        let mut last_sweep = std::time::Instant::now();
        loop {
            // The subscription index's periodic sweep rides on this loop (it wakes at least once a
            // second): ended grace tokens go, layers merge.
            if last_sweep.elapsed() >= std::time::Duration::from_secs(60) {
                last_sweep = std::time::Instant::now();
                let subs = self.subs.clone();
                let _ = blocking(move || subs.compact()).await;
            }
            let changed = self.repo.status.changes();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Err(e) = self.repo.settle().await {
                warn!(error = %e, "settling the APIs' state failed; retrying on the next change");
            }
            // A periodic look too, in case a change happened while a settle held the notification.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), changed).await;
        }
    }

    /// Runs a write in its own task, so that a caller who goes away (a client that disconnects)
    /// cannot cut it in half: the database, memory and Envoy stay in step.
    pub async fn detached<T, F>(self: &Arc<Self>, write: impl FnOnce(Arc<App>) -> F) -> Result<T, AppError>
    where
        F: std::future::Future<Output = Result<T, AppError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(write(self.clone())).await.map_err(|_| AppError::Task)?
    }

    /// Creates an API through the management API.
    pub async fn create_api(&self, doc: RestApiDoc) -> Result<Written, AppError> {
        let w = self.repo.create(doc, Origin::GatewayApi).await?;
        self.adopt_subscriptions(&w).await;
        Ok(w)
    }

    /// Makes the subscriptions stored for a newly stored API (by its UUID) usable.
    async fn adopt_subscriptions(&self, w: &Written) {
        if let Some(e) = &w.entry
            && let Err(err) = self.api_subscriptions_changed(&e.row.uuid).await
        {
            warn!(api = %e.row.handle, error = %err, "cannot load the subscriptions of a new API");
        }
    }

    /// Replaces an API (also how it is undeployed through the management API).
    pub async fn update_api(&self, handle: &str, doc: RestApiDoc) -> Result<Written, AppError> {
        self.repo.update(handle, doc).await
    }

    /// Deletes an API, its keys and its subscriptions.
    pub async fn delete_api(&self, handle: &str) -> Result<Written, AppError> {
        let uuid = self.repo.get(handle).map(|e| e.row.uuid.clone());
        let w = self.repo.delete(handle).await?;
        // The API is gone; its keys' rows are removed too (a failure leaves rows that open nothing,
        // since no route names the API any more).
        if let Err(e) = self.keys.api_deleted(handle).await {
            warn!(api = %handle, error = %e, "cannot forget the keys of a deleted API");
        }
        if let Some(uuid) = uuid.as_deref()
            && let Err(e) = self.api_subscriptions_deleted(uuid).await
        {
            warn!(api = %handle, error = %e, "cannot delete the subscriptions of a deleted API");
        }
        Ok(w)
    }

    /// Stores and serves an API the control plane deployed.
    pub async fn deploy_artifact(&self, doc: RestApiDoc, d: &Deployment) -> Result<Written, AppError> {
        let w = self.repo.put_deployment(doc, d, DeploymentState::Deployed).await?;
        self.adopt_subscriptions(&w).await;
        info!(artifact = %d.artifact_id, deployment = %d.deployment_id, generation = w.generation,
              "control-plane API deployed");
        Ok(w)
    }

    /// Stops serving a control-plane API; it stays stored with the deployment that undeployed it.
    pub async fn undeploy_artifact(&self, entry: &ApiEntry, d: &Deployment) -> Result<Written, AppError> {
        let w = self
            .repo
            .put_deployment(entry.doc()?, d, DeploymentState::Undeployed)
            .await?;
        info!(artifact = %d.artifact_id, generation = w.generation, "control-plane API undeployed");
        Ok(w)
    }

    /// Deletes the control-plane API of artifact `artifact_id` with its keys and subscriptions;
    /// false when there is none. A locally created API is refused.
    pub async fn delete_artifact(&self, artifact_id: &str) -> Result<bool, AppError> {
        let Some(old) = self.repo.by_uuid(artifact_id) else {
            return Ok(false);
        };
        if !old.from_control_plane() {
            return Err(AppError::NotControlPlane(old.row.handle.clone()));
        }
        // Its keys and subscriptions go with it.
        let w = self.delete_api(&old.row.handle).await?;
        info!(artifact = artifact_id, handle = %old.row.handle, generation = w.generation,
              "control-plane API deleted");
        Ok(true)
    }
}

/// Runs blocking work (SQLite) on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f).await.map_err(|_| AppError::Task)
}

#[cfg(test)]
mod tests;
