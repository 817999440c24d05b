//! The management router without sockets: `oneshot` requests against a state built in process
//! over an in-memory SQLite database. Roles, the shapes of 401/403/404/405/409/413 answers, and
//! the deprecation headers of the unprefixed (legacy) routes.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use axum::response::Response;
use serde_json::Value;
use tollgate_policies::Catalogue;
use tollgate_policies::authz::SharedIndex;
use tollgate_xds::Store;
use tower::ServiceExt;

use super::*;
use crate::app::{ApiRepo, App, RepoParts};
use crate::config::{Config, User};
use crate::db::Db;
use crate::keys::Keys;
use tollgate_translate::{Settings, Translator};

/// The controller's parts a router needs, over an in-memory database.
pub(crate) struct Parts {
    pub app: Arc<App>,
    pub auth: Arc<Authenticator>,
    pub db: Arc<Db>,
}

/// One user per role: `admin`, `dev` (developer) and `consumer`, each with password `pw`.
pub(crate) async fn parts() -> Parts {
    let db = Arc::new(Db::memory().unwrap());
    let user = |name: &str, role| User {
        username: name.into(),
        password: "pw".into(),
        password_hashed: false,
        roles: vec![role],
    };
    let users = vec![
        user("admin", Role::Admin),
        user("dev", Role::Developer),
        user("consumer", Role::Consumer),
    ];
    // Users are configured, so nothing is generated (the folder is never written).
    let (auth, _) = Authenticator::with_admin_password(true, users, &db, &std::env::temp_dir(), None).unwrap();
    let config = Config::default();
    let settings = Settings {
        listen_address: "127.0.0.1".into(),
        trusted_ca: "ca.pem".into(),
        vhosts: config.vhost_defaults(),
        ..Settings::default()
    };
    let store = Arc::new(Store::new());
    let repo = ApiRepo::load(RepoParts {
        db: db.clone(),
        xds: store,
        status: Arc::new(tollgate_xds::StatusRegistry::default()),
        ack_timeout: std::time::Duration::from_secs(1),
        catalogue: Catalogue::builtin(),
        vhosts: config.vhost_defaults(),
        translator: Translator::new(settings),
        secrets: Arc::new(
            crate::secrets::Secrets::load(db.clone(), crate::secrets::Keyring::random("t1").unwrap()).unwrap(),
        ),
    })
    .await
    .unwrap();
    let keys = Arc::new(Keys::load(db.clone(), Arc::new(SharedIndex::default()), 10, None).unwrap());
    Parts {
        app: Arc::new(App::new(
            repo,
            keys.clone(),
            Arc::new(crate::subs::Subs::load(db.clone(), crate::subs::Feed::new(Default::default())).unwrap()),
            db.clone(),
        )),
        auth: Arc::new(auth),
        db,
    }
}

/// `Authorization: Basic` for `user:password`.
pub(crate) fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Sends one request; `user` logs in with password `pw` (`None`: no credentials).
pub(crate) async fn send(
    app: &Router,
    method: Method,
    path: &str,
    user: Option<&str>,
    body: &str,
) -> (Response, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::CONTENT_TYPE, "application/yaml");
    if let Some(u) = user {
        req = req.header(header::AUTHORIZATION, basic(u, "pw"));
    }
    let resp = app
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let (head, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (Response::from_parts(head, Body::empty()), json)
}

async fn app_with_limit(max_body: usize) -> Router {
    let p = parts().await;
    router(AppState {
        app: p.app,
        auth: p.auth,
        max_body,
        http_port: 8080,
        public_url: None,
        replicas: None,
    })
}

async fn app() -> Router {
    app_with_limit(1024 * 1024).await
}

const DOC: &str = "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: orders\nspec:\n  displayName: orders\n  version: v1.0\n  context: /orders\n  upstream:\n    main:\n      url: http://127.0.0.1:9\n  operations:\n    - {method: GET, path: /x}\n";

#[tokio::test]
async fn no_credentials_is_401_with_a_basic_challenge() {
    let (r, body) = send(&app().await, Method::GET, "/api/management/v1/rest-apis", None, "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()[header::WWW_AUTHENTICATE], "Basic realm=\"tollgate\"");
    assert_eq!(body["code"], "unauthenticated");
    assert_eq!(body["message"], "no valid authentication credentials provided");
}

