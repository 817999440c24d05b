//! The admin router without sockets: health is open, everything else is for admins, unknown
//! routes and methods answer in the API's shapes, and the unprefixed routes say they are
//! deprecated.

use std::sync::Arc;

use axum::http::{Method, StatusCode, header};
use serde_json::json;

use super::*;
use crate::api::tests::{parts, send};
use crate::platform::LinkStatus;

async fn app() -> Router {
    let p = parts().await;
    router(AdminState {
        app: p.app,
        auth: p.auth,
        status: Arc::new(StatusRegistry::default()),
        link: Arc::new(LinkStatus::default()),
        xds: None,
    })
}

#[tokio::test]
async fn health_needs_no_credentials() {
    let (r, body) = send(&app().await, Method::GET, "/api/admin/v1/health", None, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert!(body["timestamp"].is_string(), "{body}");
}

#[tokio::test]
async fn everything_else_is_for_admins_only() {
    let app = app().await;
    for path in [
        "/api/admin/v1/config_dump",
        "/api/admin/v1/xds_sync_status",
        "/api/admin/v1/control_plane",
    ] {
        let (r, body) = send(&app, Method::GET, path, None, "").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body["code"], "unauthenticated", "{path}");
        assert!(r.headers().contains_key(header::WWW_AUTHENTICATE), "{path}");
        for user in ["dev", "consumer"] {
            let (r, body) = send(&app, Method::GET, path, Some(user), "").await;
            assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path} as {user}");
            assert_eq!(body["code"], "forbidden");
        }
        let (r, _) = send(&app, Method::GET, path, Some("admin"), "").await;
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_admin_views_have_their_documented_shapes() {
    let app = app().await;
    let (_, dump) = send(&app, Method::GET, "/api/admin/v1/config_dump", Some("admin"), "").await;
    assert_eq!(dump["status"], "success");
    assert_eq!(dump["apis"], json!([]));
    assert_eq!(dump["statistics"]["totalApis"], 0);
    assert!(dump["statistics"]["totalPolicies"].as_u64().unwrap() > 0, "{dump}");
    // The loaded catalogue with each policy's parameter schema.
    let cors = dump["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "cors");
    assert_eq!(cors.map(|p| &p["parameters"]["type"]), Some(&json!("object")), "{dump}");
    assert!(dump["xds"]["resources"].is_object(), "{dump}");
    let (_, sync) = send(&app, Method::GET, "/api/admin/v1/xds_sync_status", Some("admin"), "").await;
    assert_eq!(
        (sync["component"].as_str(), &sync["nodes"]),
        (Some("tollgate"), &json!([]))
    );
    let (_, cp) = send(&app, Method::GET, "/api/admin/v1/control_plane", Some("admin"), "").await;
    assert_eq!(cp["status"], "success");
    assert_eq!(
        cp["stored"],
        json!({"subscriptions": 0, "subscriptionPlans": 0, "applications": 0, "revokedKeys": 0})
    );
    assert_eq!(cp["controlPlane"]["enabled"], false);
}

#[tokio::test]
async fn unknown_routes_are_404_and_other_methods_405() {
    let app = app().await;
    for path in ["/api/admin/v1/nope", "/nope", "/api/management/v1/rest-apis"] {
        let (r, body) = send(&app, Method::GET, path, Some("admin"), "").await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body, json!({"status": "error", "message": "not found"}));
    }
    let (r, body) = send(&app, Method::POST, "/api/admin/v1/health", None, "").await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, serde_json::Value::Null);
    assert_eq!(r.headers()[header::ALLOW], "GET,HEAD");
    let (r, _) = send(&app, Method::DELETE, "/api/admin/v1/config_dump", None, "").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "authentication comes before the method check"
    );
}

#[tokio::test]
async fn legacy_routes_answer_with_deprecation_headers() {
    let app = app().await;
    let (r, body) = send(&app, Method::GET, "/health", None, "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body["status"], "healthy");
    assert_eq!(r.headers()["deprecation"], "true");
    assert_eq!(r.headers()["link"], "</api/admin/v1/health>; rel=\"successor-version\"");
    assert_eq!(
        r.headers()["warning"],
        "299 - \"Deprecated API: migrate to /api/admin/v1 prefix\""
    );
    let (r, _) = send(&app, Method::GET, "/config_dump", Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["deprecation"], "true");
    let (r, _) = send(&app, Method::GET, "/api/admin/v1/health", None, "").await;
    assert!(r.headers().get("deprecation").is_none());
}

async fn boom() -> &'static str {
    panic!("a panic that names secret-value-123");
}

/// Issue #13: a panicking admin handler answers a fixed 500 and health still answers.
#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_carries_on() {
    let p = parts().await;
    let state = AdminState {
        app: p.app,
        auth: p.auth,
        status: Arc::new(StatusRegistry::default()),
        link: Arc::new(LinkStatus::default()),
        xds: None,
    };
    let app = finish(
        Router::new().route("/boom", get(boom)).route("/health", get(health)),
        state,
    );
    let (r, body) = send(&app, Method::GET, "/api/admin/v1/boom", None, "").await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body, json!({"status": "error", "message": "internal server error"}));
    let (r, _) = send(&app, Method::GET, "/api/admin/v1/health", None, "").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// `/ready` needs no credentials and says why it is not ready.
#[tokio::test]
async fn ready_names_what_is_missing() {
    let p = parts().await;
    let xds = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let link = Arc::new(LinkStatus::default());
    let state = |xds: Option<std::net::SocketAddr>, link: &Arc<LinkStatus>| AdminState {
        app: p.app.clone(),
        auth: p.auth.clone(),
        status: Arc::new(StatusRegistry::default()),
        link: link.clone(),
        xds,
    };
    // No xDS server and a link still connecting: 503 with both reasons.
    let (r, body) = send(
        &router(state(None, &link)),
        Method::GET,
        "/api/admin/v1/ready",
        None,
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("xds") && reasons.contains("platform link"), "{body}");
    // The link disabled (no control plane) and xDS listening: ready.
    link.update(|l| l.state = crate::platform::LinkPhase::Disabled);
    let addr = Some(xds.local_addr().unwrap());
    let (r, body) = send(
        &router(state(addr, &link)),
        Method::GET,
        "/api/admin/v1/ready",
        None,
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
}
