//! The HTTP servers: the management and admin APIs (their requests counted) and the metrics
//! endpoint, on their ports, plain or HTTPS alike.

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::info;

use super::{bind, serve_http};
use crate::config::Config;
use crate::https::TlsListener;
use crate::metrics::{self, http::Server as HttpServer};

/// Binds and serves the management and admin APIs (their requests counted) and the metrics
/// endpoint over `sources` until `stopped` turns true; returns their addresses in that order.
pub(super) async fn serve_apis(
    config: &Config,
    [management, admin]: [axum::Router; 2],
    sources: metrics::Sources,
    stopped: watch::Receiver<bool>,
) -> anyhow::Result<([SocketAddr; 3], Vec<JoinHandle<()>>)> {
    let routers = [
        sources.http.instrument(HttpServer::Management, management),
        sources.http.instrument(HttpServer::Admin, admin),
        metrics::endpoint(&config.server, sources),
    ];
    let s = &config.server;
    let mut listeners = Vec::new();
    for (host, port) in [
        (&s.bind, s.management_port),
        (&s.bind, s.admin_port),
        (&s.metrics_bind, s.metrics_port),
    ] {
        listeners.push(bind(host, port).await?);
    }
    let addrs = [
        listeners[0].local_addr()?,
        listeners[1].local_addr()?,
        listeners[2].local_addr()?,
    ];
    let tls = match (&s.tls_cert_path, &s.tls_key_path) {
        (Some(cert), Some(key)) => {
            info!("management, admin and metrics APIs serve HTTPS");
            Some(crate::https::acceptor(cert, key)?)
        }
        _ => None,
    };
    let mut http = Vec::new();
    for (listener, router) in listeners.into_iter().zip(routers) {
        http.push(match &tls {
            Some(tls) => serve_http(TlsListener::new(listener, tls.clone())?, router, stopped.clone()),
            None => serve_http(listener, router, stopped.clone()),
        });
    }
    Ok((addrs, http))
}
