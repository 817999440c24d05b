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
use crate::gateway::{ApiEntry, GatewayError, Written};
use crate::model::RestApiDoc;

/// List filters; unknown parameters (`limit`, `offset`) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filters {
    display_name: Option<String>,
    version: Option<String>,
    context: Option<String>,
    status: Option<String>,
}

pub async fn create(State(s): State<AppState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let doc = parse(&headers, body, s.max_body)?;
        Ok::<_, ApiError>(s.gateway.create(doc, "gateway_api").await?)
    };
    match result.await {
        Ok(w) => written(StatusCode::CREATED, w),
        Err(e) => e.into_response(),
    }
}

pub async fn update(
    State(s): State<AppState>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        if s.gateway.get(&handle).is_none() {
            return Err(ApiError::Gateway(GatewayError::NotFound(handle.clone())));
        }
        let doc = parse(&headers, body, s.max_body)?;
        Ok(s.gateway.update(&handle, doc).await?)
    };
    match result.await {
        Ok(w) => written(StatusCode::OK, w),
        Err(e) => e.into_response(),
    }
}

pub async fn get(State(s): State<AppState>, Path(handle): Path<String>) -> Response {
    match s.gateway.get(&handle) {
        Some(e) => Json(resource(&e, false)).into_response(),
        None => ApiError::Gateway(GatewayError::NotFound(handle)).into_response(),
    }
}

pub async fn list(State(s): State<AppState>, Query(f): Query<Filters>) -> Response {
    let apis: Vec<Value> = s
        .gateway
        .list()
        .iter()
        .filter(|e| f.display_name.as_ref().is_none_or(|v| *v == e.api.display_name))
        .filter(|e| f.version.as_ref().is_none_or(|v| *v == e.api.version))
        .filter(|e| {
            f.context
                .as_ref()
                .is_none_or(|v| *v == e.api.context || e.doc().is_ok_and(|d| d.spec.context.as_ref() == Some(v)))
        })
        .filter(|e| f.status.as_ref().is_none_or(|v| *v == state(e)))
        .map(|e| resource(e, true))
        .collect();
    Json(json!({"status": "success", "count": apis.len(), "apis": apis})).into_response()
}

pub async fn delete(State(s): State<AppState>, Path(handle): Path<String>) -> Response {
    match s.gateway.delete(&handle).await {
        Ok(w) => {
            if let Err(e) = s.keys.api_deleted(&handle).await {
                tracing::warn!(api = %handle, error = %e, "cannot forget the keys of a deleted API");
            }
            let body = json!({"status": "success", "message": "RestAPI deleted successfully", "id": handle,
                              "generation": w.generation});
            with_generation(Json(body).into_response(), w.generation)
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Parses a body by content type (reference §1.3): YAML types → YAML, JSON → JSON, else YAML
/// (a superset of JSON).
fn parse(headers: &HeaderMap, body: Result<Bytes, BytesRejection>, limit: usize) -> Result<RestApiDoc, ApiError> {
    let body = body.map_err(|e| match e {
        BytesRejection::FailedToBufferBody(_) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(limit)
        }
        other => ApiError::Body(other.body_text()),
    })?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let ct = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let value: Value = if ct == "application/json" {
        serde_json::from_slice(&body).map_err(|e| ApiError::Parse(format!("failed to parse JSON: {e}")))?
    } else {
        serde_yaml::from_slice(&body).map_err(|e| ApiError::Parse(format!("failed to parse YAML: {e}")))?
    };
    if !value.is_object() {
        return Err(ApiError::Parse("the document must be a mapping".into()));
    }
    serde_json::from_value(value).map_err(|e| ApiError::Parse(e.to_string()))
}

fn state(e: &ApiEntry) -> &'static str {
    if e.api.deployed { "deployed" } else { "undeployed" }
}

/// The stored document plus server-managed `status`. Lists show `spec.context` resolved.
fn resource(e: &ApiEntry, resolve_context: bool) -> Value {
    let mut doc = e.doc_json();
    if resolve_context {
        doc["spec"]["context"] = json!(e.api.context);
    }
    doc["status"] = json!({
        "id": e.row.handle,
        "state": state(e),
        "origin": e.row.origin,
        "createdAt": e.row.created_at,
        "updatedAt": e.row.updated_at,
        "deployedAt": e.row.deployed_at,
    });
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
