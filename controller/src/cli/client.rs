//! The client commands: `apply`, `get`, `delete`, `keys`, `status` and `completion` talk to a running
//! controller's management API (and, for `status` and `apply --wait`, its admin API), so that an
//! operator never has to hand-write JSON for `curl`. Parsed by clap; the server commands (`serve`,
//! `run`, ...) keep their own parser in `cli.rs` and appear here only for help and completion.
//!
//! Exit codes, for scripts: 0 done; 1 the server refused or something else failed; 3 not found;
//! 4 conflict; 5 cannot connect; 64 usage or a bad setting (like every `tollgate` command); 66 an
//! input file that cannot be read.

mod apply;
mod conn;
mod error;
mod get;
mod keys;
mod output;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::secret::Secret;

pub use conn::Settings;
pub use error::ClientError;
pub use output::Table;

/// The first arguments that select a client command (or clap's help): everything else is parsed
/// by `Command::parse`.
pub fn is_client(first: &str) -> bool {
    matches!(
        first,
        "apply" | "get" | "delete" | "keys" | "status" | "completion" | "help"
    ) || first.starts_with('-')
}

/// A client command line.
#[derive(Clone, Debug, PartialEq, Eq, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "Tollgate: a gateway controller for Envoy, and a client of its management API",
    after_help = "Exit codes: 0 done, 1 refused or failed, 3 not found, 4 conflict, 5 cannot connect, \
                  64 usage, 66 unreadable input file."
)]
pub struct ClientArgs {
    #[command(flatten)]
    pub conn: ConnFlags,
    /// Output format: human tables, or the server's JSON (as JSON or YAML) for scripts.
    #[arg(short, long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(subcommand)]
    pub command: ClientCommand,
}

/// Where the controller is and who is asking (each also from the environment or the CLI config file).
#[derive(Clone, Debug, Default, PartialEq, Eq, Args)]
#[command(next_help_heading = "Connection")]
pub struct ConnFlags {
    /// Management API URL [env TOLLGATE_URL; default http://localhost:9090].
    #[arg(long, global = true, value_name = "URL")]
    pub url: Option<String>,
    /// Admin API URL [env TOLLGATE_ADMIN_URL; default: the management URL on port 9092].
    #[arg(long, global = true, value_name = "URL")]
    pub admin_url: Option<String>,
    /// User name [env TOLLGATE_USERNAME; default admin].
    #[arg(long, global = true, value_name = "NAME")]
    pub username: Option<String>,
    /// Password; other users can see it in the process list, so prefer TOLLGATE_PASSWORD or
    /// --password-file.
    #[arg(long, global = true, value_name = "PASSWORD", value_parser = secret, hide_default_value = true)]
    pub password: Option<Secret<String>>,
    /// File holding the password, e.g. data/admin-password [env TOLLGATE_PASSWORD_FILE].
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "password")]
    pub password_file: Option<PathBuf>,
    /// PEM CA certificate(s) to trust for an https:// URL, besides the system's [env TOLLGATE_CA].
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// CLI config file [env TOLLGATE_CLI_CONFIG; default ~/.config/tollgate/cli.toml when present].
    #[arg(long, global = true, value_name = "FILE")]
    pub cli_config: Option<PathBuf>,
}

fn secret(s: &str) -> Result<Secret<String>, std::convert::Infallible> {
    Ok(Secret::new(s.to_string()))
}

/// How results are printed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Aligned columns for people.
    #[default]
    Table,
    /// The server's JSON, pretty-printed.
    Json,
    /// The server's JSON, as YAML.
    Yaml,
}

/// The client commands.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum ClientCommand {
    /// Create or update APIs from RestApi documents (YAML or JSON; `---` separates documents).
    Apply(ApplyArgs),
    /// List or show APIs, keys, subscriptions, subscription plans and secrets.
    #[command(subcommand)]
    Get(GetWhat),
    /// Delete an API (its keys go with it).
    #[command(subcommand)]
    Delete(DeleteWhat),
    /// Create, regenerate or revoke an API's keys (a new key is shown once).
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Readiness, connected Envoys with their ACKed generations and NACKs, and the platform link.
    Status,
    /// Print a shell completion script (e.g. `tollgate completion bash > /etc/bash_completion.d/tollgate`).
    Completion {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `apply`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq, Args)]