#[tokio::test]
async fn a_wrong_password_is_401_authentication_failed() {
    let app = app().await;
    let req = Request::get("/api/management/v1/rest-apis")
        .header(header::AUTHORIZATION, basic("admin", "wrong"))
        .body(Body::empty())
        .unwrap();
    let r = app.oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(r.headers().contains_key(header::WWW_AUTHENTICATE));
    let body = axum::body::to_bytes(r.into_body(), usize::MAX).await.unwrap();
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["code"], "authentication_failed");
}

#[tokio::test]
async fn repeated_failures_from_one_address_get_429_with_retry_after() {
    let app = app().await;
    let from = |name: &str| {
        let mut req = Request::get("/api/management/v1/rest-apis")
            .header(header::AUTHORIZATION, basic(name, "wrong"))
            .body(Body::empty())
            .unwrap();
        let addr = std::net::SocketAddr::from(([192, 0, 2, 7], 40000));
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(crate::api::PeerAddr(addr)));
        req
    };
    for i in 0..20 {
        let r = app.clone().oneshot(from(&format!("user{i}"))).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = app.clone().oneshot(from("admin")).await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
}

#[tokio::test]
async fn rest_apis_are_for_admins_and_developers() {
    let app = app().await;
    for user in ["admin", "dev"] {
        let (r, body) = send(&app, Method::GET, "/api/management/v1/rest-apis", Some(user), "").await;
        assert_eq!(r.status(), StatusCode::OK, "{user}");
        assert_eq!(
            (body["status"].as_str(), body["count"].as_u64()),
            (Some("success"), Some(0))
        );
    }
    let (r, body) = send(&app, Method::GET, "/api/management/v1/rest-apis", Some("consumer"), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        (body["code"].as_str(), body["message"].as_str()),
        (Some("forbidden"), Some("forbidden"))
    );
    assert!(
        !r.headers().contains_key(header::WWW_AUTHENTICATE),
        "403 carries no challenge"
    );
}

#[tokio::test]
async fn the_policy_catalogue_is_for_document_writers_with_json_schemas() {
    let app = app().await;
    for user in ["admin", "dev"] {
        let (r, body) = send(&app, Method::GET, "/api/management/v1/policies", Some(user), "").await;
        assert_eq!(r.status(), StatusCode::OK, "{user}");
        let policies = body["policies"].as_array().unwrap();
        assert_eq!(body["count"].as_u64(), Some(policies.len() as u64));
        let cors = policies.iter().find(|p| p["name"] == "cors").expect("cors listed");
        assert_eq!(cors["version"], "v1");
        assert_eq!(cors["parameters"]["type"], "object");
        assert_eq!(cors["parameters"]["required"], serde_json::json!(["allowedOrigins"]));
        // Every catalogue entry is there, in the catalogue's order.
        let names: Vec<&str> = policies.iter().map(|p| p["name"].as_str().unwrap()).collect();
        let catalogue = tollgate_policies::Catalogue::builtin();
        let listed: Vec<&str> = catalogue.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, listed);
    }
    let (r, _) = send(&app, Method::GET, "/api/management/v1/policies", Some("consumer"), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (r, _) = send(&app, Method::GET, "/api/management/v1/policies", None, "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn api_keys_are_for_admins_and_consumers() {
    let app = app().await;
    let path = "/api/management/v1/rest-apis/nope/api-keys";
    for user in ["admin", "consumer"] {
        let (r, body) = send(&app, Method::GET, path, Some(user), "").await;
        assert_eq!(
            r.status(),
            StatusCode::NOT_FOUND,
            "{user}: allowed in, then no such API"
        );
        assert_eq!(body["status"], "error");
        assert_eq!(body["message"], "RestAPI with handle 'nope' not found");
    }
    let (r, body) = send(&app, Method::GET, path, Some("dev"), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(body["code"], "forbidden");
}

#[tokio::test]
async fn unknown_routes_are_404_in_the_error_shape() {
    let app = app().await;
    for user in [Some("admin"), None] {
        for path in ["/api/management/v1/nope", "/nope", "/api/management/v1/rest-apis/a/b/c"] {
            let (r, body) = send(&app, Method::GET, path, user, "").await;
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path} as {user:?}");
            assert_eq!(body, serde_json::json!({"status": "error", "message": "not found"}));
            assert!(r.headers().get("deprecation").is_none(), "{path}");
        }
    }
}

#[tokio::test]
async fn a_known_route_with_another_method_is_405_after_authentication() {
    let app = app().await;
    let (r, body) = send(
        &app,
        Method::PATCH,
        "/api/management/v1/rest-apis/orders",
        Some("admin"),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body, Value::Null, "405 has an empty body");
    let allow = r.headers()[header::ALLOW].to_str().unwrap().to_string();
    for m in ["GET", "PUT", "DELETE"] {
        assert!(allow.contains(m), "{allow}");
    }
    let (r, _) = send(&app, Method::PATCH, "/api/management/v1/rest-apis/orders", None, "").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "no hint about methods before authentication"
    );
}

