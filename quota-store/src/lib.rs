//! Subscription quotas shared by several ext_authz replicas (the controller's own service and
//! `tollgate authz-replica` processes) through one Redis or Valkey.
//!
//! The hot path never waits on the network. [`SharedQuotas::take`] decides from local state alone:
//! the subscription's local [`Counter`] counts what this replica admitted in the window, and its
//! [`Slot`] remembers how many the *other* replicas had admitted at the last sync. A request is
//! admitted while `ours + others < limit`, with the counter's compare-and-swap, so one replica on
//! its own stays exact under any concurrency.
//!
//! A background task ([`flush`]) syncs every `sync_interval` (5 ms by default): for each
//! subscription served lately it sends `INCRBY <key> <admitted since last sync>` (the key names
//! the subscription and the window start, and expires after the window), and the total the store
//! answers, less what this replica has sent, becomes the new `others`. Subscriptions served here
//! in the last two seconds are synced every interval, those served in the last minute once a
//! second, so a busy replica's view of the others is at most one interval and one round trip old.
//!
//! Over-admission: the fleet can admit past the limit by at most what the *other* replicas admit
//! in one sync interval plus one round trip (their unsent counts and this replica's stale view);
//! a replica that has not served the subscription lately (or never, in this window) decides its
//! first requests on an older view (up to a second, or none) until its next sync. Whatever the
//! timing, never more than `replicas × limit` in a window: each replica alone stops at the limit.
//! Never under-admits: the others' count a replica holds is never above the truth.
//!
//! When the store cannot be reached: [`FailureMode::Open`] (default) keeps deciding locally with
//! the last known `others` and sends the counts it kept once the store is back (in the same
//! window); [`FailureMode::Closed`] refuses every request of a plan that stops at its limit (429)
//! until a sync succeeds again. Both transitions are logged once; no key, token or subscription is.

mod flush;

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use redis::IntoConnectionInfo;
use tollgate_policies::authz::quota::window;
use tollgate_policies::authz::{Counter, PlanLimit, QuotaBackend, Take};

/// The default time between two syncs with the store.
pub const DEFAULT_SYNC_INTERVAL: Duration = Duration::from_millis(5);

/// The prefix of every key the store holds for Tollgate: `tollgate:quota:<subscription>:<window start>`.
pub const KEY_PREFIX: &str = "tollgate:quota:";

/// What happens to quota checks while the store cannot be reached.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailureMode {
    /// Keep deciding with local counts (each replica then counts on its own) and catch up later.
    #[default]
    Open,
    /// Refuse (429) the requests of plans that stop at their limit until the store answers.
    Closed,
}

/// Where the shared counts live and how they are synced.
#[derive(Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// `redis://host:port/db` (or `unix://`); without a password ([`StoreConfig::check`]).
    pub url: String,
    /// The store's password (`AUTH`), overriding one in the URL. Never shown by `Debug`.
    pub password: Option<String>,
    pub failure_mode: FailureMode,
    /// Time between two syncs; the bound on over-admission grows with it.
    pub sync_interval: Duration,
}

/// Why the shared store could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL was refused (it is not repeated: it may hold a password).
    #[error("quota store URL refused: {0}")]
    Url(#[source] redis::RedisError),
    /// The URL carries a password (it belongs in the password setting, from the environment).
    #[error("the quota store URL must not carry a password: set it in the environment instead")]
    PasswordInUrl,
    /// A failure mode other than `open` or `closed`.
    #[error("quota failure mode must be `open` or `closed`")]
    FailureMode,
}

/// Counts shared with the other replicas through the store; see the module documentation.
pub struct SharedQuotas {
    slots: RwLock<HashMap<Arc<str>, Arc<Slot>>>,
    /// Slots touched since the sync task last took them (each once: [`Slot::queued`]).
    touched: Mutex<Vec<Arc<Slot>>>,
    /// Whether the last sync reached the store.
    up: AtomicBool,
    /// Round trips that reached the store.
    syncs: AtomicU64,
    failure_mode: FailureMode,
}

/// One subscription's shared state in its current window.
#[derive(Debug)]
struct Slot {
    id: Arc<str>,
    state: Mutex<SlotState>,
    /// Whether the sync task holds this slot (so the hot path queues it once).
    queued: AtomicBool,
    /// Unix seconds of the last check, so the task keeps syncing recently served slots.
    touched_at: AtomicU64,
}

#[derive(Debug, Default, Clone, Copy)]
struct SlotState {
    window_start: u64,
    window_end: u64,
    /// What the other replicas had admitted in the window, at the last sync.
    others: u64,
    /// Admitted here and not yet sent.
    pending: u64,
    /// Admitted here and sent.
    sent: u64,
}

// === impl FailureMode ===

impl FromStr for FailureMode {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        match s {
            "open" => Ok(FailureMode::Open),
            "closed" => Ok(FailureMode::Closed),
            _ => Err(StoreError::FailureMode),
        }
    }
}

impl fmt::Display for FailureMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FailureMode::Open => "open",
            FailureMode::Closed => "closed",
        })
    }
}

// === impl StoreConfig ===