pub struct ApplyArgs {
    /// A file, `-` for standard input, or a folder (every .yaml, .yml and .json file in it, by name).
    #[arg(short = 'f', long = "filename", value_name = "PATH", required = true)]
    pub files: Vec<PathBuf>,
    /// Wait until every connected Envoy serves the change (the API is `deployed` and each Envoy
    /// has ACKed its generation).
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 30s, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

/// What `get` shows.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum GetWhat {
    /// Every API.
    #[command(alias = "rest-apis")]
    Apis,
    /// One API (`-o yaml` prints its document).
    Api {
        /// The API's name (metadata.name).
        name: String,
    },
    /// An API's keys (masked).
    #[command(alias = "api-keys")]
    Keys {
        /// The API's name.
        api: String,
    },
    /// Subscriptions.
    Subscriptions {
        /// Only this API's (name or id).
        #[arg(long, value_name = "API")]
        api: Option<String>,
    },
    /// Subscription plans.
    #[command(alias = "subscription-plans")]
    Plans,
    /// Secrets (metadata only: values are never listed).
    Secrets,
}

/// What `delete` removes.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum DeleteWhat {
    /// An API, with its keys.
    Api {
        /// The API's name.
        name: String,
    },
}

/// `keys` subcommands.
#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum KeysCommand {
    /// Create a key for an API; its value is shown once.
    Create {
        /// The API's name.
        api: String,
        /// The key's name (default: generated by the server).
        #[arg(long)]
        name: Option<String>,
        /// Lifetime, e.g. 30d, 12h (default: no expiry).
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// Print only the key (for `KEY=$(tollgate keys create ... -q)`).
        #[arg(short, long)]
        quiet: bool,
    },
    /// Give a key a new value (same name); the new value is shown once.
    Regenerate {
        /// The API's name.
        api: String,
        /// The key's name.
        name: String,
        /// New lifetime, e.g. 30d.
        #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
        /// How long the old value keeps working, e.g. 1h (at most 30 days).
        #[arg(long, value_name = "DURATION")]
        grace_period: Option<String>,
        /// Print only the key.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Revoke a key: the next request with it is refused.
    Revoke {
        /// The API's name.
        api: String,
        /// The key's name.
        name: String,
    },
}

/// The whole command tree, the server commands included (for help and completion).
pub fn command() -> clap::Command {
    ClientArgs::command().subcommands(server_commands())
}

/// Parses a client command line (the arguments after the program name).
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<ClientArgs, clap::Error> {
    let argv = std::iter::once("tollgate".to_string()).chain(args);
    let matches = command().try_get_matches_from(argv)?;
    ClientArgs::from_arg_matches(&matches)
}

/// The server commands as clap sees them: names and flags for `--help` and completion only (they
/// are parsed by `Command::parse`).
fn server_commands() -> Vec<clap::Command> {
    use clap::{Arg, Command};
    let config = || Arg::new("config").short('c').long("config").value_name("FILE");
    let file = |name: &'static str| Arg::new(name).long(name).value_name("FILE");
    let value = |name: &'static str, v: &'static str| Arg::new(name).long(name).value_name(v);
    vec![
        Command::new("serve").about("Run the controller").arg(config()),
        Command::new("run")
            .about("Run the controller and a managed Envoy")
            .arg(config()),
        Command::new("hash-password")
            .about("Print an argon2id hash of the password on standard input")
            .arg(config()),
        Command::new("probe")
            .about("GET a URL; exit 0 on a 2xx (container health checks)")
            .arg(Arg::new("url").value_name("URL").required(true)),
        Command::new("authz-replica")
            .about("Run an ext_authz replica fed by a controller over xDS")
            .args([
                value("xds", "URL"),
                file("token-file"),
                value("listen", "ADDR"),
                value("node", "ID"),
                value("max-staleness", "DURATION"),
                file("xds-ca"),
                value("xds-server-name", "NAME"),
                file("tls-cert"),
                file("tls-key"),
                file("listen-cert"),
                file("listen-key"),
                file("listen-client-ca"),
            ]),
    ]
}

/// Runs a client command to its end.
pub(super) fn run(args: ClientArgs) -> ExitCode {
    if let ClientCommand::Completion { shell } = args.command {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut command(), "tollgate", &mut out);
        output::emit(&String::from_utf8_lossy(&out));
        return ExitCode::SUCCESS;
    }
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(dispatch(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("tollgate: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(args: ClientArgs) -> Result<ExitCode, ClientError> {
    let env = |var: &str| std::env::var(var).ok();
    let settings = Settings::resolve(&args.conn, &env)?;
    let client = conn::Client::new(settings)?;
    let out = args.output;
    match args.command {
        ClientCommand::Apply(a) => apply::run(&client, &a, out).await,
        ClientCommand::Get(what) => get::run(&client, what, out).await,
        ClientCommand::Delete(DeleteWhat::Api { name }) => get::delete_api(&client, &name, out).await,
        ClientCommand::Keys(k) => keys::run(&client, k, out).await,
        ClientCommand::Status => status::run(&client, out).await,
        ClientCommand::Completion { .. } => Ok(ExitCode::SUCCESS),
    }
}

#[cfg(test)]
mod tests;
