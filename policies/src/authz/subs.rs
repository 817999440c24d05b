//! The subscription index of the hot path: which subscription a presented token (by its SHA-256
//! digest) or an application's key opens, and that subscription's plan and quota counter.
//!
//! The controller inserts only usable subscriptions (ACTIVE, with an ACTIVE plan or none) and
//! removes every other one, so "not in the index" is the refusal. Reads are lock-free and allocate
//! nothing: a check loads the current [`SubsSnapshot`] and looks a digest up.
//!
//! Writes follow the key index's layering ([`super::index`]), per shard: each lookup map is 256
//! shards, each a base plus a small layer of the changes since; a write copies one shard's small
//! layer (and 256 pointers), and a shard's layer is merged into a new base of that shard alone
//! past [`COMPACT_AT`] changes, so a write's cost grows with neither the number of subscriptions
//! nor the time since the last merge. (Persistent maps such as `imbl` or `rpds` would do the same
//! job but are MPL-2.0, which `deny.toml` does not allow.)

mod layer;
mod writer;

use std::sync::Arc;

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use prost::Message;

use super::index::{Digest, digest_of};
use super::quota::{Counter, LocalQuotas, PlanLimit, QuotaBackend, QuotaUnit, Quotas, Take};
use layer::Layer;

pub use writer::SubscriptionWriter;

/// Changes one shard's layer holds before it is merged into a new base of that shard.
pub const COMPACT_AT: usize = 64;

/// A usable subscription, as the controller describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRecord {
    /// The subscription's id (a UUID).
    pub id: Arc<str>,
    /// The API handle (what the route's `tollgate.api` carries).
    pub api: Arc<str>,
    /// The application subscribed, when known.
    pub application: Option<Arc<str>>,
    /// Unix seconds at which the plan expires: requests at or after it are refused.
    pub plan_expires_at: Option<u64>,
    /// The plan's quota; `None` for none.
    pub limit: Option<PlanLimit>,
}

/// A record with its quota counter (carried over by id when the record is replaced).
#[derive(Debug)]
pub struct Entry {
    pub record: SubscriptionRecord,
    pub counter: Arc<Counter>,
    /// The last 429 answered and the second it was built for: under a flood of refused requests
    /// the answer is encoded once a second, not once a request.
    too_many: ArcSwapOption<(u64, Bytes)>,
}

/// What a token digest opens: the subscription, until `valid_until` (`u64::MAX` for the current
/// token; a regenerated token's old digest keeps working until its grace deadline).
#[derive(Clone, Debug)]
struct TokenSlot {
    entry: Arc<Entry>,
    valid_until: u64,
}

/// What a check reads.
#[derive(Debug, Default)]
pub struct SubsSnapshot {
    tokens: Layer<Arc<[TokenSlot]>>,
    /// By [`app_digest`] of (API, application).
    apps: Layer<Arc<Entry>>,
}

/// The subscriptions shared by the authz service and their writer, with their quota counters.
#[derive(Debug)]
pub struct SharedSubscriptions {
    current: ArcSwap<SubsSnapshot>,
    quotas: Quotas,
    backend: Arc<dyn QuotaBackend>,
}

/// Why a subscription check refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No token was presented and no key application stood in for one.
    Missing,
    /// Unknown token, another API's, or a subscription that is not usable.
    Invalid,
    /// The subscription's plan has expired.
    Expired,
}

/// A subscription received as `tollgate.subs.v1` (by a remote replica): its token digest, its
/// record and its grace digest, for [`SubscriptionWriter`]. Decode sets with
/// `SubscriptionSet::decode_named`, which refuses malformed digests and quota units.
pub fn from_wire(
    api: &str,
    s: &tollgate_proto::subs::SubscriptionDigest,
) -> (Option<Digest>, SubscriptionRecord, Option<(Digest, u64)>) {
    use tollgate_proto::subs::QuotaUnit as Wire;
    let limit = s.limit().map(|(count, unit, stop_on_reach)| PlanLimit {
        count,
        unit: match unit {
            Wire::Minute | Wire::Unspecified => QuotaUnit::Minute,
            Wire::Hour => QuotaUnit::Hour,
            Wire::Day => QuotaUnit::Day,
            Wire::Month => QuotaUnit::Month,
        },
        stop_on_reach,
    });
    let record = SubscriptionRecord {
        id: s.id.as_str().into(),
        api: api.into(),
        application: s.application().map(Into::into),
        plan_expires_at: s.expiry(),
        limit,
    };
    (s.token(), record, s.grace())
}

