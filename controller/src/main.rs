//! The `tollgate` command: `serve` (controller), `run` (controller plus a managed Envoy),
//! `authz-replica` (an ext_authz service fed by a controller over xDS), `hash-password` (an
//! argon2id hash for the config file).

use std::path::PathBuf;
use std::process::ExitCode;

use tollgate::config::{Config, LogFormat};

const USAGE: &str = "usage: tollgate <serve|run|hash-password> [--config FILE]\n       tollgate authz-replica --xds URL --token-file FILE [--listen ADDR] [--node ID]\n       (or the token in TOLLGATE_REPLICA_TOKEN instead of --token-file)";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let command = args.next().unwrap_or_default();
    if command == "authz-replica" {
        return authz_replica(args);
    }
    let mut config_path: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--config" | "-c", Some(p)) => config_path = Some(PathBuf::from(p)),
            _ => return usage(),
        }
    }
    if command == "hash-password" {
        return hash_password();
    }
    if command != "serve" && command != "run" {
        return usage();
    }
    let config = match Config::load(config_path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tollgate: {e}");
            return ExitCode::from(64);
        }
    };
    init_logging(&config);
    tracing::info!(config = %config.redacted(), "configuration");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tollgate: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(tollgate::runtime::run(config, command == "run")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tollgate failed");
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `tollgate authz-replica --xds http://controller:18000 --token-file FILE [--listen 0.0.0.0:18001]
/// [--node ID]`; the token (the controller's `<data_dir>/replica-token`) may come from
/// `TOLLGATE_REPLICA_TOKEN` instead.
fn authz_replica(mut args: impl Iterator<Item = String>) -> ExitCode {
    let mut xds = None;
    let mut token_file = None;
    let mut listen = "0.0.0.0:18001".to_string();
    let mut node = format!("authz-replica-{}", std::process::id());
    while let Some(a) = args.next() {
        match (a.as_str(), args.next()) {
            ("--xds", Some(v)) => xds = Some(v),
            ("--listen", Some(v)) => listen = v,
            ("--node", Some(v)) => node = v,
            ("--token-file", Some(v)) => token_file = Some(v),
            _ => return usage(),
        }
    }
    let Some(xds) = xds else { return usage() };
    let token = match token_file {
        Some(f) => match std::fs::read_to_string(&f) {
            Ok(t) => t.trim().to_string(),
            Err(e) => {
                eprintln!("tollgate: cannot read --token-file {f}: {e}");
                return ExitCode::from(66);
            }
        },
        None => std::env::var("TOLLGATE_REPLICA_TOKEN")
            .unwrap_or_default()
            .trim()
            .to_string(),
    };
    if token.is_empty() {
        eprintln!(
            "tollgate: authz-replica needs the controller's replica token: --token-file FILE or TOLLGATE_REPLICA_TOKEN"
        );
        return ExitCode::from(64);
    }
    let Ok(listen) = listen.parse() else {
        eprintln!("tollgate: --listen {listen:?} is not an address like 0.0.0.0:18001");
        return ExitCode::from(64);
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tollgate: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let config = tollgate::replica::ReplicaConfig {
        xds,
        listen,
        node_id: node,
        token,
    };
    runtime.block_on(async move {
        let replica = match tollgate::replica::Replica::start(config).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("tollgate: {e:#}");
                return ExitCode::FAILURE;
            }
        };
        tollgate::runtime::signal().await;
        replica.stop().await;
        ExitCode::SUCCESS
    })
}

fn usage() -> ExitCode {
    eprintln!("{USAGE}");
    ExitCode::from(64)
}

fn hash_password() -> ExitCode {
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return ExitCode::FAILURE;
    }
    match tollgate::auth::hash_password(line.trim_end_matches(['\n', '\r'])) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&config.logging.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
