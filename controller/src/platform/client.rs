//! The platform API's gateway REST surface (`/api/internal/v1`, reference §3), authenticated with
//! the `api-key` header. The token is never logged, and redirects are never followed: reqwest would
//! carry the `api-key` header to wherever a redirect points (it strips only standard auth headers),
//! https to http included, so a 3xx is an error instead.

use std::sync::Arc;

use http::{HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::LinkError;
use super::archive::{self, BatchEntry};
use crate::config::ControlPlane;

/// REST calls to one platform API.
#[derive(Clone)]
pub struct PlatformClient {
    http: reqwest::Client,
    origin: String,
    /// The `api-key` header, marked sensitive so that libraries that honour it never print it.
    token: HeaderValue,
}

impl std::fmt::Debug for PlatformClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformClient")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// The platform API answered with an error status (its `description` when it gave one).
    #[error("{path}: HTTP {status}: {description}")]
    Status {
        path: String,
        status: StatusCode,
        description: String,
    },
    #[error("{path}: {source}")]
    Transport {
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{path}: unexpected body: {message}")]
    Body { path: String, message: String },
}

impl RestError {
    /// The HTTP status, when the platform API answered.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            RestError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// One entry of `GET /deployments`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentInfo {
    pub artifact_id: String,
    pub deployment_id: String,
    #[serde(default)]
    pub kind: String,
    pub state: ListedState,
    pub deployed_at: String,
}

/// What `GET /deployments` says of a deployment (`DEPLOYED`, `UNDEPLOYED`, or something newer).
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ListedState {
    Deployed,
    Undeployed,
    /// A state this build does not know: left alone.
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct DeploymentList {
    #[serde(default)]
    deployments: Vec<DeploymentInfo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Exists {
    artifact_id: String,
    exists: bool,
}

#[derive(Deserialize)]
struct ExistsList {
    #[serde(default)]
    artifacts: Vec<Exists>,
}

// === impl PlatformClient ===

impl PlatformClient {
    /// A client for `https://{host}` using `tls`.
    pub fn new(cp: &ControlPlane, tls: Arc<rustls::ClientConfig>) -> Result<PlatformClient, LinkError> {
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .timeout(cp.request_timeout)
            .connect_timeout(cp.request_timeout.min(std::time::Duration::from_secs(10)))
            .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(LinkError::HttpClient)?;
        let mut token = HeaderValue::from_str(cp.token.expose()).map_err(|_| LinkError::BadToken)?;
        token.set_sensitive(true);
        Ok(PlatformClient {
            http,
            origin: format!("https://{}", cp.host),
            token,
        })
    }

    /// `GET /internal/gateway/.well-known`: `Some(gatewayPath)` only for an on-prem APIM; the
    /// platform API answers 404.
    pub async fn well_known(&self) -> Option<String> {
        let resp = self
            .http
            .get(format!("{}/internal/gateway/.well-known", self.origin))
            .header("api-key", self.token.clone())
            .send()
            .await
            .ok()?;
        if resp.status() != StatusCode::OK {
            return None;
        }
        let v: Value = resp.json().await.ok()?;
        v.get("gatewayPath").and_then(Value::as_str).map(str::to_string)
    }

    /// `GET /apis/{id}`: the artifact's YAML (first YAML entry of the ZIP).
    pub async fn api_artifact(&self, api_id: &str) -> Result<String, RestError> {
        let path = format!("/apis/{api_id}");
        let resp = self
            .send(self.get(&path).header("accept", "application/zip"), &path)
            .await?;
        let bytes = resp.bytes().await.map_err(|source| RestError::Transport {
            path: path.clone(),
            source,
        })?;
        archive::first_yaml_in_zip(&bytes).map_err(|e| RestError::Body {
            path,
            message: e.to_string(),
        })
    }

    /// `GET /deployments`.
    pub async fn deployments(&self) -> Result<Vec<DeploymentInfo>, RestError> {
        let list: DeploymentList = self.json(self.get("/deployments"), "/deployments").await?;
        Ok(list.deployments)
    }

    /// `POST /deployments/fetch-batch`.
    pub async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchEntry>, RestError> {
        let path = "/deployments/fetch-batch";
        let req = self
            .post(path)
            .header("accept", "application/x-tar+gzip")
            .json(&json!({ "deploymentIds": ids }));
        let resp = self.send(req, path).await?;
        let bytes = resp.bytes().await.map_err(|source| RestError::Transport {
            path: path.into(),
            source,
        })?;
        archive::batch_from_tar_gz(&bytes).map_err(|e| RestError::Body {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// `POST /artifacts/exists`: the ids among `ids` that no longer exist.
    pub async fn gone(&self, ids: &[String]) -> Result<Vec<String>, RestError> {
        let path = "/artifacts/exists";
        let list: ExistsList = self
            .json(self.post(path).json(&json!({ "artifactIds": ids })), path)
            .await?;
        Ok(list
            .artifacts
            .into_iter()
            .filter(|a| !a.exists && ids.contains(&a.artifact_id))
            .map(|a| a.artifact_id)
            .collect())
    }

    /// `GET /secrets/{handle}/value`: a secret an artifact names; `None` when the platform API
    /// has no such secret for this gateway (404).
    pub async fn secret_value(&self, handle: &str) -> Result<Option<crate::secret::Secret<String>>, RestError> {
        #[derive(Deserialize)]
        struct Value {
            value: String,
        }
        let path = format!("/secrets/{handle}/value");
        match self.json::<Value>(self.get(&path), &path).await {
            Ok(v) => Ok(Some(crate::secret::Secret::new(v.value))),
            Err(e) if e.status() == Some(StatusCode::NOT_FOUND) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /subscription-plans`.
    pub async fn plans(&self) -> Result<Vec<Value>, RestError> {
        self.json(self.get("/subscription-plans"), "/subscription-plans").await
    }

    /// `GET /apis/{id}/subscriptions`.
    pub async fn subscriptions(&self, api_id: &str) -> Result<Vec<Value>, RestError> {
        let path = format!("/apis/{api_id}/subscriptions");
        self.json(self.get(&path), &path).await
    }

    /// `GET /apis/api-keys`: every key (active and revoked) of the REST APIs deployed here, or,
    /// with `page` (offset, limit), one page of a paginated listing (see `sync::keys`).
    pub async fn api_keys(&self, page: Option<(usize, usize)>) -> Result<Value, RestError> {
        let mut req = self.get("/apis/api-keys");
        if let Some((offset, limit)) = page {
            req = req.query(&[("offset", offset), ("limit", limit)]);
        }
        self.json(req, "/apis/api-keys").await
    }

    /// `POST /gateways/{id}/manifest`.
    pub async fn manifest(&self, gateway_id: &str, body: &Value) -> Result<(), RestError> {
        let path = format!("/gateways/{gateway_id}/manifest");
        self.send(self.post(&path).json(body), &path).await.map(|_| ())
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}/api/internal/v1{path}", self.origin))
            .header("api-key", self.token.clone())
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/internal/v1{path}", self.origin))
            .header("api-key", self.token.clone())
    }

    async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> Result<reqwest::Response, RestError> {
        let resp = req.send().await.map_err(|source| RestError::Transport {
            path: path.into(),
            source: source.without_url(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status.is_redirection() {
            return Err(RestError::Status {
                path: path.into(),
                status,
                description: "a redirect, not followed (the gateway token goes to the configured host only)".into(),
            });
        }
        let body = resp.text().await.unwrap_or_default();
        let description = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("description")
                    .or_else(|| v.get("message"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| body.chars().take(200).collect());
        Err(RestError::Status {
            path: path.into(),
            status,
            description,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        &self,
        req: reqwest::RequestBuilder,
        path: &str,
    ) -> Result<T, RestError> {
        let resp = self.send(req, path).await?;
        let bytes = resp.bytes().await.map_err(|source| RestError::Transport {
            path: path.into(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|e| RestError::Body {
            path: path.into(),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tollgate_testkit::FakePlatform;

    use super::*;

    /// Issue #13: a 3xx from the platform API is an error naming the status, and nothing (above all
    /// not the `api-key` header) reaches the URL it points to, here plain http.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        const TOKEN: &str = "redirect-test-gateway-token-2b7d";
        let fake = FakePlatform::start(TOKEN).await;
        let trap = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let trap_url = format!("http://{}", trap.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::<u8>::new()));
        let recorded = seen.clone();
        tokio::spawn(async move {
            let body = "{\"deployments\":[]}";
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            while let Ok((mut conn, _)) = trap.accept().await {
                let mut buf = vec![0u8; 16 * 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                recorded.lock().unwrap().extend_from_slice(&buf[..n]);
                let _ = conn.write_all(answer.as_bytes()).await;
            }
        });
        fake.set_rest_redirect(Some(&trap_url));
        let cp = ControlPlane {
            host: fake.host(),
            token: TOKEN.into(),
            ..ControlPlane::default()
        };
        let client = PlatformClient::new(&cp, fake.client_tls()).unwrap();
        let result = client.deployments().await;
        let reached = String::from_utf8_lossy(&seen.lock().unwrap()).into_owned();
        assert!(reached.is_empty(), "the redirect was followed: {reached}");
        let err = result.unwrap_err();
        assert_eq!(err.status(), Some(StatusCode::TEMPORARY_REDIRECT), "{err}");
        assert!(err.to_string().contains("307"), "{err}");
    }
}
