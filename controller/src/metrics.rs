//! Prometheus metrics on `server.metrics_port` (`GET /metrics`, text format 0.0.4), optionally
//! behind basic auth (`server.metrics_username` / `server.metrics_password`).
//!
//! Families are grouped by prefix: `tollgate_xds_*`, `tollgate_http_*` (management and admin APIs),
//! `tollgate_apis`, `tollgate_keys`, `tollgate_subscriptions`, `tollgate_platform_*`,
//! `tollgate_db_*`, `tollgate_authz_*`, and the conventional `process_*`.
//!
//! Label cardinality is bounded by construction: every label value comes from a closed set the
//! code defines (an enum, a type's short name, a route template the router was built with, an HTTP
//! status code, a gateway group the controller created). No key, token, digest, path or other
//! user-supplied string is ever a label value.
//!
//! Most values live where the work happens, as plain atomics (`tollgate_xds::metrics`,
//! [`AuthzCounters`], the platform link's and the database's counters) and are read on each
//! scrape by one collector ([`collect`]); the management API's request counters are
//! `prometheus-client` families bumped by a middleware ([`http`]).

pub mod authz;
mod collect;
pub mod http;
pub mod platform;
mod process;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use tollgate_xds::StatusRegistry;

pub use authz::{AuthzCounters, AuthzResult};
pub use http::HttpMetrics;
pub use tollgate_xds::metrics::Histogram;

use crate::app::App;
use crate::db::Db;
use crate::platform::LinkStatus;

/// Upper bounds, in seconds, for request and write latencies (a millisecond to ten seconds).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Where the scrape reads its values from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// xDS streams and their counters.
    pub status: Arc<StatusRegistry>,
    /// The APIs and their states.
    pub app: Arc<App>,
    /// Key and subscription counts, write latency.
    pub db: Arc<Db>,
    /// The control-plane link.
    pub link: Arc<LinkStatus>,
    /// ext_authz checks.
    pub authz: Arc<AuthzCounters>,
    /// Management and admin API requests.
    pub http: HttpMetrics,
}

/// Optional basic-auth credentials for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// `None`: the endpoint is open (the default, as Prometheus expects).
    pub basic: Option<(String, crate::secret::Secret<String>)>,
}

/// The registry every scrape encodes.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

/// Why a scrape failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The encoder refused a value (a bug: every name and label is the code's own).
    #[error("encoding the metrics failed")]
    Encode(#[from] std::fmt::Error),
}

// === impl Credentials ===

impl Credentials {
    /// `server.metrics_username` and `server.metrics_password`, when both are set.
    pub fn of(server: &crate::config::Server) -> Credentials {
        let set = !server.metrics_username.is_empty() && !server.metrics_password.expose().is_empty();
        Credentials {
            basic: set.then(|| (server.metrics_username.clone(), server.metrics_password.clone())),
        }
    }
}

// === impl Metrics ===

impl Metrics {
    /// The registry over `sources`.
    pub fn new(sources: Sources) -> Metrics {
        let mut registry = Registry::default();
        sources.http.register(&mut registry);
        registry.register_collector(Box::new(collect::Snapshot::new(sources)));
        Metrics { registry }
    }

    /// The text exposition of every family (blocks on SQLite counts: call it off the async workers).
    pub fn encode(&self) -> Result<String, MetricsError> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[derive(Clone, Debug)]
struct Endpoint {
    metrics: Arc<Metrics>,
    credentials: Arc<Credentials>,
}

/// The metrics router over `sources`, with the credentials `server` configures.
pub fn endpoint(server: &crate::config::Server, sources: Sources) -> Router {
    router(Arc::new(Metrics::new(sources)), Credentials::of(server))
}

/// The metrics router: `GET /metrics`.
pub fn router(metrics: Arc<Metrics>, credentials: Credentials) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(Endpoint {
        metrics,
        credentials: Arc::new(credentials),
    })
}

async fn scrape(State(e): State<Endpoint>, headers: HeaderMap) -> Response {
    if !authorized(&e.credentials, &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"tollgate metrics\"")],
        )
            .into_response();
    }
    let metrics = e.metrics.clone();
    match tokio::task::spawn_blocking(move || metrics.encode()).await {
        Ok(Ok(text)) => (
            [(CONTENT_TYPE, prometheus_client::encoding::prometheus_text::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "metrics scrape failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Whether the request may scrape: always without configured credentials; else with a matching
/// `Authorization: Basic` header. Both sides are compared as SHA-256 digests, so the time taken
/// says nothing about the password.
fn authorized(c: &Credentials, headers: &HeaderMap) -> bool {
    let Some((user, password)) = &c.basic else {
        return true;
    };
    let Some((u, p)) = headers
        .get(AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(crate::auth::basic_credentials)
    else {
        return false;
    };
    let digest = |s: &str| ring::digest::digest(&ring::digest::SHA256, s.as_bytes());
    let same = |a: &str, b: &str| digest(a).as_ref() == digest(b).as_ref();
    same(&u, user) & same(&p, password.expose())
}

#[cfg(test)]
mod tests;
