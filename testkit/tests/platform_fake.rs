//! Drives the fake platform-api with real clients: rustls trusting `ca_pem()`, tokio-tungstenite for
//! the gateway WebSocket, hyper for the Gateway Internal REST API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{HeaderMap, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tollgate_testkit::FakePlatform;
use tollgate_testkit::platform::{Refusal, time_etag};

const TOKEN: &str = "Qy8R3kN1x7cV2bT9mZ4pL6sW0dF5gH8jK1aE3uI7o_4";
const WS_PATH: &str = "/api/internal/v1/ws/gateways/connect";
const SECOND: Duration = Duration::from_secs(1);

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn next_message(ws: &mut Ws) -> Option<Result<Message, tungstenite::Error>> {
    ws.next().await
}

// ------------------------------------------------------------------------------------------------
// Clients

async fn ws_connect(p: &FakePlatform, api_key: Option<&str>) -> Result<Ws, tungstenite::Error> {
    let mut request = format!("wss://{}{WS_PATH}", p.host()).into_client_request().unwrap();
    if let Some(key) = api_key {
        request.headers_mut().insert("api-key", key.parse().unwrap());
    }
    let connector = Connector::Rustls(p.client_tls());
    tokio_tungstenite::connect_async_tls_with_config(request, None, false, Some(connector))
        .await
        .map(|(ws, _)| ws)
}