#[tokio::test]
async fn bodies_over_the_limit_are_413_in_the_error_shape() {
    let app = app_with_limit(64).await;
    let (r, body) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("admin"), DOC).await;
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["status"], "error");
    assert_eq!(
        body["message"],
        "request body is larger than the configured limit of 64 bytes"
    );
    assert_eq!(
        app.clone()
            .oneshot(
                Request::get("/api/management/v1/rest-apis")
                    .header(header::AUTHORIZATION, basic("admin", "pw"))
                    .body(Body::empty())
                    .unwrap()
            )
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn create_then_conflict_then_bad_yaml() {
    let app = app().await;
    let (r, body) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("dev"), DOC).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
    let (r, body) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("admin"), DOC).await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "{body}");
    assert_eq!(body["status"], "error");
    assert!(body["message"].as_str().unwrap().contains("orders"), "{body}");
    let (r, body) = send(
        &app,
        Method::POST,
        "/api/management/v1/rest-apis",
        Some("admin"),
        "a: [",
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("Failed to parse configuration"),
        "{body}"
    );
}

#[tokio::test]
async fn legacy_routes_answer_with_deprecation_headers() {
    let app = app().await;
    let (r, body) = send(&app, Method::GET, "/rest-apis", Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(body["status"], "success");
    assert_eq!(r.headers()["deprecation"], "true");
    assert_eq!(
        r.headers()["link"],
        "</api/management/v1/rest-apis>; rel=\"successor-version\""
    );
    assert_eq!(
        r.headers()["warning"],
        "299 - \"Deprecated API: migrate to /api/management/v1 prefix\""
    );
    let (r, _) = send(&app, Method::GET, "/api/management/v1/rest-apis", Some("admin"), "").await;
    assert!(
        r.headers().get("deprecation").is_none(),
        "the prefixed form is not deprecated"
    );
    let (r, _) = send(&app, Method::GET, "/rest-apis", None, "").await;
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "legacy routes are still authenticated"
    );
    let (r, _) = send(&app, Method::GET, "/rest-apis/nope/api-keys", Some("consumer"), "").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.headers()["link"],
        "</api/management/v1/rest-apis/nope/api-keys>; rel=\"successor-version\""
    );
}

