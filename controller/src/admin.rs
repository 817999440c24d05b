//! The admin API (`/api/admin/v1`, port 9092): health (no auth), config dump (no secrets) and
//! per-Envoy xDS sync status.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tollgate_xds::{NodeStatus, StatusRegistry, TypeKind};

use crate::api::ApiError;
use crate::app::App;
use crate::auth::Authenticator;
use crate::config::Role;
use crate::db::CpKind;

/// Base path of the admin API.
pub const BASE: &str = "/api/admin/v1";

#[derive(Clone, Debug)]
pub struct AdminState {
    pub app: Arc<App>,
    pub auth: Arc<Authenticator>,
    pub status: Arc<StatusRegistry>,
    pub link: Arc<crate::platform::LinkStatus>,
    /// The xDS server's address, once it listens (for `/ready`).
    pub xds: Option<std::net::SocketAddr>,
}

/// The admin API's operations, for the OpenAPI document (`crate::openapi`): every handler
/// [`router`] routes, each with its `#[utoipa::path]`. A test compares it with the routes served.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(health, ready::ready, config_dump, xds_sync_status, control_plane))]
pub struct AdminDoc;

/// The admin router.
pub fn router(state: AdminState) -> Router {
    let protected = Router::new()
        .route("/config_dump", get(config_dump))
        .route("/xds_sync_status", get(xds_sync_status))
        .route("/control_plane", get(control_plane))
        .layer(middleware::from_fn_with_state(state.clone(), admin_only));
    let routes = protected
        .route("/health", get(health))
        .route("/ready", get(ready::ready));
    finish(routes, state)
}

/// The routes under [`BASE`] and unprefixed, behind the panic net.
fn finish(routes: Router<AdminState>, state: AdminState) -> Router {
    let legacy = routes.clone().layer(middleware::from_fn(|req: Request, next: Next| {
        crate::api::deprecated(BASE, req, next)
    }));
    Router::new()
        .nest(BASE, routes)
        .merge(legacy)
        .fallback(|| async { ApiError::NoRoute })
        .layer(crate::api::catch_panics())
        .layer(middleware::from_fn(crate::request_log::log))
        .with_state(state)
}

async fn admin_only(State(s): State<AdminState>, req: Request, next: Next) -> Response {
    let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
    match s
        .auth
        .check_from(header, crate::api::source(&req), &[Role::Admin])
        .await
    {
        Ok(_) => next.run(req).await,
        Err(d) => ApiError::Denied(d).into_response(),
    }
}

#[utoipa::path(get, path = "/health", operation_id = "health", tag = "admin", summary = "Liveness",
    description = "No credentials. Cheap: answers while the process serves.", security(()),
    responses((status = 200, description = "Alive", body = crate::openapi::admin::Health)))]
async fn health() -> Json<Value> {
    Json(json!({"status": "healthy", "timestamp": crate::clock::rfc3339_now()}))
}

#[utoipa::path(get, path = "/config_dump", operation_id = "configDump", tag = "admin", summary = "The stored configuration",
    description = "Roles: admin. APIs, policies and xDS resource counts; no secrets.",
    responses((status = 200, description = "The dump", body = crate::openapi::admin::ConfigDump)))]
async fn config_dump(State(s): State<AdminState>) -> Json<Value> {
    let apis: Vec<Value> = s
        .app
        .apis()
        .iter()
        .map(|e| {
            json!({
                "id": e.row.uuid,
                "configuration": e.doc_json(),
                "metadata": {
                    "status": e.state().as_str(),
                    "message": e.failure(),
                    "origin": e.row.origin,
                    "createdAt": e.row.created_at,
                    "updatedAt": e.row.updated_at,
                    "deployedAt": e.row.deployed_at,
                },
            })
        })
        .collect();
    // The loaded catalogue, as `GET /policies` shows it.
    let policies = crate::api::policies::catalogue_json(s.app.catalogue());
    let store = s.app.xds();
    let group = store.group(tollgate_xds::DEFAULT_GROUP);
    let resources: serde_json::Map<String, Value> = TypeKind::ALL
        .iter()
        .map(|k| (k.short().to_string(), json!(group.len(*k))))
        .collect();
    Json(json!({
        "status": "success",
        "timestamp": crate::clock::rfc3339_now(),
        "apis": apis,
        "policies": policies,
        "certificates": [],
        "statistics": {
            "totalApis": apis.len(),
            "totalPolicies": policies.len(),
            "totalCertificates": 0,
            "totalCertificateBytes": 0,
        },
        "xds": {"generation": store.generation(), "resources": resources},
    }))
}