/// Next text frame as JSON (skipping pings), failing after 5 s.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(5 * SECOND, next_message(ws))
            .await
            .expect("no frame within 5 s")
            .expect("stream ended")
            .expect("read error");
        match msg {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn next_text(ws: &mut Ws) -> String {
    loop {
        match tokio::time::timeout(5 * SECOND, next_message(ws))
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            Message::Text(text) => return text.as_str().to_owned(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn send_json(ws: &mut Ws, value: &Value) {
    ws.send(Message::Text(value.to_string().into())).await.unwrap();
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        assert!(
            self.body.ends_with(b"\n"),
            "JSON body without trailing newline: {:?}",
            self.body
        );
        assert_eq!(self.headers["content-type"], "application/json");
        serde_json::from_slice(&self.body).unwrap()
    }
}

async fn call_as(
    p: &FakePlatform,
    server_name: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Reply {
    let tcp = TcpStream::connect(("127.0.0.1", p.port())).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(p.client_tls());
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", p.host());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

async fn call(p: &FakePlatform, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    call_as(p, "127.0.0.1", method, path, headers, body).await
}

async fn get(p: &FakePlatform, path: &str) -> Reply {
    call(p, "GET", path, &[("api-key", TOKEN)], "").await
}

fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok() && s.len() == 36
}

fn is_rfc3339_secs(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 20 && b[4] == b'-' && b[10] == b'T' && b[19] == b'Z' && !s.contains('.')
}

/// `2026-03-04T10:30:00Z` / `.1Z` / `.12Z` / `.123Z`, never a trailing fractional zero.
fn is_performed_at(s: &str) -> bool {
    let Some(rest) = s.strip_suffix('Z') else { return false };
    match rest.split_once('.') {
        None => rest.len() == 19,
        Some((secs, frac)) => {
            secs.len() == 19
                && (1..=3).contains(&frac.len())
                && frac.bytes().all(|c| c.is_ascii_digit())
                && !frac.ends_with('0')
        }
    }
}

/// A WebSocket upgrade done by hand over TLS; returns the stream positioned after the 101 response.
async fn raw_ws(p: &FakePlatform) -> tokio_rustls::client::TlsStream<TcpStream> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let tcp = TcpStream::connect(("127.0.0.1", p.port())).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(p.client_tls());
    let mut tls = connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let request = format!(
        "GET {WS_PATH} HTTP/1.1\r\nHost: {}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\napi-key: {TOKEN}\r\n\r\n",
        p.host()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
    tls
}

/// Reads server frames (unmasked, unfragmented) until the connection ends: (opcode, payload).
async fn read_raw_frames(tls: &mut tokio_rustls::client::TlsStream<TcpStream>) -> Vec<(u8, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut data = Vec::new();
    let _ = tokio::time::timeout(5 * SECOND, tls.read_to_end(&mut data)).await;
    let mut frames = Vec::new();
    let mut at = 0;
    while at + 2 <= data.len() {
        let opcode = data[at] & 0x0f;
        assert_eq!(data[at + 1] & 0x80, 0, "server frames are not masked");
        let (len, header) = match data[at + 1] & 0x7f {
            126 => (usize::from(u16::from_be_bytes([data[at + 2], data[at + 3]])), 4),
            127 => panic!("unexpected huge frame"),
            n => (usize::from(n), 2),
        };
        frames.push((opcode, data[at + header..at + header + len].to_vec()));
        at += header + len;
    }
    assert_eq!(at, data.len(), "trailing partial frame");
    frames
}

/// The millisecond part of a `performedAt` string.
fn millis_of(performed_at: &str) -> i64 {
    let frac = performed_at
        .trim_end_matches('Z')
        .split_once('.')
        .map_or("", |(_, f)| f);
    format!("{frac:0<3}").parse().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Tests

#[tokio::test]
async fn tls_health_and_well_known() {
    let p = FakePlatform::start(TOKEN).await;
    assert_eq!(p.host(), format!("127.0.0.1:{}", p.port()));
    assert!(p.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(is_uuid(&p.gateway_id()));

    let health = call(&p, "GET", "/health", &[], "").await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.json(), json!({"status": "ok"}));

    let by_name = call_as(&p, "localhost", "GET", "/health", &[], "").await;
    assert_eq!(by_name.status, StatusCode::OK);

    let probe = call(&p, "GET", "/internal/gateway/.well-known", &[("api-key", TOKEN)], "").await;
    assert_eq!(probe.status, StatusCode::NOT_FOUND);

    let reqs = p.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[2].path, "/internal/gateway/.well-known");
    assert_eq!(reqs[2].api_key.as_deref(), Some(TOKEN));
}

#[tokio::test]
async fn websocket_ack_push_replay_and_deployment_acks() {
    let p = FakePlatform::start(TOKEN).await;
    let mut a = ws_connect(&p, Some(TOKEN)).await.unwrap();
    let mut b = ws_connect(&p, Some(TOKEN)).await.unwrap();

    let ack_a = next_json(&mut a).await;
    let ack_b = next_json(&mut b).await;
    for ack in [&ack_a, &ack_b] {
        let obj = ack.as_object().unwrap();
        assert_eq!(obj.len(), 4, "{ack}");
        assert_eq!(ack["type"], "connection.ack");
        assert_eq!(ack["gatewayId"], p.gateway_id());
        assert!(is_uuid(ack["connectionId"].as_str().unwrap()), "{ack}");
        assert!(is_rfc3339_secs(ack["timestamp"].as_str().unwrap()), "{ack}");
    }
    assert_ne!(ack_a["connectionId"], ack_b["connectionId"]);
    p.wait_connections(2, 5 * SECOND).await;
    assert_eq!(p.live_connections(), 2);

    // Fan-out of a deployment event.
    let d = p.deploy("23826f9e-8daf-4638-b295-14898312759f", "kind: RestApi\n");
    assert!(is_performed_at(&d.performed_at), "{}", d.performed_at);
    let event = p.deployed_event(&d);
    assert_eq!(p.push(&event), 2);
    for ws in [&mut a, &mut b] {
        let got = next_json(ws).await;
        assert_eq!(got, event);
        assert_eq!(got["type"], "api.deployed");
        assert_eq!(got["payload"]["apiId"], d.api_id);
        assert_eq!(got["payload"]["deploymentId"], d.deployment_id);
        assert_eq!(got["payload"]["performedAt"], d.performed_at);
        assert!(is_uuid(got["correlationId"].as_str().unwrap()));
        assert!(is_rfc3339_secs(got["timestamp"].as_str().unwrap()));
        assert!(got.get("userId").is_none());
    }

    // Key events: hashes as a JSON string with `": "`, mask, userId.
    let key = p.key_created_event(
        &d.api_id,
        "0195a1b2-0000-7000-8000-000000000001",
        "my-key",
        "  test  ",
        None,
    );
    assert_eq!(
        key["payload"]["apiKeyHashes"],
        "{\"sha256\": \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"}"
    );
    assert_eq!(key["payload"]["maskedApiKey"], "***est  ");
    assert_eq!(key["userId"], "admin");
    assert!(key["payload"].get("expiresAt").is_none());
    let revoked = p.key_revoked_event(&d.api_id, "my-key");
    assert_eq!(revoked["payload"], json!({"apiId": d.api_id, "keyName": "my-key"}));
    assert_eq!(p.push(&revoked), 2);
    assert_eq!(next_json(&mut a).await, revoked);
    assert_eq!(next_json(&mut b).await, revoked);

    // Malformed frames are delivered verbatim and not recorded.
    assert_eq!(p.push_raw("{not json"), 2);
    assert_eq!(next_text(&mut a).await, "{not json");
    assert_eq!(next_text(&mut b).await, "{not json");

    // Replay resends the whole history in order.
    assert_eq!(p.replay(), 2);
    assert_eq!(next_json(&mut a).await, event);
    assert_eq!(next_json(&mut a).await, revoked);
    assert_eq!(p.history(), vec![event.clone(), revoked.clone()]);

    // The gateway acks.
    let ack = json!({"type": "deployment.ack", "payload": {
        "deploymentId": d.deployment_id, "artifactId": d.api_id, "resourceType": "api",
        "action": "deploy", "status": "success", "performedAt": d.performed_at}});
    send_json(&mut a, &json!({"type": "something.else"})).await;
    send_json(&mut a, &ack).await;
    let acks = p.wait_acks(1, 5 * SECOND).await;
    assert_eq!(acks, vec![ack.clone()]);
    assert_eq!(p.frames().len(), 2);

    // Server-initiated close.
    p.close_all();
    assert_eq!(p.live_connections(), 0);
    for ws in [&mut a, &mut b] {
        loop {
            match tokio::time::timeout(5 * SECOND, next_message(ws)).await.unwrap() {
                Some(Ok(Message::Close(Some(frame)))) => {
                    assert_eq!(frame.code, CloseCode::Normal);
                    assert_eq!(frame.reason.as_str(), "normal closure");
                    break;
                }
                Some(Ok(Message::Text(_) | Message::Ping(_))) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        }
    }
    assert_eq!(p.total_connections(), 2);
    assert_eq!(p.push(&event), 0);
}

#[tokio::test]
async fn websocket_refusals() {
    let p = FakePlatform::start(TOKEN).await;
    let unauthorized = json!({"status": "error", "code": "UNAUTHORIZED", "message": "Invalid or expired credentials."});

    for key in [None, Some("wrong-token")] {
        match ws_connect(&p, key).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
                let body: Value = serde_json::from_slice(resp.body().as_ref().unwrap()).unwrap();
                assert_eq!(body, unauthorized);
            }
            other => panic!("expected 401, got {:?}", other.map(|_| ())),
        }
    }

    p.set_refusal(Refusal::Unauthorized);
    match ws_connect(&p, Some(TOKEN)).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), StatusCode::UNAUTHORIZED),
        other => panic!("expected 401, got {:?}", other.map(|_| ())),
    }

    p.set_refusal(Refusal::TooManyRequests);
    match ws_connect(&p, Some("wrong-token")).await {
        Err(tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
            let body: Value = serde_json::from_slice(resp.body().as_ref().unwrap()).unwrap();
            assert_eq!(
                body,
                json!({"status": "error", "code": "TOO_MANY_REQUESTS",
                       "message": "Connection rate limit exceeded. Please try again later."})
            );
        }
        other => panic!("expected 429, got {:?}", other.map(|_| ())),
    }

    p.set_refusal(Refusal::Capacity);
    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(
        next_json(&mut ws).await,
        json!({"type": "error", "message": "maximum connection limit reached (1000)"})
    );
    match tokio::time::timeout(5 * SECOND, next_message(&mut ws)).await.unwrap() {
        None | Some(Err(_)) => {}
        Some(Ok(Message::Close(frame))) => panic!("capacity refusal must not send a close frame: {frame:?}"),
        Some(Ok(other)) => panic!("unexpected frame {other:?}"),
    }
    assert_eq!(p.total_connections(), 0);
    assert_eq!(p.live_connections(), 0);

    p.set_refusal(Refusal::None);
    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection.ack");
    assert_eq!(p.total_connections(), 1);
    let upgrades = p.requests().iter().filter(|r| r.path == WS_PATH).count();
    assert_eq!(upgrades, 6);
}

