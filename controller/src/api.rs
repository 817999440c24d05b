//! The management REST API (`/api/management/v1`, port 9090): one file per resource under `api/`.

mod api_keys;
mod error;
mod invocation;
mod plans;
pub mod policies;
mod rest_apis;
mod secrets;
mod subscriptions;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};

pub use error::{ApiError, catch_panics};

use crate::app::App;
use crate::auth::Authenticator;
use crate::config::Role;

/// Base path of the management API.
pub const BASE: &str = "/api/management/v1";

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The application layer: every write goes through it.
    pub app: Arc<App>,
    pub auth: Arc<Authenticator>,
    pub max_body: usize,
    /// Envoy's HTTP port, for invocation instructions.
    pub http_port: u16,
    /// The gateway's public base URL (`router.public_url`), for invocation instructions; else
    /// built from the API's virtual host and `http_port`.
    pub public_url: Option<String>,
    /// Set when keys are published to remote authz replicas: key writes wait for their ACKs.
    pub replicas: Option<ReplicaSync>,
}

/// How a key write waits for the remote authz replicas to hold it (the replica feature's).
pub use crate::replica::ReplicaSync;

/// The management API router.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .route("/rest-apis", get(rest_apis::list).post(rest_apis::create))
        .route(
            "/rest-apis/{handle}",
            get(rest_apis::get).put(rest_apis::update).delete(rest_apis::delete),
        )
        .route(
            "/rest-apis/{handle}/api-keys",
            get(api_keys::list).post(api_keys::create),
        )
        .route(
            "/rest-apis/{handle}/api-keys/{name}/regenerate",
            post(api_keys::regenerate),
        )
        .route(
            "/rest-apis/{handle}/api-keys/{name}",
            put(api_keys::replace).delete(api_keys::revoke),
        )
        .route("/policies", get(policies::list))
        .route("/subscription-plans", get(plans::list).post(plans::create))
        .route(
            "/subscription-plans/{id}",
            get(plans::get).put(plans::update).delete(plans::delete),
        )
        .route("/subscriptions", get(subscriptions::list).post(subscriptions::create))
        .route(
            "/subscriptions/{id}",
            get(subscriptions::get)
                .put(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route("/subscriptions/{id}/regenerate-token", post(subscriptions::regenerate))
        .route("/secrets", get(secrets::list).post(secrets::create))
        .route(
            "/secrets/{id}",
            get(secrets::get).put(secrets::update).delete(secrets::delete),
        )
        .route(OPENAPI, get(crate::openapi::serve));
    finish(routes, state)
}

/// Where the OpenAPI document is served (under [`BASE`], and unprefixed like every route), without
/// credentials.
pub const OPENAPI: &str = "/openapi.json";

/// The management API's operations, for the OpenAPI document (`crate::openapi`): every handler
/// [`router`] routes, each with its `#[utoipa::path]`. A test compares it with the routes served.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(
    rest_apis::list,
    rest_apis::create,
    rest_apis::get,
    rest_apis::update,
    rest_apis::delete,
    api_keys::list,
    api_keys::create,
    api_keys::regenerate,
    api_keys::replace,
    api_keys::revoke,
    plans::list,
    plans::create,
    plans::get,
    plans::update,
    plans::delete,
    policies::list,
    subscriptions::list,
    subscriptions::create,
    subscriptions::get,
    subscriptions::update,
    subscriptions::delete,
    subscriptions::regenerate,
    secrets::list,
    secrets::create,
    secrets::get,
    secrets::update,
    secrets::delete,
    crate::openapi::serve,
))]
pub struct ManagementDoc;

/// The routes under [`BASE`] and unprefixed, behind authorization, the body limit and the panic net.
fn finish(routes: Router<AppState>, state: AppState) -> Router {
    // WSO2 also serves every route unprefixed (deprecated); so do we, with its deprecation headers.
    let legacy = routes.clone().layer(middleware::from_fn(|req: Request, next: Next| {
        deprecated(BASE, req, next)
    }));
    Router::new()
        .nest(BASE, routes)
        .merge(legacy)
        .fallback(|| async { ApiError::NoRoute })
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        // Checked while reading, so an oversized body is refused without buffering it whole.
        .layer(DefaultBodyLimit::max(state.max_body))
        .layer(catch_panics())
        .layer(middleware::from_fn(crate::request_log::log))
        .with_state(state)
}

/// Roles allowed on a route pattern; `None` means nobody (deny by default).
fn allowed(pattern: &str) -> Option<&'static [Role]> {
    let rest = pattern.strip_prefix(BASE).unwrap_or(pattern);
    if rest.contains("/api-keys") {
        return Some(&[Role::Admin, Role::Consumer]);
    }
    // As in WSO2: plans and subscriptions are the gateway admin's.
    if rest.starts_with("/subscription-plans") || rest.starts_with("/subscriptions") || rest.starts_with("/secrets") {
        return Some(&[Role::Admin]);
    }
    // The catalogue is for whoever writes RestApi documents.
    if rest == "/rest-apis" || rest.starts_with("/rest-apis/") || rest == "/policies" {
        return Some(&[Role::Admin, Role::Developer]);
    }
    None
}

/// Marks a response to an unprefixed (legacy) route as deprecated, naming its successor.
pub async fn deprecated(base: &'static str, req: Request, next: Next) -> Response {
    let successor = format!("{base}{}", req.uri().path());
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert("deprecation", axum::http::HeaderValue::from_static("true"));
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("<{successor}>; rel=\"successor-version\"")) {
        h.insert("link", v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("299 - \"Deprecated API: migrate to {base} prefix\"")) {
        h.insert("warning", v);
    }
    resp
}

/// The caller's address, as the management and admin servers record it for every connection
/// (plain or TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, tokio::net::TcpListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, tokio::net::TcpListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, crate::https::TlsListener>> for PeerAddr {
    fn connect_info(stream: axum::serve::IncomingStream<'_, crate::https::TlsListener>) -> Self {
        PeerAddr(*stream.remote_addr())
    }
}

/// The caller's address, when the server recorded it (failed logins are counted per address too).
pub(crate) fn source(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip())
}

async fn authorize(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(pattern) = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()) else {
        return next.run(req).await;
    };
    // The OpenAPI document describes the API and holds no data: open to all, like `/health`.
    if pattern.strip_prefix(BASE).unwrap_or(&pattern) == OPENAPI {
        return next.run(req).await;
    }
    let Some(roles) = allowed(&pattern) else {
        return ApiError::Denied(crate::auth::Denied::Forbidden).into_response();
    };
    let header = req.headers().get(AUTHORIZATION).and_then(|h| h.to_str().ok());
    match state.auth.check_from(header, source(&req), roles).await {
        Ok(principal) => {
            let mut req = req;
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(denied) => ApiError::Denied(denied).into_response(),
    }
}

#[cfg(test)]
pub(crate) mod tests;
