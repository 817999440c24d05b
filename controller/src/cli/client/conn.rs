//! Where the controller is and who is asking, and the HTTP client that asks. Each setting comes
//! from its flag, else its `TOLLGATE_*` variable, else the CLI config file, else its default. The
//! client is reqwest (as `probe` and the platform link use), with basic auth, no proxy and no
//! redirects; a non-2xx answer becomes a [`ClientError`] that keeps the server's field messages.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use serde_json::Value;

use super::ConnFlags;
pub use super::error::ClientError;
use crate::secret::Secret;

/// The management API's address when nothing says otherwise (`make run`'s).
pub const DEFAULT_URL: &str = "http://localhost:9090";
/// The admin API's port when only the management URL is known.
pub const DEFAULT_ADMIN_PORT: u16 = 9092;
/// How long one request may take (a write waits for Envoy's ACK, at most `server.ack_timeout`).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The CLI config file (`~/.config/tollgate/cli.toml`): the same settings as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    url: Option<String>,
    admin_url: Option<String>,
    username: Option<String>,
    password: Option<Secret<String>>,
    /// Relative to the config file's folder.
    password_file: Option<PathBuf>,
    /// Relative to the config file's folder.
    ca: Option<PathBuf>,
}

/// The resolved connection settings.
#[derive(Debug)]
pub struct Settings {
    pub url: Url,
    pub admin_url: Url,
    pub username: String,
    pub password: Option<Secret<String>>,
    pub ca: Option<PathBuf>,
}

// === impl Settings ===

impl Settings {
    /// Flags, then the environment (`env`), then the config file, then defaults.
    pub fn resolve(flags: &ConnFlags, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ClientError> {
        // An empty variable counts as unset (`TOLLGATE_URL= tollgate ...`).
        let env = |var: &str| env(var).filter(|v| !v.is_empty());
        let (file, dir) = load_file(flags, &env)?.unwrap_or_default();
        let in_dir = |p: PathBuf| dir.join(p);
        let url = flags.url.clone().or_else(|| env("TOLLGATE_URL")).or(file.url);
        let url = parse_url("management URL", url.as_deref().unwrap_or(DEFAULT_URL))?;
        let admin_url = match flags
            .admin_url
            .clone()
            .or_else(|| env("TOLLGATE_ADMIN_URL"))
            .or(file.admin_url)
        {
            Some(u) => parse_url("admin URL", &u)?,
            None => {
                let mut u = url.clone();
                // Only fails for URLs without a host, which parse_url refuses.
                let _ = u.set_port(Some(DEFAULT_ADMIN_PORT));
                u
            }
        };
        let username = flags
            .username
            .clone()
            .or_else(|| env("TOLLGATE_USERNAME"))
            .or(file.username)
            .unwrap_or_else(|| "admin".into());
        let password = match (&flags.password, &flags.password_file) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(f)) => Some(read_password(f)?),
            (None, None) => match (env("TOLLGATE_PASSWORD"), env("TOLLGATE_PASSWORD_FILE")) {
                (Some(p), _) => Some(Secret::new(p)),
                (None, Some(f)) => Some(read_password(Path::new(&f))?),
                (None, None) => match (file.password, file.password_file) {
                    (Some(p), _) => Some(p),
                    (None, Some(f)) => Some(read_password(&in_dir(f))?),
                    (None, None) => None,
                },
            },
        };
        let ca = flags
            .ca
            .clone()
            .or_else(|| env("TOLLGATE_CA").map(PathBuf::from))
            .or(file.ca.map(in_dir));
        Ok(Settings {
            url,
            admin_url,
            username,
            password,
            ca,
        })
    }
}