#[tokio::test]
async fn heartbeat_pings_and_drops_silent_peers() {
    let p = FakePlatform::start(TOKEN).await;
    p.set_heartbeat(Some(Duration::from_millis(100)), Duration::from_millis(400));

    // An attentive peer: reading makes tungstenite answer every ping.
    let mut live = ws_connect(&p, Some(TOKEN)).await.unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let reader = tokio::spawn(async move {
        let mut pings = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => return pings,
                msg = next_message(&mut live) => match msg {
                    Some(Ok(Message::Ping(payload))) => {
                        assert!(payload.is_empty());
                        pings += 1;
                    }
                    Some(Ok(Message::Text(_) | Message::Pong(_))) => {}
                    other => panic!("attentive peer lost its connection: {other:?}"),
                },
            }
        }
    });

    // A silent peer: a raw socket that never answers pings. At the first tick more than 400 ms
    // after connecting the server must close with 1000 "normal closure" and drop it.
    let mut silent = raw_ws(&p).await;
    let frames = read_raw_frames(&mut silent).await;
    p.wait_connections(2, 5 * SECOND).await;
    assert_eq!(p.live_connections(), 1, "only the attentive peer stays");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send(()).unwrap();
    let pings = reader.await.unwrap();
    assert!(pings >= 6, "pings: {pings}");
    assert!(p.pongs() >= 5, "pongs: {}", p.pongs());
    assert_eq!(p.live_connections(), 1, "the attentive peer is still connected");

    let opcodes: Vec<u8> = frames.iter().map(|(op, _)| *op).collect();
    assert_eq!(opcodes[0], 0x1, "first frame is the connection.ack text: {opcodes:?}");
    assert!(opcodes[1..opcodes.len() - 1].iter().all(|op| *op == 0x9), "{opcodes:?}");
    assert!(opcodes.len() >= 4, "ack, pings, close: {opcodes:?}");
    assert!(
        frames[1..frames.len() - 1]
            .iter()
            .all(|(_, payload)| payload.is_empty())
    );
    let (op, payload) = frames.last().unwrap();
    assert_eq!(*op, 0x8);
    assert_eq!(&payload[..2], &1000u16.to_be_bytes());
    assert_eq!(&payload[2..], b"normal closure");
}

