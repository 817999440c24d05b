//! Startup and reconnect sync (reference §2.8, §3): bring the stored state to what the platform
//! API says this gateway should run, then push the manifest. Sync sends no acks. Each step that
//! fails is reported and the next one still runs; what is already served keeps being served.

use std::collections::HashMap;

use serde::Serialize;
use serde_json::Value;
use tracing::{info, warn};

use super::client::{DeploymentInfo, RestError};
use super::events::{Applier, is_id, redact_tokens, sha256_of};
use super::time::{unix_millis, unix_seconds};
use crate::db::CpObject;
use crate::gateway::CONTROL_PLANE;
use crate::keys::PushedKey;

/// What a sync did.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    pub at: String,
    pub deployments_listed: usize,
    pub deployed: usize,
    pub undeployed: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub failed: usize,
    pub plans: usize,
    pub subscriptions: usize,
    pub keys: usize,
    pub manifest_pushed: bool,
    pub errors: Vec<String>,
}

/// A sync outcome that should stop the link for good (the manifest was refused with 401, 403,
/// 404, 409 or 422).
#[derive(Debug)]
pub struct Permanent(pub String);

impl Applier {
    /// Runs a full sync. `gateway_id` is the id from `connection.ack`.
    pub async fn sync(&self, gateway_id: &str, manifest: &Value, batch: usize) -> Result<SyncReport, Permanent> {
        let mut r = SyncReport {
            at: crate::gateway::now(),
            ..SyncReport::default()
        };
        match self.rest.deployments().await {
            Ok(list) => self.sync_deployments(list, batch, &mut r).await,
            Err(e) => r.errors.push(e.to_string()),
        }
        self.sync_plans(&mut r).await;
        self.sync_subscriptions(&mut r).await;
        self.sync_keys(&mut r).await;
        match self.rest.manifest(gateway_id, manifest).await {
            Ok(()) => r.manifest_pushed = true,
            Err(e) if e.status().is_some_and(|s| super::is_permanent(s.as_u16())) => {
                return Err(Permanent(format!("manifest refused: {e}")));
            }
            Err(e) => r.errors.push(e.to_string()),
        }
        info!(
            listed = r.deployments_listed,
            deployed = r.deployed,
            undeployed = r.undeployed,
            removed = r.removed,
            unchanged = r.unchanged,
            failed = r.failed,
            keys = r.keys,
            errors = r.errors.len(),
            "control-plane sync done"
        );
        for e in &r.errors {
            warn!(error = %e, "control-plane sync step failed");
        }
        Ok(r)
    }

