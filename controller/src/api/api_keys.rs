//! `/rest-apis/{handle}/api-keys`: create, list, regenerate and revoke API keys (reference §1.6),
//! answering clearly where WSO2 answers 500 (bad name, past expiry, quota → 400; duplicate → 409;
//! someone else's key → 403).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::warn;

use super::invocation::{Credential, invocation};
use super::{ApiError, AppState};
use crate::app::AppError;
use crate::auth::Principal;
use crate::config::Role;
use crate::db::KeyRow;
use crate::keys::{Caller, KeyError, NewKey};
use tollgate_model::FieldError;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Expiry {
    unit: Option<String>,
    duration: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    name: Option<String>,
    api_key: Option<String>,
    expires_in: Option<Expiry>,
    expires_at: Option<String>,
    application_id: Option<String>,
    application_name: Option<String>,
    subscription_plan: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RegenerateBody {
    expires_in: Option<Expiry>,
    expires_at: Option<String>,
    /// e.g. `"1h"`; at most 30 days.
    grace_period: Option<String>,
}

/// Issues a key (or registers a supplied value) for an API; the value is shown once.
#[utoipa::path(post, path = "/rest-apis/{handle}/api-keys", operation_id = "createApiKey", tag = "api-keys", summary = "Create an API key",
    description = "Roles: admin, consumer. An empty body generates a key with a generated name.",
    params(("handle" = String, Path, description = "The API's `metadata.name`")),
    request_body(content((Option<crate::openapi::consumers::ApiKeyCreate> = "application/json"), (Option<crate::openapi::consumers::ApiKeyCreate> = "application/yaml"))),
    responses(
        (status = 201, description = "Created; `apiKey.apiKey` is the value, shown this once", body = crate::openapi::consumers::ApiKeyIssued),
        (status = 400, description = "Bad name, value, expiry, or over the quota", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "A key with this name or value exists", body = crate::openapi::schemas::ErrorBody),
        (status = 504, description = "Stored, but an authz replica did not confirm it in time (`tollgate-replicas-behind`)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn create(
    State(s): State<AppState>,
    Path(handle): Path<String>,
    Extension(who): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let api = s.app.api(&handle).ok_or_else(|| not_found(&handle))?;
        let b: CreateBody = parse(body)?;
        let expires_at = expiry(b.expires_at.as_deref(), b.expires_in.as_ref())?;
        let new = NewKey {
            name: b.name,
            value: b.api_key,
            expires_at,
            application_id: b.application_id,
            application_name: b.application_name,
            plan: b.subscription_plan,
        };
        let (h, user) = (handle.clone(), who.username.clone());
        let (row, plain) = detached(&s, move |app| async move { app.create_key(&h, &user, new).await })
            .await
            .map_err(key_error)?;
        Ok::<_, ApiError>((api, row, plain))
    }
    .await;
    match result {
        Ok((api, row, plain)) => {
            let message = if plain.is_some() {
                "API key generated successfully"
            } else {
                "API key registered successfully"
            };
            let body = json!({
                "status": "success",
                "message": message,
                "remainingApiKeyQuota": s.app.remaining_keys(&handle, &who.username).await,
                "apiKey": key_json(&row, plain.as_deref()),
                "invocation": invocation(&s, &api, Credential::ApiKey, plain.as_deref()),
            });
            synced(&s, (StatusCode::CREATED, Json(body)).into_response()).await
        }
        Err(e) => e.into_response(),
    }
}

/// The keys of an API: all of them for an admin, the caller's own otherwise.
#[utoipa::path(get, path = "/rest-apis/{handle}/api-keys", operation_id = "listApiKeys", tag = "api-keys", summary = "List API keys",
    description = "Roles: admin (every key), consumer (their own). Values are masked.",
    params(("handle" = String, Path, description = "The API's `metadata.name`")),
    responses(
        (status = 200, description = "The keys", body = crate::openapi::consumers::ApiKeyList),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn list(
    State(s): State<AppState>,
    Path(handle): Path<String>,
    Extension(who): Extension<Principal>,
) -> Response {
    if s.app.api(&handle).is_none() {
        return not_found(&handle).into_response();
    }
    let admin = who.roles.contains(&Role::Admin);
    let keys: Vec<Value> = match s.app.list_keys(&handle, &who.username, admin).await {
        Ok(rows) => rows.iter().map(|k| key_json(k, None)).collect(),
        Err(e) => return key_error(e).into_response(),
    };
    Json(json!({"status": "success", "totalCount": keys.len(), "apiKeys": keys})).into_response()
}

/// A new value for a key; the old one stops working (after a grace period, if given).
#[utoipa::path(post, path = "/rest-apis/{handle}/api-keys/{name}/regenerate", operation_id = "regenerateApiKey", tag = "api-keys",
    summary = "Regenerate an API key",
    description = "Roles: admin, consumer; only the key's creator may regenerate it.",
    params(("handle" = String, Path, description = "The API's `metadata.name`"), ("name" = String, Path, description = "The key's name")),
    request_body(content((Option<crate::openapi::consumers::ApiKeyRegenerate> = "application/json"), (Option<crate::openapi::consumers::ApiKeyRegenerate> = "application/yaml"))),
    responses(
        (status = 200, description = "The new value, shown this once", body = crate::openapi::consumers::ApiKeyIssued),
        (status = 400, description = "Bad expiry or grace period", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Someone else's key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such API or key", body = crate::openapi::schemas::ErrorBody),
        (status = 504, description = "Stored, but an authz replica did not confirm it in time (`tollgate-replicas-behind`)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn regenerate(
    State(s): State<AppState>,
    Path((handle, name)): Path<(String, String)>,
    Extension(who): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let api = s.app.api(&handle).ok_or_else(|| not_found(&handle))?;
        let b: RegenerateBody = parse(body)?;
        let expires_at = expiry(b.expires_at.as_deref(), b.expires_in.as_ref())?;
        let grace = match b.grace_period.as_deref() {
            None => None,
            Some(g) => {
                Some(humantime::parse_duration(g).map_err(|e| ApiError::Body(format!("gracePeriod {g:?}: {e}")))?)
            }
        };
        let (h, n, user) = (handle.clone(), name.clone(), who.username.clone());
        let (row, value) = detached(&s, move |app| async move {
            app.regenerate_key(&h, &n, &user, expires_at, grace).await
        })
        .await
        .map_err(key_error)?;
        Ok::<_, ApiError>((api, row, value))
    }
    .await;
    match result {
        Ok((api, row, value)) => {
            let body = json!({
                "status": "success",
                "message": "API key regenerated successfully",
                "remainingApiKeyQuota": s.app.remaining_keys(&handle, &who.username).await,
                "apiKey": key_json(&row, Some(&value)),
                "invocation": invocation(&s, &api, Credential::ApiKey, Some(&value)),
            });
            synced(&s, Json(body).into_response()).await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReplaceBody {
    api_key: Option<String>,
}

/// Replaces a key's value with one the caller supplies.
#[utoipa::path(put, path = "/rest-apis/{handle}/api-keys/{name}", operation_id = "replaceApiKey", tag = "api-keys", summary = "Replace an API key's value",
    description = "Roles: admin, consumer (their own keys).",
    params(("handle" = String, Path, description = "The API's `metadata.name`"), ("name" = String, Path, description = "The key's name")),
    request_body(content((crate::openapi::consumers::ApiKeyReplace = "application/json"), (crate::openapi::consumers::ApiKeyReplace = "application/yaml"))),
    responses(
        (status = 200, description = "Replaced (the value is not echoed)", body = crate::openapi::consumers::ApiKeyUpdated),
        (status = 400, description = "Missing or invalid `apiKey`", body = crate::openapi::schemas::ErrorBody),
        (status = 403, description = "Someone else's key", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such API or key", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The value is taken", body = crate::openapi::schemas::ErrorBody),
        (status = 504, description = "Stored, but an authz replica did not confirm it in time (`tollgate-replicas-behind`)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn replace(
    State(s): State<AppState>,
    Path((handle, name)): Path<(String, String)>,
    Extension(who): Extension<Principal>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        s.app.api(&handle).ok_or_else(|| not_found(&handle))?;
        let b: ReplaceBody = parse(body)?;
        let value = b.api_key.ok_or_else(|| ApiError::Body("apiKey is required".into()))?;
        let admin = who.roles.contains(&Role::Admin);
        let (h, n, user) = (handle.clone(), name.clone(), who.username.clone());
        detached(&s, move |app| async move {
            app.replace_key(&h, &n, &user, admin, &value).await
        })
        .await
        .map_err(key_error)
    }
    .await;
    match result {
        Ok(row) => {
            let body =
                json!({"status": "success", "message": "API key updated successfully", "apiKey": key_json(&row, None)});
            synced(&s, Json(body).into_response()).await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevokeQuery {
    /// An admin's explicit consent to revoke a key the control plane pushed.
    #[serde(default)]
    allow_control_plane: bool,
}

/// Only the key's creator or an admin may revoke it; for anyone else the answer is the same as for a
/// key that does not exist (200, nothing changes), so it does not reveal another user's key.
#[utoipa::path(delete, path = "/rest-apis/{handle}/api-keys/{name}", operation_id = "revokeApiKey", tag = "api-keys", summary = "Revoke an API key",
    description = "Roles: admin, consumer. Only the key's creator or an admin may revoke it; for \
anyone else the answer is the one an unknown key gets and nothing changes. Keys pushed by a control \
plane need an admin and `allowControlPlane=true`.",
    params(("handle" = String, Path, description = "The API's `metadata.name`"), ("name" = String, Path, description = "The key's name"),
        ("allowControlPlane" = Option<bool>, Query, description = "An admin's consent to revoke a key the control plane pushed")),
    responses(
        (status = 200, description = "Revoked (or nothing to revoke)", body = crate::openapi::schemas::Done),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "A control-plane key, without `allowControlPlane`", body = crate::openapi::schemas::ErrorBody),
        (status = 504, description = "Stored, but an authz replica did not confirm it in time (`tollgate-replicas-behind`)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn revoke(
    State(s): State<AppState>,
    Path((handle, name)): Path<(String, String)>,
    Query(q): Query<RevokeQuery>,
    Extension(who): Extension<Principal>,
) -> Response {
    if s.app.api(&handle).is_none() {
        return not_found(&handle).into_response();
    }
    let (admin, control_plane_ok) = (who.roles.contains(&Role::Admin), q.allow_control_plane);
    let (h, n, user) = (handle.clone(), name.clone(), who.username.clone());
    let revoked = detached(&s, move |app| async move {
        let caller = Caller {
            user: &user,
            admin,
            control_plane_ok,
        };
        app.revoke_key(&h, &n, caller).await
    });
    match revoked.await {
        Ok(_) => {
            let body = json!({"status": "success", "message": "API key revoked successfully"});
            synced(&s, Json(body).into_response()).await
        }
        Err(e) => key_error(e).into_response(),
    }
}

/// With remote authz replicas: waits (at most `api_keys.replica_sync_timeout`) until every connected
/// replica has ACKed the key (or subscription, or plan) change just made, so the next request sees it there too. If one has
/// not (it is slow, or refused the key set), the answer is not a success: a caller must not take a
/// revocation for done while a replica still accepts the key. The change is stored and reaches the
/// replica when it catches up; a 504 says so (without the new key, which an error body must not
/// carry), with the laggards counted in `tollgate-replicas-behind`.
pub(super) async fn synced(s: &AppState, resp: Response) -> Response {
    let Some(replicas) = &s.replicas else { return resp };
    let behind = replicas.wait().await;
    if behind.is_empty() {
        return resp;
    }
    warn!(replicas = ?behind, "change not yet ACKed by these authz replicas: answered 504");
    let message = format!(
        "the change is stored but {} authz replica(s) did not confirm it in time, so it is not yet in force there",
        behind.len()
    );
    let body = json!({"status": "error", "message": message});
    let mut resp = (StatusCode::GATEWAY_TIMEOUT, Json(body)).into_response();
    resp.headers_mut()
        .insert("tollgate-replicas-behind", axum::http::HeaderValue::from(behind.len()));
    resp
}

fn not_found(handle: &str) -> ApiError {
    ApiError::App(AppError::NotFound(handle.to_string()))
}

/// Runs a key write in its own task, so that a client that goes away cannot cut it in half: the
/// database, the key index and the replicas stay in step.
async fn detached<T, F>(s: &AppState, write: impl FnOnce(std::sync::Arc<crate::app::App>) -> F) -> Result<T, KeyError>
where
    F: std::future::Future<Output = Result<T, KeyError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(write(s.app.clone())).await.unwrap_or(Err(KeyError::Task))
}

fn key_error(e: KeyError) -> ApiError {
    match e {
        KeyError::Invalid(m) => ApiError::Body(m),
        KeyError::NotFound(n) => ApiError::NotFoundMessage(format!("API key '{n}' not found")),
        KeyError::Conflict(m) => ApiError::App(AppError::Keys(KeyError::Conflict(m))),
        e @ KeyError::ControlPlane(_) => ApiError::App(AppError::Keys(e)),
        KeyError::Forbidden(n) => {
            ApiError::ForbiddenMessage(format!("only the creator of API key '{n}' may regenerate it"))
        }
        KeyError::Db(d) => ApiError::App(AppError::Db(d)),
        KeyError::Random | KeyError::Task => ApiError::App(AppError::Task),
    }
}

/// An empty body is `{}`; JSON, or YAML (a superset) otherwise, read within the same bounds as an API
/// document (`tollgate_model::parse`).
fn parse<T: serde::de::DeserializeOwned + Default>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| ApiError::Body(e.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value = tollgate_model::parse::value(&body, tollgate_model::parse::Syntax::Yaml)
        .map_err(|e| ApiError::Body(format!("invalid request body: {e}")))?;
    serde_json::from_value(value).map_err(|e| ApiError::Body(format!("invalid request body: {e}")))
}

/// The furthest a key may expire: ten years from now. Past it an expiry is refused (400) rather than
/// stored, so nothing later has to format or compare a date past year 9999.
const MAX_EXPIRY_SECS: u64 = 10 * 365 * 86_400;

/// `expiresAt` (RFC 3339) wins over `expiresIn`; Unix seconds, at most [`MAX_EXPIRY_SECS`] ahead.
fn expiry(at: Option<&str>, within: Option<&Expiry>) -> Result<Option<i64>, ApiError> {
    let now = crate::clock::unix_secs().max(0) as u64;
    let limit = now.saturating_add(MAX_EXPIRY_SECS);
    if let Some(at) = at {
        let t = humantime::parse_rfc3339_weak(at).map_err(|e| ApiError::Body(format!("expiresAt {at:?}: {e}")))?;
        let secs = t
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| ApiError::Body("expiresAt is before 1970".into()))?
            .as_secs();
        if secs > limit {
            return Err(too_far("expiresAt"));
        }
        return Ok(Some(secs as i64));
    }
    let Some(w) = within else { return Ok(None) };
    let unit = match w.unit.as_deref().unwrap_or("days") {
        "seconds" => 1,
        "minutes" => 60,
        "hours" => 3600,
        "days" => 86_400,
        "weeks" => 7 * 86_400,
        "months" => 30 * 86_400,
        other => {
            return Err(ApiError::Body(format!(
                "expiresIn.unit '{other}' must be seconds, minutes, hours, days, weeks or months"
            )));
        }
    };
    let n = w
        .duration
        .filter(|d| *d > 0)
        .ok_or_else(|| ApiError::Body("expiresIn.duration must be a positive integer".into()))?;
    match n.checked_mul(unit) {
        Some(secs) if secs <= MAX_EXPIRY_SECS => Ok(Some(now.saturating_add(secs) as i64)),
        _ => Err(too_far("expiresIn.duration")),
    }
}

/// A 400 in the validation-error shape, naming the field whose expiry is too far ahead.
fn too_far(field: &str) -> ApiError {
    ApiError::App(AppError::Invalid(vec![FieldError {
        field: field.to_string(),
        message: format!("must be at most {} days from now", MAX_EXPIRY_SECS / 86_400),
    }]))
}

fn key_json(k: &KeyRow, plain: Option<&str>) -> Value {
    let expires = k.expires_at.map(crate::clock::rfc3339_of);
    let mut v = json!({
        "name": k.name,
        "maskedApiKey": k.masked,
        "apiId": k.api,
        "status": k.status.as_str(),
        "createdAt": k.created_at,
        "createdBy": k.created_by,
        "expiresAt": expires,
        "source": k.source.as_str(),
        "origin": k.origin.as_str(),
        "applicationId": k.application_id,
        "applicationName": k.application_name,
        "subscriptionPlan": k.plan,
    });
    match plain {
        Some(p) => v["apiKey"] = json!(p),
        None => v["apiKey"] = json!(k.masked),
    }
    v
}
