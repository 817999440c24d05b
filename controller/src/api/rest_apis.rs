//! `/rest-apis`: create, list, get, replace and delete RestApi documents (reference §1.5).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{ApiError, AppState};
use crate::app::{ApiEntry, AppError, Written};
use tollgate_model::RestApiDoc;
use tollgate_model::parse::{Syntax, document};

/// List filters; unknown parameters (`limit`, `offset`) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    display_name: Option<String>,
    version: Option<String>,
    context: Option<String>,
    status: Option<String>,
}

/// Deploys a new API (201; `pending` while Envoy has not ACKed it when asked to wait).
#[utoipa::path(post, path = "/rest-apis", operation_id = "createRestApi", tag = "rest-apis", summary = "Create a RestApi",
    description = "Roles: admin, developer. The body is a RestApi document, JSON or YAML (by \
`Content-Type`). The answer carries `status.generation` and `x-tollgate-generation`.",
    request_body(content((crate::openapi::schemas::RestApi = "application/json"), (crate::openapi::schemas::RestApi = "application/yaml"))),
    responses(
        (status = 201, description = "Created", body = crate::openapi::schemas::RestApi),
        (status = 400, description = "Invalid document, or refused by Envoy", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "An API with this name or context exists", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "Body over `server.max_body`", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let doc = parse(&headers, body, state.max_body).await?;
        Ok::<_, ApiError>(
            state
                .app
                .detached(|app| async move { app.create_api(doc).await })
                .await?,
        )
    };
    match result.await {
        Ok(w) => written(StatusCode::CREATED, w),
        Err(e) => e.into_response(),
    }
}

/// Replaces an API's document.
#[utoipa::path(put, path = "/rest-apis/{handle}", operation_id = "replaceRestApi", tag = "rest-apis", summary = "Replace a RestApi",
    description = "Roles: admin, developer. `metadata.name` must match `{handle}`.",
    params(("handle" = String, Path, description = "The API's `metadata.name`")),
    request_body(content((crate::openapi::schemas::RestApi = "application/json"), (crate::openapi::schemas::RestApi = "application/yaml"))),
    responses(
        (status = 200, description = "Replaced", body = crate::openapi::schemas::RestApi),
        (status = 400, description = "Invalid document, a name mismatch, or refused by Envoy", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "Conflicts with another API", body = crate::openapi::schemas::ErrorBody),
        (status = 413, description = "Body over `server.max_body`", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn update(
    State(state): State<AppState>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        if state.app.api(&handle).is_none() {
            return Err(ApiError::App(AppError::NotFound(handle.clone())));
        }
        let doc = parse(&headers, body, state.max_body).await?;
        let h = handle.clone();
        Ok(state
            .app
            .detached(|app| async move { app.update_api(&h, doc).await })
            .await?)
    };
    match result.await {
        Ok(w) => written(StatusCode::OK, w),
        Err(e) => e.into_response(),
    }
}

/// One API's document and status.
#[utoipa::path(get, path = "/rest-apis/{handle}", operation_id = "getRestApi", tag = "rest-apis", summary = "Get a RestApi",
    description = "Roles: admin, developer.",
    params(("handle" = String, Path, description = "The API's `metadata.name`")),
    responses(
        (status = 200, description = "The document with its `status`", body = crate::openapi::schemas::RestApi),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn get(State(state): State<AppState>, Path(handle): Path<String>) -> Response {
    match state.app.api(&handle) {
        Some(e) => Json(resource(&e, false)).into_response(),
        None => ApiError::App(AppError::NotFound(handle)).into_response(),
    }
}

/// Every API, filtered.
#[utoipa::path(get, path = "/rest-apis", operation_id = "listRestApis", tag = "rest-apis", summary = "List RestApis",
    description = "Roles: admin, developer. Filters compare exactly; `status` is the state \
(`pending`, `deployed`, `failed`, `undeployed`).",
    params(
        ("displayName" = Option<String>, Query, description = "Only APIs with this display name"),
        ("version" = Option<String>, Query, description = "Only this version"),
        ("context" = Option<String>, Query, description = "Only this context (as written or resolved)"),
        ("status" = Option<String>, Query, description = "Only APIs in this state"),
    ),
    responses((status = 200, description = "The APIs", body = crate::openapi::schemas::RestApiList)))]
