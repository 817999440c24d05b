//! `GET /api/admin/v1/ready`: 200 only when the controller can do its job (the database answers,
//! the xDS port accepts connections, and the platform link, when configured, is connected); else
//! 503 with the reasons. No credentials, like `/health`, so orchestrators can probe it.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AdminState;
use crate::platform::LinkPhase;

/// How long each check may take before it counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

#[utoipa::path(get, path = "/ready", operation_id = "ready", tag = "admin", summary = "Readiness",
    description = "No credentials. 200 only when the database answers, the xDS port accepts \
connections and the platform link (when configured) is connected; else 503 with the reasons.",
    security(()),
    responses(
        (status = 200, description = "Ready", body = crate::openapi::admin::Ready),
        (status = 503, description = "Not ready, with `reasons`", body = crate::openapi::admin::Ready),
    ))]
pub(super) async fn ready(State(s): State<AdminState>) -> Response {
    let mut reasons: Vec<String> = Vec::new();
    let db = tokio::time::timeout(CHECK_TIMEOUT, s.app.database_answers()).await;
    if !matches!(db, Ok(true)) {
        reasons.push("database: not answering".into());
    }
    match s.xds {
        Some(addr) => {
            let target = if addr.ip().is_unspecified() {
                std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()))
            } else {
                addr
            };
            let connect = tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect(target)).await;
            if !matches!(connect, Ok(Ok(_))) {
                reasons.push(format!("xds: not accepting connections on {addr}"));
            }
        }
        None => reasons.push("xds: not started".into()),
    }
    let link = s.link.snapshot();
    match link.state {
        LinkPhase::Disabled | LinkPhase::Connected => {}
        LinkPhase::Stopped => reasons.push(format!(
            "platform link: stopped ({})",
            link.stopped_reason.as_deref().unwrap_or("no reason recorded")
        )),
        other => reasons.push(format!(
            "platform link: {}",
            json!(other).as_str().unwrap_or("not connected")
        )),
    }
    if reasons.is_empty() {
        (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
    } else {
        let body = json!({"status": "not ready", "reasons": reasons});
        (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response()
    }
}