#[tokio::test]
async fn kill_stop_and_restart() {
    let p = FakePlatform::start(TOKEN).await;
    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection.ack");
    p.wait_connections(1, 5 * SECOND).await;
    p.kill_all();
    match tokio::time::timeout(5 * SECOND, next_message(&mut ws)).await.unwrap() {
        None | Some(Err(_)) => {}
        other => panic!("expected the TCP connection to drop, got {other:?}"),
    }
    assert_eq!(p.live_connections(), 0);

    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection.ack");
    p.wait_connections(2, 5 * SECOND).await;
    p.stop().await;
    assert!(!p.is_running());
    match tokio::time::timeout(5 * SECOND, next_message(&mut ws)).await.unwrap() {
        None | Some(Err(_)) => {}
        other => panic!("expected the TCP connection to drop, got {other:?}"),
    }
    assert!(
        TcpStream::connect(("127.0.0.1", p.port())).await.is_err(),
        "still listening after stop"
    );

    p.restart().await;
    assert_eq!(call(&p, "GET", "/health", &[], "").await.status, StatusCode::OK);
    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["gatewayId"], p.gateway_id());
    p.wait_connections(3, 5 * SECOND).await;

    // A fixed port.
    let port = p.port();
    p.stop().await;
    let q = FakePlatform::start_on(port, TOKEN).await;
    assert_eq!(q.port(), port);
    assert_eq!(call(&q, "GET", "/health", &[], "").await.status, StatusCode::OK);
}