/// The wire form of a subscription, for the publisher of `tollgate.subs.v1` sets.
pub fn to_wire(
    token: Option<&Digest>,
    record: &SubscriptionRecord,
    grace: Option<(&Digest, u64)>,
) -> tollgate_proto::subs::SubscriptionDigest {
    use tollgate_proto::subs::QuotaUnit as Wire;
    let limit = record.limit.map(|l| {
        let unit = match l.unit {
            QuotaUnit::Minute => Wire::Minute,
            QuotaUnit::Hour => Wire::Hour,
            QuotaUnit::Day => Wire::Day,
            QuotaUnit::Month => Wire::Month,
            // Plans have calendar units only; second windows belong to the rate-limit policies.
            QuotaUnit::Seconds(_) => Wire::Unspecified,
        };
        (l.count, unit, l.stop_on_reach)
    });
    tollgate_proto::subs::SubscriptionDigest::new(
        &record.id,
        token,
        record.application.as_deref(),
        record.plan_expires_at,
        limit,
        grace,
    )
}

// === impl Entry ===

impl Entry {
    pub(crate) fn new(record: SubscriptionRecord, counter: Arc<Counter>) -> Self {
        Entry {
            record,
            counter,
            too_many: ArcSwapOption::empty(),
        }
    }

    /// The encoded 429 for a refused `take` at `now`; built at most once a second.
    pub(crate) fn too_many(&self, take: &Take, now: u64) -> Bytes {
        if let Some(cached) = &*self.too_many.load()
            && cached.0 == now
        {
            return cached.1.clone();
        }
        let answer = Bytes::from(super::answer::too_many(take, now).encode_to_vec());
        self.too_many.store(Some(Arc::new((now, answer.clone()))));
        answer
    }
}

// === impl SubsSnapshot ===

impl SubsSnapshot {
    /// The subscription a presented token opens on a route of `api` at `now`. Allocates nothing.
    pub fn by_token(&self, api: &str, token: &[u8], now: u64) -> Result<&Entry, Refusal> {
        let token = token.trim_ascii();
        if token.is_empty() {
            return Err(Refusal::Missing);
        }
        let slots = self.tokens.get(&digest_of(token)).map_or(&[][..], |s| &s[..]);
        match slots
            .iter()
            .find(|s| &*s.entry.record.api == api && now < s.valid_until)
        {
            Some(slot) => judge(&slot.entry, api, now),
            None => Err(Refusal::Invalid),
        }
    }

    /// The subscription of `application` to `api` (the key-mapped-to-an-application path).
    pub fn by_application(&self, api: &str, application: &str, now: u64) -> Result<&Entry, Refusal> {
        match self.apps.get(&app_digest(api, application)) {
            Some(entry) => judge(entry, api, now),
            None => Err(Refusal::Invalid),
        }
    }

    /// How many token digests open something (grace digests included).
    pub fn tokens(&self) -> usize {
        self.tokens.len()
    }

    /// Changes held over the bases.
    pub fn layered(&self) -> usize {
        self.tokens.layered() + self.apps.layered()
    }
}

fn judge<'a>(entry: &'a Entry, api: &str, now: u64) -> Result<&'a Entry, Refusal> {
    let r = &entry.record;
    if &*r.api != api {
        return Err(Refusal::Invalid);
    }
    if r.plan_expires_at.is_some_and(|t| now >= t) {
        return Err(Refusal::Expired);
    }
    Ok(entry)
}

/// The key of the (API, application) map: a digest of both, so a lookup builds no owned key.
pub fn app_digest(api: &str, application: &str) -> Digest {
    use ring::digest::{Context, SHA256};
    let mut c = Context::new(&SHA256);
    c.update(api.as_bytes());
    c.update(&[0]);
    c.update(application.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(c.finish().as_ref());
    out
}

// === impl SharedSubscriptions ===

impl Default for SharedSubscriptions {
    fn default() -> Self {
        SharedSubscriptions::with_backend(Arc::new(LocalQuotas))
    }
}

impl SharedSubscriptions {
    /// Empty, counting quotas with `backend` (the seam for a shared counter store).
    pub fn with_backend(backend: Arc<dyn QuotaBackend>) -> Self {
        SharedSubscriptions {
            current: ArcSwap::default(),
            quotas: Quotas::default(),
            backend,
        }
    }

    /// The current subscriptions; cheap, lock-free.
    pub fn load(&self) -> arc_swap::Guard<Arc<SubsSnapshot>> {
        self.current.load()
    }

    /// The quota counters, for [`Quotas::snapshot`] and [`Quotas::restore`].
    pub fn quotas(&self) -> &Quotas {
        &self.quotas
    }

    /// Where requests are counted.
    pub fn backend(&self) -> &dyn QuotaBackend {
        &*self.backend
    }

    fn publish(&self, snapshot: SubsSnapshot) {
        self.current.store(Arc::new(snapshot));
    }
}

#[cfg(test)]
mod tests;