    async fn sync_deployments(&self, list: Vec<DeploymentInfo>, batch: usize, r: &mut SyncReport) {
        let list: Vec<DeploymentInfo> = list
            .into_iter()
            .filter(|d| d.kind.is_empty() || d.kind == "RestApi")
            .filter(|d| is_id(&d.artifact_id) && is_id(&d.deployment_id) && unix_millis(&d.deployed_at).is_some())
            .collect();
        r.deployments_listed = list.len();

        // Control-plane APIs the list no longer mentions: removed when the artifact is gone.
        let listed: std::collections::HashSet<&str> = list.iter().map(|d| d.artifact_id.as_str()).collect();
        let orphans: Vec<String> = self
            .gateway
            .list()
            .iter()
            .filter(|e| e.row.origin == CONTROL_PLANE && !listed.contains(e.row.uuid.as_str()))
            .map(|e| e.row.uuid.clone())
            .collect();
        if !orphans.is_empty() {
            match self.rest.gone(&orphans).await {
                Ok(gone) => {
                    for id in gone {
                        match self.remove_api(&id).await {
                            Ok(true) => r.removed += 1,
                            Ok(false) => {}
                            Err(e) => r.errors.push(e),
                        }
                    }
                }
                Err(e) => r.errors.push(e.to_string()),
            }
        }

        let mut wanted: Vec<&DeploymentInfo> = Vec::new();
        for d in &list {
            let at = unix_millis(&d.deployed_at).unwrap_or(0);
            let local = self.gateway.by_uuid(&d.artifact_id);
            let have = local
                .as_ref()
                .and_then(|e| e.row.cp_performed_at.as_deref())
                .and_then(unix_millis);
            let fresh = have.is_none_or(|h| at > h);
            match (d.state.as_str(), &local) {
                ("DEPLOYED", Some(e))
                    if !fresh && e.api.deployed && e.row.cp_deployment_id.as_deref() == Some(&d.deployment_id) =>
                {
                    r.unchanged += 1
                }
                ("DEPLOYED", Some(e)) if e.row.origin != CONTROL_PLANE => {
                    r.failed += 1;
                    r.errors.push(format!(
                        "artifact {}: an API with handle '{}' was created locally",
                        d.artifact_id, e.row.handle
                    ));
                }
                ("DEPLOYED", _) if fresh || local.as_ref().is_some_and(|e| !e.api.deployed) => wanted.push(d),
                ("DEPLOYED", _) => r.unchanged += 1,
                ("UNDEPLOYED", Some(e)) if e.row.origin == CONTROL_PLANE && e.api.deployed && fresh => {
                    match self.undeploy(e, &d.artifact_id, &d.deployment_id, &d.deployed_at).await {
                        Ok(()) => r.undeployed += 1,
                        Err(why) => {
                            r.failed += 1;
                            r.errors.push(format!("artifact {}: {why}", d.artifact_id));
                        }
                    }
                }
                _ => r.unchanged += 1,
            }
        }

        let by_deployment: HashMap<&str, &DeploymentInfo> =
            wanted.iter().map(|d| (d.deployment_id.as_str(), *d)).collect();
        for chunk in wanted.chunks(batch.max(1)) {
            let ids: Vec<String> = chunk.iter().map(|d| d.deployment_id.clone()).collect();
            let entries = match self.rest.fetch_batch(&ids).await {
                Ok(e) => e,
                Err(e) => {
                    r.failed += chunk.len();
                    r.errors.push(e.to_string());
                    continue;
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
                match self
                    .apply_document(&entry.document, &d.artifact_id, &d.deployment_id, &d.deployed_at)
                    .await
                {
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

    async fn sync_plans(&self, r: &mut SyncReport) {
        match self.rest.plans().await {
            Ok(plans) => {
                let objects = objects("plan", &plans, "id", |_| None);
                r.plans = objects.len();
                if let Err(e) = self.db.replace_cp_objects("plan", None, &objects) {
                    r.errors.push(e.to_string());
                }
            }
            Err(e) => r.errors.push(e.to_string()),
        }
    }

    async fn sync_subscriptions(&self, r: &mut SyncReport) {
        let apis: Vec<String> = self
            .gateway
            .list()
            .iter()
            .filter(|e| e.row.origin == CONTROL_PLANE)
            .map(|e| e.row.uuid.clone())
            .collect();
        for api in apis {
            match self.rest.subscriptions(&api).await {
                Ok(subs) => {
                    let objects = objects("subscription", &subs, "id", |_| Some(api.clone()));
                    r.subscriptions += objects.len();
                    if let Err(e) = self.db.replace_cp_objects("subscription", Some(&api), &objects) {
                        r.errors.push(e.to_string());
                    }
                }
                Err(RestError::Status { status, .. }) if status.as_u16() == 404 || status.as_u16() == 403 => {}
                Err(e) => r.errors.push(e.to_string()),
            }
        }
    }

    async fn sync_keys(&self, r: &mut SyncReport) {
        let list = match self.rest.api_keys().await {
            Ok(l) => l,
            Err(e) => return r.errors.push(e.to_string()),
        };
        let mut listed = std::collections::HashSet::new();
        let mut batch = Vec::new();
        for k in &list {
            let s = |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("").to_string();
            let (uuid, name, artifact) = (s("uuid"), s("name"), s("artifactUuid"));
            let Some(api) = self.gateway.by_uuid(&artifact) else {
                continue;
            };
            listed.insert(uuid.clone());
            if s("status") == "revoked" {
                if let Err(e) = self.keys.blocking().tombstone(&uuid, &api.row.handle, &name) {
                    r.errors.push(e.to_string());
                }
                continue;
            }
            let Some(digest) = sha256_of(k.get("apiKeyHashes").unwrap_or(&Value::Null)) else {
                r.errors.push(format!("API key {uuid}: no valid sha256 digest"));
                continue;
            };
            let key = PushedKey {
                uuid: uuid.clone(),
                api: api.row.handle.clone(),
                name: if name.is_empty() { uuid.clone() } else { name },
                digest,
                masked: s("maskedApiKey"),
                expires_at: k.get("expiresAt").and_then(Value::as_str).and_then(unix_seconds),
                created_at: s("createdAt"),
                updated_at: s("updatedAt"),
                created_by: "control-plane".into(),
            };
            batch.push(key);
        }
        for (uuid, result) in self.keys.blocking().put_pushed_all(batch) {
            match result {
                Ok(_) => r.keys += 1,
                Err(e) => r.errors.push(format!("API key {uuid}: {e}")),
            }
        }
        // Keys the platform API no longer lists were deleted there.
        let pushed = match self.keys.blocking().pushed() {
            Ok(p) => p,
            Err(e) => {
                r.errors.push(e.to_string());
                Vec::new()
            }
        };
        for k in pushed {
            if !listed.contains(&k.uuid)
                && let Err(e) = self.keys.blocking().revoke_pushed(&k.api, &k.name)
            {
                r.errors.push(e.to_string());
            }
        }
    }
}

fn objects(kind: &str, list: &[Value], id_field: &str, api: impl Fn(&Value) -> Option<String>) -> Vec<CpObject> {
    list.iter()
        .filter_map(|v| {
            let id = v.get(id_field)?.as_str()?.to_string();
            let body = redact_tokens(v);
            Some(CpObject {
                kind: kind.into(),
                id,
                api: api(v),
                body: body.to_string(),
                updated_at: crate::gateway::now(),
            })
        })
        .collect()
}
