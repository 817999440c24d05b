//! `tollgate_http_*`: management and admin API requests by server, route template, method and
//! status code, with a latency histogram. A middleware layered on each router records them.
//!
//! The route label is the template the router matched (`/api/management/v1/rest-apis/{handle}`),
//! never the request's path; a request no route matched is `unmatched`. Methods outside the
//! standard set are `other`. So every label comes from a set the code fixes.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Which of the controller's HTTP servers answered.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Server {
    /// The management API (`server.management_port`).
    Management,
    /// The admin API (`server.admin_port`).
    Admin,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    server: &'static str,
    route: Arc<str>,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LatencyLabels {
    server: &'static str,
    route: Arc<str>,
    method: &'static str,
}

/// The request counters, shared by the middleware of both servers and the registry.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<LatencyLabels, Histogram>,
}

// === impl HttpMetrics ===

impl Default for HttpMetrics {
    fn default() -> Self {
        HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(super::LATENCY_BUCKETS.iter().copied())),
        }
    }
}

impl HttpMetrics {
    /// `router` with a middleware that records every request `server` answers (layered on the
    /// whole router, so it runs after routing and sees the matched template).
    pub fn instrument(&self, server: Server, router: Router) -> Router {
        let metrics = self.clone();
        router.layer(middleware::from_fn(move |req: Request, next: Next| {
            let metrics = metrics.clone();
            async move { metrics.record(server, req, next).await }
        }))
    }

    async fn record(&self, server: Server, req: Request, next: Next) -> Response {
        let route: Arc<str> = match req.extensions().get::<MatchedPath>() {
            Some(p) => Arc::from(p.as_str()),
            None => Arc::from("unmatched"),
        };
        let (server, method) = (server.as_str(), method(req.method()));
        let started = Instant::now();
        let response = next.run(req).await;
        self.duration
            .get_or_create(&LatencyLabels {
                server,
                route: route.clone(),
                method,
            })
            .observe(started.elapsed().as_secs_f64());
        self.requests
            .get_or_create(&RequestLabels {
                server,
                route,
                method,
                status: response.status().as_u16(),
            })
            .inc();
        response
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "tollgate_http_requests",
            "Management and admin API requests, by server, route template, method and status code",
            self.requests.clone(),
        );
        registry.register(
            "tollgate_http_request_duration_seconds",
            "Management and admin API request latency, by server, route template and method",
            self.duration.clone(),
        );
    }
}

// === impl Server ===

impl Server {
    fn as_str(self) -> &'static str {
        match self {
            Server::Management => "management",
            Server::Admin => "admin",
        }
    }
}

/// The method's name when it is a standard one, else `other`.
fn method(m: &axum::http::Method) -> &'static str {
    use axum::http::Method as M;
    match *m {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
