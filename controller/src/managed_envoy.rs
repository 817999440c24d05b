//! The managed Envoy of `tollgate run`: renders a bootstrap from the template in `envoy/` and runs
//! Envoy so that it outlives the controller. A controller that crashes or is upgraded leaves Envoy
//! serving its last configuration; the next start on the same data dir adopts it (see `adopt`)
//! instead of starting a second one. Envoy starts with a cleared environment plus the few
//! variables it needs ([`child_env`]), so the admin password and the tokens the controller was
//! given never reach it.
//!
//! Envoy runs with hot restart off: in hot-restart mode Envoy asks the kernel for SIGTERM when its
//! parent dies (it expects a restarter wrapper as parent), which is what made it exit with a
//! killed controller. A configuration change is therefore handed over by stopping the old Envoy
//! and starting a new one, not by `--restart-epoch`.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;
use tracing::{info, warn};

use crate::config;

#[cfg(target_os = "linux")]
mod adopt;
mod process;
mod record;

pub use process::{ManagedEnvoy, STOP_GRACE};
pub use record::Record;

/// Why the managed Envoy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagedEnvoyError {
    /// There is no Envoy binary where the configuration says.
    #[error(
        "Envoy not found at {}: run `make envoy` (installs the pinned Envoy into .tools/envoy) or set TOLLGATE_ENVOY_BIN",
        .0.display()
    )]
    NotFound(PathBuf),
    /// The bootstrap template could not be read, or the rendered bootstrap (or the record of the
    /// running Envoy, or its log file) written.
    #[error("{what} {}: {source}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bootstrap is not YAML with an `xds_cluster` to put TLS on.
    #[error("the bootstrap template has no static cluster named xds_cluster to put TLS on")]
    NoXdsCluster,
    /// A TLS file path is not valid UTF-8 (Envoy's configuration is text).
    #[error("{0} is not a valid UTF-8 path")]
    Path(PathBuf),
    /// The process did not start.
    #[error("starting {}: {source}", binary.display())]
    Spawn { binary: PathBuf, source: std::io::Error },
}

/// Where to find Envoy and how to start it.
#[derive(Clone, Debug)]
pub struct EnvoySpec {
    pub binary: PathBuf,
    pub bootstrap_template: PathBuf,
    pub node_id: String,
    pub node_cluster: String,
    pub xds: SocketAddr,
    pub admin_port: u16,
    pub args: Vec<String>,
    /// TLS to the xDS port, when it serves TLS.
    pub xds_tls: Option<config::XdsTls>,
    /// Where Envoy's standard output and error go (appended); `None`: the controller's.
    pub log_file: Option<PathBuf>,
}

/// A bootstrap rendered for one data dir, and the identity of the Envoy it would start.
struct Prepared {
    /// `<dir>/envoy-bootstrap.yaml`.
    file: PathBuf,
    bootstrap: String,
    /// Envoy's arguments after the binary.
    args: Vec<OsString>,
    /// A digest of everything that shapes the Envoy process: binary, arguments, bootstrap, log file.
    identity: String,
}

/// The name of the bootstrap file in the managed Envoy's directory.
const BOOTSTRAP: &str = "envoy-bootstrap.yaml";
/// The name of the record of the running Envoy, next to its bootstrap.
pub const RECORD: &str = "managed-envoy.json";

// === impl EnvoySpec ===

impl EnvoySpec {
    /// From the config file; `TOLLGATE_ENVOY_BIN` overrides the binary.
    pub fn from_config(c: &config::Envoy, xds: SocketAddr, tls: &config::XdsTls) -> Self {
        let binary = std::env::var_os("TOLLGATE_ENVOY_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| c.binary.clone());
        EnvoySpec {
            binary,
            bootstrap_template: c.bootstrap.clone(),
            node_id: c.node_id.clone(),
            node_cluster: c.node_cluster.clone(),
            xds,
            admin_port: c.admin_port,
            args: c.args.clone(),
            xds_tls: tls.enabled().then(|| tls.clone()),
            log_file: c.log_file.clone(),
        }
    }

    /// The bootstrap with its placeholders filled in.
    pub fn render(&self, template: &str) -> String {
        let host = if self.xds.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            self.xds.ip().to_string()
        };
        template
            .replace("${NODE_ID}", &self.node_id)
            .replace("${NODE_CLUSTER}", &self.node_cluster)
            .replace("${XDS_HOST}", &host)
            .replace("${XDS_PORT}", &self.xds.port().to_string())
            .replace("${ADMIN_PORT}", &self.admin_port.to_string())
    }

