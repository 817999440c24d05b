//! The deployments step of a sync: drop what the list no longer has (when the artifact is gone),
//! undeploy what it lists as undeployed, and fetch in batches and deploy what is new or changed.

use std::collections::{HashMap, HashSet};

use super::SyncReport;
use crate::app::{ApiEntry, Deployment};
use crate::clock;
use crate::platform::client::{DeploymentInfo, ListedState};
use crate::platform::events::Dispatcher;
use crate::platform::payload::is_id;

/// What to do with one listed deployment.
enum Plan {
    Unchanged,
    /// A locally created API has the handle: reported, never replaced.
    Local(String),
    Deploy,
    Undeploy(std::sync::Arc<ApiEntry>),
}

// === impl Dispatcher ===

impl Dispatcher {
    pub(super) async fn sync_deployments(&self, list: Vec<DeploymentInfo>, batch: usize, r: &mut SyncReport) {
        let list: Vec<DeploymentInfo> = list
            .into_iter()
            .filter(|d| d.kind.is_empty() || d.kind == "RestApi")
            .filter(|d| {
                is_id(&d.artifact_id) && is_id(&d.deployment_id) && clock::parse_millis(&d.deployed_at).is_some()
            })
            .collect();
        r.deployments_listed = list.len();
        self.remove_orphans(&list, r).await;
        let mut wanted: Vec<&DeploymentInfo> = Vec::new();
        for d in &list {
            match self.plan(d) {
                Plan::Unchanged => r.unchanged += 1,
                Plan::Local(handle) => {
                    r.failed += 1;
                    r.errors.push(format!(
                        "artifact {}: an API with handle '{handle}' was created locally",
                        d.artifact_id
                    ));
                }
                Plan::Deploy => wanted.push(d),
                Plan::Undeploy(e) => match self.app.undeploy_artifact(&e, &deployment(d)).await {
                    Ok(_) => r.undeployed += 1,
                    Err(why) => {
                        r.failed += 1;
                        let why = crate::platform::events::EventError::from(why);
                        r.errors.push(format!("artifact {}: {why}", d.artifact_id));
                    }
                },
            }
        }
        for chunk in wanted.chunks(batch.max(1)) {
            self.deploy_batch(chunk, r).await;
        }
    }

    /// Control-plane APIs the list no longer mentions are removed when the artifact is gone.
    async fn remove_orphans(&self, list: &[DeploymentInfo], r: &mut SyncReport) {
        let listed: HashSet<&str> = list.iter().map(|d| d.artifact_id.as_str()).collect();
        let orphans: Vec<String> = self
            .app
            .apis()
            .iter()
            .filter(|e| e.from_control_plane() && !listed.contains(e.row.uuid.as_str()))
            .map(|e| e.row.uuid.clone())
            .collect();
        if orphans.is_empty() {
            return;
        }
        let gone = match self.client.gone(&orphans).await {
            Ok(gone) => gone,
            Err(e) => return r.errors.push(e.to_string()),
        };
        for id in gone {
            match self.app.delete_artifact(&id).await {
                Ok(true) => r.removed += 1,
                Ok(false) => {}
                Err(e) => r.errors.push(crate::platform::events::EventError::from(e).to_string()),
            }
        }
    }

    /// What a listed deployment asks of the stored state.
    fn plan(&self, d: &DeploymentInfo) -> Plan {
        let at = clock::parse_millis(&d.deployed_at).unwrap_or(0);
        let local = self.app.api_by_artifact(&d.artifact_id);
        let have = local
            .as_ref()
            .and_then(|e| e.row.cp_performed_at.as_deref())
            .and_then(clock::parse_millis);
        let fresh = have.is_none_or(|h| at > h);
        match (d.state, &local) {
            (ListedState::Deployed, Some(e))
                if !fresh && e.api.deployed && e.row.cp_deployment_id.as_deref() == Some(&d.deployment_id) =>
            {
                Plan::Unchanged
            }
            (ListedState::Deployed, Some(e)) if !e.from_control_plane() => Plan::Local(e.row.handle.clone()),
            (ListedState::Deployed, _) if fresh || local.as_ref().is_some_and(|e| !e.api.deployed) => Plan::Deploy,
            (ListedState::Undeployed, Some(e)) if e.from_control_plane() && e.api.deployed && fresh => {
                Plan::Undeploy(e.clone())
            }
            _ => Plan::Unchanged,
        }
    }

    /// Fetches one batch of deployments and applies each.
    async fn deploy_batch(&self, chunk: &[&DeploymentInfo], r: &mut SyncReport) {
        let by_deployment: HashMap<&str, &DeploymentInfo> =
            chunk.iter().map(|d| (d.deployment_id.as_str(), *d)).collect();
        let ids: Vec<String> = chunk.iter().map(|d| d.deployment_id.clone()).collect();
        let entries = match self.client.fetch_batch(&ids).await {
            Ok(e) => e,
            Err(e) => {
                r.failed += chunk.len();
                return r.errors.push(e.to_string());
            }
        };
        let mut seen = 0;
        for entry in entries {
            let Some(d) = by_deployment.get(entry.deployment_id.as_str()) else {
                continue;
            };
            if entry.artifact_id != d.artifact_id {
                r.failed += 1;
                r.errors.push(format!(
                    "deployment {}: archive names artifact {} but the list says {}",
                    d.deployment_id, entry.artifact_id, d.artifact_id
                ));
                continue;
            }
            seen += 1;
            match self.apply_document(&entry.document, &deployment(d)).await {
                Ok(()) => r.deployed += 1,
                Err(why) => {
                    r.failed += 1;
                    r.errors.push(format!("artifact {}: {why}", d.artifact_id));
                }
            }
        }
        if seen < chunk.len() {
            r.failed += chunk.len() - seen;
            r.errors.push(format!(
                "{} deployment(s) missing from the batch archive",
                chunk.len() - seen
            ));
        }
    }
}

fn deployment(d: &DeploymentInfo) -> Deployment {
    Deployment {
        artifact_id: d.artifact_id.clone(),
        deployment_id: d.deployment_id.clone(),
        performed_at: d.deployed_at.clone(),
    }
}
