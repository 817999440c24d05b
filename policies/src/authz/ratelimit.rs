//! The `basic-ratelimit` and `advanced-ratelimit` policies on the hot path, counted with the
//! subscription quotas' own design: one packed [`Counter`] per limit, fixed windows aligned to the
//! epoch ([`QuotaUnit::Seconds`]), and every take through the [`QuotaBackend`], so a shared
//! counter store makes these limits hold across replicas exactly as it does plans.
//!
//! A route's quota lines (its `tollgate.rl` context extension, see
//! [`crate::catalogue::ratelimit`]) name the counters' scope and the key parts read per request
//! (headers, the client address). The counters of one quota and key live in a [`Slot`], found
//! by the SHA-256 of the scope and the parts' values (so header values are never held) in a
//! sharded map bounded by [`RateLimits::new`]'s `max_entries`: a flood of distinct keys first
//! drops the slots whose windows are over, then the least recently used, never growing memory.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use prost::Message;
use ring::digest::{Context, SHA256};
use tollgate_proto::pb::envoy::config::core::v3::HeaderValueOption;
use tollgate_proto::pb::envoy::service::auth::v3::{CheckResponse, DeniedHttpResponse, check_response};
use tollgate_proto::pb::envoy::r#type::v3::HttpStatus;
use tollgate_proto::pb::google::rpc::Status as RpcStatus;

use super::answer::header;
use super::index::{Digest, DigestHasher};
use super::quota::{Counter, PlanLimit, QuotaBackend, QuotaUnit, Take};
use super::wire;
use crate::catalogue::ratelimit::{RawLine, unescape};

/// The default bound on slots (WSO2's `memory.maxEntries` default is 10,000 per policy; this is
/// for all policies of a replica together).
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// Shards of the slot map: a check locks one, briefly, to find its slot.
const SHARDS: usize = 64;
/// gRPC `RESOURCE_EXHAUSTED`.
const RESOURCE_EXHAUSTED: i32 = 8;

/// Every rate-limit counter of this replica, bounded.
#[derive(Debug)]
pub struct RateLimits {
    shards: Box<[Mutex<Slots>]>,
    per_shard: usize,
}

/// One shard's slots by key digest.
type Slots = HashMap<Digest, Arc<Slot>, BuildHasherDefault<DigestHasher>>;

/// One quota's counters for one key: a counter per limit, in the line's order.
#[derive(Debug)]
struct Slot {
    /// What the backend counts under: `rl:` and the key's digest in hex.
    id: Box<str>,
    counters: Box<[Counter]>,
    /// The longest window, and the last second the slot was used: past both, it may go.
    longest: u64,
    touched: AtomicU64,
    /// The last refusal and the second it was built for: a flood of refused requests encodes
    /// one a second.
    too_many: ArcSwapOption<(u64, Bytes)>,
}

/// Why [`RateLimits::check`] did not let a request through.
#[derive(Debug)]
pub enum Denied {
    /// A limit is spent: the encoded refusal.
    Limited(Bytes),
    /// The route's lines are not what the translator writes (refused, fail closed).
    Malformed,
}

/// What a passed request is told: the most restrictive limit it was counted against.
#[derive(Clone, Debug)]
pub struct Passed {
    pub take: Take,
    pub name: String,
}

// === impl RateLimits ===

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits::new(DEFAULT_MAX_ENTRIES)
    }
}

