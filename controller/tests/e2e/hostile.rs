//! Hostile input on every port Tollgate opens (issue on the security pass): the management API,
//! the xDS port, the ext_authz port and the platform link. Each case asserts the answer (status or
//! refusal) and that the process keeps serving: a deploy still reaches Envoy and a key still opens
//! its route afterwards. No timing is asserted; bounds are asserted through status codes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tollgate_testkit::Echo;

use crate::keys::{call, create_key, protected};
use crate::stack::{Stack, send};

/// Writes `bytes` to `addr` over plain TCP, then reads until the peer closes (at most 5 s).
async fn junk(addr: std::net::SocketAddr, bytes: Vec<u8>) {
    let Ok(mut conn) = tokio::net::TcpStream::connect(addr).await else {
        return;
    };
    let _ = conn.write_all(&bytes).await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut sink),
    )
    .await;
}

/// The HTTP/2 connection preface, then a HEADERS frame for stream 1 whose HPACK block is garbage.
fn broken_http2() -> Vec<u8> {
    let mut b = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    b.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]); // empty SETTINGS
    let block = [0xff_u8; 64];
    b.extend_from_slice(&[0, 0, block.len() as u8, 1, 4, 0, 0, 0, 1]); // HEADERS, END_HEADERS, stream 1
    b.extend_from_slice(&block);
    b
}

/// Everything still works: a new API deploys (Envoy ACKs it) and `key` opens `path`.
async fn still_serving(s: &Stack, url: &str, round: usize, path: &str, key: &str) {
    let name = format!("after-{round}");
    let (code, body) = s
        .deploy(&crate::api_yaml(
            &name,
            &format!("/{name}"),
            url,
            "    - {method: GET, path: /x}\n",
        ))
        .await;
    assert_eq!(code, StatusCode::CREATED, "{body}");
    assert_eq!(body["status"]["state"], "deployed", "{body}");
    assert_eq!(s.call(Method::GET, &format!("/{name}/x"), None).await.0, StatusCode::OK);
    assert_eq!(call(s, path, Some(key)).await.0, 200);
    assert_eq!(call(s, path, None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_every_port_is_refused_and_nothing_stops_serving() {
    crate::stack::capture_logs();
    let echo = Echo::start("backend").await;
    let s = Stack::start().await;
    let url = format!("http://127.0.0.1:{}", echo.port);
    assert_eq!(s.deploy(&protected("guarded", &url, true)).await.0, 201);
    let (code, body) = create_key(&s, "guarded", json!({"name": "steady"})).await;
    assert_eq!(code, 201, "{body}");
    let key = body["apiKey"]["apiKey"].as_str().unwrap().to_string();
    still_serving(&s, &url, 0, "/guarded/x", &key).await;

    // Management API: a body nested 100,000 deep, an alias bomb, an oversized body, invalid UTF-8,
    // all at once, while the health endpoint keeps answering.
    let n = 100_000;
    let deep = format!("a: {}{}", "{a: ".repeat(n), "}".repeat(n));
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let huge = "x".repeat(s.config.server.max_body_bytes + 1);
    let post = |body: Vec<u8>| {
        send(
            s.mgmt(Method::POST, "/rest-apis")
                .header("content-type", "application/yaml")
                .body(body),
        )
    };
    let health = async {
        for _ in 0..20 {
            let (code, _) = send(s.admin("/health")).await;
            assert_eq!(code, StatusCode::OK);
        }
    };
    let ((deep_code, _), (bomb_code, _), (huge_code, _), (utf8_code, _), ()) = tokio::join!(
        post(deep.into_bytes()),
        post(bomb.into_bytes()),
        post(huge.into_bytes()),
        post(vec![0xff, 0xfe, b':', b' ', 0x80]),
        health
    );
    assert_eq!(deep_code, StatusCode::BAD_REQUEST);
    assert_eq!(bomb_code, StatusCode::BAD_REQUEST);
    assert_eq!(huge_code, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(utf8_code, StatusCode::BAD_REQUEST);
    let (code, listed) = send(s.mgmt(Method::GET, "/rest-apis")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(listed["count"], 2, "nothing hostile was stored: {listed}");
    still_serving(&s, &url, 1, "/guarded/x", &key).await;

    // xDS and ext_authz ports: random bytes, a broken HTTP/2 stream, a connection that says
    // nothing, from many connections at once.
    let authz = s.running().authz_addr().expect("the embedded ext_authz service");
    for addr in [s.running().xds, authz] {
        let mut tasks = Vec::new();
        for i in 0..20u8 {
            let bytes = match i % 3 {
                0 => vec![i; 4096],
                1 => broken_http2(),
                _ => Vec::new(),
            };
            tasks.push(tokio::spawn(junk(addr, bytes)));
        }
        for t in tasks {
            let _ = t.await;
        }
    }
    still_serving(&s, &url, 2, "/guarded/x", &key).await;

    // Logs never carried the key while all this happened.
    assert!(!crate::stack::logs().contains(&key), "the key was logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_artifact_is_acked_failed_and_the_link_keeps_working() {
    use crate::platform::{TOKEN, WAIT, ack_payload, artifact, link_to};
    let echo = Echo::start("backend").await;
    let fake = tollgate_testkit::FakePlatform::start(TOKEN).await;
    let s = Stack::with(|c| link_to(&fake, c)).await;
    fake.wait_connections(1, WAIT).await;
    let url = format!("http://127.0.0.1:{}", echo.port);

    // An artifact nested 100,000 deep, then one whose aliases expand to billions of nodes.
    let n = 100_000;
    let deep = format!("a: {}{}", "[".repeat(n), "]".repeat(n));
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let ids = [
        "7c1d0f52-0000-4000-8000-000000000001",
        "7c1d0f52-0000-4000-8000-000000000002",
    ];
    for (i, (id, hostile)) in ids.iter().zip([deep, bomb]).enumerate() {
        let d = fake.deploy(id, &hostile);
        fake.push(&fake.deployed_event(&d));
        let acks = fake.wait_acks(i + 1, WAIT).await;
        let p = ack_payload(&acks[i]);
        assert_eq!(p["status"], "failed", "{p}");
        assert_eq!(p["errorCode"], "GATEWAY_PROCESSING_ERROR", "{p}");
    }

    // The link and the gateway carry on: the next deployment is served.
    let id = "7c1d0f52-0000-4000-8000-000000000003";
    let d = fake.deploy(id, &artifact("calm", &url, ""));
    fake.push(&fake.deployed_event(&d));
    let acks = fake.wait_acks(3, WAIT).await;
    assert_eq!(ack_payload(&acks[2])["status"], "success", "{}", acks[2]);
    assert_eq!(s.call(Method::GET, "/calm/x", None).await.0, StatusCode::OK);
}
