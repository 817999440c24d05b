//! `api.deployed`, `api.undeployed` and `api.deleted`: stale and duplicate events are answered
//! without a write; a deployment is fetched and applied through the application layer.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Ack, DEPLOYMENT_ID_MISMATCH, Dispatcher, ENVOY_REJECTED, EventError, Outcome, PROCESSING_ERROR, malformed, parse,
};
use crate::app::{AppError, Deployment};
use crate::clock;
use crate::platform::payload::{artifact_document, is_id};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DeploymentEvent {
    #[serde(alias = "providerId", alias = "proxyId")]
    api_id: String,
    deployment_id: String,
    performed_at: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeletedEvent {
    api_id: String,
}

// === impl DeploymentEvent ===

impl DeploymentEvent {
    /// The `deployment.ack` answering this event.
    pub(super) fn ack(
        &self,
        resource_type: &'static str,
        action: &'static str,
        success: bool,
        code: Option<&'static str>,
    ) -> Ack {
        Ack {
            deployment_id: self.deployment_id.clone(),
            artifact_id: self.api_id.clone(),
            resource_type,
            action,
            success,
            performed_at: self.performed_at.clone(),
            error_code: code,
            error_message: None,
        }
    }

    /// `performedAt` in Unix ms, when every field is usable (ids go into URL paths).
    fn checked(&self) -> Option<i64> {
        (is_id(&self.api_id) && is_id(&self.deployment_id))
            .then(|| clock::parse_millis(&self.performed_at))
            .flatten()
    }

    fn deployment(&self) -> Deployment {
        Deployment {
            artifact_id: self.api_id.clone(),
            deployment_id: self.deployment_id.clone(),
            performed_at: self.performed_at.clone(),
        }
    }
}

// === impl Dispatcher ===

impl Dispatcher {
    pub(super) async fn deployed(&self, p: &Value) -> (Outcome, Option<Ack>) {
        let e = match parse::<DeploymentEvent>(p) {
            Ok(e) => e,
            Err(e) => return (malformed(&e), None),
        };
        let Some(at) = e.checked() else {
            return (
                Outcome::Ignored("api.deployed with a bad apiId, deploymentId or performedAt".into()),
                None,
            );
        };
        let ack = |success: bool, code: Option<&'static str>| e.ack("api", "deploy", success, code);
        if let Some(old) = self.app.api_by_artifact(&e.api_id)
            && let Some(have) = old.row.cp_performed_at.as_deref().and_then(clock::parse_millis)
        {
            if at < have {
                return (Outcome::Stale, None);
            }
            if at == have && old.row.cp_deployment_id.as_deref() == Some(&e.deployment_id) && old.api.deployed {
                return (Outcome::Duplicate, Some(ack(true, None)));
            }
        }
        let applied = match self.client.api_artifact(&e.api_id).await {
            Ok(yaml) => self.apply_document(&yaml, &e.deployment()).await,
            Err(err) => Err(err.into()),
        };
        match applied {
            Ok(()) => (Outcome::Applied, Some(ack(true, None))),
            Err(EventError::App(AppError::Rejected(message))) => {
                let mut a = ack(false, Some(ENVOY_REJECTED));
                a.error_message = Some(message.clone());
                (Outcome::Failed(format!("Envoy rejected it: {message}")), Some(a))
            }
            Err(why) => (
                Outcome::Failed(why.to_string()),
                Some(ack(false, Some(PROCESSING_ERROR))),
            ),
        }
    }

    /// Parses an artifact document and deploys it.
    /// Parsing runs on the blocking pool: it is bounded, but CPU work the link's worker need not do.
    pub(in crate::platform) async fn apply_document(&self, yaml: &str, d: &Deployment) -> Result<(), EventError> {
        let yaml = yaml.to_string();
        let doc = tokio::task::spawn_blocking(move || artifact_document(&yaml))
            .await
            .map_err(|_| EventError::Task)??;
        self.pull_secrets(&doc).await?;
        self.app.deploy_artifact(doc, d).await?;
        Ok(())
    }

    pub(super) async fn undeployed(&self, p: &Value) -> (Outcome, Option<Ack>) {
        let e = match parse::<DeploymentEvent>(p) {
            Ok(e) => e,
            Err(e) => return (malformed(&e), None),
        };
        let Some(at) = e.checked() else {
            return (
                Outcome::Ignored("api.undeployed with a bad apiId, deploymentId or performedAt".into()),
                None,
            );
        };
        let ack = |success: bool, code: Option<&'static str>| e.ack("api", "undeploy", success, code);
        let Some(old) = self.app.api_by_artifact(&e.api_id) else {
            // Not here: the desired state (not served) already holds.
            return (Outcome::Duplicate, Some(ack(true, None)));
        };
        if let Some(have) = old.row.cp_performed_at.as_deref().and_then(clock::parse_millis) {
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
        match self.app.undeploy_artifact(&old, &e.deployment()).await {
            Ok(_) => (Outcome::Applied, Some(ack(true, None))),
            Err(why) => (
                Outcome::Failed(EventError::from(why).to_string()),
                Some(ack(false, Some(PROCESSING_ERROR))),
            ),
        }
    }

    pub(super) async fn deleted(&self, p: &Value) -> Outcome {
        let Ok(e) = parse::<DeletedEvent>(p) else {
            return Outcome::Ignored("api.deleted without apiId".into());
        };
        match self.app.delete_artifact(&e.api_id).await {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(why) => Outcome::Failed(EventError::from(why).to_string()),
        }
    }
}
