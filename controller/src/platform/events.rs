//! Applying what the platform API pushes (reference §2.3–§2.4, §4): deployments, API keys (as
//! digests), subscriptions, plans and applications. Every handler is idempotent: a replayed or
//! duplicated event changes nothing twice, and a deployment event older than what is stored is
//! ignored. Deployment events are answered with a `deployment.ack` echoing `performedAt` verbatim.

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use super::client::Rest;
use super::status::{Counter, LinkStatus};
use super::time::{unix_millis, unix_seconds};
use crate::db::{CpObject, Db};
use crate::gateway::{ApiEntry, CONTROL_PLANE, CpDeploy, Gateway};
use crate::keys::{Keys, Pushed, PushedKey};
use crate::model::RestApiDoc;

/// Error codes a failed ack carries.
pub const PROCESSING_ERROR: &str = "GATEWAY_PROCESSING_ERROR";
pub const DEPLOYMENT_ID_MISMATCH: &str = "DEPLOYMENT_ID_MISMATCH";

/// Applies events and sync results to the gateway's state.
#[derive(Debug)]
pub struct Applier {
    pub(super) gateway: Arc<Gateway>,
    pub(super) keys: Arc<Keys>,
    pub(super) db: Arc<Db>,
    pub(super) rest: Rest,
    pub(super) status: Arc<LinkStatus>,
}

/// A `deployment.ack` to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub deployment_id: String,
    pub artifact_id: String,
    pub resource_type: &'static str,
    /// `deploy` or `undeploy`.
    pub action: &'static str,
    pub success: bool,
    pub performed_at: String,
    pub error_code: Option<&'static str>,
}

