//! The command line: the arguments parsed into a [`Command`], and each command run with the exit
//! codes scripts rely on: 64 for a usage or configuration error, 66 for an input file that cannot
//! be read, 1 for a failure at run time (the client commands add a few, see [`client`]).

pub mod client;
mod logging;
mod password;
pub mod probe;
mod replica;
mod rotate;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ConfigError;

pub use logging::{capped, log_filter};
pub use replica::ReplicaArgs;

/// What `tollgate` prints for arguments it does not understand.
pub const USAGE: &str = "usage: tollgate <serve|run|hash-password> [--config FILE] [--set SECTION.KEY=VALUE ...]\n       tollgate <apply|get|delete|keys|status|completion> ...   (a client of the management API; tollgate --help)\n       tollgate secrets rotate [--config FILE] [--set SECTION.KEY=VALUE ...]   (re-encrypt stored secrets with the current key)\n       tollgate probe URL   (GET; exit 0 on a 2xx: container health checks)\n       tollgate authz-replica --xds URL --token-file FILE [--listen ADDR] [--node ID] [--max-staleness DURATION]\n         [--quota-store URL [--quota-failure-mode open|closed] [--quota-sync-interval DURATION]]   (shared quotas)\n         [--application-header NAME] [--subscription-header NAME]   (the controller's api_keys names, when not the defaults)\n         [--xds-ca FILE --xds-server-name NAME [--tls-cert FILE --tls-key FILE]]   (TLS to an https:// xDS URL)\n         [--listen-cert FILE --listen-key FILE [--listen-client-ca FILE]]   (TLS on the ext_authz port)\n       (or the token in TOLLGATE_REPLICA_TOKEN instead of --token-file)";

/// Usage or configuration error (sysexits `EX_USAGE`).
pub const EXIT_USAGE: u8 = 64;
/// An input file that cannot be read (sysexits `EX_NOINPUT`).
pub const EXIT_NO_INPUT: u8 = 66;

/// A command line, parsed.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    /// `serve` (the controller) or `run` (the controller and a managed Envoy).
    /// `--set KEY=VALUE` (repeatable) overrides one configuration key, over the environment.
    Serve {
        config: Option<PathBuf>,
        envoy: bool,
        sets: Vec<crate::config::FlagValue>,
    },
    /// `hash-password`: an argon2id hash of the line on standard input.
    HashPassword,
    /// `secrets rotate`: re-encrypts the stored secrets with the current key.
    RotateSecrets {
        config: Option<PathBuf>,
        sets: Vec<crate::config::FlagValue>,
    },
    /// `probe URL`: a GET that exits 0 on a 2xx (container health checks).
    Probe(String),
    /// `authz-replica`: an ext_authz service fed by a controller over xDS.
    AuthzReplica(Box<ReplicaArgs>),
    /// `apply`, `get`, `delete`, `keys`, `status`, `completion`: a client of the management API.
    Client(Box<client::ClientArgs>),
}

/// Why the command line cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Unknown command, flag, or a flag without its value.
    #[error("{USAGE}")]
    Usage,
    /// `--token-file` names a file that cannot be read.
    #[error("cannot read --token-file {path}: {source}")]
    TokenFile { path: String, source: std::io::Error },
    /// A TLS file flag (`--xds-ca`, `--tls-cert`, `--tls-key`) names a file that cannot be read.
    #[error("cannot read {flag} {path}: {source}")]
    InputFile {
        flag: &'static str,
        path: String,
        source: std::io::Error,
    },
    /// `authz-replica` without a token.
    #[error("authz-replica needs the controller's replica token: --token-file FILE or TOLLGATE_REPLICA_TOKEN")]
    NoToken,
    /// `--listen` is not a socket address.
    #[error("--listen {0:?} is not an address like 127.0.0.1:18001")]
    Listen(String),
    /// `--max-staleness` is not a duration.
    #[error("--max-staleness {0:?} is not a duration like 5m or 30s (0: no limit)")]
    Staleness(String),
    /// `--quota-store` is not a store URL (not repeated: it may hold a password).
    #[error("--quota-store: {0}")]
    QuotaStore(String),
    /// `--quota-failure-mode` is neither `open` nor `closed`.
    #[error("--quota-failure-mode {0:?} must be open or closed")]
    QuotaFailureMode(String),
    /// `--quota-sync-interval` is not a duration between 1ms and 1s.
    #[error("--quota-sync-interval {0:?} must be a duration between 1ms and 1s, like 5ms")]
    QuotaSyncInterval(String),
    /// `--application-header` or `--subscription-header` is outside the `x-tollgate-` namespace.
    #[error("{flag} {name:?} must be x-tollgate- followed by letters, digits or '-' (clients' copies are removed)")]
    HeaderName { flag: &'static str, name: String },
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A client command line clap refused, or a request for help or the version.
    #[error("{0}")]
    Client(Box<clap::Error>),
}

