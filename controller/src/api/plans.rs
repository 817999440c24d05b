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

/// Creates a plan.
#[utoipa::path(post, path = "/subscription-plans", operation_id = "createPlan", tag = "subscription-plans", summary = "Create a plan",
    description = "Roles: admin.",
    request_body(content((crate::openapi::consumers::PlanCreate = "application/json"), (crate::openapi::consumers::PlanCreate = "application/yaml"))),
    responses(
        (status = 201, description = "Created", body = crate::openapi::consumers::Plan),
        (status = 400, description = "Invalid fields", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "A plan with this name exists (names compare without case)", body = crate::openapi::schemas::ErrorBody),
    ))]
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

/// Every plan.
#[utoipa::path(get, path = "/subscription-plans", operation_id = "listPlans", tag = "subscription-plans", summary = "List plans",
    description = "Roles: admin.",
    responses((status = 200, description = "The plans", body = crate::openapi::consumers::PlanList)))]
pub async fn list(State(s): State<AppState>) -> Response {
    match s.app.plans().await {
        Ok(plans) => {
            let plans: Vec<Value> = plans.iter().map(|p| plan_json(p, None)).collect();
            Json(json!({"status": "success", "count": plans.len(), "subscriptionPlans": plans})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// One plan.
#[utoipa::path(get, path = "/subscription-plans/{id}", operation_id = "getPlan", tag = "subscription-plans", summary = "Get a plan",
    description = "Roles: admin.", params(("id" = String, Path, description = "The plan's id")),
    responses(
        (status = 200, description = "The plan", body = crate::openapi::consumers::Plan),
        (status = 404, description = "No such plan", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.app.plan(&id).await {
        Ok(p) => Json(plan_json(&p, None)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Changes the fields a body names.
#[utoipa::path(put, path = "/subscription-plans/{id}", operation_id = "updatePlan", tag = "subscription-plans", summary = "Update a plan",
    description = "Roles: admin. Partial: only the fields named change.", params(("id" = String, Path, description = "The plan's id")),
    request_body(content((crate::openapi::consumers::PlanUpdate = "application/json"), (crate::openapi::consumers::PlanUpdate = "application/yaml"))),
    responses(
        (status = 200, description = "The plan as changed", body = crate::openapi::consumers::Plan),
        (status = 400, description = "Invalid fields", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such plan", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "Another plan has this name", body = crate::openapi::schemas::ErrorBody),
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
                .detached(move |app| async move { app.update_plan(&id, body).await })
                .await?,
        )
    };
    match result.await {
        Ok(p) => synced(&s, Json(plan_json(&p, None)).into_response()).await,
        Err(e) => e.into_response(),
    }
}

/// Deletes a plan no subscription made here uses.
#[utoipa::path(delete, path = "/subscription-plans/{id}", operation_id = "deletePlan", tag = "subscription-plans", summary = "Delete a plan",
    description = "Roles: admin.", params(("id" = String, Path, description = "The plan's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such plan", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "Subscriptions made here use the plan", body = crate::openapi::schemas::ErrorBody),
    ))]
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
