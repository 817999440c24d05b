//! `[quota]`: the optional shared counter store (Redis or Valkey) that makes subscription quotas
//! one count for the whole fleet of ext_authz services instead of one per replica.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tollgate_quota_store::{FailureMode, StoreConfig};

use super::{ConfigError, duration};
use crate::secret::Secret;

/// The shared quota store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Quota {
    /// `redis://host:port/db` of a Redis or Valkey all ext_authz services share; empty (the
    /// default): each counts on its own, so a quota is per replica.
    pub store: String,
    /// The store's password (`TOLLGATE_QUOTA_STORE_PASSWORD`); overrides one in the URL.
    pub store_password: Secret<String>,
    /// While the store cannot be reached: `open` counts per replica, `closed` refuses (429).
    pub failure_mode: QuotaFailureMode,
    /// Time between two syncs with the store; over-admission grows with it.
    #[serde(with = "duration")]
    pub sync_interval: Duration,
}

/// `quota.failure_mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QuotaFailureMode {
    #[default]
    Open,
    Closed,
}

/// The shortest and longest `sync_interval`.
const SYNC_RANGE: (Duration, Duration) = (Duration::from_millis(1), Duration::from_secs(1));

impl Default for Quota {
    fn default() -> Self {
        Quota {
            store: String::new(),
            store_password: Secret::default(),
            failure_mode: QuotaFailureMode::Open,
            sync_interval: tollgate_quota_store::DEFAULT_SYNC_INTERVAL,
        }
    }
}

impl Quota {
    /// The store's settings, when one is configured.
    pub fn store_config(&self) -> Option<StoreConfig> {
        if self.store.trim().is_empty() {
            return None;
        }
        let password = self.store_password.expose();
        Some(StoreConfig {
            url: self.store.trim().to_owned(),
            password: (!password.is_empty()).then(|| password.clone()),
            failure_mode: match self.failure_mode {
                QuotaFailureMode::Open => FailureMode::Open,
                QuotaFailureMode::Closed => FailureMode::Closed,
            },
            sync_interval: self.sync_interval,
        })
    }

    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        if !(SYNC_RANGE.0..=SYNC_RANGE.1).contains(&self.sync_interval) {
            return invalid("quota.sync_interval", "must be between 1ms and 1s".into());
        }
        if let Some(store) = self.store_config()
            && let Err(e) = store.check()
        {
            return invalid("quota.store", e.to_string());
        }
        Ok(())
    }
}
