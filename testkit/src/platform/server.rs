//! The HTTPS listener of the fake platform-api: TLS accept, HTTP/1.1 with upgrades, routing of the
//! gateway WebSocket and the Gateway Internal REST API.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinHandle};
use tokio::time::{Instant, Interval};

use super::{Cmd, KeyListing, Refusal, Request, Shared, wire};

const WS_PATH: &str = "/api/internal/v1/ws/gateways/connect";
const REST_PREFIX: &str = "/api/internal/v1/";
const CAPACITY_FRAME: &str = r#"{"type":"error","message":"maximum connection limit reached (1000)"}"#;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`: (certificate PEM, acceptor).
pub(crate) fn tls_identity() -> (String, tokio_rustls::TlsAcceptor) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    let cert_der: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der()));
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert_der], key)
        .unwrap();
    (certified.cert.pem(), tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A rustls client configuration trusting `ca_pem`.
pub(crate) fn client_config(ca_pem: &str) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// Binds `127.0.0.1:port` (0 = ephemeral) with `SO_REUSEADDR`, so a stopped fake can come back on
/// the same port at once.
pub(crate) fn bind(port: u16) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_reuseaddr(true).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    socket
        .bind(addr)
        .unwrap_or_else(|e| panic!("fake platform-api: cannot bind {addr}: {e}"));
    socket.listen(1024).unwrap()
}

/// The accept loop and the HTTP connection tasks it spawned.
pub(crate) struct Running {
    accept: JoinHandle<()>,
    conns: Arc<Mutex<Vec<AbortHandle>>>,
}