impl StoreConfig {
    /// The store at `url`, failing open, synced every [`DEFAULT_SYNC_INTERVAL`].
    pub fn new(url: impl Into<String>) -> Self {
        StoreConfig {
            url: url.into(),
            password: None,
            failure_mode: FailureMode::Open,
            sync_interval: DEFAULT_SYNC_INTERVAL,
        }
    }

    /// Whether the URL is one the client accepts, without a password (that belongs in
    /// [`password`](Self::password): URLs are logged and shown in process lists). Nothing is
    /// contacted.
    pub fn check(&self) -> Result<(), StoreError> {
        let info = self.url.as_str().into_connection_info().map_err(StoreError::Url)?;
        if info.redis_settings().password().is_some() {
            return Err(StoreError::PasswordInUrl);
        }
        self.client().map(|_| ())
    }

    fn client(&self) -> Result<redis::Client, StoreError> {
        let mut info = self.url.as_str().into_connection_info().map_err(StoreError::Url)?;
        if let Some(p) = &self.password {
            let settings = info.redis_settings().clone().set_password(p);
            info = info.set_redis_settings(settings);
        }
        redis::Client::open(info).map_err(StoreError::Url)
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL is left out too: it may carry a password.
        f.debug_struct("StoreConfig")
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("failure_mode", &self.failure_mode)
            .field("sync_interval", &self.sync_interval)
            .finish_non_exhaustive()
    }
}

// === impl SharedQuotas ===

impl SharedQuotas {
    /// Starts the sync task on the current tokio runtime and returns the backend. Connects lazily:
    /// a store down at start is the failure mode's business, not a start-up error. The task ends
    /// when the last handle is dropped.
    pub fn start(config: &StoreConfig) -> Result<Arc<SharedQuotas>, StoreError> {
        let client = config.client()?;
        let quotas = Arc::new(SharedQuotas {
            slots: RwLock::default(),
            touched: Mutex::default(),
            up: AtomicBool::new(true),
            syncs: AtomicU64::new(0),
            failure_mode: config.failure_mode,
        });
        tokio::spawn(flush::run(Arc::downgrade(&quotas), client, config.sync_interval));
        Ok(quotas)
    }

    /// Whether the last sync reached the store.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Round trips that reached the store so far: two more after a check mean every count it
    /// made has been sent and the others' counts read back since.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::Acquire)
    }

    /// The count of `subscription`'s current window as this replica knows it (the store's total at
    /// its last sync, and what it admitted since); `None` if it has not counted it yet.
    pub fn known(&self, subscription: &str) -> Option<u64> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        let st = *slots.get(subscription)?.state.lock().unwrap_or_else(|e| e.into_inner());
        Some(st.others + st.sent + st.pending)
    }

    /// The slot of `subscription`, created on first sight (at `now`).
    fn slot(&self, subscription: &str, now: u64) -> Arc<Slot> {
        if let Some(s) = self.slots.read().unwrap_or_else(|e| e.into_inner()).get(subscription) {
            return s.clone();
        }
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots
            .entry(Arc::from(subscription))
            .or_insert_with_key(|id| {
                Arc::new(Slot {
                    id: id.clone(),
                    state: Mutex::default(),
                    queued: AtomicBool::new(false),
                    touched_at: AtomicU64::new(now),
                })
            })
            .clone()
    }

    /// Queues `slot` for the sync task unless it holds it already.
    fn queue(&self, slot: &Arc<Slot>) {
        if !slot.queued.swap(true, Ordering::AcqRel) {
            self.touched
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(slot.clone());
        }
    }
}

impl QuotaBackend for SharedQuotas {
    fn take(&self, subscription: &str, counter: &Counter, limit: &PlanLimit, now: u64) -> Take {
        let (start, end) = window(limit.unit, now);
        if limit.stop_on_reach && self.failure_mode == FailureMode::Closed && !self.is_up() {
            return Take {
                admitted: false,
                limit: limit.count,
                used: limit.count,
                window_start: start,
                window_end: end,
            };
        }
        let slot = self.slot(subscription, now);
        slot.touched_at.store(now, Ordering::Relaxed);
        let take = {
            let mut s = slot.state.lock().unwrap_or_else(|e| e.into_inner());
            if s.window_start != start {
                // A new window: what was not sent of the old one no longer matters.
                *s = SlotState {
                    window_start: start,
                    window_end: end,
                    ..SlotState::default()
                };
            }
            // The local counter counts this replica's admissions; its cap is what the others left.
            let room = PlanLimit {
                count: limit.count.saturating_sub(s.others),
                ..*limit
            };
            let mut take = counter.take(&room, now);
            if take.admitted {
                s.pending += 1;
            }
            take.used += s.others;
            take.limit = limit.count;
            take
        };
        self.queue(&slot);
        take
    }
}

impl fmt::Debug for SharedQuotas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedQuotas")
            .field("up", &self.is_up())
            .field("failure_mode", &self.failure_mode)
            .finish_non_exhaustive()
    }
}

/// The store key of `subscription`'s window starting at `window_start`.
pub fn key(subscription: &str, window_start: u64) -> String {
    format!("{KEY_PREFIX}{subscription}:{window_start}")
}
