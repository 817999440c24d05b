//! Reference §8.2 (api-management) and §8.3 (api-error-responses), plus authentication and limits.

use reqwest::{Method, StatusCode};
use tollgate_testkit::Echo;

use crate::api_yaml;
use crate::stack::{Stack, send};

fn upstream(echo: &Echo) -> String {
    format!("http://127.0.0.1:{}", echo.port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_filters_and_not_found() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let (status, list) = send(s.mgmt(Method::GET, "/rest-apis")).await;
    assert_eq!(
        (status.as_u16(), list["status"].as_str(), list["count"].as_u64()),
        (200, Some("success"), Some(0))
    );
    for path in ["/rest-apis/nope", "/rest-apis/invalid@id%23format"] {
        let (status, body) = send(s.mgmt(Method::GET, path)).await;
        assert_eq!(
            (status.as_u16(), body["status"].as_str()),
            (404, Some("error")),
            "{path}"
        );
    }
    let (status, _) = send(s.mgmt(Method::DELETE, "/rest-apis/nope")).await;
    assert_eq!(status, 404);
    let doc = api_yaml(
        "crud-api",
        "/api/$version",
        &upstream(&echo),
        "    - {method: GET, path: /data}\n    - {method: GET, path: \"/users/{id}\"}\n",
    )
    .replace("displayName: crud-api", "displayName: UniqueFilterName123")
    .replace("version: v1.0", "version: v99.88.77");
    let (status, _) = send(
        s.mgmt(Method::PUT, "/rest-apis/crud-api")
            .header("content-type", "application/yaml")
            .body(doc.clone()),
    )
    .await;
    assert_eq!(status, 404, "PUT of an unknown handle");
    assert_eq!(s.deploy(&doc).await.0, StatusCode::CREATED);
    assert_eq!(s.deploy(&doc).await.0, StatusCode::CONFLICT, "same handle twice");
    s.wait_status("/api/v99.88.77/data", None, 200).await;
    let (_, got) = send(s.mgmt(Method::GET, "/rest-apis/crud-api")).await;
    assert_eq!(
        got["spec"]["context"], "/api/$version",
        "GET returns the source document"
    );
    let (_, list) = send(s.mgmt(Method::GET, "/rest-apis?limit=10&offset=0")).await;
    let text = list.to_string();
    assert!(
        text.contains("/api/v99.88.77") && !text.contains("/api/$version"),
        "list resolves $version"
    );
    for q in [
        "displayName=UniqueFilterName123",
        "version=v99.88.77",
        "context=/api/v99.88.77",
        "status=deployed",
    ] {
        let (_, l) = send(s.mgmt(Method::GET, &format!("/rest-apis?{q}"))).await;
        assert_eq!(l["count"], 1, "{q}");
    }
    let (_, l) = send(s.mgmt(Method::GET, "/rest-apis?displayName=other")).await;
    assert_eq!(l["count"], 0);

    // Update: a new version; then undeploy keeps the API but removes its routes.
    let v2 = doc.replace("version: v99.88.77", "version: v2.0");
    let (status, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/crud-api")
            .header("content-type", "application/yaml")
            .body(v2.clone()),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["spec"]["version"], "v2.0");
    s.wait_status("/api/v2.0/data", None, 200).await;
    let undeployed = format!("{v2}  deploymentState: undeployed\n");
    let (status, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/crud-api")
            .header("content-type", "application/yaml")
            .body(undeployed),
    )
    .await;
    assert_eq!(
        (status.as_u16(), body["status"]["state"].as_str()),
        (200, Some("undeployed"))
    );
    s.wait_status("/api/v2.0/data", None, 404).await;
    let (_, l) = send(s.mgmt(Method::GET, "/rest-apis?status=undeployed")).await;
    assert_eq!(l["count"], 1);

    let mismatch = v2.replace("name: crud-api", "name: other-name");
    let (status, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/crud-api")
            .header("content-type", "application/yaml")
            .body(mismatch),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["message"].as_str().unwrap().contains("mismatch"));

    let (status, body) = send(s.mgmt(Method::DELETE, "/rest-apis/crud-api")).await;
    assert_eq!(
        (status.as_u16(), body["message"].as_str()),
        (200, Some("RestAPI deleted successfully"))
    );
    assert_eq!(send(s.mgmt(Method::DELETE, "/rest-apis/crud-api")).await.0, 404);
    assert_eq!(send(s.mgmt(Method::GET, "/rest-apis/crud-api")).await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validation_errors_carry_field_paths_and_change_nothing() {
    let echo = Echo::start("sample").await;
    let s = Stack::start().await;
    let url = upstream(&echo);
    let no_context = format!(
        "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata: {{name: bad}}\nspec:\n  displayName: bad\n  version: v1.0\n  upstream: {{main: {{url: \"{url}\"}}}}\n  operations: []\n"
    );
    let (status, body) = s.deploy(&no_context).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "Configuration validation failed");
    let errors = body["errors"].as_array().unwrap();
    let has = |field: &str, msg: &str| {
        errors
            .iter()
            .any(|e| e["field"] == field && e["message"].as_str().unwrap().contains(msg))
    };
    assert!(has("spec.context", "Context is required"), "{body}");
    assert!(has("spec.operations", "At least one operation is required"), "{body}");

    let ok = api_yaml("good", "/good", &url, "    - {method: GET, path: /x}\n");
    let cases = [
        (ok.replace("  name: good\n", "  labels: {a: b}\n"), "metadata.name", "Metadata name is required"),
        (ok.replace("version: v1.0", "version: v1.0.0-beta"), "spec.version", "semantic versioning pattern"),
        (
            ok.replace("  operations:\n", "  policies:\n    - {name: policy-does-not-exist, version: v1}\n  operations:\n"),
            "spec.policies[0]",
            "not found in loaded policy definitions",
        ),
        (
            ok.replace("  operations:\n", "  policies:\n    - name: respond\n      version: v1\n      params: {statusCode: \"abc\"}\n  operations:\n"),
            "spec.policies[0].params.statusCode",
            "Invalid type",
        ),
        (ok.replace("method: GET", "method: FETCH"), "spec.operations[0]", "Invalid HTTP method"),
        (ok.replace("path: /x", "path: /_gateway-health/x").replace("context: /good", "context: /"), "spec.operations[0]", "reserved"),
    ];
    for (doc, field, msg) in cases {
        let (status, body) = s.deploy(&doc).await;
        assert_eq!(status, 400, "{field}: {body}");
        let errors = body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("errors for {field}: {body}"));
        assert!(
            errors.iter().any(
                |e| e["field"].as_str().unwrap().starts_with(field) && e["message"].as_str().unwrap().contains(msg)
            ),
            "{field} / {msg}: {body}"
        );
    }
    // Malformed bodies.
    let (status, body) = send(
        s.mgmt(Method::POST, "/rest-apis")
            .header("content-type", "application/yaml")
            .body("{ invalid json content here"),
    )
    .await;
    assert_eq!((status.as_u16(), body["status"].as_str()), (400, Some("error")));
    assert_eq!(s.deploy(&ok).await.0, StatusCode::CREATED);
    let (status, body) = send(
        s.mgmt(Method::PUT, "/rest-apis/good")
            .header("content-type", "application/json")
            .body("{ this is not valid json"),
    )
    .await;
    assert_eq!(status, 400);
    let msg = body["message"].as_str().unwrap();
    assert!(
        msg.contains("Failed to parse configuration:") && msg.contains("failed to parse JSON"),
        "{msg}"
    );
    let (_, list) = send(s.mgmt(Method::GET, "/rest-apis")).await;
    assert_eq!(list["count"], 1, "only the valid API was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_is_required_and_bodies_are_bounded() {
    let s = Stack::with(|c| c.server.max_body_bytes = 4096).await;
    let url = format!("http://{}/api/management/v1/rest-apis", s.running().management);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let r = s
        .http
        .get(&url)
        .basic_auth("admin", Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let big = "x".repeat(10_000);
    let (status, body) = send(
        s.mgmt(Method::POST, "/rest-apis")
            .header("content-type", "application/yaml")
            .body(big),
    )
    .await;
    assert_eq!((status.as_u16(), body["status"].as_str()), (413, Some("error")));
    let (status, _) = send(s.mgmt(Method::GET, "/no-such-route")).await;
    assert_eq!(status, 404);
    // The admin API: health is open, the rest needs admin.
    let health = format!("http://{}/api/admin/v1/health", s.running().admin);
    assert_eq!(s.http.get(&health).send().await.unwrap().status(), 200);
    let dump = format!("http://{}/api/admin/v1/config_dump", s.running().admin);
    assert_eq!(s.http.get(&dump).send().await.unwrap().status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unprefixed_legacy_routes_work_and_say_they_are_deprecated() {
    let s = Stack::start().await;
    let legacy = format!("http://{}/rest-apis", s.running().management);
    assert_eq!(
        s.http.get(&legacy).send().await.unwrap().status(),
        401,
        "still authenticated"
    );
    let r = s
        .http
        .get(&legacy)
        .basic_auth("admin", Some("admin"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["deprecation"], "true");
    assert_eq!(
        r.headers()["link"],
        "</api/management/v1/rest-apis>; rel=\"successor-version\""
    );
    assert!(r.headers()["warning"].to_str().unwrap().contains("/api/management/v1"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "success");
    // The prefixed form carries no deprecation.
    let r = s.mgmt(Method::GET, "/rest-apis").send().await.unwrap();
    assert!(r.headers().get("deprecation").is_none());
    // Admin too.
    let r = s
        .http
        .get(format!("http://{}/health", s.running().admin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["deprecation"], "true");
}

/// The running controller serves its OpenAPI document on the management port to anyone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_is_served_without_credentials() {
    let s = Stack::start().await;
    let url = format!("http://{}/api/management/v1/openapi.json", s.running().management);
    let r = s.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: serde_json::Value = r.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/api/management/v1/rest-apis"]["post"].is_object());
    assert!(doc["paths"]["/api/admin/v1/xds_sync_status"]["get"].is_object());
}