impl Running {
    fn conn_handles(&self) -> Vec<AbortHandle> {
        std::mem::take(&mut *self.conns.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Stops accepting and drops every HTTP connection (synchronous; the listener closes once the
    /// runtime drops the aborted task).
    pub(crate) fn abort(self) {
        self.accept.abort();
        for handle in self.conn_handles() {
            handle.abort();
        }
    }

    /// Stops accepting, waits until the listener is closed, drops every HTTP connection.
    pub(crate) async fn shutdown(mut self) {
        self.accept.abort();
        let _ = (&mut self.accept).await;
        for handle in self.conn_handles() {
            handle.abort();
        }
    }
}

pub(crate) fn spawn(shared: Arc<Shared>, listener: TcpListener) -> Running {
    let conns: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
    let accept = tokio::spawn(accept_loop(shared, listener, conns.clone()));
    Running { accept, conns }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, conns: Arc<Mutex<Vec<AbortHandle>>>) {
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let task = tokio::spawn(serve_tcp(shared.clone(), tcp));
        let mut conns = conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.retain(|h| !h.is_finished());
        conns.push(task.abort_handle());
    }
}

async fn serve_tcp(shared: Arc<Shared>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let Ok(Ok(tls)) = tokio::time::timeout(Duration::from_secs(10), shared.acceptor.accept(tcp)).await else {
        return;
    };
    let service = hyper::service::service_fn(move |req| {
        let shared = shared.clone();
        async move { Ok::<_, Infallible>(handle(shared, req).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .with_upgrades()
        .await;
}

// -------------------------------------------------------------------------------------------------
// Responses

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut text = body.to_string();
    text.push('\n');
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn status_of(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Gateway Internal API error shape `{code, message, description?}`.
fn internal_error(code: u16, description: &str) -> Response {
    let status = status_of(code);
    let mut body = json!({
        "code": status.as_u16(),
        "message": status.canonical_reason().unwrap_or(""),
    });
    if !description.is_empty() {
        body["description"] = Value::String(description.to_owned());
    }
    json_response(status, &body)
}

/// Description used when a test forces a status onto an endpoint.
fn forced_description(code: u16) -> &'static str {
    match code {
        400 => "Invalid request",
        401 => "Invalid or expired API key",
        403 => "Access denied",
        404 => "Resource not found",
        409 => "The request conflicts with the current state of the resource.",
        500 => "An unexpected error occurred. Please try again later.",
        503 => "Service temporarily unavailable",
        _ => "",
    }
}

/// Public (user API / WebSocket upgrade) error shape `{status, code, message}`.
fn public_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({"status": "error", "code": code, "message": message}))
}

/// Go `http.ServeMux` not-found answer.
fn mux_not_found() -> Response {
    let mut resp = Response::new(Body::from("404 page not found\n"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    resp
}

fn attachment(content_type: &'static str, filename: &str, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    let headers = resp.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")).unwrap(),
    );
    resp
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

// -------------------------------------------------------------------------------------------------
// Routing

async fn handle(shared: Arc<Shared>, req: hyper::Request<Incoming>) -> Response {
    let (mut parts, body) = req.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().map(str::to_owned);
    shared.state().requests.push(Request {
        method: parts.method.to_string(),
        path: parts
            .uri
            .path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.to_string()),
        accept: header_str(&parts.headers, "accept"),
        api_key: header_str(&parts.headers, "api-key"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });

    if path == WS_PATH {
        if parts.method != Method::GET {
            return method_not_allowed();
        }
        return connect(shared, &mut parts).await;
    }
    if path == "/health" {
        if parts.method != Method::GET && parts.method != Method::HEAD {
            return method_not_allowed();
        }
        return json_response(StatusCode::OK, &json!({"status": "ok"}));
    }
    match path.strip_prefix(REST_PREFIX) {
        Some(rest) => rest_api(&shared, &parts.method, rest, query.as_deref(), &parts.headers, &body),
        None => mux_not_found(),
    }
}

fn method_not_allowed() -> Response {
    let mut resp = Response::new(Body::from("Method Not Allowed\n"));
    *resp.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// Percent-decodes a query component the way Go's `url.ParseQuery` does (`+` is a space).
fn query_unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// First value of query parameter `name` (empty when absent), like Go's `Query().Get`.
fn query_param(query: Option<&str>, name: &str) -> String {
    query
        .unwrap_or_default()
        .split(['&', ';'])
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (query_unescape(k)? == name).then(|| query_unescape(v)).flatten()
        })
        .next()
        .unwrap_or_default()
}

fn rest_api(
    shared: &Shared,
    method: &Method,
    rest: &str,
    query: Option<&str>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let segments: Vec<&str> = rest.split('/').collect();
    let get = method == Method::GET;
    let post = method == Method::POST;
    let known = match segments.as_slice() {
        ["apis", id]
        | ["llm-providers", id]
        | ["llm-proxies", id]
        | ["mcp-proxies", id]
        | ["websub-apis", id]
        | ["webbroker-apis", id] => get && !id.is_empty(),
        ["apis", id, "subscriptions"] => get && !id.is_empty(),
        ["deployments"] | ["subscription-plans"] | ["secrets"] => get,
        ["secrets", h, "value"] => get && !h.is_empty(),
        ["deployments", "fetch-batch"] | ["artifacts", "exists"] => post,
        ["gateways", id, "manifest"] => post && !id.is_empty(),
        _ => false,
    };
    if !known {
        return mux_not_found();
    }
    if let Some(code) = shared.state().rest_status {
        return internal_error(code, forced_description(code));
    }
    if let Some(to) = shared.state().rest_redirect.clone() {
        let mut resp = internal_error(307, "");
        if let Ok(v) = HeaderValue::from_str(&format!("{to}/{}", segments.join("/"))) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    }
    match header_str(headers, "api-key").filter(|k| !k.is_empty()) {
        None => return internal_error(401, "API key is required. Provide 'api-key' header."),
        Some(key) if key != shared.token => return internal_error(401, "Invalid or expired API key"),
        Some(_) => {}
    }
    match segments.as_slice() {
        ["apis", "api-keys"] => api_keys(shared, query),
        [
            "llm-providers" | "llm-proxies" | "websub-apis" | "webbroker-apis",
            "api-keys",
        ] => json_response(StatusCode::OK, &json!([])),
        ["apis", id] => fetch_api(shared, id),
        ["llm-providers", _] => internal_error(404, "No active deployment found for this LLM provider on this gateway"),
        ["llm-proxies", _] => internal_error(404, "No active deployment found for this LLM proxy on this gateway"),
        ["mcp-proxies", _] => internal_error(404, "MCP proxy not found"),
        ["websub-apis", _] => internal_error(404, "WebSub API not found"),
        ["webbroker-apis", _] => internal_error(404, "WebBroker API not found"),
        ["apis", id, "subscriptions"] => subscriptions(shared, id),
        ["deployments"] => deployments(shared, query),
        ["deployments", "fetch-batch"] => fetch_batch(shared, headers, body),
        ["artifacts", "exists"] => artifacts_exist(shared, body),
        ["subscription-plans"] => json_response(StatusCode::OK, &Value::Array(shared.state().plans.clone())),
        ["gateways", _, "manifest"] => manifest(shared, body),
        ["secrets"] => secrets(query),
        ["secrets", h, "value"] => match shared.state().secrets.get(*h) {
            Some(v) => json_response(StatusCode::OK, &json!({"value": v})),
            None => internal_error(404, "Secret not found"),
        },
        _ => mux_not_found(),
    }
}

// -------------------------------------------------------------------------------------------------
// REST endpoints

/// §3.1: the current REST API artifact as a ZIP with one `api-{id}.yaml`.
fn fetch_api(shared: &Shared, id: &str) -> Response {
    let st = shared.state();
    if let Some(&code) = st.fetch_status.get(id) {
        let description = if code == 404 {
            "No active deployment found for this API on this gateway"
        } else {
            forced_description(code)
        };
        return internal_error(code, description);
    }
    let yaml = st
        .current
        .get(id)
        .filter(|c| c.deployed)
        .and_then(|c| st.deployments.get(&c.deployment_id))
        .map(|(_, yaml)| yaml.clone());
    drop(st);
    match yaml {
        Some(yaml) => attachment(
            "application/zip",
            &format!("api-{id}.zip"),
            wire::zip_single(&format!("api-{id}.yaml"), &yaml),
        ),
        None => internal_error(404, "No active deployment found for this API on this gateway"),
    }
}

/// §3.2: the desired-state list.
fn deployments(shared: &Shared, query: Option<&str>) -> Response {
    let since = query_param(query, "since");
    let since_nanos = if since.is_empty() {
        None
    } else {
        match wire::parse_rfc3339(&since) {
            Some(nanos) => Some(nanos),
            None => {
                return internal_error(
                    400,
                    "Invalid 'since' parameter. Expected ISO 8601 format (e.g., 2026-03-04T10:00:00Z)",
                );
            }
        }
    };
    let st = shared.state();
    let mut rows: Vec<(&String, &super::Current)> = st
        .current
        .iter()
        .filter(|(_, c)| since_nanos.is_none_or(|s| i128::from(c.performed_ms) * 1_000_000 > s))
        .collect();
    rows.sort_by(|a, b| b.1.performed_ms.cmp(&a.1.performed_ms).then_with(|| a.0.cmp(b.0)));
    let list: Vec<Value> = rows
        .into_iter()
        .map(|(api, c)| {
            json!({
                "artifactId": api,
                "deploymentId": c.deployment_id,
                "kind": "RestApi",
                "state": if c.deployed { "DEPLOYED" } else { "UNDEPLOYED" },
                "deployedAt": c.performed_at,
                "etag": wire::time_etag(&c.deployment_id, c.performed_ms),
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "deployments": list }))
}

fn parse_id_list(body: &Bytes, field: &str) -> Result<Vec<String>, String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("Invalid request body: {e}"))?;
    let obj = value
        .as_object()
        .ok_or_else(|| "Invalid request body: json: cannot unmarshal non-object into request".to_owned())?;
    match obj.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    format!("Invalid request body: json: cannot unmarshal {v} into {field} of type string")
                })
            })
            .collect(),
        Some(other) => Err(format!(
            "Invalid request body: json: cannot unmarshal {other} into {field} of type []string"
        )),
    }
}