pub async fn list(State(state): State<AppState>, Query(f): Query<Filters>) -> Response {
    let apis: Vec<Value> = state
        .app
        .apis()
        .iter()
        .filter(|e| f.display_name.as_ref().is_none_or(|v| *v == e.api.display_name))
        .filter(|e| f.version.as_ref().is_none_or(|v| *v == e.api.version))
        .filter(|e| {
            f.context
                .as_ref()
                .is_none_or(|v| *v == e.api.context || e.doc().is_ok_and(|d| d.spec.context.as_ref() == Some(v)))
        })
        .filter(|e| f.status.as_ref().is_none_or(|v| v == e.state().as_str()))
        .map(|e| resource(e, true))
        .collect();
    Json(json!({"status": "success", "count": apis.len(), "apis": apis})).into_response()
}

/// Deletes an API, its keys and its subscriptions.
#[utoipa::path(delete, path = "/rest-apis/{handle}", operation_id = "deleteRestApi", tag = "rest-apis", summary = "Delete a RestApi",
    description = "Roles: admin, developer. Also deletes the API's keys and subscriptions.",
    params(("handle" = String, Path, description = "The API's `metadata.name`")),
    responses(
        (status = 200, description = "Deleted", body = crate::openapi::schemas::RestApiDeleted),
        (status = 404, description = "No such API", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn delete(State(state): State<AppState>, Path(handle): Path<String>) -> Response {
    let h = handle.clone();
    match state.app.detached(|app| async move { app.delete_api(&h).await }).await {
        Ok(w) => {
            let body = json!({"status": "success", "message": "RestAPI deleted successfully", "id": handle,
                              "generation": w.generation});
            with_generation(Json(body).into_response(), w.generation)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Parses a body by content type (reference §1.3): JSON for `application/json`, YAML (a superset of
/// JSON) otherwise. Bounded in depth, size and aliases (`tollgate_model::parse`), and run on the
/// blocking pool so a large body never holds an async worker.
async fn parse(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, limit: usize) -> Result<RestApiDoc, ApiError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(limit)
        }
        other => ApiError::Body(other.body_text()),
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let syntax = Syntax::of_content_type(content_type);
    tokio::task::spawn_blocking(move || document(&body, syntax))
        .await
        .map_err(|_| ApiError::Body("the request could not be read".into()))?
        .map_err(|e| ApiError::Parse(e.to_string()))
}

/// The stored document plus server-managed `status`. Lists show `spec.context` resolved.
fn resource(e: &ApiEntry, resolve_context: bool) -> Value {
    let mut doc = e.doc_json();
    if resolve_context {
        doc["spec"]["context"] = json!(e.api.context);
    }
    doc["status"] = json!({
        "id": e.row.handle,
        // What subscriptions and the control plane name the API by (`apiId`).
        "uuid": e.row.uuid,
        "state": e.state().as_str(),
        "origin": e.row.origin,
        "createdAt": e.row.created_at,
        "updatedAt": e.row.updated_at,
        "deployedAt": e.row.deployed_at,
    });
    if let Some(message) = e.failure() {
        doc["status"]["message"] = json!(message);
    }
    doc
}

fn written(status: StatusCode, w: Written) -> Response {
    let Some(entry) = w.entry else {
        return (status, Json(json!({"status": "success", "generation": w.generation}))).into_response();
    };
    let mut body = resource(&entry, false);
    body["status"]["generation"] = json!(w.generation);
    with_generation((status, Json(body)).into_response(), w.generation)
}

/// The store generation that carries the change, for callers waiting on `/xds_sync_status`.
fn with_generation(mut resp: Response, generation: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&generation.to_string()) {
        resp.headers_mut().insert("x-tollgate-generation", v);
    }
    resp
}
