//! The controller's own request log, for the management and admin APIs: one `info` event per
//! request (target `tollgate::request`) naming the method, the matched route template, the status
//! and the latency. Never the path as sent nor its query (they carry names and values callers
//! chose), no header (so no credential) and no body.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;

/// Logs one request once its response is ready. Added as the outermost layer, so refusals by
/// authorization, the body limit and the panic net are logged with their status too.
pub async fn log(req: Request, next: Next) -> Response {
    let method = known(req.method());
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    let start = Instant::now();
    let resp = next.run(req).await;
    tracing::info!(
        target: "tollgate::request",
        method,
        route = route.as_deref().unwrap_or("<no route>"),
        status = resp.status().as_u16(),
        latency_ms = start.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    resp
}

/// The method's name when it is a standard one; any other is a string the client chose.
fn known(method: &Method) -> &'static str {
    const STANDARD: [&str; 9] = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ];
    STANDARD.into_iter().find(|m| *m == method.as_str()).unwrap_or("OTHER")
}

#[cfg(test)]
mod tests;
