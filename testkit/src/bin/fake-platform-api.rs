//! The fake platform API as a program, for trying `make run` against a control plane by hand.
//!
//! `cargo run -p tollgate-testkit --bin fake-platform-api -- [--port 9243] [--hooks 9244] [--token T]`
//!
//! It serves the gateway side (HTTPS + WebSocket) on `--port` with a fresh self-signed certificate
//! written to `fake-platform-ca.pem` in the working directory, and plain-HTTP hooks on `--hooks`
//! (loopback only) that change its state and push the matching events:
//!
//! - `POST /deploy?apiId=<uuid>` (body: RestApi YAML): deploy and push `api.deployed`
//! - `POST /undeploy?apiId=<uuid>`: undeploy and push `api.undeployed`
//! - `POST /delete?apiId=<uuid>`: delete and push `api.deleted`
//! - `POST /keys?apiId=<uuid>&name=<name>` (body: the key): push `apikey.created` (digest only)
//! - `POST /revoke?apiId=<uuid>&name=<name>`: push `apikey.revoked`
//! - `GET /acks`: the `deployment.ack` frames received so far
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tollgate_testkit::platform::FakePlatform;

type Params = Query<HashMap<String, String>>;

/// The fake and the key uuids it handed out, by (API, name), so a revocation can mark its fixture.
#[derive(Clone)]
struct Hooks {
    fake: FakePlatform,
    keys: std::sync::Arc<std::sync::Mutex<HashMap<(String, String), String>>>,
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let port: u16 = arg("--port").and_then(|p| p.parse().ok()).unwrap_or(9243);
    let hooks: u16 = arg("--hooks").and_then(|p| p.parse().ok()).unwrap_or(9244);
    let token = arg("--token").unwrap_or_else(|| "fake-gateway-token".into());
    let fake = FakePlatform::start_on(port, &token).await;
    std::fs::write("fake-platform-ca.pem", fake.ca_pem()).unwrap();
    println!(
        "fake platform API on https://{} (CA: fake-platform-ca.pem, gateway id {})",
        fake.host(),
        fake.gateway_id()
    );
    println!(
        "hooks on http://127.0.0.1:{hooks} (POST /deploy?apiId=..., /undeploy, /delete, /keys, /revoke; GET /acks)"
    );
    let app = Router::new()
        .route("/deploy", post(deploy))
        .route("/undeploy", post(undeploy))
        .route("/delete", post(delete))
        .route("/keys", post(key))
        .route("/revoke", post(revoke))
        .route("/acks", get(acks))
        .with_state(Hooks {
            fake,
            keys: Default::default(),
        });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", hooks)).await.unwrap();
    axum::serve(listener, app).await.unwrap();
}

fn id(q: &Params) -> String {
    q.get("apiId").cloned().unwrap_or_default()
}

async fn deploy(State(Hooks { fake: f, .. }): State<Hooks>, q: Params, body: String) -> axum::Json<Value> {
    let d = f.deploy(&id(&q), &body);
    let sent = f.push(&f.deployed_event(&d));
    axum::Json(json!({"deploymentId": d.deployment_id, "performedAt": d.performed_at, "deliveredTo": sent}))
}

async fn undeploy(State(Hooks { fake: f, .. }): State<Hooks>, q: Params) -> axum::Json<Value> {
    let d = f.undeploy(&id(&q));
    let sent = f.push(&f.undeployed_event(&d));
    axum::Json(json!({"deploymentId": d.deployment_id, "performedAt": d.performed_at, "deliveredTo": sent}))
}

async fn delete(State(Hooks { fake: f, .. }): State<Hooks>, q: Params) -> axum::Json<Value> {
    f.delete_api(&id(&q));
    let sent = f.push(&f.deleted_event(&id(&q)));
    axum::Json(json!({"deliveredTo": sent}))
}

async fn key(State(Hooks { fake: f, keys }): State<Hooks>, q: Params, body: String) -> axum::Json<Value> {
    let name = q.get("name").cloned().unwrap_or_else(|| "key-1".into());
    let uuid = uuid::Uuid::new_v4().to_string();
    keys.lock().unwrap().insert((id(&q), name.clone()), uuid.clone());
    f.put_key(json!({"uuid": uuid, "name": name, "artifactUuid": id(&q), "apiKey": body.trim()}));
    let sent = f.push(&f.key_created_event(&id(&q), &uuid, &name, body.trim(), None));
    axum::Json(json!({"uuid": uuid, "deliveredTo": sent}))
}

async fn revoke(State(Hooks { fake: f, keys }): State<Hooks>, q: Params) -> axum::Json<Value> {
    let name = q.get("name").cloned().unwrap_or_default();
    if let Some(uuid) = keys.lock().unwrap().remove(&(id(&q), name.clone())) {
        f.put_key(json!({"uuid": uuid, "name": name, "artifactUuid": id(&q), "status": "revoked"}));
    }
    let sent = f.push(&f.key_revoked_event(&id(&q), &name));
    axum::Json(json!({"deliveredTo": sent}))
}

async fn acks(State(Hooks { fake: f, .. }): State<Hooks>) -> axum::Json<Value> {
    axum::Json(Value::Array(f.acks()))
}