/// The config file and its folder: `--cli-config` or `TOLLGATE_CLI_CONFIG` (which must exist), else
/// `$XDG_CONFIG_HOME/tollgate/cli.toml` or `~/.config/tollgate/cli.toml` when there is one.
fn load_file(
    flags: &ConnFlags,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<(FileSettings, PathBuf)>, ClientError> {
    let explicit = flags
        .cli_config
        .clone()
        .or_else(|| env("TOLLGATE_CLI_CONFIG").map(PathBuf::from));
    let path = match explicit {
        Some(p) => p,
        None => {
            let base = env("XDG_CONFIG_HOME")
                .map(PathBuf::from)
                .or_else(|| env("HOME").map(|h| Path::new(&h).join(".config")));
            match base.map(|b| b.join("tollgate").join("cli.toml")) {
                Some(p) if p.is_file() => p,
                _ => return Ok(None),
            }
        }
    };
    let text = std::fs::read_to_string(&path).map_err(|source| ClientError::Input {
        path: path.display().to_string(),
        source,
    })?;
    let file: FileSettings = toml::from_str(&text).map_err(|e| ClientError::Setting {
        what: format!("CLI config file {}", path.display()),
        reason: e.message().to_string(),
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(Some((file, dir)))
}

/// The first line of a password file (`data/admin-password` ends with a newline).
fn read_password(path: &Path) -> Result<Secret<String>, ClientError> {
    let text = std::fs::read_to_string(path).map_err(|source| ClientError::Input {
        path: path.display().to_string(),
        source,
    })?;
    Ok(Secret::new(text.lines().next().unwrap_or_default().to_string()))
}

/// An http(s) URL with a host and without credentials (they would end up in error messages).
fn parse_url(what: &str, s: &str) -> Result<Url, ClientError> {
    let bad = |reason: String| ClientError::Setting {
        what: what.to_string(),
        reason,
    };
    let url = Url::parse(s).map_err(|e| bad(format!("{s:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(format!("{s:?} is not an http:// or https:// URL")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "put the user name and password in TOLLGATE_USERNAME and TOLLGATE_PASSWORD, not in the URL".into(),
        ));
    }
    Ok(url)
}

/// Calls the management and admin APIs.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    settings: Settings,
}

/// Which API a request goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `/api/management/v1`.
    Management,
    /// `/api/admin/v1`.
    Admin,
}

// === impl Client ===

impl Client {
    /// A client for `settings`; TLS trusts the system's CAs plus `settings.ca`.
    pub fn new(settings: Settings) -> Result<Client, ClientError> {
        let mut builder = reqwest::Client::builder()
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("tollgate-cli/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none());
        if settings.url.scheme() == "https" || settings.admin_url.scheme() == "https" {
            builder = builder.use_preconfigured_tls(tls(settings.ca.as_deref())?);
        }
        let http = builder.build().map_err(|e| ClientError::Tls(e.to_string()))?;
        Ok(Client { http, settings })
    }

    /// The URL of `segments` (each percent-encoded) under `api`'s base path.
    pub fn url(&self, api: Api, segments: &[&str]) -> Url {
        let (mut url, base) = match api {
            Api::Management => (self.settings.url.clone(), ["api", "management", "v1"]),
            Api::Admin => (self.settings.admin_url.clone(), ["api", "admin", "v1"]),
        };
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(base).extend(segments);
        }
        url
    }

    /// Sends a request with credentials; the JSON body of a 2xx answer (`Null` when empty), else
    /// the refusal as an error.
    pub async fn send(&self, method: Method, url: Url, body: Option<&Value>) -> Result<Value, ClientError> {
        let (status, value) = self.exchange(method.clone(), url.clone(), body, true).await?;
        if status.is_success() {
            Ok(value)
        } else {
            Err(ClientError::refused(
                &method,
                &url,
                status,
                &value,
                self.settings.password.is_some(),
            ))
        }
    }

    /// Sends a request (with credentials when `auth`); the status and JSON body whatever the status.
    pub async fn exchange(
        &self,
        method: Method,
        url: Url,
        body: Option<&Value>,
        auth: bool,
    ) -> Result<(StatusCode, Value), ClientError> {
        let mut req = self.http.request(method, url.clone());
        if auth {
            let password = self.settings.password.as_ref().map(|p| p.expose().as_str());
            req = req.basic_auth(&self.settings.username, password);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| ClientError::transport(&url, e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ClientError::transport(&url, e))?;
        let value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }
}

/// rustls with the system's trust store plus the PEM certificates of `ca`.
fn tls(ca: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(path) = ca {
        let pem = std::fs::read(path).map_err(|source| ClientError::Input {
            path: path.display().to_string(),
            source,
        })?;
        let bad = |e: String| ClientError::Tls(format!("{}: {e}", path.display()));
        let mut n = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            roots
                .add(cert.map_err(|e| bad(e.to_string()))?)
                .map_err(|e| bad(e.to_string()))?;
            n += 1;
        }
        if n == 0 {
            return Err(bad("holds no certificate".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}
