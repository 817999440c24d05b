//! `tollgate authz-replica --xds URL --token-file FILE [--listen ADDR] [--node ID]
//! [--max-staleness DURATION]`: an ext_authz service fed by a controller over xDS. The token (the controller's `<data_dir>/replica-token`)
//! may come from `TOLLGATE_REPLICA_TOKEN` instead of `--token-file`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use super::CliError;
use crate::replica::{DEFAULT_MAX_STALENESS, Replica, ReplicaConfig};

/// The variable that may carry the replica token.
pub const REPLICA_TOKEN_VAR: &str = "TOLLGATE_REPLICA_TOKEN";

/// The arguments of `authz-replica`, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplicaArgs {
    pub xds: String,
    pub listen: SocketAddr,
    pub node_id: String,
    /// `--max-staleness`: `None` for `0` (no limit).
    pub max_staleness: Option<Duration>,
    /// Never logged or shown by `Debug`.
    pub token: String,
}

impl std::fmt::Debug for ReplicaArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaArgs")
            .field("xds", &self.xds)
            .field("listen", &self.listen)
            .field("node_id", &self.node_id)
            .field("max_staleness", &self.max_staleness)
            .field("token", &"[redacted]")
            .finish()
    }
}

// === impl ReplicaArgs ===

impl ReplicaArgs {
    /// Parses the flags (in the order the checks have always run: `--xds`, then the token, then
    /// `--listen`).
    pub fn parse(
        mut args: impl Iterator<Item = String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReplicaArgs, CliError> {
        let (mut xds, mut token_file) = (None, None);
        // Like the controller's own ext_authz port: loopback unless told otherwise, since anyone
        // who reaches it can test candidate keys.
        let mut listen = "127.0.0.1:18001".to_string();
        let mut node_id = format!("authz-replica-{}", std::process::id());
        let mut staleness = None;
        while let Some(a) = args.next() {
            match (a.as_str(), args.next()) {
                ("--xds", Some(v)) => xds = Some(v),
                ("--listen", Some(v)) => listen = v,
                ("--node", Some(v)) => node_id = v,
                ("--token-file", Some(v)) => token_file = Some(v),
                ("--max-staleness", Some(v)) => staleness = Some(v),
                _ => return Err(CliError::Usage),
            }
        }
        let xds = xds.ok_or(CliError::Usage)?;
        let token = match token_file {
            Some(path) => match std::fs::read_to_string(&path) {
                Ok(t) => t.trim().to_string(),
                Err(source) => return Err(CliError::TokenFile { path, source }),
            },
            None => env(REPLICA_TOKEN_VAR).unwrap_or_default().trim().to_string(),
        };
        if token.is_empty() {
            return Err(CliError::NoToken);
        }
        let listen = listen.parse().map_err(|_| CliError::Listen(listen))?;
        let max_staleness = match staleness {
            None => Some(DEFAULT_MAX_STALENESS),
            Some(v) if v.trim() == "0" => None,
            Some(v) => match humantime::parse_duration(&v) {
                Ok(d) if !d.is_zero() => Some(d),
                _ => return Err(CliError::Staleness(v)),
            },
        };
        Ok(ReplicaArgs {
            xds,
            listen,
            node_id,
            max_staleness,
            token,
        })
    }
}

/// Runs the replica until SIGINT/SIGTERM; exit 1 when it cannot start.
pub(super) fn run(args: ReplicaArgs) -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    let config = ReplicaConfig {
        xds: args.xds,
        listen: args.listen,
        node_id: args.node_id,
        token: args.token,
        max_staleness: args.max_staleness,
    };
    runtime.block_on(async move {
        let replica = match Replica::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tollgate: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        crate::runtime::signal().await;
        replica.stop().await;
        ExitCode::SUCCESS
    })
}
