//! A fake of WSO2's platform-api (the control plane) as seen by a gateway: one HTTPS listener with
//! a fresh self-signed certificate serving the gateway WebSocket
//! (`/api/internal/v1/ws/gateways/connect`), the Gateway Internal REST API (`/api/internal/v1/*`),
//! `/health`, and a 404 for the APIM discovery probe `/internal/gateway/.well-known`.
//!
//! The wire contract follows `shared/reference/platform-api-protocol.md` (§ numbers below refer to
//! it). The fake holds the desired state of exactly one gateway in memory (REST API deployments,
//! API keys, subscriptions, plans), lets a test push events over every live WebSocket, and records
//! everything a gateway sends (frames, `deployment.ack`s, manifests, REST requests).
//!
//! Deviations from the real server worth knowing:
//! - timestamps are always UTC (`Z`), the real server uses its local zone for envelope timestamps;
//! - events are delivered at once (no 0–3 s poll latency) and only replayed when a test asks
//!   ([`FakePlatform::replay`]);
//! - only REST APIs are backed by fixtures; the other artifact kinds answer "not found" / `[]`;
//! - heartbeat settings apply to connections established after [`FakePlatform::set_heartbeat`].

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::mpsc;

mod server;
mod wire;

pub use wire::{key_etag, mask_key, sha256_hex, time_etag};

/// How the next WebSocket upgrade attempts are refused (§2.1).
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    /// Accept connections normally.
    None,
    /// `401` with the public error shape, as for an unknown or revoked token.
    Unauthorized,
    /// `429` with the public error shape (per-IP rate limit).
    TooManyRequests,
    /// Upgrade, then one text frame `{"type":"error","message":"maximum connection limit reached (1000)"}`
    /// and drop the TCP connection without a close frame (global connection cap).
    Capacity,
    /// Upgrade, then say nothing (no `connection.ack`) until the client gives up.
    Silent,
}

/// One deploy/undeploy action of a REST API on this gateway: what an `api.deployed` /
/// `api.undeployed` event carries.
#[derive(Clone, Debug)]
pub struct Deployment {
    pub api_id: String,
    pub deployment_id: String,
    /// The exact wire string (UTC, milliseconds, Go-style trailing zeros dropped).
    pub performed_at: String,
}

/// One HTTP request the fake received (any path, including the WebSocket upgrade).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path with the query string, if any.
    pub path: String,
    pub accept: Option<String>,
    pub api_key: Option<String>,
    pub body: String,
}

/// The fake platform-api. Cheap to clone; every clone drives the same server. The server stops when
/// the last clone is dropped.
#[derive(Clone)]
pub struct FakePlatform {
    inner: Arc<Inner>,
}

impl fmt::Debug for FakePlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakePlatform")
            .field("host", &self.host())
            .field("gateway_id", &self.inner.shared.gateway_id)
            .field("live_connections", &self.live_connections())
            .finish_non_exhaustive()
    }
}

/// Owner of the listener; dropping it (last [`FakePlatform`] clone gone) stops the server.
struct Inner {
    shared: Arc<Shared>,
    running: Mutex<Option<server::Running>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(running) = self.running.lock().unwrap_or_else(|e| e.into_inner()).take() {
            running.abort();
        }
        self.shared.drop_connections(false);
    }
}

/// How the fake answers `GET /apis/api-keys`. The protocol (§3.7) answers one plain array; the other
/// shapes let tests see what Tollgate does with a paginated or a broken listing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyListing {
    /// The protocol's plain array of every key.
    #[default]
    Whole,
    /// Pages of at most this many keys in the platform API's paginated shape
    /// (`{count, list, pagination: {total, offset, limit}}`, `?offset=&limit=`).
    Paged(usize),
    /// A plain array cut after this many keys, as a truncated answer would be.
    Truncated(usize),
}

/// What the server tasks share with the test handle.
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) gateway_id: String,
    pub(crate) port: u16,
    pub(crate) ca_pem: String,
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
    pub(crate) state: Mutex<State>,
}

