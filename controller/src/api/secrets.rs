//! `/secrets`: create, list, read, replace and delete the secrets API documents reference
//! (reference §1.9). Only `GET /secrets/{id}` answers a value.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::plans::body_value;
use super::{ApiError, AppState};
use crate::secrets::doc::secret_json;

/// Creates a secret.
#[utoipa::path(post, path = "/secrets", operation_id = "createSecret", tag = "secrets", summary = "Create a secret",
    description = "Roles: admin. The value is stored encrypted (AES-256-GCM) and not answered.",
    request_body(content((crate::openapi::secrets::SecretIn = "application/json"), (crate::openapi::secrets::SecretIn = "application/yaml"))),
    responses(
        (status = 201, description = "Created (no value)", body = crate::openapi::secrets::SecretOut),
        (status = 400, description = "Invalid fields", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "A secret with this id exists", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn create(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let body = body_value(body)?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.create_secret(body).await })
                .await?,
        )
    };
    match result.await {
        Ok(m) => (StatusCode::CREATED, Json(secret_json(&m, None))).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every secret, without values.
#[utoipa::path(get, path = "/secrets", operation_id = "listSecrets", tag = "secrets", summary = "List secrets",
    description = "Roles: admin. Metadata only, never a value.",
    responses((status = 200, description = "The secrets", body = crate::openapi::secrets::SecretList)))]
pub async fn list(State(s): State<AppState>) -> Response {
    let secrets: Vec<Value> = s.app.secrets().iter().map(|m| secret_json(m, None)).collect();
    Json(json!({"status": "success", "count": secrets.len(), "secrets": secrets})).into_response()
}

/// One secret with its value.
#[utoipa::path(get, path = "/secrets/{id}", operation_id = "getSecret", tag = "secrets", summary = "Get a secret and its value",
    description = "Roles: admin. The only answer that holds the value.", params(("id" = String, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "The secret with `spec.value`", body = crate::openapi::secrets::SecretOut),
        (status = 404, description = "No such secret", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.app.secret(&id) {
        Ok((m, value)) => Json(secret_json(&m, Some(&value))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Replaces a secret; the deployed APIs that use it are redeployed with the new value.
#[utoipa::path(put, path = "/secrets/{id}", operation_id = "updateSecret", tag = "secrets", summary = "Replace a secret",
    description = "Roles: admin. Every deployed API whose document names the secret is rendered again and redeployed before the answer; if one of them is refused, the previous value is put back and the error answered.",
    params(("id" = String, Path, description = "The secret's id")),
    request_body(content((crate::openapi::secrets::SecretIn = "application/json"), (crate::openapi::secrets::SecretIn = "application/yaml"))),
    responses(
        (status = 200, description = "Replaced (no value); `status.redeployed` names the APIs redeployed", body = crate::openapi::secrets::SecretOut),
        (status = 400, description = "Invalid fields, or an API using the secret cannot take the new value", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such secret", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_value(body)?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.update_secret(&id, body).await })
                .await?,
        )
    };
    match result.await {
        Ok((m, redeployed)) => {
            let mut body = secret_json(&m, None);
            body["status"]["redeployed"] = json!(redeployed);
            Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// Deletes a secret no stored API uses.
#[utoipa::path(delete, path = "/secrets/{id}", operation_id = "deleteSecret", tag = "secrets", summary = "Delete a secret",
    description = "Roles: admin. Refused while a stored API's document names the secret.",
    params(("id" = String, Path, description = "The secret's id")),
    responses(
        (status = 200, description = "Deleted (empty body)"),
        (status = 404, description = "No such secret", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "Stored APIs use the secret (the message names them)", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s
        .app
        .detached(move |app| async move { app.delete_secret(&id).await })
        .await
    {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
