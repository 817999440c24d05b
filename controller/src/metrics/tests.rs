//! The registry, its encoding and the endpoint, without sockets: every family is present, labels
//! come from closed sets (a route template, not the path; `other`, not an unknown event type), the
//! endpoint asks for credentials only when configured, and the sample dashboard names only
//! metrics that exist.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use tollgate_xds::StatusRegistry;
use tower::ServiceExt;

use super::*;
use crate::api::tests::{basic, parts, send};
use crate::platform::LinkStatus;
use crate::platform::events::Outcome;

struct Rig {
    metrics: Arc<Metrics>,
    management: Router,
    sources: Sources,
}

async fn rig() -> Rig {
    let p = parts().await;
    let sources = Sources {
        status: Arc::new(StatusRegistry::default()),
        app: p.app.clone(),
        db: p.db.clone(),
        link: Arc::new(LinkStatus::default()),
        authz: Arc::new(AuthzCounters::default()),
        http: HttpMetrics::default(),
    };
    let management = sources.http.instrument(
        http::Server::Management,
        crate::api::router(crate::api::AppState {
            app: p.app,
            auth: p.auth,
            max_body: 1024,
            http_port: 8080,
            public_url: None,
            replicas: None,
        }),
    );
    Rig {
        metrics: Arc::new(Metrics::new(sources.clone())),
        management,
        sources,
    }
}

/// The names of the families in a scrape (from its `# TYPE` lines), with the sample suffixes of
/// histograms.
fn family_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for line in text.lines().filter_map(|l| l.strip_prefix("# TYPE ")) {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
            continue;
        };
        names.push(name.to_string());
        if kind == "histogram" {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.push(format!("{name}{suffix}"));
            }
        }
    }
    names
}

/// The value of the sample line that starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn every_family_is_there_and_labels_come_from_closed_sets() {
    let r = rig().await;
    let handle = "no-such-api-4f1c";
    let path = format!("/api/management/v1/rest-apis/{handle}");
    assert_eq!(
        send(&r.management, Method::GET, &path, Some("admin"), "")
            .await
            .0
            .status(),
        404
    );
    send(&r.management, Method::GET, "/unrouted-7d2e", Some("admin"), "").await;
    r.sources.authz.record(AuthzResult::Allowed, Duration::from_micros(30));
    r.sources
        .authz
        .record(AuthzResult::Limited429, Duration::from_micros(40));
    r.sources
        .link
        .metrics()
        .event(Some("weird.type-9a"), &Outcome::Ignored("x".into()));
    r.sources.link.metrics().event(Some("api.deployed"), &Outcome::Applied);
    r.sources.db.set_setting("k", "v").unwrap();

    let text = r.metrics.encode().unwrap();
    let names = family_names(&text);
    for family in [
        "tollgate_xds_clients",
        "tollgate_xds_pushes_total",
        "tollgate_xds_push_bytes_total",
        "tollgate_xds_nacks_total",
        "tollgate_xds_convergence_seconds",
        "tollgate_apis",
        "tollgate_keys",
        "tollgate_subscriptions",
        "tollgate_http_requests_total",
        "tollgate_http_request_duration_seconds",
        "tollgate_platform_link_state",
        "tollgate_platform_events_total",
        "tollgate_platform_sync_duration_seconds",
        "tollgate_db_write_duration_seconds",
        "tollgate_authz_checks_total",
        "tollgate_authz_check_duration_seconds",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
    ] {
        assert!(names.iter().any(|n| n == family), "{family} missing from:\n{text}");
    }
    let route = "route=\"/api/management/v1/rest-apis/{handle}\"";
    assert!(text.contains(route), "the route template is the label:\n{text}");
    assert!(text.contains("route=\"unmatched\""), "{text}");
    for raw in [handle, "unrouted-7d2e", "weird.type-9a"] {
        assert!(!text.contains(raw), "{raw} leaked into a label:\n{text}");
    }
    assert_eq!(
        sample(
            &text,
            "tollgate_platform_events_total{type=\"other\",outcome=\"ignored\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "tollgate_platform_events_total{type=\"api.deployed\",outcome=\"applied\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "tollgate_authz_checks_total{result=\"limited_429\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "tollgate_authz_checks_total{result=\"denied_403\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "tollgate_authz_check_duration_seconds_count"), Some(2.0));
    assert!(sample(&text, "tollgate_db_write_duration_seconds_count").is_some_and(|n| n >= 1.0));
    assert_eq!(sample(&text, "tollgate_apis{state=\"deployed\"}"), Some(0.0));
    assert_eq!(sample(&text, "tollgate_keys "), Some(0.0));
    assert_eq!(
        sample(&text, "tollgate_platform_link_state{state=\"connecting\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&text, "tollgate_xds_pushes_total{type=\"cds\"}"), Some(0.0));
}

async fn scrape(router: &Router, authorization: Option<&str>) -> StatusCode {
    let mut req = Request::builder().uri("/metrics");
    if let Some(a) = authorization {
        req = req.header(header::AUTHORIZATION, a);
    }
    router
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn the_endpoint_is_open_unless_credentials_are_configured() {
    let r = rig().await;
    let open = router(r.metrics.clone(), Credentials::default());
    assert_eq!(scrape(&open, None).await, StatusCode::OK);

    let server = crate::config::Server {
        metrics_username: "prom".into(),
        metrics_password: "s3cret".into(),
        ..Default::default()
    };
    let closed = router(r.metrics.clone(), Credentials::of(&server));
    assert_eq!(scrape(&closed, None).await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        scrape(&closed, Some(&basic("prom", "wrong"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(&closed, Some(&basic("other", "s3cret"))).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(scrape(&closed, Some(&basic("prom", "s3cret"))).await, StatusCode::OK);
}

#[tokio::test]
async fn the_sample_dashboard_names_only_metrics_that_exist() {
    let r = rig().await;
    // One request, so the request families have samples as well as descriptors.
    send(
        &r.management,
        Method::GET,
        "/api/management/v1/rest-apis",
        Some("admin"),
        "",
    )
    .await;
    let names = family_names(&r.metrics.encode().unwrap());
    let dashboard = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/grafana-dashboard.json"));
    let used: Vec<&str> = dashboard
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("tollgate_") || w.starts_with("process_"))
        .collect();
    assert!(used.len() >= 5, "the dashboard queries the metrics");
    for name in used {
        assert!(
            names.iter().any(|n| n == name),
            "the dashboard uses {name}, which is not exported"
        );
    }
    let parsed: serde_json::Value = serde_json::from_str(dashboard).unwrap();
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 4));
}

#[test]
fn metrics_credentials_are_set_together_and_never_logged() {
    let half = crate::config::Config::parse("[server]\nmetrics_username = \"prom\"\n").unwrap_err();
    assert_eq!(half.key(), Some("server.metrics_username"));
    let both = "[server]\nmetrics_username = \"prom\"\nmetrics_password = \"s3cret-pw\"\n";
    let config = crate::config::Config::parse(both).unwrap();
    assert!(Credentials::of(&config.server).basic.is_some());
    assert!(!config.redacted().to_string().contains("s3cret-pw"));
    assert!(!format!("{config:?}").contains("s3cret-pw"));
}

/// Unauthenticated by default, so on loopback unless configured (the rule of the gRPC ports).
#[test]
fn the_endpoint_listens_on_loopback_by_default() {
    let c = crate::config::Config::default();
    assert_eq!(c.server.metrics_bind, "127.0.0.1");
    assert!(Credentials::of(&c.server).basic.is_none());
}