/// The control-plane link: state, gateway id, why it stopped (if it did), event counters, last sync.
/// A failed count is a 500, never a 0 that looks like an empty store.
#[utoipa::path(get, path = "/control_plane", operation_id = "controlPlane", tag = "admin", summary = "The platform link",
    description = "Roles: admin.",
    responses(
        (status = 200, description = "The link and what it stored", body = crate::openapi::admin::ControlPlane),
        (status = 500, description = "A count could not be read", body = crate::openapi::schemas::ErrorBody),
    ))]
async fn control_plane(State(s): State<AdminState>) -> Result<Json<Value>, ApiError> {
    let stored = json!({
        "subscriptions": s.app.count_subscriptions().await?,
        "subscriptionPlans": s.app.plans().await?.len(),
        "applications": s.app.count_cp_objects(CpKind::Application).await?,
        "revokedKeys": s.app.count_cp_objects(crate::keys::TOMBSTONE).await?,
    });
    Ok(Json(
        json!({"status": "success", "controlPlane": s.link.snapshot(), "stored": stored}),
    ))
}

#[utoipa::path(get, path = "/xds_sync_status", operation_id = "xdsSyncStatus", tag = "admin", summary = "Each Envoy's xDS state",
    description = "Roles: admin. Per connected Envoy and resource type: ACKed version and generation, \
pending, last NACK; and the APIs an Envoy refused.",
    responses((status = 200, description = "The sync status", body = crate::openapi::admin::XdsSyncStatus)))]
async fn xds_sync_status(State(s): State<AdminState>) -> Json<Value> {
    // Envoy's NACK messages may quote rendered configuration: secret values are redacted.
    let secrets = s.app.secret_store().values();
    let redact = |m: &str| crate::secrets::render::redact(m, &secrets);
    let nodes: Vec<Value> = s.status.snapshot().iter().map(|n| node(n, &redact)).collect();
    // APIs an Envoy rejected: quarantined, serving what was accepted before (or nothing).
    let failed: Vec<Value> = s
        .app
        .apis()
        .iter()
        .filter_map(|e| e.failure().map(|m| json!({"id": e.row.handle, "message": m})))
        .collect();
    Json(json!({
        "component": "tollgate",
        "timestamp": crate::clock::rfc3339_now(),
        "generation": s.app.xds().generation(),
        "nodes": nodes,
        "failedApis": failed,
    }))
}

fn node(n: &NodeStatus, redact: &dyn Fn(&str) -> String) -> Value {
    let types: serde_json::Map<String, Value> = TypeKind::ALL
        .iter()
        .map(|k| {
            let t = &n.types[k.index()];
            let nack = t
                .last_nack
                .as_ref()
                .map(|x| json!({"version": x.version, "message": redact(&x.message), "at": crate::clock::rfc3339_millis(x.at)}));
            let v = json!({
                "active": t.active,
                "ackedVersion": t.acked_version,
                "ackedGeneration": t.acked_generation,
                "pending": t.pending,
                "lastNack": nack,
                "resources": t.held,
            });
            (k.short().to_string(), v)
        })
        .collect();
    json!({
        "streamId": n.stream_id,
        "nodeId": n.node_id,
        "cluster": n.node_cluster,
        "group": n.group,
        "flavour": format!("{:?}", n.flavour).to_lowercase(),
        "connectedAt": crate::clock::rfc3339_millis(n.connected_at),
        "types": types,
    })
}

mod ready;

#[cfg(test)]
mod tests;
