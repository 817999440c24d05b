//! The environment overlay: the few variables that override file values (secrets and deployment
//! specifics). It is applied before validation, so overlaid values are checked and logged like the
//! file's own.

use std::path::PathBuf;

use super::{Config, ConfigError, ControlPlane};

/// The control-plane host (`host[:port]`).
pub const CONTROL_PLANE_HOST: &str = "TOLLGATE_CONTROL_PLANE_HOST";
/// The control-plane gateway token.
pub const CONTROL_PLANE_TOKEN: &str = "TOLLGATE_CONTROL_PLANE_TOKEN";
/// The Envoy binary of `tollgate run`.
pub const ENVOY_BIN: &str = "TOLLGATE_ENVOY_BIN";

/// A key set from the environment, and the variable that set it.
pub(super) type Overlaid = Vec<(&'static str, &'static str)>;

// === impl Config ===

impl Config {
    /// Applies the variables `env` returns a non-blank value for; returns which keys they set.
    pub(super) fn overlay(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Overlaid {
        let mut set = self.control_plane.overlay(env);
        if let Some(bin) = env(ENVOY_BIN).filter(|b| !b.trim().is_empty()) {
            self.envoy.binary = PathBuf::from(bin);
            set.push(("envoy.binary", ENVOY_BIN));
        }
        set
    }
}

// === impl ControlPlane ===

impl ControlPlane {
    /// Applies `TOLLGATE_CONTROL_PLANE_HOST` and `TOLLGATE_CONTROL_PLANE_TOKEN` (already done by
    /// [`Config::load`]; applying them twice changes nothing).
    pub fn with_env(mut self) -> ControlPlane {
        self.overlay(&|var| std::env::var(var).ok());
        self
    }

    fn overlay(&mut self, env: &dyn Fn(&str) -> Option<String>) -> Overlaid {
        let mut set = Overlaid::new();
        if let Some(h) = trimmed(env(CONTROL_PLANE_HOST)) {
            self.host = h;
            set.push(("control_plane.host", CONTROL_PLANE_HOST));
        }
        if let Some(t) = trimmed(env(CONTROL_PLANE_TOKEN)) {
            self.token = t.into();
            set.push(("control_plane.token", CONTROL_PLANE_TOKEN));
        }
        set
    }
}

fn trimmed(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
}

/// Names the variable in an error about a key it set, so the operator looks in the right place.
pub(super) fn attribute(e: ConfigError, overlaid: &Overlaid) -> ConfigError {
    match e {
        ConfigError::Invalid { key, message } => match overlaid.iter().find(|(k, _)| *k == key) {
            Some((_, var)) => ConfigError::Env { key, var, message },
            None => ConfigError::Invalid { key, message },
        },
        other => other,
    }
}
