//! `/subscription-plans`: create, list, read, partially update and delete plans (reference §1.7).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api_keys::synced;
use super::{ApiError, AppState};
use crate::subs::plans::plan_json;

/// A JSON or YAML body as a value, read within the same bounds as an API document; an empty body
/// is `{}`.
pub(super) fn body_value(body: Result<Bytes, BytesRejection>) -> Result<Value, ApiError> {
    let body = body.map_err(|e| ApiError::Body(e.body_text()))?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    tollgate_model::parse::value(&body, tollgate_model::parse::Syntax::Yaml)
        .map_err(|e| ApiError::Body(format!("invalid request body: {e}")))
}

pub async fn create(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let body = body_value(body)?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.create_plan(body).await })
                .await?,
        )
    };
    match result.await {
        Ok(p) => (StatusCode::CREATED, Json(plan_json(&p, None))).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn list(State(s): State<AppState>) -> Response {
    match s.app.plans().await {
        Ok(plans) => {
            let plans: Vec<Value> = plans.iter().map(|p| plan_json(p, None)).collect();
            Json(json!({"status": "success", "count": plans.len(), "subscriptionPlans": plans})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.app.plan(&id).await {
        Ok(p) => Json(plan_json(&p, None)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_value(body)?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.update_plan(&id, body).await })
                .await?,
        )
    };
    match result.await {
        Ok(p) => synced(&s, Json(plan_json(&p, None)).into_response()).await,
        Err(e) => e.into_response(),
    }
}

pub async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s
        .app
        .detached(move |app| async move { app.delete_plan(&id).await })
        .await
    {
        Ok(()) => synced(&s, StatusCode::NO_CONTENT.into_response()).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}