    /// Envoy's arguments: the bootstrap, the drain time, hot restart off (see the module doc),
    /// then the configured ones.
    pub fn command_args(&self, bootstrap: &Path) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["-c".into(), bootstrap.into(), "--drain-time-s".into(), "5".into()];
        if !self.args.iter().any(|a| a == "--disable-hot-restart") {
            args.push("--disable-hot-restart".into());
        }
        args.extend(self.args.iter().map(OsString::from));
        args
    }

    /// Starts Envoy with its bootstrap in `dir`, or adopts the one a previous controller left
    /// running there when it is still ours and its configuration is unchanged. One that is ours
    /// but configured differently is stopped first.
    pub async fn launch(&self, dir: &Path) -> Result<ManagedEnvoy, ManagedEnvoyError> {
        self.launch_with_env(dir, std::env::vars_os()).await
    }

    /// [`EnvoySpec::launch`] with the controller's environment given (tests pass their own); a
    /// started Envoy gets only [`child_env`] of it.
    pub async fn launch_with_env(
        &self,
        dir: &Path,
        parent_env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<ManagedEnvoy, ManagedEnvoyError> {
        if !self.binary.is_file() {
            return Err(ManagedEnvoyError::NotFound(self.binary.clone()));
        }
        let prepared = self.prepare(dir)?;
        let record_path = dir.join(RECORD);
        if let Some(found) = Record::read(&record_path)
            && let Some(envoy) = self.take_over(&found, &prepared, &record_path).await
        {
            return Ok(envoy);
        }
        self.spawn(dir, &prepared, &record_path, parent_env)
    }

    /// Adopts the recorded Envoy, or stops it when its configuration changed; `None` when a new
    /// one is to be started.
    #[cfg(target_os = "linux")]
    async fn take_over(&self, found: &Record, want: &Prepared, record_path: &Path) -> Option<ManagedEnvoy> {
        match adopt::check(found, &want.identity, record_path).await {
            adopt::Verdict::Adopt(envoy) => {
                info!(
                    pid = envoy.pid(),
                    "adopted the managed envoy a previous controller left running"
                );
                Some(envoy)
            }
            adopt::Verdict::Replace(envoy, why) => {
                warn!(
                    pid = envoy.pid(),
                    why, "stopping the running managed envoy to start a new one"
                );
                envoy.stop(process::STOP_GRACE).await;
                None
            }
            adopt::Verdict::Gone => None,
        }
    }

    /// Adoption needs Linux (`/proc`, pidfds): elsewhere a new Envoy is always started.
    #[cfg(not(target_os = "linux"))]
    async fn take_over(&self, _: &Record, _: &Prepared, _: &Path) -> Option<ManagedEnvoy> {
        None
    }

    fn prepare(&self, dir: &Path) -> Result<Prepared, ManagedEnvoyError> {
        let template = std::fs::read_to_string(&self.bootstrap_template)
            .map_err(file_error("reading bootstrap template", &self.bootstrap_template))?;
        let file = dir.join(BOOTSTRAP);
        let mut bootstrap = self.render(&template);
        if let Some(tls) = &self.xds_tls {
            bootstrap = with_xds_tls(&bootstrap, tls)?;
        }
        let args = self.command_args(&file);
        let identity = record::identity(&self.binary, &args, &bootstrap, self.log_file.as_deref());
        Ok(Prepared {
            file,
            bootstrap,
            args,
            identity,
        })
    }

    /// Writes the bootstrap, starts Envoy in a process group of its own (a Ctrl-C meant for the
    /// controller does not reach it; the controller decides) and records it for adoption.
    fn spawn(
        &self,
        dir: &Path,
        prepared: &Prepared,
        record_path: &Path,
        parent_env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<ManagedEnvoy, ManagedEnvoyError> {
        std::fs::create_dir_all(dir).map_err(file_error("creating", dir))?;
        std::fs::write(&prepared.file, &prepared.bootstrap).map_err(file_error("writing", &prepared.file))?;
        let (stdout, stderr) = self.output()?;
        let mut command = Command::new(&self.binary);
        command
            .args(&prepared.args)
            .env_clear()
            .envs(child_env(parent_env))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        #[cfg(unix)]
        command.process_group(0);
        let child = command.spawn().map_err(|source| ManagedEnvoyError::Spawn {
            binary: self.binary.clone(),
            source,
        })?;
        let envoy = ManagedEnvoy::started(child, record_path.to_path_buf());
        let record = Record {
            pid: envoy.pid(),
            admin_port: self.admin_port,
            binary: self.binary.clone(),
            config_path: prepared.file.clone(),
            identity: prepared.identity.clone(),
        };
        record.write(record_path)?;
        Ok(envoy)
    }

    /// Envoy's standard output and error: the log file (appended) or the controller's own. Both
    /// survive the controller: no pipe runs through it.
    fn output(&self) -> Result<(Stdio, Stdio), ManagedEnvoyError> {
        let Some(path) = &self.log_file else {
            return Ok((Stdio::inherit(), Stdio::inherit()));
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(file_error("creating", parent))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(file_error("opening envoy log", path))?;
        let copy = file.try_clone().map_err(file_error("opening envoy log", path))?;
        Ok((Stdio::from(file), Stdio::from(copy)))
    }
}

/// A [`ManagedEnvoyError::File`] for `path`, to hand to `map_err`.
fn file_error(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> ManagedEnvoyError {
    let path = path.to_path_buf();
    move |source| ManagedEnvoyError::File { what, path, source }
}

/// `bootstrap` with TLS (and, with a client certificate, mutual TLS) on its `xds_cluster`: Envoy
/// checks the server certificate against `tls.trust()` and its DNS name against `tls.server_name`.
pub fn with_xds_tls(bootstrap: &str, tls: &config::XdsTls) -> Result<String, ManagedEnvoyError> {
    use serde_json::json;
    let file = |p: &Path| -> Result<serde_json::Value, ManagedEnvoyError> {
        let abs = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        let text = abs.to_str().ok_or_else(|| ManagedEnvoyError::Path(abs.clone()))?;
        Ok(json!({ "filename": text }))
    };
    let mut common = json!({
        "validation_context": {
            "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": tls.server_name}}],
        },
    });
    if let Some(ca) = tls.trust() {
        common["validation_context"]["trusted_ca"] = file(ca)?;
    }
    if let (Some(cert), Some(key)) = (&tls.client_cert, &tls.client_key) {
        common["tls_certificates"] = json!([{"certificate_chain": file(cert)?, "private_key": file(key)?}]);
    }
    let socket = json!({
        "name": "envoy.transport_sockets.tls",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
            "sni": tls.server_name,
            "common_tls_context": common,
        },
    });
    let mut doc: serde_yaml::Value = serde_yaml::from_str(bootstrap).map_err(|_| ManagedEnvoyError::NoXdsCluster)?;
    let cluster = doc["static_resources"]["clusters"]
        .as_sequence_mut()
        .and_then(|cs| cs.iter_mut().find(|c| c["name"].as_str() == Some("xds_cluster")))
        .and_then(serde_yaml::Value::as_mapping_mut)
        .ok_or(ManagedEnvoyError::NoXdsCluster)?;
    let socket = serde_yaml::to_value(socket).map_err(|_| ManagedEnvoyError::NoXdsCluster)?;
    cluster.insert("transport_socket".into(), socket);
    serde_yaml::to_string(&doc).map_err(|_| ManagedEnvoyError::NoXdsCluster)
}

/// The variables Envoy keeps from the controller's environment: where to find things (`PATH`,
/// `HOME`, `TMPDIR`, `LD_LIBRARY_PATH`), locale and time zone, and Envoy's own `ENVOY_*`. Nothing
/// else, above all no `TOLLGATE_*` (the admin password, the control-plane and replica tokens).
pub fn child_env(parent: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    const KEEP: &[&str] = &["PATH", "HOME", "TMPDIR", "LD_LIBRARY_PATH", "TZ", "LANG", "LC_ALL"];
    parent
        .into_iter()
        .filter(|(k, _)| {
            k.to_str()
                .is_some_and(|k| KEEP.contains(&k) || k.starts_with("ENVOY_") || k.starts_with("LC_"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