#[tokio::test]
async fn single_artifact_zip_fetch() {
    let p = FakePlatform::start(TOKEN).await;
    let api = "23826f9e-8daf-4638-b295-14898312759f";
    let path = format!("/api/internal/v1/apis/{api}");
    let yaml = "apiVersion: gateway.api-platform.wso2.com/v1\nkind: RestApi\nmetadata:\n  name: weather\n";

    let missing = call(&p, "GET", &path, &[], "").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.json(),
        json!({"code": 401, "message": "Unauthorized", "description": "API key is required. Provide 'api-key' header."})
    );
    let wrong = call(&p, "GET", &path, &[("api-key", "nope")], "").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.json(),
        json!({"code": 401, "message": "Unauthorized", "description": "Invalid or expired API key"})
    );

    let not_deployed = get(&p, &path).await;
    assert_eq!(not_deployed.status, StatusCode::NOT_FOUND);
    assert_eq!(
        not_deployed.json(),
        json!({"code": 404, "message": "Not Found", "description": "No active deployment found for this API on this gateway"})
    );

    p.deploy(api, yaml);
    let reply = call(
        &p,
        "GET",
        &path,
        &[("api-key", TOKEN), ("accept", "application/zip")],
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/zip");
    assert_eq!(
        reply.headers["content-disposition"],
        format!("attachment; filename=\"api-{api}.zip\"")
    );
    assert_eq!(reply.headers["content-length"], reply.body.len().to_string());
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(reply.body.to_vec())).unwrap();
    assert_eq!(archive.len(), 1);
    let mut entry = archive.by_index(0).unwrap();
    assert_eq!(entry.name(), format!("api-{api}.yaml"));
    assert_eq!(entry.compression(), zip::CompressionMethod::Deflated);
    let mut content = String::new();
    entry.read_to_string(&mut content).unwrap();
    assert_eq!(content, yaml);
    drop(entry);

    p.set_fetch_status(api, Some(500));
    let forced = get(&p, &path).await;
    assert_eq!(forced.status, StatusCode::INTERNAL_SERVER_ERROR);
    let body = forced.json();
    assert_eq!(body["code"], 500);
    assert_eq!(body["message"], "Internal Server Error");
    p.set_fetch_status(api, None);
    assert_eq!(get(&p, &path).await.status, StatusCode::OK);

    p.undeploy(api);
    assert_eq!(get(&p, &path).await.status, StatusCode::NOT_FOUND);
    p.deploy(api, yaml);
    p.delete_api(api);
    assert_eq!(get(&p, &path).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn deployments_list() {
    let p = FakePlatform::start(TOKEN).await;
    let a = p.deploy("aaaaaaaa-0000-4000-8000-000000000001", "a: 1\n");
    let b = p.deploy("bbbbbbbb-0000-4000-8000-000000000002", "b: 1\n");
    let c = p.deploy("cccccccc-0000-4000-8000-000000000003", "c: 1\n");
    let a2 = p.undeploy(&a.api_id);
    assert_eq!(a2.deployment_id, a.deployment_id);
    assert_ne!(a2.performed_at, a.performed_at);
    p.delete_api(&c.api_id);

    let reply = get(&p, "/api/internal/v1/deployments").await;
    assert_eq!(reply.status, StatusCode::OK);
    let list = reply.json()["deployments"].as_array().unwrap().clone();
    assert_eq!(list.len(), 2);
    assert_eq!(
        list[0],
        json!({"artifactId": a.api_id, "deploymentId": a.deployment_id, "kind": "RestApi", "state": "UNDEPLOYED",
               "deployedAt": a2.performed_at, "etag": list[0]["etag"]})
    );
    assert_eq!(list[1]["artifactId"], b.api_id);
    assert_eq!(list[1]["state"], "DEPLOYED");
    assert_eq!(list[1]["deployedAt"], b.performed_at);
    for row in &list {
        let etag = row["etag"].as_str().unwrap();
        assert!(is_uuid(etag));
        assert_eq!(&etag[14..15], "7", "{etag}");
        assert!(is_performed_at(row["deployedAt"].as_str().unwrap()));
    }
    let etag_ms = i64::from_str_radix(&list[1]["etag"].as_str().unwrap().replace('-', "")[..12], 16).unwrap();
    assert_eq!(etag_ms % 1000, millis_of(&b.performed_at) % 1000);
    assert_eq!(list[1]["etag"], time_etag(&b.deployment_id, etag_ms));

    let since = b.performed_at.replace(':', "%3A");
    let newer = get(&p, &format!("/api/internal/v1/deployments?since={since}"))
        .await
        .json();
    assert_eq!(newer["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(newer["deployments"][0]["artifactId"], a.api_id);

    let bad = get(&p, "/api/internal/v1/deployments?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        bad.json()["description"],
        "Invalid 'since' parameter. Expected ISO 8601 format (e.g., 2026-03-04T10:00:00Z)"
    );

    let empty = FakePlatform::start(TOKEN).await;
    assert_eq!(
        get(&empty, "/api/internal/v1/deployments").await.body,
        Bytes::from("{\"deployments\":[]}\n")
    );
}

#[tokio::test]
async fn fetch_batch_tar_gz() {
    let p = FakePlatform::start(TOKEN).await;
    let a = p.deploy("aaaaaaaa-0000-4000-8000-000000000001", "a: 1\n");
    let b = p.deploy("bbbbbbbb-0000-4000-8000-000000000002", "b: 2\n");
    let path = "/api/internal/v1/deployments/fetch-batch";
    let body = json!({"deploymentIds": [a.deployment_id, "00000000-0000-4000-8000-000000000000", b.deployment_id]})
        .to_string();

    for accept in [None, Some("application/gzip"), Some("application/x-tar+gzip, */*")] {
        let mut headers = vec![("api-key", TOKEN)];
        if let Some(accept) = accept {
            headers.push(("accept", accept));
        }
        let reply = call(&p, "POST", path, &headers, &body).await;
        assert_eq!(reply.status, StatusCode::NOT_ACCEPTABLE, "{accept:?}");
        assert_eq!(
            reply.json(),
            json!({"code": 406, "message": "Not Acceptable",
                   "description": "This endpoint only supports Accept: application/x-tar+gzip"})
        );
    }
    let headers = [("api-key", TOKEN), ("accept", "application/x-tar+gzip")];
    let empty = call(&p, "POST", path, &headers, r#"{"deploymentIds":[]}"#).await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert_eq!(empty.json()["description"], "At least one deployment ID is required");
    let garbage = call(&p, "POST", path, &headers, "{").await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert!(
        garbage.json()["description"]
            .as_str()
            .unwrap()
            .starts_with("Invalid request body: ")
    );

    let reply = call(&p, "POST", path, &headers, &body).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/x-tar+gzip");
    assert_eq!(
        reply.headers["content-disposition"],
        format!("attachment; filename=\"deployments-batch-{}.tar.gz\"", p.gateway_id())
    );
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&reply.body[..]));
    let mut entries = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        assert_eq!(entry.header().entry_type(), tar::EntryType::Regular);
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        entries.push((name, content));
    }
    entries.sort();
    let mut expected = vec![
        (
            format!("{}/api-{}.yaml", a.deployment_id, a.api_id),
            "a: 1\n".to_owned(),
        ),
        (
            format!("{}/api-{}.yaml", b.deployment_id, b.api_id),
            "b: 2\n".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(entries, expected);

    p.set_fetch_status(&a.api_id, Some(404));
    let reply = call(&p, "POST", path, &headers, &body).await;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&reply.body[..]));
    assert_eq!(archive.entries().unwrap().count(), 1);
}

#[tokio::test]
async fn sync_endpoints_and_manifest() {
    let p = FakePlatform::start(TOKEN).await;
    let api = "aaaaaaaa-0000-4000-8000-000000000001";
    let other = "bbbbbbbb-0000-4000-8000-000000000002";
    p.deploy(api, "a: 1\n");
    p.create_api(other);

    let exists = call(
        &p,
        "POST",
        "/api/internal/v1/artifacts/exists",
        &[("api-key", TOKEN)],
        &json!({"artifactIds": ["nope", api, other]}).to_string(),
    )
    .await;
    assert_eq!(
        exists.json(),
        json!({"artifacts": [{"artifactId": "nope", "exists": false}, {"artifactId": api, "exists": true},
                             {"artifactId": other, "exists": true}]})
    );

    // Subscriptions.
    p.put_subscription(json!({"id": "11111111-0000-4000-8000-000000000001", "apiId": api,
                               "subscriptionToken": "tok", "subscriptionPlanId": "22222222-0000-4000-8000-000000000001"}));
    let subs = get(&p, &format!("/api/internal/v1/apis/{api}/subscriptions"))
        .await
        .json();
    assert_eq!(subs.as_array().unwrap().len(), 1);
    assert_eq!(subs[0]["status"], "ACTIVE");
    assert_eq!(subs[0]["subscriptionToken"], "tok");
    assert!(is_uuid(subs[0]["etag"].as_str().unwrap()));
    assert!(subs[0].get("applicationId").is_none());
    let unknown = get(
        &p,
        "/api/internal/v1/apis/cccccccc-0000-4000-8000-000000000003/subscriptions",
    )
    .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["description"], "API not found");
    let unassociated = get(&p, &format!("/api/internal/v1/apis/{other}/subscriptions")).await;
    assert_eq!(unassociated.status, StatusCode::FORBIDDEN);
    let event = p.subscription_event("subscription.created", &subs[0]);
    assert_eq!(
        event["payload"],
        json!({"apiId": api, "subscriptionId": "11111111-0000-4000-8000-000000000001", "subscriptionToken": "tok",
               "subscriptionPlanId": "22222222-0000-4000-8000-000000000001", "status": "ACTIVE"})
    );

    // Plans.
    assert_eq!(
        get(&p, "/api/internal/v1/subscription-plans").await.body,
        Bytes::from("[]\n")
    );
    p.put_plan(
        json!({"id": "22222222-0000-4000-8000-000000000001", "handle": "gold", "throttleLimitCount": 10,
                      "throttleLimitUnit": "MINUTE"}),
    );
    let plans = get(&p, "/api/internal/v1/subscription-plans").await.json();
    assert_eq!(plans[0]["planName"], "gold");
    assert_eq!(plans[0]["stopOnQuotaReach"], true);

    // API keys: `/apis/api-keys` is a literal route; hashes are an object here.
    p.put_key(
        json!({"uuid": "33333333-0000-4000-8000-000000000001", "apiId": api, "name": "my-key", "apiKey": "secret-key"}),
    );
    p.put_key(json!({"artifactUuid": other, "apiKey": "not-listed"}));
    let keys = get(&p, "/api/internal/v1/apis/api-keys").await.json();
    assert_eq!(keys.as_array().unwrap().len(), 1, "{keys}");
    let key = &keys[0];
    assert_eq!(key["artifactUuid"], api);
    assert_eq!(
        key["apiKeyHashes"],
        json!({"sha256": tollgate_testkit::platform::sha256_hex("secret-key")})
    );
    assert_eq!(key["maskedApiKey"], "***t-key");
    assert_eq!(key["status"], "active");
    assert_eq!(key["source"], "external");
    assert_eq!(key["expiresAt"], Value::Null);
    assert_eq!(key["externalRefId"], Value::Null);
    assert!(key.get("issuer").is_none());
    let by_issuer = get(&p, "/api/internal/v1/apis/api-keys?issuer=someone").await.json();
    assert_eq!(by_issuer, json!([]));
    assert_eq!(
        get(&p, "/api/internal/v1/llm-providers/api-keys").await.json(),
        json!([])
    );

    // Secrets, manifest.
    assert_eq!(
        get(&p, "/api/internal/v1/secrets?includeValues=true").await.json(),
        json!({"list": [], "count": 0})
    );
    let manifest = json!({"version": "1.2.0", "functionalityType": "regular", "policies": []});
    let pushed = call(
        &p,
        "POST",
        &format!("/api/internal/v1/gateways/{}/manifest", p.gateway_id()),
        &[("api-key", TOKEN), ("content-type", "application/json")],
        &manifest.to_string(),
    )
    .await;
    assert_eq!(pushed.status, StatusCode::NO_CONTENT);
    assert!(pushed.body.is_empty());
    assert_eq!(p.manifests(), vec![manifest]);

    // Sync failure: every REST endpoint fails, the WebSocket still works.
    p.set_rest_status(Some(503));
    for path in [
        "/api/internal/v1/deployments",
        "/api/internal/v1/subscription-plans",
        "/api/internal/v1/apis/api-keys",
    ] {
        let reply = get(&p, path).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(reply.json()["message"], "Service Unavailable");
    }
    let mut ws = ws_connect(&p, Some(TOKEN)).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection.ack");
    assert_eq!(call(&p, "GET", "/health", &[], "").await.status, StatusCode::OK);
    p.set_rest_status(None);
    assert_eq!(get(&p, "/api/internal/v1/deployments").await.status, StatusCode::OK);

    let logged = p.requests();
    let keys_req = logged
        .iter()
        .find(|r| r.path == "/api/internal/v1/apis/api-keys?issuer=someone")
        .unwrap();
    assert_eq!(keys_req.method, "GET");
    assert_eq!(keys_req.api_key.as_deref(), Some(TOKEN));
}