impl RateLimits {
    /// Holding at most about `max_entries` keys (at least one per shard).
    pub fn new(max_entries: usize) -> Self {
        RateLimits {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            per_shard: max_entries.div_ceil(SHARDS).max(1),
        }
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|m| m.len()).unwrap_or(0)).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Counts one request against every quota of `lines` (a route's `tollgate.rl`): refused at
    /// the first spent limit (limits are counted shortest window first, so a burst refused by a
    /// short window does not use up the long one). `http` is the encoded `HttpRequest` and
    /// `source` the client address, for the key parts.
    pub fn check(
        &self,
        lines: &str,
        http: &[u8],
        source: Option<&[u8]>,
        backend: &dyn QuotaBackend,
        now: u64,
    ) -> Result<Option<Passed>, Denied> {
        let mut tightest: Option<(Take, RawLine<'_>)> = None;
        for line in lines.split('\n').filter(|l| !l.is_empty()) {
            let raw = RawLine::parse(line).ok_or(Denied::Malformed)?;
            let limits: Vec<(u64, u32)> = raw.limits().collect::<Option<_>>().ok_or(Denied::Malformed)?;
            let slot = self.slot(&key_of(&raw, http, source), &limits, now);
            for (counter, &(count, secs)) in slot.counters.iter().zip(&limits) {
                let limit = PlanLimit {
                    count,
                    unit: QuotaUnit::Seconds(secs),
                    stop_on_reach: true,
                };
                let take = backend.take(&slot.id, counter, &limit, now);
                if !take.admitted {
                    return Err(Denied::Limited(slot.too_many(&raw, &take, now)));
                }
                let left = take.limit.saturating_sub(take.used);
                if tightest
                    .as_ref()
                    .is_none_or(|(t, _)| left < t.limit.saturating_sub(t.used))
                {
                    tightest = Some((take, raw));
                }
            }
        }
        Ok(tightest.map(|(take, raw)| Passed {
            take,
            name: unescape(raw.name),
        }))
    }

    /// The slot of `key`, made (and the shard kept within bounds) if it has none.
    fn slot(&self, key: &Digest, limits: &[(u64, u32)], now: u64) -> Arc<Slot> {
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(key)
            && s.counters.len() == limits.len()
        {
            s.touched.store(now, Ordering::Relaxed);
            return s.clone();
        }
        if map.len() >= self.per_shard && !map.contains_key(key) {
            evict(&mut map, self.per_shard, now);
        }
        let slot = Arc::new(Slot {
            id: format!("rl:{}", hex(key)).into(),
            counters: limits.iter().map(|_| Counter::default()).collect(),
            longest: limits.iter().map(|&(_, w)| u64::from(w)).max().unwrap_or(0),
            touched: AtomicU64::new(now),
            too_many: ArcSwapOption::empty(),
        });
        map.insert(*key, slot.clone());
        slot
    }
}

/// Makes room in a full shard: the slots whose longest window has ended since their last use,
/// else the least recently used one (a flood of new keys can then only reset the quietest key).
fn evict(map: &mut Slots, cap: usize, now: u64) {
    map.retain(|_, s| s.touched.load(Ordering::Relaxed).saturating_add(s.longest) > now);
    while map.len() >= cap {
        let oldest = map
            .iter()
            .min_by_key(|(_, s)| s.touched.load(Ordering::Relaxed))
            .map(|(k, _)| *k);
        match oldest {
            Some(k) => map.remove(&k),
            None => break,
        };
    }
}

/// The counters' key: the SHA-256 of the scope, the limits and each part with its value (a
/// missing header and an empty one differ).
fn key_of(raw: &RawLine<'_>, http: &[u8], source: Option<&[u8]>) -> Digest {
    let mut c = Context::new(&SHA256);
    for field in [raw.scope, raw.limits] {
        c.update(field.as_bytes());
        c.update(&[0]);
    }
    for part in raw.parts() {
        let value = match part.strip_prefix("h:") {
            Some(name) => wire::header(http, name.as_bytes()).map(<[u8]>::trim_ascii),
            None => source,
        };
        c.update(part.as_bytes());
        match value {
            Some(v) => {
                c.update(&[1]);
                c.update(&(v.len() as u64).to_le_bytes());
                c.update(v);
            }
            None => c.update(&[0]),
        }
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

fn hex(d: &Digest) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

// === impl Slot ===

impl Slot {
    fn too_many(&self, raw: &RawLine<'_>, take: &Take, now: u64) -> Bytes {
        if let Some(cached) = &*self.too_many.load()
            && cached.0 == now
        {
            return cached.1.clone();
        }
        let answer = Bytes::from(refusal(raw, take, now).encode_to_vec());
        self.too_many.store(Some(Arc::new((now, answer.clone()))));
        answer
    }
}

/// The refusal of a spent limit: the line's status and body, `Retry-After` and the rate-limit
/// headers.
fn refusal(raw: &RawLine<'_>, take: &Take, now: u64) -> CheckResponse {
    let ctype = if raw.json { "application/json" } else { "text/plain" };
    let mut headers = vec![
        header("content-type", ctype),
        header("retry-after", &reset_in(take, now).to_string()),
    ];
    headers.extend(headers_of(take, &unescape(raw.name), now));
    CheckResponse {
        status: Some(RpcStatus {
            code: RESOURCE_EXHAUSTED,
            ..Default::default()
        }),
        http_response: Some(check_response::HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(raw.status),
            }),
            headers,
            body: unescape(raw.body),
        })),
        ..Default::default()
    }
}

fn reset_in(take: &Take, now: u64) -> u64 {
    take.window_end.saturating_sub(now).max(1)
}

/// `X-RateLimit-Limit`/`-Remaining`/`-Reset` and the IETF `RateLimit`/`RateLimit-Policy` fields,
/// named after the quota (as the subscription quotas' headers, with the quota's name).
pub fn headers_of(take: &Take, name: &str, now: u64) -> [HeaderValueOption; 5] {
    let remaining = take.limit.saturating_sub(take.used);
    let reset = reset_in(take, now);
    let window = take.window_end - take.window_start;
    // A structured-field string holds printable ASCII only, `"` and `\` escaped: keep it simple.
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    [
        header("x-ratelimit-limit", &take.limit.to_string()),
        header("x-ratelimit-remaining", &remaining.to_string()),
        header("x-ratelimit-reset", &reset.to_string()),
        header("ratelimit", &format!("\"{name}\";r={remaining};t={reset}")),
        header("ratelimit-policy", &format!("\"{name}\";q={};w={window}", take.limit)),
    ]
}

#[cfg(test)]
mod tests;