#[tokio::test]
async fn with_auth_off_everyone_is_an_admin() {
    let p = parts().await;
    let (auth, _) = Authenticator::with_admin_password(false, vec![], &p.db, &std::env::temp_dir(), None).unwrap();
    let app = router(AppState {
        app: p.app,
        auth: Arc::new(auth),
        max_body: 1024,
        http_port: 8080,
        public_url: None,
        replicas: None,
    });
    let (r, _) = send(&app, Method::GET, "/api/management/v1/rest-apis", None, "").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue #12: a body nested 100,000 deep, or a small alias bomb, is a 400 from the parser's bounds
/// (not a hung worker), and the API answers the next request; nothing is stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_bodies_are_refused_by_the_parser_bounds() {
    let app = app().await;
    let n = 100_000;
    let deep = format!("a: {}{}", "{a: ".repeat(n), "}".repeat(n));
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let p = i - 1;
        let refs = vec![format!("*a{p}"); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    for (what, body) in [("deep", deep.as_str()), ("alias bomb", bomb.as_str())] {
        let started = std::time::Instant::now();
        let (r, json) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("admin"), body).await;
        // Printed, not asserted: wall-clock limits do not belong in tests on shared machines.
        println!("{what}: {} in {:?}", r.status(), started.elapsed());
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{what}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(message.contains("failed to parse YAML"), "{what}: {message}");
        assert!(
            message.contains("budget") || message.contains("limit"),
            "{what}: {message}"
        );
    }
    let (r, json) = send(&app, Method::GET, "/api/management/v1/rest-apis", Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(json["count"], 0, "{json}");
}

/// Issue #13: another user's DELETE of a key answers as for an unknown key and changes nothing; the
/// creator (here an admin) still holds it, and can revoke it.
#[tokio::test]
async fn revoking_someone_elses_key_changes_nothing_and_reveals_nothing() {
    let app = app().await;
    let (r, _) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("admin"), DOC).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let keys = "/api/management/v1/rest-apis/orders/api-keys";
    let (r, body) = send(&app, Method::POST, keys, Some("admin"), "{\"name\": \"key-one\"}").await;
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
    let (theirs, unknown) = (format!("{keys}/key-one"), format!("{keys}/no-such-key"));
    let (r1, b1) = send(&app, Method::DELETE, &theirs, Some("consumer"), "").await;
    let (r2, b2) = send(&app, Method::DELETE, &unknown, Some("consumer"), "").await;
    assert_eq!((r1.status(), &b1), (r2.status(), &b2), "the same answer either way");
    let (_, listed) = send(&app, Method::GET, keys, Some("admin"), "").await;
    assert_eq!(listed["totalCount"], 1, "still there: {listed}");
    let (r, _) = send(&app, Method::DELETE, &theirs, Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    let (_, listed) = send(&app, Method::GET, keys, Some("admin"), "").await;
    assert_eq!(listed["totalCount"], 0, "{listed}");
}

async fn boom() -> &'static str {
    panic!("a panic that names secret-value-123");
}

/// Issue #13: a handler that panics answers a 500 that names nothing from the panic, and the same
/// router serves the next request.
#[tokio::test]
async fn a_panicking_handler_answers_500_and_the_server_carries_on() {
    let p = parts().await;
    let state = AppState {
        app: p.app,
        auth: p.auth,
        max_body: 1024,
        http_port: 8080,
        public_url: None,
        replicas: None,
    };
    let routes = Router::new()
        .route("/rest-apis/boom", get(boom))
        .route("/rest-apis", get(rest_apis::list));
    let app = finish(routes, state);
    let (r, body) = send(
        &app,
        Method::GET,
        "/api/management/v1/rest-apis/boom",
        Some("admin"),
        "",
    )
    .await;
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        body,
        serde_json::json!({"status": "error", "message": "internal server error"})
    );
    let (r, _) = send(&app, Method::GET, "/api/management/v1/rest-apis", Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// Issue #13: an expiry past the ten-year cap is a 400 naming the field (it used to be stored and then
/// panic every listing of the API's keys); up to the cap is fine, and the listing keeps working.
#[tokio::test]
async fn an_expiry_past_ten_years_is_refused_and_the_listing_keeps_working() {
    let app = app().await;
    let (r, _) = send(&app, Method::POST, "/api/management/v1/rest-apis", Some("admin"), DOC).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let keys = "/api/management/v1/rest-apis/orders/api-keys";
    let huge = r#"{"name": "far", "expiresIn": {"unit": "seconds", "duration": 300000000000}}"#;
    let (r, body) = send(&app, Method::POST, keys, Some("admin"), huge).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "expiresIn.duration", "{body}");
    let overflow = r#"{"name": "far", "expiresIn": {"unit": "months", "duration": 18446744073709551615}}"#;
    let (r, body) = send(&app, Method::POST, keys, Some("admin"), overflow).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    let at = r#"{"name": "far", "expiresAt": "9999-12-31T23:59:59Z"}"#;
    let (r, body) = send(&app, Method::POST, keys, Some("admin"), at).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["errors"][0]["field"], "expiresAt", "{body}");
    let ok = r#"{"name": "near", "expiresIn": {"unit": "days", "duration": 3650}}"#;
    let (r, body) = send(&app, Method::POST, keys, Some("admin"), ok).await;
    assert_eq!(r.status(), StatusCode::CREATED, "{body}");
    let (r, listed) = send(&app, Method::GET, keys, Some("admin"), "").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(listed["totalCount"], 1, "{listed}");
    assert!(listed["apiKeys"][0]["expiresAt"].is_string(), "{listed}");
}
