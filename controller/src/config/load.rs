//! Merging the configuration's sources: the defaults, then the file, then the environment, then
//! command-line flags, each overriding the ones before. The file is parsed into a TOML table, the
//! other sources are written into that table at their keys, and the result is deserialized once,
//! so every source is read by the same schema; a value that does not fit is blamed on the source
//! that set it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, env};

/// Where a key's value came from, as errors and the start-up log name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
}

/// One value set from outside the file.
#[derive(Clone, Debug)]
pub(super) struct Setting {
    /// The dotted key, e.g. `router.http_port`.
    pub key: String,
    pub value: toml::Value,
    pub origin: Source,
}

/// A key a command-line flag sets, with the flag's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FlagValue {
    /// The dotted key, e.g. `server.data_dir`.
    pub key: String,
    /// The flag as typed, e.g. `--data-dir`, for errors.
    pub flag: String,
    pub value: String,
}

/// Every key not left at its default, and where its value came from.
pub type Origins = BTreeMap<String, Source>;

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Env(var) => write!(f, "env {var}"),
            Source::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// The configuration `path` (or else `TOLLGATE_CONFIG`), the environment and `flags` describe,
/// deserialized but not yet checked, with the origin of every key they set.
pub(super) fn merge(
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
    flags: &[FlagValue],
) -> Result<(Config, Origins), ConfigError> {
    let from_env = env(env::CONFIG).filter(|p| !p.trim().is_empty()).map(PathBuf::from);
    let via = if path.is_none() && from_env.is_some() {
        " (from env TOLLGATE_CONFIG)"
    } else {
        ""
    };
    let path = path.map(Path::to_path_buf).or(from_env);
    let file = match &path {
        Some(path) => read(path, via)?,
        None => toml::Table::new(),
    };
    let mut origins = Origins::new();
    if let Some(path) = &path {
        leaves(&file, "", &mut |key| {
            origins.insert(key, Source::File(path.clone()));
        });
    }
    // A key a flag sets is not read from the environment: only the merged value is checked.
    let from_flags = flag_settings(flags)?;
    let mut settings = env::settings(env, &|key| from_flags.iter().any(|f| f.key == key))?;
    settings.extend(from_flags);
    let mut merged = file.clone();
    for s in &settings {
        insert(&mut merged, &s.key, s.value.clone());
        origins.insert(s.key.clone(), s.origin.clone());
    }
    match merged.try_into::<Config>() {
        Ok(config) => Ok((config, origins)),
        Err(e) => Err(blame(&file, &settings, path.as_deref(), e)),
    }
}

/// Reads and parses the file. Parsing it alone into the schema first keeps TOML's own messages
/// for the file's mistakes (line, column, and the key).
fn read(path: &Path, via: &'static str) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        via,
        source,
    })?;
    let parse = |message: String| ConfigError::Parse {
        path: path.to_path_buf(),
        message,
    };
    toml::from_str::<Config>(&text).map_err(|e| parse(e.to_string()))?;
    toml::from_str::<toml::Table>(&text).map_err(|e| parse(e.to_string()))
}

/// The flags' values, converted like environment values by the kind of their key.
fn flag_settings(flags: &[FlagValue]) -> Result<Vec<Setting>, ConfigError> {
    let keys = env::keys();
    flags
        .iter()
        .map(|f| {
            let origin = Source::Flag(f.flag.clone());
            let err = |message: String| ConfigError::From {
                key: f.key.clone(),
                origin: origin.clone(),
                message,
            };
            let key = keys
                .iter()
                .find(|k| k.path == f.key)
                .ok_or_else(|| err("no such configuration key".into()))?;
            let value = env::convert(key.kind, f.value.trim()).map_err(err)?;
            Ok(Setting {
                key: f.key.clone(),
                value,
                origin,
            })
        })
        .collect()
}

/// Sets `key` (dotted) in `table`, creating the tables on the way.
fn insert(table: &mut toml::Table, key: &str, value: toml::Value) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else { return };
    let mut at = table;
    for part in parts {
        let entry = at
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            // The file has a value where a section belongs; deserializing reports it.
            return;
        }
        let toml::Value::Table(inner) = entry else { return };
        at = inner;
    }
    at.insert(last.to_string(), value);
}

/// Calls `each` with the dotted key of every value in `table` that is not itself a table.
fn leaves(table: &toml::Table, prefix: &str, each: &mut dyn FnMut(String)) {
    for (name, value) in table {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            toml::Value::Table(inner) => leaves(inner, &key, each),
            _ => each(key),
        }
    }
}

/// The setting whose value the schema refuses: the file parsed on its own, so a setting that
/// fails over it alone is at fault. The last ones (flags) are tried first: they override the rest.
fn blame(file: &toml::Table, settings: &[Setting], path: Option<&Path>, e: toml::de::Error) -> ConfigError {
    for s in settings.iter().rev() {
        let mut alone = file.clone();
        insert(&mut alone, &s.key, s.value.clone());
        if let Err(e) = alone.try_into::<Config>() {
            return ConfigError::From {
                key: s.key.clone(),
                origin: s.origin.clone(),
                message: e.message().trim().to_string(),
            };
        }
    }
    ConfigError::Parse {
        path: path.map(Path::to_path_buf).unwrap_or_default(),
        message: e.message().trim().to_string(),
    }
}

/// Names where a key's value came from in an error about it, so the operator looks in the right
/// place. A key left at its default keeps the plain error.
pub(super) fn attribute(e: ConfigError, origins: &Origins) -> ConfigError {
    match e {
        ConfigError::Invalid { key, message } => match origins.get(key) {
            Some(origin) => ConfigError::From {
                key: key.to_string(),
                origin: origin.clone(),
                message,
            },
            None => ConfigError::Invalid { key, message },
        },
        ConfigError::File { key, path, source } => match origins.get(key) {
            Some(origin @ (Source::Env(_) | Source::Flag(_))) => ConfigError::From {
                key: key.to_string(),
                origin: origin.clone(),
                message: format!("cannot read {}: {source}", path.display()),
            },
            _ => ConfigError::File { key, path, source },
        },
        other => other,
    }
}
