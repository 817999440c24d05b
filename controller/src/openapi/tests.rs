//! The document against the real routers: every route they serve (prefixed and legacy) is
//! documented with its methods and nothing documented is unrouted; the README's request bodies
//! validate against the documented schemas; the document is served without credentials.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Router;
use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::admin::{self, AdminState};
use crate::api::tests::{parts, send};
use crate::api::{self, AppState};

const MANAGEMENT: &str = "/api/management/v1";
const ADMIN: &str = "/api/admin/v1";

/// Every method a route could be given; HEAD follows GET in axum and is not documented apart.
const METHODS: [Method; 6] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

async fn management() -> Router {
    let p = parts().await;
    api::router(AppState {
        app: p.app,
        auth: p.auth,
        max_body: 1024 * 1024,
        http_port: 8080,
        public_url: None,
        replicas: None,
    })
}

async fn admin() -> Router {
    let p = parts().await;
    admin::router(AdminState {
        app: p.app,
        auth: p.auth,
        status: Arc::new(tollgate_xds::StatusRegistry::default()),
        link: Arc::new(crate::platform::LinkStatus::default()),
        xds: None,
    })
}

fn doc() -> Value {
    serde_json::to_value(super::document()).unwrap()
}

/// The path templates a router holds. axum has no route listing, but its `Debug` output names
/// every path of the path router (`paths: {RouteId(0): "/x", ...}`); the fallback router is left
/// out. Should axum change that output, the completeness test fails (it finds nothing, or not
/// the documented paths), never passes by accident.
fn routed_paths(router: &Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let start = debug.find("path_router").expect("a path router");
    let end = debug.find("fallback_router").expect("a fallback router");
    let section = &debug[start..end];
    let from = section.find("paths: {").expect("the node's paths") + "paths: {".len();
    let mut paths = BTreeSet::new();
    let (mut in_string, mut current) = (false, String::new());
    for c in section[from..].chars() {
        match (in_string, c) {
            (false, '}') => break,
            (false, '"') => in_string = true,
            (true, '"') => {
                in_string = false;
                paths.insert(std::mem::take(&mut current));
            }
            (true, c) => current.push(c),
            _ => {}
        }
    }
    paths
}

/// The methods a path template answers to, asked as an admin (so authorization passes and an
/// unrouted method is the router's 405). Parameters are filled with a name nothing has.
async fn routed_methods(router: &Router, template: &str) -> Vec<Method> {
    let path: String = template
        .split('/')
        .map(|s| if s.starts_with('{') { "no-such-thing" } else { s })
        .collect::<Vec<_>>()
        .join("/");
    let mut methods = Vec::new();
    for m in METHODS {
        let (r, _) = send(router, m.clone(), &path, Some("admin"), "").await;
        if r.status() != StatusCode::METHOD_NOT_ALLOWED {
            methods.push(m);
        }
    }
    methods
}

/// `(METHOD, full path)` of every operation the document describes.
fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m.as_str().to_lowercase()).is_some() {
                ops.insert((m.to_string(), path.clone()));
            }
        }
    }
    ops
}