impl Ack {
    /// The text frame.
    pub fn frame(&self) -> String {
        let mut payload = json!({
            "deploymentId": self.deployment_id,
            "artifactId": self.artifact_id,
            "resourceType": self.resource_type,
            "action": self.action,
            "status": if self.success { "success" } else { "failed" },
            "performedAt": self.performed_at,
        });
        if let Some(code) = self.error_code {
            payload["errorCode"] = json!(code);
        }
        json!({"type": "deployment.ack", "payload": payload}).to_string()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    payload: Value,
    #[serde(default, rename = "userId")]
    user_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeploymentEvent {
    #[serde(alias = "providerId", alias = "proxyId")]
    api_id: String,
    deployment_id: String,
    performed_at: String,
}

impl DeploymentEvent {
    /// The `deployment.ack` answering this event.
    fn ack(&self, resource_type: &'static str, action: &'static str, success: bool, code: Option<&'static str>) -> Ack {
        Ack {
            deployment_id: self.deployment_id.clone(),
            artifact_id: self.api_id.clone(),
            resource_type,
            action,
            success,
            performed_at: self.performed_at.clone(),
            error_code: code,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedEvent {
    api_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyEvent {
    #[serde(default)]
    uuid: String,
    api_id: String,
    #[serde(default, alias = "keyName")]
    name: String,
    #[serde(default)]
    api_key_hashes: Value,
    #[serde(default)]
    masked_api_key: String,
    #[serde(default)]
    expires_at: Option<String>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

/// What handling one frame did (for counters and tests).
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    Duplicate,
    Stale,
    Failed(String),
    /// Malformed, unknown or not for this gateway.
    Ignored(String),
}

// === impl Applier ===

impl Applier {
    /// Handles one text frame; returns the ack to send, if any.
    pub async fn handle(&self, text: &str) -> (Outcome, Option<Ack>) {
        self.status.count(Counter::Received);
        let env: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, len = text.len(), "malformed frame from the control plane; ignored");
                self.status.count(Counter::Ignored);
                return (Outcome::Ignored(format!("malformed frame: {e}")), None);
            }
        };
        let (outcome, ack) = self.dispatch(&env).await;
        let counter = match &outcome {
            Outcome::Applied => Counter::Applied,
            Outcome::Duplicate => Counter::Duplicate,
            Outcome::Stale => Counter::Stale,
            Outcome::Failed(_) => Counter::Failed,
            Outcome::Ignored(_) => Counter::Ignored,
        };
        self.status.count(counter);
        match &outcome {
            Outcome::Failed(why) => warn!(event = %env.kind, reason = %why, "control-plane event failed"),
            Outcome::Ignored(why) => warn!(event = %env.kind, reason = %why, "control-plane event ignored"),
            other => debug!(event = %env.kind, outcome = ?other, "control-plane event handled"),
        }
        (outcome, ack)
    }

    async fn dispatch(&self, env: &Envelope) -> (Outcome, Option<Ack>) {
        let p = &env.payload;
        match env.kind.as_str() {
            "api.deployed" => match parse::<DeploymentEvent>(p) {
                Ok(e) => self.deployed(e).await,
                Err(why) => (Outcome::Ignored(why), None),
            },
            "api.undeployed" => match parse::<DeploymentEvent>(p) {
                Ok(e) => self.undeployed(e).await,
                Err(why) => (Outcome::Ignored(why), None),
            },
            "api.deleted" => (self.deleted(p).await, None),
            "apikey.created" | "apikey.updated" => (self.key_put(p, env.user_id.as_deref()), None),
            "apikey.revoked" => (self.key_revoked(p), None),
            "subscription.created" | "subscription.updated" => (self.subscription_put(p), None),
            "subscription.deleted" => (self.remove_object("subscription", p, "subscriptionId"), None),
            "subscriptionPlan.created" | "subscriptionPlan.updated" => {
                (self.store_object("plan", p, "planId", None), None)
            }
            "subscriptionPlan.deleted" => (self.remove_object("plan", p, "planId"), None),
            "application.updated" => {
                let id = if p.get("applicationUuid").and_then(Value::as_str).is_some() {
                    "applicationUuid"
                } else {
                    "applicationId"
                };
                (self.store_object("application", p, id, None), None)
            }
            kind @ ("llmprovider.deployed"
            | "llmprovider.undeployed"
            | "llmproxy.deployed"
            | "llmproxy.undeployed"
            | "mcpproxy.deployed"
            | "mcpproxy.undeployed") => {
                // Tollgate serves REST APIs only: say so at once instead of letting the deployment time out.
                let Ok(e) = parse::<DeploymentEvent>(p) else {
                    return (Outcome::Ignored(format!("malformed {kind} payload")), None);
                };
                let (resource, action) = kind.split_once('.').unwrap_or((kind, ""));
                let resource_type = match resource {
                    "llmprovider" => "llmprovider",
                    "llmproxy" => "llmproxy",
                    _ => "mcpproxy",
                };
                let action = if action == "deployed" { "deploy" } else { "undeploy" };
                let ack = e.ack(resource_type, action, false, Some(PROCESSING_ERROR));
                (
                    Outcome::Failed(format!("{resource} artifacts are not supported by Tollgate")),
                    Some(ack),
                )
            }
            other => (Outcome::Ignored(format!("unsupported event type '{other}'")), None),
        }
    }

    async fn deployed(&self, e: DeploymentEvent) -> (Outcome, Option<Ack>) {
        let Some(at) = check_deployment(&e) else {
            return (
                Outcome::Ignored("api.deployed with a bad apiId, deploymentId or performedAt".into()),
                None,
            );
        };
        let ack = |success: bool, code: Option<&'static str>| e.ack("api", "deploy", success, code);
        if let Some(old) = self.gateway.by_uuid(&e.api_id)
            && let Some(have) = old.row.cp_performed_at.as_deref().and_then(unix_millis)
        {
            if at < have {
                return (Outcome::Stale, None);
            }
            if at == have && old.row.cp_deployment_id.as_deref() == Some(&e.deployment_id) && old.api.deployed {
                return (Outcome::Duplicate, Some(ack(true, None)));
            }
        }
        let yaml = match self.rest.api_artifact(&e.api_id).await {
            Ok(y) => y,
            Err(err) => {
                return (
                    Outcome::Failed(err.to_string()),
                    Some(ack(false, Some(PROCESSING_ERROR))),
                );
            }
        };
        match self
            .apply_document(&yaml, &e.api_id, &e.deployment_id, &e.performed_at)
            .await
        {
            Ok(()) => (Outcome::Applied, Some(ack(true, None))),
            Err(why) => (Outcome::Failed(why), Some(ack(false, Some(PROCESSING_ERROR)))),
        }
    }

    /// Parses an artifact document and deploys it.
    pub(super) async fn apply_document(
        &self,
        yaml: &str,
        artifact_id: &str,
        deployment_id: &str,
        performed_at: &str,
    ) -> Result<(), String> {
        let doc = artifact_document(yaml)?;
        let d = CpDeploy {
            artifact_id: artifact_id.into(),
            deployment_id: deployment_id.into(),
            performed_at: performed_at.into(),
            deployed: true,
        };
        let w = self.gateway.apply_cp(doc, &d).await.map_err(|e| describe(&e))?;
        info!(
            artifact = artifact_id,
            deployment = deployment_id,
            generation = w.generation,
            "control-plane API deployed"
        );
        Ok(())
    }

    async fn undeployed(&self, e: DeploymentEvent) -> (Outcome, Option<Ack>) {
        let Some(at) = check_deployment(&e) else {
            return (
                Outcome::Ignored("api.undeployed with a bad apiId, deploymentId or performedAt".into()),
                None,
            );
        };
        let ack = |success: bool, code: Option<&'static str>| e.ack("api", "undeploy", success, code);
        let Some(old) = self.gateway.by_uuid(&e.api_id) else {
            // Not here: the desired state (not served) already holds.
            return (Outcome::Duplicate, Some(ack(true, None)));
        };
        if let Some(have) = old.row.cp_performed_at.as_deref().and_then(unix_millis) {
            if at < have {
                return (Outcome::Stale, None);
            }
            if at == have && !old.api.deployed {
                return (Outcome::Duplicate, Some(ack(true, None)));
            }
        }
        if old.row.cp_deployment_id.as_deref() != Some(&e.deployment_id) {
            let why = format!(
                "undeploy of deployment {} but {} is the current one",
                e.deployment_id,
                old.row.cp_deployment_id.as_deref().unwrap_or("none")
            );
            return (Outcome::Failed(why), Some(ack(false, Some(DEPLOYMENT_ID_MISMATCH))));
        }
        match self.undeploy(&old, &e.api_id, &e.deployment_id, &e.performed_at).await {
            Ok(()) => (Outcome::Applied, Some(ack(true, None))),
            Err(why) => (Outcome::Failed(why), Some(ack(false, Some(PROCESSING_ERROR)))),
        }
    }

    pub(super) async fn undeploy(
        &self,
        entry: &ApiEntry,
        artifact_id: &str,
        deployment_id: &str,
        performed_at: &str,
    ) -> Result<(), String> {
        let d = CpDeploy {
            artifact_id: artifact_id.into(),
            deployment_id: deployment_id.into(),
            performed_at: performed_at.into(),
            deployed: false,
        };
        let doc = entry.doc().map_err(|e| describe(&e))?;
        let w = self.gateway.apply_cp(doc, &d).await.map_err(|e| describe(&e))?;
        info!(
            artifact = artifact_id,
            generation = w.generation,
            "control-plane API undeployed"
        );
        Ok(())
    }

    async fn deleted(&self, p: &Value) -> Outcome {
        let Ok(e) = parse::<DeletedEvent>(p) else {
            return Outcome::Ignored("api.deleted without apiId".into());
        };
        match self.remove_api(&e.api_id).await {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(why) => Outcome::Failed(why),
        }
    }

    /// Deletes the control-plane API with artifact id `id`; false when there is none.
    pub(super) async fn remove_api(&self, id: &str) -> Result<bool, String> {
        let Some(old) = self.gateway.by_uuid(id) else {
            return Ok(false);
        };
        if old.row.origin != CONTROL_PLANE {
            return Err(format!("API '{}' was created locally; not deleted", old.row.handle));
        }
        let w = self.gateway.delete(&old.row.handle).await.map_err(|e| describe(&e))?;
        self.keys.blocking().api_deleted(&old.row.handle);
        let _ = self.db.replace_cp_objects("subscription", Some(id), &[]);
        info!(artifact = id, handle = %old.row.handle, generation = w.generation, "control-plane API deleted");
        Ok(true)
    }

    fn key_put(&self, p: &Value, user: Option<&str>) -> Outcome {
        let e: KeyEvent = match parse(p) {
            Ok(e) => e,
            Err(why) => return Outcome::Ignored(why),
        };
        let Some(api) = self.gateway.by_uuid(&e.api_id) else {
            return Outcome::Ignored(format!("API key for artifact {} which is not deployed here", e.api_id));
        };
        let Some(digest) = sha256_of(&e.api_key_hashes) else {
            return Outcome::Ignored("apiKeyHashes has no valid sha256 digest".into());
        };
        let name = if e.name.is_empty() {
            e.uuid.clone()
        } else {
            e.name.clone()
        };
        if name.is_empty() {
            return Outcome::Ignored("API key event without a name or uuid".into());
        }
        let expires_at = match e.expires_at.as_deref().filter(|s| !s.is_empty()) {
            Some(s) => match unix_seconds(s) {
                Some(t) => Some(t),
                None => return Outcome::Ignored(format!("bad expiresAt '{s}'")),
            },
            None => None,
        };
        let stamp = crate::gateway::now();
        let key = PushedKey {
            uuid: e.uuid,
            api: api.row.handle.clone(),
            name,
            digest,
            masked: e.masked_api_key,
            expires_at,
            created_at: e.created_at.unwrap_or_else(|| stamp.clone()),
            updated_at: e.updated_at.unwrap_or(stamp),
            created_by: user.unwrap_or("control-plane").to_string(),
        };
        match self.keys.blocking().put_pushed(key) {
            Ok(Pushed::Applied) => Outcome::Applied,
            Ok(Pushed::Unchanged) => Outcome::Duplicate,
            Ok(Pushed::Ignored) => Outcome::Stale,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn key_revoked(&self, p: &Value) -> Outcome {
        let e: KeyEvent = match parse(p) {
            Ok(e) => e,
            Err(why) => return Outcome::Ignored(why),
        };
        let Some(api) = self.gateway.by_uuid(&e.api_id) else {
            return Outcome::Duplicate;
        };
        match self.keys.blocking().revoke_pushed(&api.row.handle, &e.name) {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn subscription_put(&self, p: &Value) -> Outcome {
        let api = p.get("apiId").and_then(Value::as_str).map(str::to_string);
        self.store_object("subscription", p, "subscriptionId", api)
    }

    fn store_object(&self, kind: &str, p: &Value, id_field: &str, api: Option<String>) -> Outcome {
        let Some(id) = p.get(id_field).and_then(Value::as_str).filter(|s| !s.is_empty()) else {
            return Outcome::Ignored(format!("{kind} event without {id_field}"));
        };
        let body = redact_tokens(p).to_string();
        let o = CpObject {
            kind: kind.into(),
            id: id.into(),
            api,
            body,
            updated_at: crate::gateway::now(),
        };
        let same = self
            .db
            .get_cp_object(kind, &o.id)
            .ok()
            .flatten()
            .is_some_and(|x| x.body == o.body && x.api == o.api);
        if same {
            return Outcome::Duplicate;
        }
        match self.db.put_cp_object(&o) {
            Ok(()) => Outcome::Applied,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    fn remove_object(&self, kind: &str, p: &Value, id_field: &str) -> Outcome {
        let Some(id) = p.get(id_field).and_then(Value::as_str) else {
            return Outcome::Ignored(format!("{kind} event without {id_field}"));
        };
        match self.db.delete_cp_object(kind, id) {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(p: &Value) -> Result<T, String> {
    T::deserialize(p).map_err(|e| format!("malformed payload: {e}"))
}

/// The event's `performedAt` in Unix ms, when every field is usable. Artifact ids go into URL
/// paths, so they must be plain identifiers.
fn check_deployment(e: &DeploymentEvent) -> Option<i64> {
    (is_id(&e.api_id) && is_id(&e.deployment_id))
        .then(|| unix_millis(&e.performed_at))
        .flatten()
}

/// A UUID-like identifier: letters, digits, `-`, `_`, 1–128 characters.
pub fn is_id(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The SHA-256 digest from `apiKeyHashes`: a JSON string holding an object (events) or an object
/// (bulk lists).
pub fn sha256_of(hashes: &Value) -> Option<String> {
    let obj = match hashes {
        Value::String(s) => serde_json::from_str::<Value>(s).ok()?,
        other => other.clone(),
    };
    let hex = obj.get("sha256")?.as_str()?.trim().to_ascii_lowercase();
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then_some(hex)
}

/// Subscription tokens are credentials: only their SHA-256 digest is stored.
pub(super) fn redact_tokens(p: &Value) -> Value {
    let mut v = p.clone();
    if let Some(obj) = v.as_object_mut()
        && let Some(Value::String(token)) = obj.remove("subscriptionToken")
    {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.trim().as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        obj.insert("subscriptionTokenSha256".into(), json!(hex));
    }
    v
}

/// The `RestApi` document inside an artifact (`v1` or `v1alpha1`).
pub fn artifact_document(yaml: &str) -> Result<RestApiDoc, String> {
    let value: Value = serde_yaml::from_str(yaml).map_err(|e| format!("artifact is not valid YAML: {e}"))?;
    if !value.is_object() {
        return Err("artifact is not a YAML mapping".into());
    }
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    if kind != "RestApi" {
        return Err(format!(
            "artifact kind '{kind}' is not supported (Tollgate serves RestApi)"
        ));
    }
    // platform-api down-converts a RestApi for gateways older than 1.2.0 by changing only
    // `apiVersion`; the v1alpha1 fields are a subset of v1's, so both parse alike.
    let api_version = value.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if !matches!(
        api_version,
        "gateway.api-platform.wso2.com/v1" | "gateway.api-platform.wso2.com/v1alpha1"
    ) {
        return Err(format!("artifact apiVersion '{api_version}' is not supported"));
    }
    serde_json::from_value(value).map_err(|e| format!("artifact does not match the RestApi schema: {e}"))
}

fn describe(e: &crate::gateway::GatewayError) -> String {
    match e {
        crate::gateway::GatewayError::Invalid(errs) => {
            let list: Vec<String> = errs.iter().map(|f| format!("{}: {}", f.field, f.message)).collect();
            format!("Configuration validation failed: {}", list.join("; "))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ack_frames_have_the_wire_shape() {
        let a = Ack {
            deployment_id: "d".into(),
            artifact_id: "a".into(),
            resource_type: "api",
            action: "deploy",
            success: false,
            performed_at: "2026-03-04T10:30:00.12Z".into(),
            error_code: Some(PROCESSING_ERROR),
        };
        let v: Value = serde_json::from_str(&a.frame()).unwrap();
        assert_eq!(
            v,
            json!({"type": "deployment.ack", "payload": {"deploymentId": "d", "artifactId": "a",
                "resourceType": "api", "action": "deploy", "status": "failed",
                "performedAt": "2026-03-04T10:30:00.12Z", "errorCode": "GATEWAY_PROCESSING_ERROR"}})
        );
    }

    #[test]
    fn key_hashes_come_as_a_json_string_or_an_object() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(
            sha256_of(&json!(format!("{{\"sha256\": \"{hex}\"}}"))).as_deref(),
            Some(hex)
        );
        assert_eq!(sha256_of(&json!({"sha256": hex.to_uppercase()})).as_deref(), Some(hex));
        assert_eq!(sha256_of(&json!("{\"sha256\": \"short\"}")), None);
        assert_eq!(sha256_of(&json!("not json")), None);
        assert_eq!(sha256_of(&json!({"md5": hex})), None);
    }

    #[test]
    fn ids_that_could_escape_a_url_path_are_refused() {
        assert!(is_id("23826f9e-8daf-4638-b295-14898312759f"));
        for bad in ["", "../x", "a/b", "a?b", "a b", &"x".repeat(129)] {
            assert!(!is_id(bad), "{bad}");
        }
    }

    #[test]
    fn subscription_tokens_are_stored_as_digests() {
        let v = redact_tokens(&json!({"subscriptionId": "s", "subscriptionToken": "secret-token"}));
        assert!(v.get("subscriptionToken").is_none());
        assert_eq!(v["subscriptionTokenSha256"].as_str().unwrap().len(), 64);
        assert!(!v.to_string().contains("secret-token"));
    }

    #[test]
    fn artifacts_must_be_rest_apis_in_a_known_version() {
        let ok =
            "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: a\nspec:\n  context: /a\n";
        assert_eq!(artifact_document(ok).unwrap().metadata.name.as_deref(), Some("a"));
        let legacy = ok.replace("/v1\n", "/v1alpha1\n");
        assert_eq!(artifact_document(&legacy).unwrap().spec.context.as_deref(), Some("/a"));
        assert!(
            artifact_document("apiVersion: gateway.api-platform.wso2.com/v1\nkind: Mcp\n")
                .unwrap_err()
                .contains("Mcp")
        );
        assert!(
            artifact_document("apiVersion: x/v9\nkind: RestApi\n")
                .unwrap_err()
                .contains("x/v9")
        );
        assert!(artifact_document("- a list").is_err());
        assert!(artifact_document(": : :").is_err());
    }
}