/// A command for one WebSocket connection task.
#[derive(Debug)]
pub(crate) enum Cmd {
    Text(String),
    /// Close frame 1000 "normal closure".
    Close,
    /// Drop the TCP connection without a close frame.
    Kill,
}

/// The current deployment-status row of one REST API on this gateway.
#[derive(Clone, Debug)]
pub(crate) struct Current {
    pub(crate) deployment_id: String,
    pub(crate) performed_at: String,
    pub(crate) performed_ms: i64,
    pub(crate) deployed: bool,
}

#[derive(Debug)]
pub(crate) struct State {
    /// Bumped by `stop()`: upgrades started before it must not register afterwards.
    pub(crate) epoch: u64,
    /// Artifact UUIDs that exist in the org (§3.4).
    pub(crate) artifacts: BTreeSet<String>,
    /// Current deployment row per API UUID (§3.2).
    pub(crate) current: BTreeMap<String, Current>,
    /// Every deployment ever made (deployment UUID → API UUID, YAML), for `fetch-batch`.
    pub(crate) deployments: HashMap<String, (String, String)>,
    pub(crate) fetch_status: HashMap<String, u16>,
    pub(crate) keys: Vec<Value>,
    /// How `GET /apis/api-keys` answers (not the protocol's plain array when set).
    pub(crate) key_listing: KeyListing,
    pub(crate) subscriptions: Vec<Value>,
    pub(crate) plans: Vec<Value>,
    /// Secret handle → plaintext, for `GET /secrets/{handle}/value` (§3.8).
    pub(crate) secrets: BTreeMap<String, String>,
    pub(crate) rest_status: Option<u16>,
    pub(crate) rest_redirect: Option<String>,
    pub(crate) refusal: Refusal,
    pub(crate) ping_every: Option<Duration>,
    pub(crate) pong_timeout: Duration,
    /// Every pushed envelope, serialized, in order.
    pub(crate) history: Vec<String>,
    pub(crate) acks: Vec<Value>,
    pub(crate) frames: Vec<String>,
    pub(crate) manifests: Vec<Value>,
    pub(crate) requests: Vec<Request>,
    pub(crate) conns: BTreeMap<u64, mpsc::UnboundedSender<Cmd>>,
    pub(crate) next_conn: u64,
    pub(crate) total_connections: usize,
    pub(crate) pongs: usize,
    /// Last `performedAt` handed out, in Unix ms (kept strictly increasing).
    last_ms: i64,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes (close frame 1000) or kills (no close frame) every live connection and forgets them.
    fn drop_connections(&self, close: bool) {
        let conns = std::mem::take(&mut self.state().conns);
        for tx in conns.into_values() {
            let _ = tx.send(if close { Cmd::Close } else { Cmd::Kill });
        }
    }

    fn send_all(&self, texts: &[String]) -> usize {
        let st = self.state();
        st.conns
            .values()
            .filter(|tx| texts.iter().all(|t| tx.send(Cmd::Text(t.clone())).is_ok()))
            .count()
    }
}

const USER_ID: &str = "admin";

fn now_secs() -> String {
    wire::format_secs(wire::now_nanos())
}

fn uuid4() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

fn ms_of(v: &Value, name: &str) -> i64 {
    str_field(v, name)
        .and_then(wire::parse_rfc3339)
        .map_or(0, |n| n.div_euclid(1_000_000) as i64)
}

fn set_default(obj: &mut serde_json::Map<String, Value>, name: &str, value: impl FnOnce() -> Value) {
    if !obj.contains_key(name) {
        obj.insert(name.to_owned(), value());
    }
}

/// Replaces the element of `list` with the same `id_field` as `v`, or appends `v`.
fn upsert(list: &mut Vec<Value>, id_field: &str, v: Value) {
    match list.iter_mut().find(|e| e[id_field] == v[id_field]) {
        Some(existing) => *existing = v,
        None => list.push(v),
    }
}