// === impl Command ===

impl Command {
    /// Parses the arguments after the program name; `env` looks up environment variables.
    pub fn parse(
        args: impl IntoIterator<Item = String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Command, CliError> {
        let mut args = args.into_iter();
        let command = args.next().unwrap_or_default();
        if client::is_client(&command) {
            return client::parse(std::iter::once(command).chain(args))
                .map(|a| Command::Client(Box::new(a)))
                .map_err(|e| CliError::Client(Box::new(e)));
        }
        if command == "authz-replica" {
            return ReplicaArgs::parse(args, env).map(|a| Command::AuthzReplica(Box::new(a)));
        }
        if command == "probe" {
            return match (args.next(), args.next()) {
                (Some(url), None) if url.starts_with("http://") || url.starts_with("https://") => {
                    Ok(Command::Probe(url))
                }
                _ => Err(CliError::Usage),
            };
        }
        let mut command = command;
        if command == "secrets" {
            // `secrets rotate` takes the same --config/--set flags as `serve`.
            match args.next().as_deref() {
                Some("rotate") => command = "secrets rotate".into(),
                _ => return Err(CliError::Usage),
            }
        }
        let (mut config, mut sets) = (None, Vec::new());
        while let Some(a) = args.next() {
            match (a.as_str(), args.next()) {
                ("--config" | "-c", Some(p)) => config = Some(PathBuf::from(p)),
                ("--set", Some(kv)) => match kv.split_once('=') {
                    Some((key, value)) if !key.is_empty() => sets.push(crate::config::FlagValue {
                        key: key.to_string(),
                        flag: format!("--set {key}"),
                        value: value.to_string(),
                    }),
                    _ => return Err(CliError::Usage),
                },
                _ => return Err(CliError::Usage),
            }
        }
        match command.as_str() {
            "hash-password" => Ok(Command::HashPassword),
            "secrets rotate" => Ok(Command::RotateSecrets { config, sets }),
            "serve" | "run" => Ok(Command::Serve {
                config,
                envoy: command == "run",
                sets,
            }),
            _ => Err(CliError::Usage),
        }
    }

    /// Runs the command to its end.
    pub fn run(self) -> ExitCode {
        match self {
            Command::Serve { config, envoy, sets } => serve::run(config.as_deref(), envoy, &sets),
            Command::HashPassword => password::run(),
            Command::RotateSecrets { config, sets } => rotate::run(config.as_deref(), &sets),
            Command::AuthzReplica(args) => replica::run(*args),
            Command::Probe(url) => probe::run(&url),
            Command::Client(args) => client::run(*args),
        }
    }
}

// === impl CliError ===

impl CliError {
    /// The process exit status for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::TokenFile { .. } | CliError::InputFile { .. } => EXIT_NO_INPUT,
            // Help and the version go to standard output and are no error.
            CliError::Client(e) if !e.use_stderr() => 0,
            CliError::Usage
            | CliError::NoToken
            | CliError::Listen(_)
            | CliError::Staleness(_)
            | CliError::QuotaStore(_)
            | CliError::QuotaFailureMode(_)
            | CliError::QuotaSyncInterval(_)
            | CliError::HeaderName { .. }
            | CliError::Config(_)
            | CliError::Client(_) => EXIT_USAGE,
        }
    }

    /// Prints the error on standard error and returns the exit status.
    pub fn report(&self) -> ExitCode {
        match self {
            CliError::Usage => eprintln!("{USAGE}"),
            CliError::Client(e) => {
                let _ = e.print();
            }
            other => eprintln!("tollgate: {other}"),
        }
        ExitCode::from(self.exit_code())
    }
}

/// A multi-threaded tokio runtime, or exit status 1 when there is none to be had.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tollgate: cannot start runtime: {e}");
            ExitCode::FAILURE
        })
}

#[cfg(test)]
mod tests;
