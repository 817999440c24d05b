//! The managed Envoy of `tollgate run`: renders a bootstrap from the template in `envoy/` and runs
//! Envoy as a child process that dies with the controller. The child starts with a cleared
//! environment plus the few variables it needs ([`child_env`]), so the admin password and the
//! tokens the controller was given never reach it.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::config;

/// Why the managed Envoy could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ManagedEnvoyError {
    /// There is no Envoy binary where the configuration says.
    #[error(
        "Envoy not found at {}: run `make envoy` (installs the pinned Envoy into .tools/envoy) or set TOLLGATE_ENVOY_BIN",
        .0.display()
    )]
    NotFound(PathBuf),
    /// The bootstrap template could not be read, or the rendered bootstrap written.
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
}

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

    /// Writes the bootstrap into `dir` and starts Envoy; it is killed when the handle drops.
    pub fn spawn(&self, dir: &Path) -> Result<Child, ManagedEnvoyError> {
        self.spawn_with_env(dir, std::env::vars_os())
    }

    /// [`EnvoySpec::spawn`] with the controller's environment given (tests pass their own); Envoy
    /// gets only [`child_env`] of it.
    pub fn spawn_with_env(
        &self,
        dir: &Path,
        parent_env: impl IntoIterator<Item = (OsString, OsString)>,
    ) -> Result<Child, ManagedEnvoyError> {
        if !self.binary.is_file() {
            return Err(ManagedEnvoyError::NotFound(self.binary.clone()));
        }
        let file_error = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| ManagedEnvoyError::File { what, path, source }
        };
        let template = std::fs::read_to_string(&self.bootstrap_template)
            .map_err(file_error("reading bootstrap template", &self.bootstrap_template))?;
        std::fs::create_dir_all(dir).map_err(file_error("creating", dir))?;
        let file = dir.join("envoy-bootstrap.yaml");
        let mut bootstrap = self.render(&template);
        if let Some(tls) = &self.xds_tls {
            bootstrap = with_xds_tls(&bootstrap, tls)?;
        }
        std::fs::write(&file, bootstrap).map_err(file_error("writing", &file))?;
        Command::new(&self.binary)
            .arg("-c")
            .arg(&file)
            .args(["--drain-time-s", "5"])
            .args(&self.args)
            .env_clear()
            .envs(child_env(parent_env))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ManagedEnvoyError::Spawn {
                binary: self.binary.clone(),
                source,
            })
    }
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
mod tests {
    use super::*;

    #[test]
    fn the_child_keeps_only_what_envoy_needs() {
        let parent = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/t"),
            ("ENVOY_LOG_LEVEL", "info"),
            ("TOLLGATE_ADMIN_PASSWORD", "hunter2"),
            ("TOLLGATE_CONTROL_PLANE_TOKEN", "cp-token"),
            ("TOLLGATE_REPLICA_TOKEN", "r-token"),
            ("AWS_SECRET_ACCESS_KEY", "aws"),
        ]
        .map(|(k, v)| (OsString::from(k), OsString::from(v)));
        let kept: Vec<String> = child_env(parent)
            .into_iter()
            .map(|(k, _)| k.into_string().unwrap())
            .collect();
        assert_eq!(kept, ["PATH", "HOME", "ENVOY_LOG_LEVEL"]);
    }

    #[test]
    fn render_fills_every_placeholder() {
        let spec = EnvoySpec {
            binary: PathBuf::from("envoy"),
            bootstrap_template: PathBuf::new(),
            node_id: "n".into(),
            node_cluster: "c".into(),
            xds: "0.0.0.0:18000".parse().unwrap(),
            admin_port: 9901,
            xds_tls: None,
            args: vec![],
        };
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for t in ["envoy/bootstrap-delta.yaml", "envoy/bootstrap-sotw.yaml"] {
            let out = spec.render(&std::fs::read_to_string(root.join(t)).unwrap());
            assert!(!out.contains("${"), "{t} left a placeholder");
            assert!(out.contains("127.0.0.1") && out.contains("18000") && out.contains("9901"));
        }
    }

    #[test]
    fn a_missing_binary_says_how_to_install() {
        let spec = EnvoySpec {
            binary: PathBuf::from("/nonexistent/envoy"),
            bootstrap_template: PathBuf::new(),
            node_id: "n".into(),
            node_cluster: "c".into(),
            xds: "127.0.0.1:1".parse().unwrap(),
            admin_port: 1,
            args: vec![],
            xds_tls: None,
        };
        let err = spec.spawn(&std::env::temp_dir()).unwrap_err().to_string();
        assert!(err.contains("make envoy"), "{err}");
    }
}