/// Subscription and plan defaults: `status` `ACTIVE`, `createdAt`/`updatedAt` (now) and an `etag`
/// from `id` and `updatedAt`.
fn active_with_etag(mut obj: serde_json::Map<String, Value>) -> Value {
    let now = wire::format_nanos(wire::now_nanos());
    set_default(&mut obj, "status", || Value::String("ACTIVE".to_owned()));
    set_default(&mut obj, "createdAt", || Value::String(now));
    let created = obj["createdAt"].clone();
    set_default(&mut obj, "updatedAt", || created);
    if !obj.contains_key("etag") {
        let v = Value::Object(obj.clone());
        let etag = time_etag(str_field(&v, "id").unwrap_or_default(), ms_of(&v, "updatedAt"));
        obj.insert("etag".to_owned(), Value::String(etag));
    }
    Value::Object(obj)
}

fn hashes_string(plaintext: &str) -> String {
    format!("{{\"sha256\": \"{}\"}}", sha256_hex(plaintext.trim()))
}

impl FakePlatform {
    /// Starts on `127.0.0.1:0` (HTTPS, fresh self-signed certificate for `localhost` and `127.0.0.1`).
    pub async fn start(token: &str) -> FakePlatform {
        Self::start_on(0, token).await
    }

    /// Starts on a fixed port of `127.0.0.1` (e.g. a port a gateway already points at). Panics if
    /// the port cannot be bound.
    pub async fn start_on(port: u16, token: &str) -> FakePlatform {
        let (cert_pem, acceptor) = server::tls_identity();
        let listener = server::bind(port);
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            gateway_id: uuid4(),
            port,
            ca_pem: cert_pem,
            acceptor,
            state: Mutex::new(State {
                epoch: 0,
                artifacts: BTreeSet::new(),
                current: BTreeMap::new(),
                deployments: HashMap::new(),
                fetch_status: HashMap::new(),
                keys: Vec::new(),
                subscriptions: Vec::new(),
                plans: Vec::new(),
                secrets: BTreeMap::new(),
                rest_status: None,
                rest_redirect: None,
                key_listing: KeyListing::Whole,
                refusal: Refusal::None,
                ping_every: Some(Duration::from_secs(20)),
                pong_timeout: Duration::from_secs(30),
                history: Vec::new(),
                acks: Vec::new(),
                frames: Vec::new(),
                manifests: Vec::new(),
                requests: Vec::new(),
                conns: BTreeMap::new(),
                next_conn: 0,
                total_connections: 0,
                pongs: 0,
                last_ms: 0,
            }),
        });
        let running = server::spawn(shared.clone(), listener);
        FakePlatform {
            inner: Arc::new(Inner {
                shared,
                running: Mutex::new(Some(running)),
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.shared.state()
    }

    /// `127.0.0.1:PORT`, what a gateway configures as its control-plane host.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.shared().port)
    }

    pub fn port(&self) -> u16 {
        self.shared().port
    }

    /// The self-signed server certificate (PEM), to be trusted by a gateway.
    pub fn ca_pem(&self) -> String {
        self.shared().ca_pem.clone()
    }

    /// A rustls client configuration (ring provider) that trusts [`Self::ca_pem`].
    pub fn client_tls(&self) -> Arc<rustls::ClientConfig> {
        server::client_config(&self.shared().ca_pem)
    }

    /// The gateway UUID sent in every `connection.ack`.
    pub fn gateway_id(&self) -> String {
        self.shared().gateway_id.clone()
    }

    /// The token the fake accepts in the `api-key` header.
    pub fn token(&self) -> String {
        self.shared().token.clone()
    }

    /// Platform down: stops listening and drops every connection (WebSocket ones without a close
    /// frame). Fixtures, history and observations are kept; [`Self::restart`] listens again.
    pub async fn stop(&self) {
        let running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        self.state().epoch += 1;
        if let Some(running) = running {
            running.shutdown().await;
        }
        self.shared().drop_connections(false);
    }

    /// Platform back: listens again on the same port with the same certificate, gateway id, fixtures
    /// and history (a no-op when already running).
    pub async fn restart(&self) {
        let mut running = self.inner.running.lock().unwrap_or_else(|e| e.into_inner());
        if running.is_none() {
            let listener = server::bind(self.shared().port);
            *running = Some(server::spawn(self.inner.shared.clone(), listener));
        }
    }

    /// Whether the fake is listening.
    pub fn is_running(&self) -> bool {
        self.inner.running.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    // ---------------------------------------------------------------------------------------------
    // Fixtures

    fn next_performed(st: &mut State) -> (i64, String) {
        let now_ms = wire::now_nanos().div_euclid(1_000_000) as i64;
        let ms = now_ms.max(st.last_ms + 1);
        st.last_ms = ms;
        (ms, wire::format_millis(ms))
    }

    /// Deploys `yaml` as a new deployment of REST API `api_id` (new deployment UUID, new
    /// `performedAt`, desired state DEPLOYED). The artifact now exists.
    pub fn deploy(&self, api_id: &str, yaml: &str) -> Deployment {
        let mut st = self.state();
        let (ms, performed_at) = Self::next_performed(&mut st);
        let deployment_id = uuid4();
        st.artifacts.insert(api_id.to_owned());
        st.deployments
            .insert(deployment_id.clone(), (api_id.to_owned(), yaml.to_owned()));
        st.current.insert(
            api_id.to_owned(),
            Current {
                deployment_id: deployment_id.clone(),
                performed_at: performed_at.clone(),
                performed_ms: ms,
                deployed: true,
            },
        );
        Deployment {
            api_id: api_id.to_owned(),
            deployment_id,
            performed_at,
        }
    }

    /// Undeploys the current deployment of `api_id` (same deployment UUID, new `performedAt`,
    /// desired state UNDEPLOYED). Panics if the API has no deployment on this gateway.
    pub fn undeploy(&self, api_id: &str) -> Deployment {
        let mut st = self.state();
        let (ms, performed_at) = Self::next_performed(&mut st);
        let current = st
            .current
            .get_mut(api_id)
            .unwrap_or_else(|| panic!("undeploy: API {api_id} has no deployment on this gateway"));
        current.performed_at = performed_at.clone();
        current.performed_ms = ms;
        current.deployed = false;
        Deployment {
            api_id: api_id.to_owned(),
            deployment_id: current.deployment_id.clone(),
            performed_at,
        }
    }

    /// Records `api_id` as an existing artifact of the org without a deployment on this gateway
    /// (`exists: true`, absent from `/deployments`, subscriptions answer 403).
    pub fn create_api(&self, api_id: &str) {
        self.state().artifacts.insert(api_id.to_owned());
    }

    /// Deletes the API: gone from `/deployments`, `exists: false`, `/apis/{id}` 404, its deployments
    /// gone from `fetch-batch`.
    pub fn delete_api(&self, api_id: &str) {
        let mut st = self.state();
        st.artifacts.remove(api_id);
        st.current.remove(api_id);
        st.deployments.retain(|_, (api, _)| api != api_id);
    }

    /// Forces `GET /apis/{api_id}` to answer `status` (internal error shape) and `fetch-batch` to
    /// omit the API's deployments; `None` restores normal behaviour.
    pub fn set_fetch_status(&self, api_id: &str, status: Option<u16>) {
        let mut st = self.state();
        match status {
            Some(s) => st.fetch_status.insert(api_id.to_owned(), s),
            None => st.fetch_status.remove(api_id),
        };
    }

    /// Adds or replaces (by `uuid`) an API key as listed by `GET /apis/api-keys` (§3.7). Missing fields
    /// get defaults: `uuid` (new), `name`, `artifactUuid` (from `apiId` if given), `status` `active`,
    /// `createdAt`/`updatedAt` (now), `createdBy`, `expiresAt` null, `source` `external`,
    /// `externalRefId` null, `etag` (computed). A plaintext `apiKey` field is replaced by
    /// `apiKeyHashes` (object) and `maskedApiKey`; an `apiKeyHashes` string is turned into the object.
    /// Only keys of APIs with a deployment on this gateway are listed.
    pub fn put_key(&self, key: Value) {
        let Value::Object(mut obj) = key else {
            panic!("put_key: expected a JSON object, got {key}");
        };
        if let Some(Value::String(plain)) = obj.remove("apiKey") {
            obj.insert("apiKeyHashes".to_owned(), json!({ "sha256": sha256_hex(plain.trim()) }));
            obj.insert("maskedApiKey".to_owned(), Value::String(mask_key(&plain)));
        }
        if let Some(Value::String(s)) = obj.get("apiKeyHashes") {
            let parsed = serde_json::from_str::<Value>(s).unwrap_or_else(|e| panic!("put_key: apiKeyHashes: {e}"));
            obj.insert("apiKeyHashes".to_owned(), parsed);
        }
        if let Some(api) = obj.remove("apiId") {
            obj.entry("artifactUuid").or_insert(api);
        }
        let now = wire::format_nanos(wire::now_nanos());
        set_default(&mut obj, "uuid", || Value::String(uuid4()));
        let uuid = obj["uuid"].as_str().unwrap_or_default().to_owned();
        set_default(&mut obj, "name", || {
            Value::String(format!("key-{}", &uuid[..8.min(uuid.len())]))
        });
        set_default(&mut obj, "artifactUuid", || Value::String(String::new()));
        set_default(&mut obj, "maskedApiKey", || Value::String("********".to_owned()));
        set_default(&mut obj, "apiKeyHashes", || json!({}));
        set_default(&mut obj, "status", || Value::String("active".to_owned()));
        set_default(&mut obj, "createdAt", || Value::String(now.clone()));
        let created = obj["createdAt"].clone();
        set_default(&mut obj, "updatedAt", || created);
        set_default(&mut obj, "createdBy", || {
            Value::String("6f1f4c9e-4b3d-4a8e-9a51-0c7c2f3d5e11".to_owned())
        });
        set_default(&mut obj, "expiresAt", || Value::Null);
        set_default(&mut obj, "source", || Value::String("external".to_owned()));
        set_default(&mut obj, "externalRefId", || Value::Null);
        if !obj.contains_key("etag") {
            let updated = str_field(&Value::Object(obj.clone()), "updatedAt")
                .and_then(wire::parse_rfc3339)
                .unwrap_or(0);
            let artifact = obj["artifactUuid"].as_str().unwrap_or_default().to_owned();
            let name = obj["name"].as_str().unwrap_or_default().to_owned();
            obj.insert("etag".to_owned(), Value::String(key_etag(&artifact, &name, updated)));
        }
        upsert(&mut self.state().keys, "uuid", Value::Object(obj));
    }

    /// Adds or replaces (by `id`) a subscription (§3.5). Defaults: `id` (new), `subscriptionToken`
    /// (random), `status` `ACTIVE`, `createdAt`/`updatedAt` (now), `etag` (computed). `apiId` should
    /// be given; `applicationId` / `subscriptionPlanId` are omitted when absent.
    pub fn put_subscription(&self, sub: Value) {
        let Value::Object(mut obj) = sub else {
            panic!("put_subscription: expected a JSON object, got {sub}");
        };
        set_default(&mut obj, "id", || Value::String(uuid4()));
        set_default(&mut obj, "apiId", || Value::String(String::new()));
        set_default(&mut obj, "subscriptionToken", || {
            Value::String(uuid::Uuid::new_v4().simple().to_string())
        });
        upsert(&mut self.state().subscriptions, "id", active_with_etag(obj));
    }

    /// Removes the subscription with this `id`.
    pub fn remove_subscription(&self, id: &str) {
        self.state().subscriptions.retain(|s| str_field(s, "id") != Some(id));
    }

    /// Serves `value` as secret `handle` (`GET /secrets/{handle}/value`).
    pub fn set_secret(&self, handle: &str, value: &str) {
        self.state().secrets.insert(handle.into(), value.into());
    }

    /// How `GET /apis/api-keys` answers from now on.
    pub fn set_key_listing(&self, listing: KeyListing) {
        self.state().key_listing = listing;
    }

    /// Removes the API key with this `uuid`.
    pub fn remove_key(&self, uuid: &str) {
        self.state().keys.retain(|k| str_field(k, "uuid") != Some(uuid));
    }

    /// Adds or replaces (by `id`) a subscription plan (§3.6). Defaults: `id` (new), `handle`,
    /// `planName` (= handle), `stopOnQuotaReach` true, `status` `ACTIVE`, `createdAt`/`updatedAt`
    /// (now), `etag` (computed).
    pub fn put_plan(&self, plan: Value) {
        let Value::Object(mut obj) = plan else {
            panic!("put_plan: expected a JSON object, got {plan}");
        };
        set_default(&mut obj, "id", || Value::String(uuid4()));
        let id = obj["id"].as_str().unwrap_or_default().to_owned();
        set_default(&mut obj, "handle", || {
            Value::String(format!("plan-{}", &id[..8.min(id.len())]))
        });
        let handle = obj["handle"].clone();
        set_default(&mut obj, "planName", || handle);
        set_default(&mut obj, "stopOnQuotaReach", || Value::Bool(true));
        upsert(&mut self.state().plans, "id", active_with_etag(obj));
    }

    /// Removes the plan with this `id`.
    pub fn remove_plan(&self, id: &str) {
        self.state().plans.retain(|p| str_field(p, "id") != Some(id));
    }

    /// When `Some`, every `/api/internal/v1` REST endpoint answers that status with the internal
    /// error shape (not the WebSocket upgrade, not `/health` or the well-known probe).
    pub fn set_rest_status(&self, status: Option<u16>) {
        self.state().rest_status = status;
    }

    /// When `Some`, every `/api/internal/v1` REST endpoint answers `307 Temporary Redirect` to that
    /// URL with the request's path appended (a hostile or misconfigured control plane).
    pub fn set_rest_redirect(&self, to: Option<&str>) {
        self.state().rest_redirect = to.map(str::to_string);
    }

    // ---------------------------------------------------------------------------------------------
    // Events

    /// An event envelope (§2.3): `type`, `payload`, `timestamp` (RFC 3339, seconds), `correlationId`
    /// (new UUID v4), `userId` only when given.
    pub fn envelope(&self, kind: &str, payload: Value, user_id: Option<&str>) -> Value {
        let mut env = json!({
            "type": kind,
            "payload": payload,
            "timestamp": now_secs(),
            "correlationId": uuid4(),
        });
        if let Some(user) = user_id.filter(|u| !u.is_empty()) {
            env["userId"] = Value::String(user.to_owned());
        }
        env
    }

    /// `api.deployed` for `d`.
    pub fn deployed_event(&self, d: &Deployment) -> Value {
        let payload = json!({"apiId": d.api_id, "deploymentId": d.deployment_id, "performedAt": d.performed_at});
        self.envelope("api.deployed", payload, None)
    }

    /// `api.undeployed` for `d`.
    pub fn undeployed_event(&self, d: &Deployment) -> Value {
        let payload = json!({"apiId": d.api_id, "deploymentId": d.deployment_id, "performedAt": d.performed_at});
        self.envelope("api.undeployed", payload, None)
    }

    /// `api.deleted` for `api_id`.
    pub fn deleted_event(&self, api_id: &str) -> Value {
        self.envelope("api.deleted", json!({ "apiId": api_id }), None)
    }

    /// `apikey.created` (user `admin`): `apiKeyHashes` is a JSON *string*
    /// `{"sha256": "<hex of the trimmed plaintext>"}`, `maskedApiKey` `***` + last 5 characters.
    pub fn key_created_event(
        &self,
        api_id: &str,
        uuid: &str,
        name: &str,
        plaintext: &str,
        expires_at: Option<&str>,
    ) -> Value {
        let now = now_secs();
        let mut payload = json!({
            "uuid": uuid,
            "apiId": api_id,
            "name": name,
            "apiKeyHashes": hashes_string(plaintext),
            "maskedApiKey": mask_key(plaintext),
            "createdAt": now,
            "updatedAt": now,
        });
        if let Some(exp) = expires_at {
            payload["expiresAt"] = Value::String(exp.to_owned());
        }
        self.envelope("apikey.created", payload, Some(USER_ID))
    }

    /// `apikey.updated` (user `admin`) for the key named `name`.
    pub fn key_updated_event(&self, api_id: &str, name: &str, plaintext: &str, expires_at: Option<&str>) -> Value {
        let mut payload = json!({
            "apiId": api_id,
            "keyName": name,
            "apiKeyHashes": hashes_string(plaintext),
            "maskedApiKey": mask_key(plaintext),
            "updatedAt": now_secs(),
        });
        if let Some(exp) = expires_at {
            payload["expiresAt"] = Value::String(exp.to_owned());
        }
        self.envelope("apikey.updated", payload, Some(USER_ID))
    }

    /// `apikey.revoked` (user `admin`) for the key named `name`.
    pub fn key_revoked_event(&self, api_id: &str, name: &str) -> Value {
        self.envelope(
            "apikey.revoked",
            json!({"apiId": api_id, "keyName": name}),
            Some(USER_ID),
        )
    }

    /// `subscription.created` / `.updated` / `.deleted` built from a subscription in the shape of
    /// [`Self::put_subscription`] (`id` becomes `subscriptionId`).
    pub fn subscription_event(&self, kind: &str, sub: &Value) -> Value {
        let mut payload = json!({
            "apiId": sub.get("apiId").cloned().unwrap_or(Value::Null),
            "subscriptionId": sub.get("id").or_else(|| sub.get("subscriptionId")).cloned().unwrap_or(Value::Null),
            "subscriptionToken": sub.get("subscriptionToken").cloned().unwrap_or(Value::Null),
        });
        let mut optional = vec!["applicationId"];
        if kind != "subscription.deleted" {
            optional.push("subscriptionPlanId");
            payload["status"] = sub.get("status").cloned().unwrap_or_else(|| json!("ACTIVE"));
        }
        for field in optional {
            if let Some(v) = sub.get(field).filter(|v| v.as_str().is_some_and(|s| !s.is_empty())) {
                payload[field] = v.clone();
            }
        }
        self.envelope(kind, payload, None)
    }

    /// `subscriptionPlan.created` / `.updated` / `.deleted` built from a plan in the shape of
    /// [`Self::put_plan`] (`id` becomes `planId`, `billingPlan` is `free`).
    pub fn plan_event(&self, kind: &str, plan: &Value) -> Value {
        let mut payload = json!({
            "planId": plan.get("id").or_else(|| plan.get("planId")).cloned().unwrap_or(Value::Null),
            "handle": plan.get("handle").cloned().unwrap_or(Value::Null),
            "planName": plan.get("planName").cloned().unwrap_or(Value::Null),
        });
        if kind != "subscriptionPlan.deleted" {
            payload["billingPlan"] = json!("free");
            payload["stopOnQuotaReach"] = plan.get("stopOnQuotaReach").cloned().unwrap_or(json!(false));
            payload["status"] = plan.get("status").cloned().unwrap_or_else(|| json!("ACTIVE"));
            for field in ["throttleLimitCount", "throttleLimitUnit", "expiryTime"] {
                if let Some(v) = plan.get(field).filter(|v| !v.is_null()) {
                    payload[field] = v.clone();
                }
            }
        }
        self.envelope(kind, payload, None)
    }

    /// Sends `envelope` as one text frame to every live connection and appends it to the event
    /// history. Returns how many connections it was queued to.
    pub fn push(&self, envelope: &Value) -> usize {
        let text = envelope.to_string();
        self.state().history.push(text.clone());
        self.shared().send_all(&[text])
    }

    /// Sends arbitrary text (e.g. a malformed frame) to every live connection; not recorded in the
    /// history. Returns how many connections it was queued to.
    pub fn push_raw(&self, text: &str) -> usize {
        self.shared().send_all(&[text.to_owned()])
    }

    /// Resends every historical event, in order, to every live connection. Returns how many
    /// connections got the whole history.
    pub fn replay(&self) -> usize {
        let history = self.state().history.clone();
        self.shared().send_all(&history)
    }

    /// Every envelope pushed so far, in order.
    pub fn history(&self) -> Vec<Value> {
        self.state()
            .history
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
            .collect()
    }

    /// Sends a close frame 1000 "normal closure" to every connection (they stop counting as live
    /// at once).
    pub fn close_all(&self) {
        self.shared().drop_connections(true);
    }

    /// Drops every WebSocket connection's TCP without a close frame.
    pub fn kill_all(&self) {
        self.shared().drop_connections(false);
    }

    /// How the next upgrade attempts are answered.
    pub fn set_refusal(&self, r: Refusal) {
        self.state().refusal = r;
    }

    /// Server pings: every `ping_every` (`None`: never, like the WSO2 mock); at each tick a
    /// connection whose last pong (or connect) is older than `pong_timeout` is closed with 1000
    /// "normal closure". Default 20 s / 30 s. Applies to connections established afterwards.
    pub fn set_heartbeat(&self, ping_every: Option<Duration>, pong_timeout: Duration) {
        let mut st = self.state();
        st.ping_every = ping_every;
        st.pong_timeout = pong_timeout;
    }

    // ---------------------------------------------------------------------------------------------
    // Observations

    /// Every `deployment.ack` frame received (the whole frame), in order.
    pub fn acks(&self) -> Vec<Value> {
        self.state().acks.clone()
    }

    /// Waits until at least `n` acks were received; panics with the acks seen on timeout.
    pub async fn wait_acks(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let acks = self.acks();
            if acks.len() >= n {
                return acks;
            }
            if Instant::now() >= deadline {
                panic!(
                    "expected {n} deployment.ack frame(s) within {timeout:?}, got {}: {acks:#?}",
                    acks.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Every text frame received from gateways, in order.
    pub fn frames(&self) -> Vec<String> {
        self.state().frames.clone()
    }

    /// Bodies of `POST /gateways/{id}/manifest`, in order.
    pub fn manifests(&self) -> Vec<Value> {
        self.state().manifests.clone()
    }

    /// Every HTTP request received, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.state().requests.clone()
    }

    /// Forgets recorded acks, frames, manifests, requests and the pong count.
    pub fn clear_observations(&self) {
        let mut st = self.state();
        st.acks.clear();
        st.frames.clear();
        st.manifests.clear();
        st.requests.clear();
        st.pongs = 0;
    }

    /// WebSocket connections currently open.
    pub fn live_connections(&self) -> usize {
        self.state().conns.len()
    }

    /// Successful upgrades so far (each got a `connection.ack`).
    pub fn total_connections(&self) -> usize {
        self.state().total_connections
    }

    /// Waits until [`Self::total_connections`] reaches `total`; panics on timeout.
    pub async fn wait_connections(&self, total: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.total_connections();
            if seen >= total {
                return;
            }
            if Instant::now() >= deadline {
                panic!("expected {total} WebSocket connection(s) within {timeout:?}, got {seen}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pongs received.
    pub fn pongs(&self) -> usize {
        self.state().pongs
    }
}
