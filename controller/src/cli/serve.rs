//! `tollgate serve` and `tollgate run`: load the configuration (exit 64 when it is invalid), log
//! it redacted, and run the controller until a signal (or, for `run`, until Envoy exits).

use std::path::Path;
use std::process::ExitCode;

use crate::config::{Config, LogFormat};

use super::CliError;

/// Runs the controller; with `envoy`, a managed Envoy too.
pub(super) fn run(config_path: Option<&Path>, envoy: bool, sets: &[crate::config::FlagValue]) -> ExitCode {
    let env = |var: &str| std::env::var(var).ok();
    let (config, origins) = match Config::load_from(config_path, &env, sets) {
        Ok(loaded) => loaded,
        Err(e) => return CliError::from(e).report(),
    };
    init_logging(&config);
    // Where each key not left at its default came from: variable and file names, never values.
    let sources: serde_json::Map<String, serde_json::Value> =
        origins.iter().map(|(k, o)| (k.clone(), o.to_string().into())).collect();
    tracing::info!(config = %config.redacted(), sources = %serde_json::Value::Object(sources), "configuration");
    let names = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok());
    for var in crate::config::env::unknown(names) {
        tracing::warn!(
            var,
            "no configuration key has this variable; it is ignored (see the README)"
        );
    }
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    match runtime.block_on(crate::runtime::run(config, envoy)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "tollgate failed");
            eprintln!("tollgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config) {
    let filter = super::log_filter(&config.logging.level);
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match config.logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
