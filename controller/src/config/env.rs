//! The environment overlay: `TOLLGATE_<SECTION>_<KEY>` for every key of every section (nested
//! tables add their name: `TOLLGATE_ROUTER_VHOSTS_MAIN`), plus a few short names.
//!
//! Section and key names both contain underscores, so a variable name cannot be split back into
//! a path; instead the names are generated from the schema itself (the defaults, serialized), and
//! each is looked up. A new field gets its variable with no extra code. A value is converted by
//! the kind of the field it sets: `true`/`false`, an integer, a string (durations and paths
//! too), or a list written as JSON (`["a", "b"]`) or comma-separated (`a, b`). Blank values are
//! ignored, as if unset.

use super::load::{Setting, Source};
use super::{Config, ConfigError, ControlPlane};

/// The configuration file, when `--config` does not name one.
pub const CONFIG: &str = "TOLLGATE_CONFIG";
/// Short for `TOLLGATE_SERVER_DATA_DIR`.
pub const DATA_DIR: &str = "TOLLGATE_DATA_DIR";
/// The control-plane host (`host[:port]`).
pub const CONTROL_PLANE_HOST: &str = "TOLLGATE_CONTROL_PLANE_HOST";
/// The control-plane gateway token.
pub const CONTROL_PLANE_TOKEN: &str = "TOLLGATE_CONTROL_PLANE_TOKEN";
/// The Envoy binary of `tollgate run` (short for `TOLLGATE_ENVOY_BINARY`).
pub const ENVOY_BIN: &str = "TOLLGATE_ENVOY_BIN";

/// Short names, and the key each sets. The full name wins when both are set.
const ALIASES: &[(&str, &str)] = &[(DATA_DIR, "server.data_dir"), (ENVOY_BIN, "envoy.binary")];

/// What a field holds, which decides how a variable's text becomes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Bool,
    Integer,
    /// Strings, paths, durations, enums, secrets.
    Text,
    List,
}

/// One key of the configuration: its dotted path and its kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Key {
    pub path: String,
    pub kind: Kind,
}

/// Every key of the configuration, read off the serialized defaults (an unset optional path
/// serializes as `null`: text).
pub(super) fn keys() -> Vec<Key> {
    let mut keys = Vec::new();
    if let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(Config::default()) {
        collect(&mut keys, "", &sections);
    }
    keys
}

fn collect(keys: &mut Vec<Key>, prefix: &str, table: &serde_json::Map<String, serde_json::Value>) {
    use serde_json::Value;
    for (name, value) in table {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let kind = match value {
            Value::Object(inner) => {
                collect(keys, &path, inner);
                continue;
            }
            Value::Bool(_) => Kind::Bool,
            Value::Number(_) => Kind::Integer,
            Value::Array(_) => Kind::List,
            Value::String(_) | Value::Null => Kind::Text,
        };
        keys.push(Key { path, kind });
    }
}

/// The variable of a key: `router.http_port` is `TOLLGATE_ROUTER_HTTP_PORT`.
pub fn var_name(path: &str) -> String {
    format!("TOLLGATE_{}", path.replace('.', "_").to_uppercase())
}

/// The values `env` sets, in no particular order of keys; a key set twice (full name and short
/// name) is set once, by the full name.
pub(super) fn settings(
    env: &dyn Fn(&str) -> Option<String>,
    overridden: &dyn Fn(&str) -> bool,
) -> Result<Vec<Setting>, ConfigError> {
    let mut out = Vec::new();
    for key in keys().into_iter().filter(|k| !overridden(&k.path)) {
        let full = var_name(&key.path);
        let alias = ALIASES.iter().find(|(_, k)| *k == key.path).map(|(v, _)| *v);
        let found = std::iter::once(full.as_str())
            .chain(alias)
            .find_map(|var| nonblank(env(var)).map(|raw| (var.to_string(), raw)));
        let Some((var, raw)) = found else { continue };
        let value = convert(key.kind, &raw).map_err(|message| ConfigError::From {
            key: key.path.clone(),
            origin: Source::Env(var.clone()),
            message,
        })?;
        out.push(Setting {
            key: key.path,
            value,
            origin: Source::Env(var),
        });
    }
    Ok(out)
}

/// The variable's text as a value of `kind`. Messages never repeat the text: it may be a secret.
pub(super) fn convert(kind: Kind, raw: &str) -> Result<toml::Value, String> {
    match kind {
        Kind::Text => Ok(toml::Value::String(raw.to_string())),
        Kind::Bool => match raw.to_ascii_lowercase().as_str() {
            "true" => Ok(toml::Value::Boolean(true)),
            "false" => Ok(toml::Value::Boolean(false)),
            _ => Err("expected true or false".into()),
        },
        Kind::Integer => raw
            .parse::<i64>()
            .map(toml::Value::Integer)
            .map_err(|e| format!("expected an integer: {e}")),
        Kind::List if raw.starts_with('[') => {
            let json: serde_json::Value =
                serde_json::from_str(raw).map_err(|e| format!("expected a JSON list: {e}"))?;
            toml::Value::try_from(json).map_err(|e| format!("expected a JSON list: {e}"))
        }
        Kind::List => Ok(toml::Value::Array(
            raw.split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(|item| toml::Value::String(item.to_string()))
                .collect(),
        )),
    }
}

/// Variables other parts of Tollgate read, which are not configuration keys.
const OTHERS: &[&str] = &[
    CONFIG,
    "TOLLGATE_ADMIN_PASSWORD",
    "TOLLGATE_REPLICA_TOKEN",
    // The secret encryption keys (`crate::secrets::crypto::KEYS_VAR`).
    "TOLLGATE_SECRET_KEYS",
    // The command-line client's.
    "TOLLGATE_URL",
    "TOLLGATE_ADMIN_URL",
    "TOLLGATE_USERNAME",
    "TOLLGATE_PASSWORD",
    "TOLLGATE_PASSWORD_FILE",
    "TOLLGATE_CA",
    "TOLLGATE_CLI_CONFIG",
];

/// The `TOLLGATE_*` names among `names` that nothing reads: most likely a misspelt key, which
/// would otherwise be ignored without a word.
pub fn unknown(names: impl IntoIterator<Item = String>) -> Vec<String> {
    let known: Vec<String> = keys()
        .iter()
        .map(|k| var_name(&k.path))
        .chain(ALIASES.iter().map(|(v, _)| v.to_string()))
        .chain(OTHERS.iter().map(|v| v.to_string()))
        .collect();
    let mut out: Vec<String> = names
        .into_iter()
        .filter(|n| n.starts_with("TOLLGATE_") && !known.contains(n))
        .collect();
    out.sort();
    out
}

fn nonblank(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

// === impl ControlPlane ===

impl ControlPlane {
    /// Applies `TOLLGATE_CONTROL_PLANE_HOST` and `TOLLGATE_CONTROL_PLANE_TOKEN` (already done by
    /// [`Config::load`]; applying them twice changes nothing).
    pub fn with_env(mut self) -> ControlPlane {
        if let Some(h) = nonblank(std::env::var(CONTROL_PLANE_HOST).ok()) {
            self.host = h;
        }
        if let Some(t) = nonblank(std::env::var(CONTROL_PLANE_TOKEN).ok()) {
            self.token = t.into();
        }
        self
    }
}