/// `(METHOD, full path)` of every route the two routers serve; a legacy (unprefixed) route counts
/// as its prefixed successor, which the document describes.
async fn served() -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (router, base) in [(management().await, MANAGEMENT), (admin().await, ADMIN)] {
        let paths = routed_paths(&router);
        assert!(paths.len() > 2, "found no routes in {base}: {paths:?}");
        for p in paths {
            let full = if p.starts_with(base) {
                p.clone()
            } else {
                format!("{base}{p}")
            };
            for m in routed_methods(&router, &p).await {
                ops.insert((m.to_string(), full.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_routed_method_and_path_is_documented_and_nothing_else() {
    let (served, documented) = (served().await, documented(&doc()));
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "routed but not in the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "in the OpenAPI document but not routed: {unrouted:?}"
    );
    // The comparison saw the real thing: every resource and the admin views.
    for (m, p) in [
        ("POST", "/api/management/v1/rest-apis"),
        ("DELETE", "/api/management/v1/rest-apis/{handle}/api-keys/{name}"),
        ("POST", "/api/management/v1/subscriptions/{id}/regenerate-token"),
        ("PUT", "/api/management/v1/subscription-plans/{id}"),
        ("GET", "/api/management/v1/openapi.json"),
        ("GET", "/api/admin/v1/ready"),
        ("GET", "/api/admin/v1/xds_sync_status"),
    ] {
        assert!(
            served.contains(&(m.to_string(), p.to_string())),
            "{m} {p} not found routed"
        );
    }
}

#[tokio::test]
async fn the_legacy_routes_serve_the_same_operations() {
    let router = management().await;
    let paths = routed_paths(&router);
    for p in paths.iter().filter(|p| !p.starts_with(MANAGEMENT)) {
        let prefixed = format!("{MANAGEMENT}{p}");
        assert!(paths.contains(&prefixed), "legacy {p} without its successor");
        assert_eq!(
            routed_methods(&router, p).await,
            routed_methods(&router, &prefixed).await,
            "{p}"
        );
    }
}

#[tokio::test]
async fn the_document_is_served_without_credentials_as_openapi_3_1() {
    let router = management().await;
    for path in ["/api/management/v1/openapi.json", "/openapi.json"] {
        let (r, body) = send(&router, Method::GET, path, None, "").await;
        assert_eq!(r.status(), StatusCode::OK, "{path}: {body}");
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json", "{path}");
        let version = body["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "{path}: openapi {version}");
        assert_eq!(body, doc(), "{path} serves the generated document");
    }
    // Only that path is opened: its neighbours still want credentials.
    let (r, _) = send(&router, Method::GET, "/api/management/v1/rest-apis", None, "").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn security_roles_and_error_shapes_are_documented() {
    let doc = doc();
    let basic = &doc["components"]["securitySchemes"][super::BASIC];
    assert_eq!(basic["type"], "http");
    assert_eq!(basic["scheme"], "basic");
    let create = &doc["paths"]["/api/management/v1/rest-apis"]["post"];
    assert_eq!(create["security"], json!([{super::BASIC: []}]));
    assert!(
        create["description"]
            .as_str()
            .unwrap()
            .contains("Roles: admin, developer")
    );
    for code in ["201", "400", "401", "403", "409"] {
        assert!(
            create["responses"].get(code).is_some(),
            "POST /rest-apis documents {code}"
        );
    }
    // Someone else's key (the handler's 403) or a user without the role (the role check's).
    let regenerate = &doc["paths"]["/api/management/v1/rest-apis/{handle}/api-keys/{name}/regenerate"];
    let either = &regenerate["post"]["responses"]["403"]["content"]["application/json"]["schema"]["oneOf"];
    assert_eq!(either.as_array().map(Vec::len), Some(2), "{either}");
    let delete = &doc["paths"]["/api/management/v1/subscription-plans/{id}"]["delete"];
    for code in ["204", "404", "409"] {
        assert!(delete["responses"].get(code).is_some(), "DELETE plan documents {code}");
    }
    for (path, method) in [
        ("/api/management/v1/openapi.json", "get"),
        ("/api/admin/v1/health", "get"),
        ("/api/admin/v1/ready", "get"),
    ] {
        let op = &doc["paths"][path][method];
        assert_eq!(op["security"], json!([{}]), "{path} needs no credentials");
        assert!(op["responses"].get("401").is_none(), "{path}");
    }
    assert_eq!(doc["servers"][0]["variables"]["port"]["default"], "9090");
    let ready = &doc["paths"]["/api/admin/v1/ready"];
    assert_eq!(
        ready["servers"][0]["variables"]["port"]["default"], "9092",
        "the admin port"
    );
    let error = &doc["components"]["schemas"]["ErrorBody"]["properties"];
    for field in ["status", "message", "errors"] {
        assert!(error.get(field).is_some(), "ErrorBody.{field}");
    }
    let field_error = &doc["components"]["schemas"]["FieldError"];
    assert_eq!(field_error["required"], json!(["field", "message"]));
}

#[test]
fn operation_ids_are_unique_and_optional_bodies_are_optional() {
    let doc = doc();
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let (method, op) = (m.as_str(), &item[m.as_str().to_lowercase()]);
            if op.is_null() {
                continue;
            }
            let id = op["operationId"].as_str().unwrap_or_default().to_string();
            assert!(
                ids.insert(id.clone()),
                "{method} {path}: operationId {id:?} is not unique"
            );
        }
    }
    // An empty body is `{}` there: a generated key, no grace period.
    for (path, method) in [
        ("/api/management/v1/rest-apis/{handle}/api-keys", "post"),
        (
            "/api/management/v1/rest-apis/{handle}/api-keys/{name}/regenerate",
            "post",
        ),
        ("/api/management/v1/subscriptions/{id}/regenerate-token", "post"),
    ] {
        let body = &doc["paths"][path][method]["requestBody"];
        assert!(body.is_object(), "{path}");
        assert_ne!(body["required"], json!(true), "{method} {path}: the body is optional");
    }
    let plan = &doc["paths"]["/api/management/v1/subscription-plans"]["post"]["requestBody"];
    assert_eq!(plan["required"], json!(true));
}

mod readme;
