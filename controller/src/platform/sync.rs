//! Startup and reconnect sync (reference §2.8, §3): bring the stored state to what the platform
//! API says this gateway should run, then push the manifest. Sync sends no acks. Each step that
//! fails is reported and the next one still runs; what is already served keeps being served.
//! Every write goes through the application layer.

mod deployments;
mod keys;

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tracing::{info, warn};

use super::client::RestError;
use super::events::Dispatcher;
use super::payload::{KeyDefaults, KeyPayload};
use crate::clock;
use crate::config::ControlPlane;
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
    /// Control-plane keys removed because the listing no longer holds them (no tombstone).
    pub keys_removed: usize,
    /// Keys the listing would have removed but did not, the drop being implausible.
    pub keys_removal_refused: usize,
    pub manifest_pushed: bool,
    pub errors: Vec<String>,
}

/// What a sync may do, from `[control_plane]`.
#[derive(Clone, Copy, Debug)]
pub struct SyncSettings {
    /// Deployments per `fetch-batch` call.
    pub batch: usize,
    /// How much of the known keys one listing may remove.
    pub key_drop: keys::DropLimit,
}

impl SyncSettings {
    /// The settings of `cp`.
    pub fn of(cp: &ControlPlane) -> SyncSettings {
        SyncSettings {
            batch: cp.sync_batch_size,
            key_drop: keys::DropLimit {
                max_percent: cp.key_sync_max_drop_percent,
                min_known: cp.key_sync_min_known,
            },
        }
    }
}

/// A sync outcome that should stop the link for good (the manifest was refused with 401, 403,
/// 404, 409 or 422).
#[derive(Debug)]
pub struct Permanent(pub String);

// === impl Dispatcher ===

impl Dispatcher {
    /// Runs a full sync. `gateway_id` is the id from `connection.ack`.
    pub async fn sync(&self, gateway_id: &str, manifest: &Value, set: SyncSettings) -> Result<SyncReport, Permanent> {
        let mut r = SyncReport {
            at: clock::rfc3339_now(),
            ..SyncReport::default()
        };
        match self.client.deployments().await {
            Ok(list) => self.sync_deployments(list, set.batch, &mut r).await,
            Err(e) => r.errors.push(e.to_string()),
        }
        self.sync_plans(&mut r).await;
        self.sync_subscriptions(&mut r).await;
        self.sync_keys(set.key_drop, &mut r).await;
        match self.client.manifest(gateway_id, manifest).await {
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
            keys_removed = r.keys_removed,
            errors = r.errors.len(),
            "control-plane sync done"
        );
        for e in &r.errors {
            warn!(error = %e, "control-plane sync step failed");
        }
        Ok(r)
    }

    async fn sync_plans(&self, r: &mut SyncReport) {
        match self.client.plans().await {
            Ok(plans) => match self.app.replace_pushed_plans(plans).await {
                Ok(n) => r.plans = n,
                Err(e) => r.errors.push(e.to_string()),
            },
            Err(e) => r.errors.push(e.to_string()),
        }
    }

    async fn sync_subscriptions(&self, r: &mut SyncReport) {
        let apis: Vec<String> = self
            .app
            .apis()
            .iter()
            .filter(|e| e.from_control_plane())
            .map(|e| e.row.uuid.clone())
            .collect();
        for api in apis {
            match self.client.subscriptions(&api).await {
                // The listing names the API by its artifact id; entries without `apiId` belong to it.
                Ok(subs) => {
                    let subs = subs
                        .into_iter()
                        .map(|mut s| {
                            if s.get("apiId").is_none() {
                                s["apiId"] = serde_json::json!(api);
                            }
                            s
                        })
                        .collect();
                    match self.app.replace_pushed_subscriptions(&api, subs).await {
                        Ok(n) => r.subscriptions += n,
                        Err(e) => r.errors.push(e.to_string()),
                    }
                }
                Err(RestError::Status { status, .. }) if status.as_u16() == 404 || status.as_u16() == 403 => {}
                Err(e) => r.errors.push(e.to_string()),
            }
        }
    }

    async fn sync_keys(&self, drop: keys::DropLimit, r: &mut SyncReport) {
        let list = match keys::list_all(&self.client).await {
            Ok(l) => l,
            Err(e) => return r.errors.push(e.to_string()),
        };
        let mut listed = HashSet::new();
        let mut batch = Vec::new();
        for k in &list {
            if let Some(key) = self.listed_key(k, &mut listed, r).await {
                batch.push(key);
            }
        }
        match self.app.put_pushed_keys(batch).await {
            Ok(results) => {
                for (uuid, result) in results {
                    match result {
                        Ok(_) => r.keys += 1,
                        Err(e) => r.errors.push(format!("API key {uuid}: {e}")),
                    }
                }
            }
            Err(e) => r.errors.push(e.to_string()),
        }
        self.remove_unlisted(&listed, drop, r).await;
    }

    /// One entry of the bulk key list: the key to store, or `None` when it is revoked (a tombstone
    /// is left), unusable (reported) or for an artifact not deployed here. Keys of deployed
    /// artifacts are added to `listed`.
    async fn listed_key(&self, k: &Value, listed: &mut HashSet<String>, r: &mut SyncReport) -> Option<PushedKey> {
        let s = |f: &str| k.get(f).and_then(Value::as_str).unwrap_or("").to_string();
        let (uuid, artifact) = (s("uuid"), s("artifactUuid"));
        let api = self.app.api_by_artifact(&artifact)?;
        listed.insert(uuid.clone());
        if s("status") == "revoked" {
            if let Err(e) = self.app.tombstone_key(&uuid, &api.row.handle, &s("name")).await {
                r.errors.push(e.to_string());
            }
            return None;
        }
        let defaults = KeyDefaults {
            created_by: "control-plane",
            stamp: "",
            strict_expiry: false,
        };
        let key = KeyPayload::deserialize(k)
            .map_err(|e| e.to_string())
            .and_then(|p| p.into_pushed(&api.row.handle, defaults).map_err(|e| e.to_string()));
        match key {
            Ok(key) => Some(key),
            Err(why) => {
                r.errors.push(format!("API key {uuid}: {why}"));
                None
            }
        }
    }

    /// Keys the platform API no longer lists were deleted there: removed without a tombstone (a
    /// later event or listing may bring them back), and only when the drop is plausible.
    async fn remove_unlisted(&self, listed: &HashSet<String>, drop: keys::DropLimit, r: &mut SyncReport) {
        let pushed = match self.app.pushed_keys().await {
            Ok(p) => p,
            Err(e) => return r.errors.push(e.to_string()),
        };
        let known = pushed.len();
        let gone: Vec<_> = pushed.into_iter().filter(|k| !listed.contains(&k.uuid)).collect();
        if drop.refuses(gone.len(), known) {
            warn!(
                unlisted = gone.len(),
                known,
                max_percent = drop.max_percent,
                "the API key listing would remove too many control-plane keys; keeping them all"
            );
            r.keys_removal_refused = gone.len();
            r.errors.push(format!(
                "API key listing not applied: it would remove {} of {known} control-plane keys",
                gone.len()
            ));
            return;
        }
        for k in gone {
            match self.app.forget_pushed_key(&k.api, &k.name).await {
                Ok(true) => r.keys_removed += 1,
                Ok(false) => {}
                Err(e) => r.errors.push(e.to_string()),
            }
        }
    }
}
