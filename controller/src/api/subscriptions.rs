//! `/subscriptions`: subscribe (the token is shown once, with how to call the API), list, read,
//! change status, regenerate the token, and delete (reference §1.8 and the consumer model).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::api_keys::synced;
use super::invocation::{Credential, invocation};
use super::plans::body_value;
use super::{ApiError, AppState};
use crate::app::{AppError, SubscriptionWrite};
use crate::db::SubscriptionFilter;
use crate::subs::bodies::{STATUSES, new_subscription, subscription_change, subscription_json};
use tollgate_model::FieldError;

/// The longest grace period a regenerated token's predecessor may keep (30 days).
const MAX_GRACE: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListQuery {
    api_id: Option<String>,
    application_id: Option<String>,
    status: Option<String>,
}

/// The answer that hands out a token: the subscription, the token and how to call the API.
fn with_token(s: &AppState, w: &SubscriptionWrite) -> Value {
    let mut v = subscription_json(&w.row, w.token.as_deref(), None);
    if let Some(api) = &w.api {
        v["invocation"] = invocation(s, api, Credential::Subscription, w.token.as_deref());
    }
    v
}

/// Subscribes an application to an API; the token is shown once.
#[utoipa::path(post, path = "/subscriptions", operation_id = "createSubscription", tag = "subscriptions", summary = "Create a subscription",
    description = "Roles: admin. Without `subscriptionToken` one is generated; either way the answer \
shows it once, with `invocation`.",
    request_body(content((crate::openapi::consumers::SubscriptionCreate = "application/json"), (crate::openapi::consumers::SubscriptionCreate = "application/yaml"))),
    responses(
        (status = 201, description = "Created, with the token", body = crate::openapi::consumers::Subscription),
        (status = 400, description = "Invalid fields", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such API or plan", body = crate::openapi::schemas::ErrorBody),
        (status = 409, description = "The application already subscribes to the API, or the token is taken", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn create(State(s): State<AppState>, body: Result<Bytes, BytesRejection>) -> Response {
    let result = async {
        let new = new_subscription(&body_value(body)?).map_err(|e| ApiError::App(AppError::Invalid(e)))?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.create_subscription(new).await })
                .await?,
        )
    };
    match result.await {
        Ok(w) => synced(&s, (StatusCode::CREATED, Json(with_token(&s, &w))).into_response()).await,
        Err(e) => e.into_response(),
    }
}

