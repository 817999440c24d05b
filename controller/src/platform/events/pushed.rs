//! `apikey.*`, `subscription.*`, `subscriptionPlan.*` and `application.updated`: what the control
//! plane pushes besides APIs, stored through the application layer.

use serde::Deserialize;
use serde_json::Value;

use super::{Dispatcher, Outcome, malformed, parse};
use crate::app::Stored;
use crate::clock;
use crate::db::CpKind;
use crate::keys::Pushed;
use crate::platform::payload::{KeyDefaults, KeyPayload, cp_object};

/// An `apikey.*` event: the artifact the key belongs to, and the key.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeyEvent {
    api_id: String,
    #[serde(flatten)]
    key: KeyPayload,
}

// === impl Dispatcher ===

impl Dispatcher {
    pub(super) async fn key_put(&self, p: &Value, user: Option<&str>) -> Outcome {
        let e: KeyEvent = match parse(p) {
            Ok(e) => e,
            Err(e) => return malformed(&e),
        };
        let Some(api) = self.app.api_by_artifact(&e.api_id) else {
            return Outcome::Ignored(format!("API key for artifact {} which is not deployed here", e.api_id));
        };
        let stamp = clock::rfc3339_now();
        let defaults = KeyDefaults {
            created_by: user.unwrap_or("control-plane"),
            stamp: &stamp,
            strict_expiry: true,
        };
        let key = match e.key.into_pushed(&api.row.handle, defaults) {
            Ok(k) => k,
            Err(why) => return Outcome::Ignored(why.to_string()),
        };
        match self.app.put_pushed_key(key).await {
            Ok(Pushed::Applied) => Outcome::Applied,
            Ok(Pushed::Unchanged) => Outcome::Duplicate,
            Ok(Pushed::Ignored) => Outcome::Stale,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    pub(super) async fn key_revoked(&self, p: &Value) -> Outcome {
        let e: KeyEvent = match parse(p) {
            Ok(e) => e,
            Err(e) => return malformed(&e),
        };
        let Some(api) = self.app.api_by_artifact(&e.api_id) else {
            return Outcome::Duplicate;
        };
        match self.app.revoke_pushed_key(&api.row.handle, &e.key.name).await {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    pub(super) async fn subscription_put(&self, p: &Value) -> Outcome {
        stored(self.app.put_pushed_subscription(p.clone()).await)
    }

    pub(super) async fn plan_put(&self, p: &Value) -> Outcome {
        stored(self.app.put_pushed_plan(p.clone()).await)
    }

    pub(super) async fn application_put(&self, p: &Value) -> Outcome {
        let id = if p.get("applicationUuid").and_then(Value::as_str).is_some() {
            "applicationUuid"
        } else {
            "applicationId"
        };
        self.store_object(CpKind::Application, p, id, None).await
    }

    /// `subscription.deleted` or `subscriptionPlan.deleted`.
    pub(super) async fn object_deleted(&self, event: &str, p: &Value) -> Outcome {
        let subscription = event == "subscription.deleted";
        let id_field = if subscription { "subscriptionId" } else { "planId" };
        let Some(id) = p.get(id_field).and_then(Value::as_str) else {
            return Outcome::Ignored(format!("{event} event without {id_field}"));
        };
        let gone = if subscription {
            self.app.delete_pushed_subscription(id).await
        } else {
            self.app.delete_pushed_plan(id).await
        };
        match gone {
            Ok(true) => Outcome::Applied,
            Ok(false) => Outcome::Duplicate,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }

    async fn store_object(&self, kind: CpKind, p: &Value, id_field: &str, api: Option<String>) -> Outcome {
        let Some(o) = cp_object(kind, p, id_field, api) else {
            return Outcome::Ignored(format!("{kind} event without {id_field}"));
        };
        match self.app.put_cp_object(o).await {
            Ok(Stored::Applied) => Outcome::Applied,
            Ok(Stored::Unchanged) => Outcome::Duplicate,
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

/// The outcome of storing a pushed plan or subscription; an invalid payload is ignored (logged
/// with its fields), a storage failure is a failure.
fn stored(r: Result<Stored, crate::app::AppError>) -> Outcome {
    match r {
        Ok(Stored::Applied) => Outcome::Applied,
        Ok(Stored::Unchanged) => Outcome::Duplicate,
        Err(e @ crate::app::AppError::Invalid(_)) => Outcome::Ignored(super::describe(&e)),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}
