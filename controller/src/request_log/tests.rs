//! The request log of the real management and admin routers: method, route template, status and
//! latency; never the path as sent, its query, a credential or a body.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, header};
use tower::ServiceExt;

use crate::api::tests::{basic, parts};
use crate::api::{AppState, router};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn each_request_is_logged_by_route_template_without_credentials_or_values() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("tollgate::request=info")
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let p = parts().await;
    let app = router(AppState {
        app: p.app,
        auth: p.auth,
        max_body: 1024,
        http_port: 8080,
        public_url: None,
        replicas: None,
    });
    let send = |method: &str, uri: &str, password: &str, body: &str| {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::AUTHORIZATION, basic("admin", password))
            .header(header::CONTENT_TYPE, "application/yaml")
            .body(Body::from(body.to_string()))
            .unwrap();
        app.clone().oneshot(req)
    };
    let r = send(
        "GET",
        "/api/management/v1/rest-apis/secret-handle?token=query-value-1",
        "pw",
        "",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 404);
    let r = send(
        "PUT",
        "/api/management/v1/rest-apis/x",
        "wrong-password-1",
        "body-value-1",
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 401);
    let r = send("BREW", "/nowhere?q=query-value-2", "pw", "").await.unwrap();
    assert!(r.status().is_client_error());

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 3, "{log}");
    assert!(
        lines[0].contains("method=\"GET\"")
            && lines[0].contains("route=\"/api/management/v1/rest-apis/{handle}\"")
            && lines[0].contains("status=404")
            && lines[0].contains("latency_ms="),
        "{log}"
    );
    assert!(
        lines[1].contains("method=\"PUT\"") && lines[1].contains("status=401"),
        "{log}"
    );
    assert!(
        lines[2].contains("method=\"OTHER\"") && lines[2].contains("route=\"<no route>\""),
        "{log}"
    );
    for secret in [
        "secret-handle",
        "query-value",
        "wrong-password-1",
        "body-value-1",
        "Basic",
        "BREW",
        "nowhere",
    ] {
        assert!(!log.contains(secret), "{secret} logged:\n{log}");
    }
}
