//! Applying what the platform API pushes (reference §2.3–§2.4, §4): deployments, API keys (as
//! digests), subscriptions, plans and applications. Every handler parses the event, calls the
//! application layer and maps the result to an [`Outcome`] (counted and logged) and, for
//! deployments, a `deployment.ack` echoing `performedAt` verbatim. Every handler is idempotent: a
//! replayed or duplicated event changes nothing twice, and a deployment event older than what is
//! stored is ignored.

mod deployments;
mod pushed;
mod secrets;

use std::sync::Arc;

use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, warn};

use super::client::{PlatformClient, RestError};
use super::payload::ArtifactError;
use super::status::{Counter, LinkStatus};
use crate::app::{App, AppError};

/// Error codes a failed ack carries.
pub const PROCESSING_ERROR: &str = "GATEWAY_PROCESSING_ERROR";
/// The `errorCode` of a deployment an Envoy of the gateway rejected.
pub const ENVOY_REJECTED: &str = "GATEWAY_ENVOY_REJECTED";
pub const DEPLOYMENT_ID_MISMATCH: &str = "DEPLOYMENT_ID_MISMATCH";

/// Applies events and sync runs through the application layer.
#[derive(Debug)]
pub struct Dispatcher {
    pub(super) app: Arc<App>,
    pub(super) client: PlatformClient,
    pub(super) status: Arc<LinkStatus>,
}

/// Why applying a pushed deployment failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// The artifact could not be fetched.
    #[error(transparent)]
    Fetch(#[from] RestError),
    /// The artifact is not a `RestApi` Tollgate can read.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// The application layer refused or failed the write.
    #[error("{}", describe(.0))]
    App(#[from] AppError),
    /// The blocking task reading the artifact did not finish (it panicked or the runtime is stopping).
    #[error("the artifact could not be read")]
    Task,
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
    /// Why, in words (sent as `errorMessage`; the platform stores only `errorCode`): Envoy's
    /// message when it rejected the API.
    pub error_message: Option<String>,
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
        if let Some(message) = &self.error_message {
            payload["errorMessage"] = json!(message);
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

// === impl Dispatcher ===

impl Dispatcher {
    /// Handles one text frame; returns the ack to send, if any.
    pub async fn handle(&self, text: &str) -> (Outcome, Option<Ack>) {
        self.status.count(Counter::Received);
        let env: Envelope = match serde_json::from_str(text) {
            Ok(e) => e,
            Err(e) => {
                warn!(error = %e, len = text.len(), "malformed frame from the control plane; ignored");
                self.status.count(Counter::Ignored);
                let outcome = Outcome::Ignored(format!("malformed frame: {e}"));
                self.status.metrics().event(None, &outcome);
                return (outcome, None);
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
        self.status.metrics().event(Some(&env.kind), &outcome);
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
            "api.deployed" => self.deployed(p).await,
            "api.undeployed" => self.undeployed(p).await,
            "api.deleted" => (self.deleted(p).await, None),
            "apikey.created" | "apikey.updated" => (self.key_put(p, env.user_id.as_deref()).await, None),
            "apikey.revoked" => (self.key_revoked(p).await, None),
            "subscription.created" | "subscription.updated" => (self.subscription_put(p).await, None),
            "subscriptionPlan.created" | "subscriptionPlan.updated" => (self.plan_put(p).await, None),
            "application.updated" => (self.application_put(p).await, None),
            "subscription.deleted" | "subscriptionPlan.deleted" => (self.object_deleted(&env.kind, p).await, None),
            kind @ ("llmprovider.deployed"
            | "llmprovider.undeployed"
            | "llmproxy.deployed"
            | "llmproxy.undeployed"
            | "mcpproxy.deployed"
            | "mcpproxy.undeployed") => unsupported(kind, p),
            other => (Outcome::Ignored(format!("unsupported event type '{other}'")), None),
        }
    }
}

/// Tollgate serves REST APIs only: say so at once instead of letting the deployment time out.
fn unsupported(kind: &str, p: &Value) -> (Outcome, Option<Ack>) {
    let Ok(e) = parse::<deployments::DeploymentEvent>(p) else {
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

/// A payload as `T`.
fn parse<T: serde::de::DeserializeOwned>(p: &Value) -> Result<T, serde_json::Error> {
    T::deserialize(p)
}

/// The outcome of a payload that does not parse.
fn malformed(e: &serde_json::Error) -> Outcome {
    Outcome::Ignored(format!("malformed payload: {e}"))
}

/// An application error as the control plane's logs should read it: validation failures list
/// their fields.
fn describe(e: &AppError) -> String {
    match e {
        AppError::Invalid(errs) => {
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
            error_message: None,
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
    fn validation_failures_name_their_fields() {
        let e = EventError::from(AppError::Invalid(vec![tollgate_model::FieldError {
            field: "spec.context".into(),
            message: "must start with /".into(),
        }]));
        assert_eq!(
            e.to_string(),
            "Configuration validation failed: spec.context: must start with /"
        );
    }
}