/// Every subscription, filtered.
#[utoipa::path(get, path = "/subscriptions", operation_id = "listSubscriptions", tag = "subscriptions", summary = "List subscriptions",
    description = "Roles: admin.",
    params(
        ("apiId" = Option<String>, Query, description = "Only this API (handle or UUID)"),
        ("applicationId" = Option<String>, Query, description = "Only this application"),
        ("status" = Option<String>, Query, description = "ACTIVE, INACTIVE or REVOKED"),
    ),
    responses(
        (status = 200, description = "The subscriptions (never their tokens)", body = crate::openapi::consumers::SubscriptionList),
        (status = 400, description = "Unknown status", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn list(State(s): State<AppState>, Query(q): Query<ListQuery>) -> Response {
    let status = match q
        .status
        .as_deref()
        .map(|st| STATUSES.iter().find(|a| a.eq_ignore_ascii_case(st)))
    {
        None => None,
        Some(Some(st)) => Some(st.to_string()),
        Some(None) => {
            let e = FieldError {
                field: "status".into(),
                message: "must be one of ACTIVE, INACTIVE, REVOKED".into(),
            };
            return ApiError::App(AppError::Invalid(vec![e])).into_response();
        }
    };
    let filter = SubscriptionFilter {
        api_uuid: q.api_id,
        application_id: q.application_id,
        status,
    };
    match s.app.subscriptions(filter).await {
        Ok(rows) => {
            let subs: Vec<Value> = rows.iter().map(|r| subscription_json(r, None, None)).collect();
            Json(json!({"status": "success", "count": subs.len(), "subscriptions": subs})).into_response()
        }
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// One subscription (never its token).
#[utoipa::path(get, path = "/subscriptions/{id}", operation_id = "getSubscription", tag = "subscriptions", summary = "Get a subscription",
    description = "Roles: admin.", params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 200, description = "The subscription", body = crate::openapi::consumers::Subscription),
        (status = 404, description = "No such subscription", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn get(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s.app.subscription(&id).await {
        Ok(r) => Json(subscription_json(&r, None, None)).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Changes a subscription's status or plan.
#[utoipa::path(put, path = "/subscriptions/{id}", operation_id = "updateSubscription", tag = "subscriptions", summary = "Update a subscription",
    description = "Roles: admin.", params(("id" = String, Path, description = "The subscription's id")),
    request_body(content((crate::openapi::consumers::SubscriptionUpdate = "application/json"), (crate::openapi::consumers::SubscriptionUpdate = "application/yaml"))),
    responses(
        (status = 200, description = "The subscription as changed", body = crate::openapi::consumers::Subscription),
        (status = 400, description = "Invalid fields", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such subscription or plan", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn update(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let change = subscription_change(&body_value(body)?).map_err(|e| ApiError::App(AppError::Invalid(e)))?;
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.update_subscription(&id, change).await })
                .await?,
        )
    };
    match result.await {
        Ok(w) => synced(&s, Json(subscription_json(&w.row, None, None)).into_response()).await,
        Err(e) => e.into_response(),
    }
}

/// Deletes a subscription.
#[utoipa::path(delete, path = "/subscriptions/{id}", operation_id = "deleteSubscription", tag = "subscriptions", summary = "Delete a subscription",
    description = "Roles: admin.", params(("id" = String, Path, description = "The subscription's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such subscription", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn delete(State(s): State<AppState>, Path(id): Path<String>) -> Response {
    match s
        .app
        .detached(move |app| async move { app.delete_subscription(&id).await })
        .await
    {
        Ok(()) => synced(&s, StatusCode::NO_CONTENT.into_response()).await,
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// `POST /subscriptions/{id}/regenerate-token`, body optional: `{"gracePeriod": "1h"}` keeps the
/// old token working that long (at most 30 days); without it the old token is refused from the
/// next request on.
#[utoipa::path(post, path = "/subscriptions/{id}/regenerate-token", operation_id = "regenerateSubscriptionToken", tag = "subscriptions",
    summary = "Regenerate a subscription's token",
    description = "Roles: admin. The new token is shown once; the old one is refused from the next \
request on, or after `gracePeriod`.", params(("id" = String, Path, description = "The subscription's id")),
    request_body(content((Option<crate::openapi::consumers::TokenRegenerate> = "application/json"), (Option<crate::openapi::consumers::TokenRegenerate> = "application/yaml"))),
    responses(
        (status = 200, description = "The subscription with its new token", body = crate::openapi::consumers::Subscription),
        (status = 400, description = "Invalid `gracePeriod`", body = crate::openapi::schemas::ErrorBody),
        (status = 404, description = "No such subscription", body = crate::openapi::schemas::ErrorBody),
    ))]
pub async fn regenerate(
    State(s): State<AppState>,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let result = async {
        let body = body_value(body)?;
        let grace = match body.get("gracePeriod") {
            None | Some(Value::Null) => None,
            Some(Value::String(g)) => match humantime::parse_duration(g) {
                Ok(d) if d <= MAX_GRACE => Some(d),
                _ => return Err(grace_error()),
            },
            Some(_) => return Err(grace_error()),
        };
        Ok::<_, ApiError>(
            s.app
                .detached(move |app| async move { app.regenerate_subscription_token(&id, grace).await })
                .await?,
        )
    };
    match result.await {
        Ok(w) => synced(&s, Json(with_token(&s, &w)).into_response()).await,
        Err(e) => e.into_response(),
    }
}

fn grace_error() -> ApiError {
    ApiError::App(AppError::Invalid(vec![FieldError {
        field: "gracePeriod".into(),
        message: "must be a duration such as \"1h\" or \"15m\", at most 30 days".into(),
    }]))
}