/// §3.3: many artifacts as a gzip'd tar.
fn fetch_batch(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> Response {
    if header_str(headers, "accept").as_deref() != Some("application/x-tar+gzip") {
        return internal_error(406, "This endpoint only supports Accept: application/x-tar+gzip");
    }
    let ids = match parse_id_list(body, "deploymentIds") {
        Ok(ids) => ids,
        Err(description) => return internal_error(400, &description),
    };
    if ids.is_empty() {
        return internal_error(400, "At least one deployment ID is required");
    }
    let st = shared.state();
    let mut entries = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for id in ids {
        if !seen.insert(id.clone()) {
            continue;
        }
        if let Some((api, yaml)) = st.deployments.get(&id)
            && !st.fetch_status.contains_key(api)
        {
            entries.push((format!("{id}/api-{api}.yaml"), yaml.clone()));
        }
    }
    drop(st);
    let mtime = (wire::now_nanos() / 1_000_000_000) as u64;
    attachment(
        "application/x-tar+gzip",
        &format!("deployments-batch-{}.tar.gz", shared.gateway_id),
        wire::tar_gz(&entries, mtime),
    )
}

/// §3.4.
fn artifacts_exist(shared: &Shared, body: &Bytes) -> Response {
    let ids = match parse_id_list(body, "artifactIds") {
        Ok(ids) => ids,
        Err(description) => return internal_error(400, &description),
    };
    let st = shared.state();
    let list: Vec<Value> = ids
        .into_iter()
        .map(|id| {
            let exists = st.artifacts.contains(&id);
            json!({"artifactId": id, "exists": exists})
        })
        .collect();
    json_response(StatusCode::OK, &json!({ "artifacts": list }))
}

/// §3.5.
fn subscriptions(shared: &Shared, api_id: &str) -> Response {
    let st = shared.state();
    if !st.artifacts.contains(api_id) {
        return internal_error(404, "API not found");
    }
    if !st.current.contains_key(api_id) {
        return internal_error(403, "API is not associated with this gateway");
    }
    let list: Vec<Value> = st
        .subscriptions
        .iter()
        .filter(|s| s.get("apiId").and_then(Value::as_str) == Some(api_id))
        .cloned()
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

/// §3.7 for REST APIs: keys of APIs with a deployment row on this gateway, optionally by issuer.
fn api_keys(shared: &Shared, query: Option<&str>) -> Response {
    let issuer = query_param(query, "issuer");
    let st = shared.state();
    let list: Vec<Value> = st
        .keys
        .iter()
        .filter(|k| {
            k.get("artifactUuid")
                .and_then(Value::as_str)
                .is_some_and(|a| st.current.contains_key(a))
        })
        .filter(|k| issuer.is_empty() || k.get("issuer").and_then(Value::as_str) == Some(issuer.as_str()))
        .cloned()
        .collect();
    match st.key_listing {
        KeyListing::Whole => json_response(StatusCode::OK, &Value::Array(list)),
        KeyListing::Truncated(n) => json_response(StatusCode::OK, &Value::Array(list.into_iter().take(n).collect())),
        KeyListing::Paged(size) => {
            let number = |name: &str, default: usize| query_param(query, name).parse().unwrap_or(default);
            let (offset, limit) = (number("offset", 0), number("limit", size).clamp(1, size.max(1)));
            let total = list.len();
            let page: Vec<Value> = list.into_iter().skip(offset).take(limit).collect();
            let body = json!({
                "count": page.len(),
                "list": page,
                "pagination": {"total": total, "offset": offset, "limit": limit},
            });
            json_response(StatusCode::OK, &body)
        }
    }
}

/// §3.10.
fn manifest(shared: &Shared, body: &Bytes) -> Response {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.is_object() => {
            shared.state().manifests.push(value);
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
        Ok(_) => internal_error(400, "Invalid request body"),
        Err(e) => internal_error(400, &format!("Invalid request body: {e}")),
    }
}

/// §3.8: the list is empty (the values are served one by one, `GET /secrets/{handle}/value`).
fn secrets(query: Option<&str>) -> Response {
    let updated_after = query_param(query, "updatedAfter");
    if !updated_after.is_empty() && wire::parse_rfc3339(&updated_after).is_none() {
        return internal_error(400, "Invalid 'updatedAfter' parameter. Expected RFC 3339 format");
    }
    json_response(StatusCode::OK, &json!({"list": [], "count": 0}))
}

// -------------------------------------------------------------------------------------------------
// WebSocket

/// §2.1 processing order: rate limit, api-key, upgrade, registration (capacity), `connection.ack`.
async fn connect(shared: Arc<Shared>, parts: &mut http::request::Parts) -> Response {
    let (refusal, epoch) = {
        let st = shared.state();
        (st.refusal.clone(), st.epoch)
    };
    if refusal == Refusal::TooManyRequests {
        return public_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
            "Connection rate limit exceeded. Please try again later.",
        );
    }
    let key = header_str(&parts.headers, "api-key").unwrap_or_default();
    if key.is_empty() || key != shared.token || refusal == Refusal::Unauthorized {
        return public_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "Invalid or expired credentials.",
        );
    }
    let upgrade = match WebSocketUpgrade::from_request_parts(parts, &()).await {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let capacity = refusal == Refusal::Capacity;
    if refusal == Refusal::Silent {
        return upgrade.on_upgrade(|mut socket: WebSocket| async move {
            // Read (and discard) until the client closes; never acknowledge the connection.
            while let Some(Ok(_)) = socket.recv().await {}
        });
    }
    upgrade.on_upgrade(move |socket| run_connection(shared, socket, epoch, capacity))
}

fn close_frame() -> Message {
    Message::Close(Some(CloseFrame {
        code: 1000,
        reason: "normal closure".into(),
    }))
}

async fn next_tick(ticker: &mut Option<Interval>) {
    match ticker {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// After a close frame went out (or came in): let the close handshake finish, briefly.
async fn finish_close(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
}

fn record_frame(shared: &Shared, text: &str) {
    let parsed = serde_json::from_str::<Value>(text).ok();
    let mut st = shared.state();
    st.frames.push(text.to_owned());
    if let Some(frame) = parsed
        && frame.get("type").and_then(Value::as_str) == Some("deployment.ack")
    {
        st.acks.push(frame);
    }
}

async fn run_connection(shared: Arc<Shared>, mut socket: WebSocket, epoch: u64, capacity: bool) {
    if capacity {
        let _ = socket.send(Message::Text(CAPACITY_FRAME.into())).await;
        return; // dropping the socket drops TCP without a close frame
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (id, ping_every, pong_timeout) = {
        let mut st = shared.state();
        if st.epoch != epoch {
            return; // the fake was stopped while this upgrade was in flight
        }
        let id = st.next_conn;
        st.next_conn += 1;
        st.conns.insert(id, tx);
        (id, st.ping_every, st.pong_timeout)
    };
    let unregister = |shared: &Shared| {
        shared.state().conns.remove(&id);
    };
    let ack = json!({
        "type": "connection.ack",
        "gatewayId": shared.gateway_id,
        "connectionId": uuid::Uuid::new_v4().to_string(),
        "timestamp": wire::format_secs(wire::now_nanos()),
    });
    if socket.send(Message::Text(ack.to_string().into())).await.is_err() {
        unregister(&shared);
        return;
    }
    shared.state().total_connections += 1;

    let mut last_pong = Instant::now();
    let mut ticker = ping_every.map(|every| tokio::time::interval_at(Instant::now() + every, every));
    loop {
        tokio::select! {
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => record_frame(&shared, text.as_str()),
                Some(Ok(Message::Binary(data))) => record_frame(&shared, &String::from_utf8_lossy(&data)),
                Some(Ok(Message::Pong(_))) => {
                    last_pong = Instant::now();
                    shared.state().pongs += 1;
                }
                Some(Ok(Message::Ping(_))) => {} // answered by the library
                Some(Ok(Message::Close(_))) => {
                    unregister(&shared);
                    finish_close(&mut socket).await;
                    return;
                }
                None | Some(Err(_)) => break,
            },
            cmd = rx.recv() => match cmd {
                Some(Cmd::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        break;
                    }
                }
                Some(Cmd::Close) => {
                    unregister(&shared);
                    if socket.send(close_frame()).await.is_ok() {
                        finish_close(&mut socket).await;
                    }
                    return;
                }
                Some(Cmd::Kill) | None => {
                    unregister(&shared);
                    return; // drop without a close frame
                }
            },
            () = next_tick(&mut ticker) => {
                if last_pong.elapsed() > pong_timeout {
                    unregister(&shared);
                    let _ = socket.send(close_frame()).await;
                    return;
                }
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    unregister(&shared);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_params_decode_like_go() {
        assert_eq!(
            query_param(Some("since=2026-03-04T10%3A00%3A00Z"), "since"),
            "2026-03-04T10:00:00Z"
        );
        assert_eq!(query_param(Some("a=1&since=x+y"), "since"), "x y");
        assert_eq!(query_param(Some("a=1"), "since"), "");
        assert_eq!(query_param(None, "since"), "");
    }
}
