//! The `envoy.service.auth.v3.Authorization` service: API keys checked against the [`KeyIndex`],
//! subscriptions against the [`SharedSubscriptions`], and plan quotas counted exactly.
//!
//! Per-route facts come in the route's `context_extensions` (see [`ctx`]); Envoy sends only the
//! headers the check needs. A route may carry `api-key-auth`, `subscription-validation` or both:
//! a key refusal is the one pre-built 401 whatever the reason; a subscription refusal is one of
//! three pre-built 403s; a spent quota is a 429. No key, token or digest is ever logged.

mod answer;
pub mod basic;
pub mod index;
pub mod quota;
pub mod ratelimit;
pub mod rewrite;
pub mod server;
pub mod subs;
pub mod wire;

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use prost::Message;
use tollgate_proto::pb::envoy::service::auth::v3::CheckResponse;

pub use answer::{DENY_BODY, EXPIRED_BODY, INVALID_BODY, MISSING_BODY, QUOTA_BODY};
pub use index::{COMPACT_AT, Decision, IndexWriter, KeyIndex, KeyRecord, KeyView, SharedIndex, Snapshot, digest_of};
pub use quota::{Counter, LocalQuotas, PlanLimit, QuotaBackend, QuotaState, QuotaUnit, Quotas, Take};
pub use server::AuthzServer;
pub use subs::{Refusal, SharedSubscriptions, SubsSnapshot, SubscriptionRecord, SubscriptionWriter};

pub use crate::ctx;

/// The default header naming the key that opened the request (never the key itself).
pub const KEY_NAME_HEADER: &str = "x-tollgate-key-name";
/// The default header naming the application of the key or subscription, when known.
pub const APPLICATION_HEADER: &str = "x-tollgate-application";
/// The default header naming the subscription that admitted the request.
pub const SUBSCRIPTION_HEADER: &str = "x-tollgate-subscription";

/// What a check answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let through.
    Allowed,
    /// 401: no key, or an unknown, expired or other API's key.
    Unauthorized,
    /// 403: no usable subscription.
    Forbidden,
    /// 429: the subscription's quota is spent.
    Limited,
}

/// Watches checks for metrics. Called on the hot path: one call before and one after each check.
pub trait CheckObserver: Send + Sync + std::fmt::Debug {
    /// A check starts; what it returns comes back in [`CheckObserver::finish`] (e.g. a start time
    /// for the checks it samples).
    fn start(&self) -> Option<std::time::Instant>;
    /// The check answered `verdict`.
    fn finish(&self, verdict: Verdict, started: Option<std::time::Instant>);
}

/// The names of the headers an allowed request carries upstream. They replace any header of the
/// same name the client sent; names outside `x-tollgate-` are not also stripped by the listeners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderNames {
    pub key_name: String,
    pub application: String,
    pub subscription: String,
}

impl Default for HeaderNames {
    fn default() -> Self {
        HeaderNames {
            key_name: KEY_NAME_HEADER.into(),
            application: APPLICATION_HEADER.into(),
            subscription: SUBSCRIPTION_HEADER.into(),
        }
    }
}

/// The Authorization service's decisions, made on the encoded request and answered with encoded
/// responses (see [`server`] for the gRPC side).
#[derive(Debug)]
pub struct AuthzService {
    index: Arc<SharedIndex>,
    subs: Arc<SharedSubscriptions>,
    names: HeaderNames,
    /// Told of every check and what it answered (metrics), when set.
    observer: Option<Arc<dyn CheckObserver>>,
    /// The basic-auth outcomes remembered.
    basic: basic::BasicAuth,
    /// The rate-limit policies' counters.
    rate_limits: ratelimit::RateLimits,
    /// The compiled method and query rewrites.
    rewrites: rewrite::Rewrites,
    /// The encoded refusals, shared: sending one clones a reference count, nothing else.
    deny: Bytes,
    missing: Bytes,
    invalid: Bytes,
    expired: Bytes,
}

// === impl AuthzService ===

impl AuthzService {
    /// Keys only: every route validating subscriptions is refused (no subscription is known).
    pub fn new(index: Arc<SharedIndex>) -> Self {
        AuthzService::with_subscriptions(index, Arc::default())
    }

    /// Keys and subscriptions: what the controller builds, feeding `index` with an
    /// [`IndexWriter`] and `subs` with a [`SubscriptionWriter`].
    pub fn with_subscriptions(index: Arc<SharedIndex>, subs: Arc<SharedSubscriptions>) -> Self {
        let encode = |r: CheckResponse| Bytes::from(r.encode_to_vec());
        AuthzService {
            index,
            subs,
            names: HeaderNames::default(),
            observer: None,
            basic: basic::BasicAuth::default(),
            rate_limits: ratelimit::RateLimits::default(),
            rewrites: rewrite::Rewrites::default(),
            deny: encode(answer::unauthorized()),
            missing: encode(answer::forbidden(MISSING_BODY)),
            invalid: encode(answer::forbidden(INVALID_BODY)),
            expired: encode(answer::forbidden(EXPIRED_BODY)),
        }
    }

    /// Names the upstream identity headers (lower-cased here); an empty name turns that header off.
    pub fn with_header_names(mut self, names: HeaderNames) -> Self {
        self.names = HeaderNames {
            key_name: names.key_name.to_ascii_lowercase(),
            application: names.application.to_ascii_lowercase(),
            subscription: names.subscription.to_ascii_lowercase(),
        };
        self
    }

    /// Bounds the rate-limit policies' counters to about `max_entries` keys.
    pub fn with_rate_limit_entries(mut self, max_entries: usize) -> Self {
        self.rate_limits = ratelimit::RateLimits::new(max_entries);
        self
    }

    /// Tells `observer` of every check (for metrics: it must cost next to nothing).
    pub fn with_observer(mut self, observer: Arc<dyn CheckObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The encoded 401 every refused key gets.
    pub fn deny(&self) -> &Bytes {
        &self.deny
    }

    /// The encoded 403 for a subscription refusal.
    pub fn forbidden(&self, why: Refusal) -> &Bytes {
        match why {
            Refusal::Missing => &self.missing,
            Refusal::Invalid => &self.invalid,
            Refusal::Expired => &self.expired,
        }
    }

    /// The encoded `CheckResponse` for an encoded `CheckRequest`. A refusal allocates nothing: the
    /// request is read in place ([`wire`]) and the answer is a shared pre-encoded 401 or 403 (a
    /// 429 is encoded once per subscription and second, then shared). Anything malformed or
    /// missing is refused.
    pub fn respond(&self, check_request: &[u8], now: u64) -> Bytes {
        let Some(observer) = &self.observer else {
            return self.answer(check_request, now).0;
        };
        let started = observer.start();
        let (answer, verdict) = self.answer(check_request, now);
        observer.finish(verdict, started);
        answer
    }

    /// [`AuthzService::respond`]'s answer and what it says.
    fn answer(&self, check_request: &[u8], now: u64) -> (Bytes, Verdict) {
        let Some(facts) = wire::facts(check_request) else {
            return (self.deny.clone(), Verdict::Unauthorized);
        };
        let (Some(api), Some(http)) = (facts.api, facts.http) else {
            return (self.deny.clone(), Verdict::Unauthorized);
        };
        let Ok(api) = std::str::from_utf8(api) else {
            return (self.deny.clone(), Verdict::Unauthorized);
        };
        let validate = facts.sub == Some(b"true");
        let limited = facts.rl.is_some() || facts.basic.is_some() || facts.rw.is_some();
        let keys = self.index.load();
        let key = match facts.key_name {
            Some(name) => match key_check(&keys, api, name, &facts, http, now) {
                Some(k) => Some(k),
                None => return (self.deny.clone(), Verdict::Unauthorized),
            },
            None if validate || limited => None,
            None => return (self.deny.clone(), Verdict::Unauthorized),
        };
        if let Some(line) = facts.basic {
            match std::str::from_utf8(line).map(|l| self.basic.check(l, http)) {
                Ok(basic::Basic::Authenticated | basic::Basic::Anonymous) => {}
                Ok(basic::Basic::Refused(answer)) => return (answer, Verdict::Unauthorized),
                Err(_) => return (self.deny.clone(), Verdict::Unauthorized),
            }
        }
        let mut allowed = answer::Allowed::default();
        if let Some((view, strip)) = &key {
            allowed.key_name = Some((&self.names.key_name, view.name));
            allowed.application = view.application.map(|app| (self.names.application.as_str(), app));
            match strip {
                Strip::Header(h) => allowed.remove_header = Some(h),
                Strip::Query(q) => allowed.remove_query = Some(q),
                Strip::No => {}
            }
        }
        // Loaded only on routes that validate subscriptions; lives as long as `allowed` borrows it.
        let subs;
        if validate {
            subs = self.subs.load();
            let key_app = key.as_ref().and_then(|(v, _)| v.application);
            let entry = match subscription(&subs, api, &facts, http, key_app, now) {
                Ok(e) => e,
                Err(why) => return (self.forbidden(why).clone(), Verdict::Forbidden),
            };
            let r = &entry.record;
            allowed.subscription = Some((&self.names.subscription, &r.id));
            if let Some(app) = &r.application {
                allowed.application = Some((&self.names.application, app));
            }
            if let Some(limit) = &r.limit {
                let take = self.subs.backend().take(&r.id, &entry.counter, limit, now);
                if !take.admitted {
                    return (entry.too_many(&take, now), Verdict::Limited);
                }
                allowed.quota = Some(take);
            }
        }
        // Rate limits after authentication (WSO2's order): a refused key never spends a count.
        if let Err(refused) = self.rate_limit(&facts, check_request, http, now, &mut allowed) {
            return refused;
        }
        if let Some(line) = facts.rw {
            match self.rewrites.headers(line, http) {
                Ok(set) => allowed.rewrite = set,
                Err(rewrite::Malformed) => return (self.deny.clone(), Verdict::Unauthorized),
            }
        }
        (
            Bytes::from(answer::allow(&allowed, now).encode_to_vec()),
            Verdict::Allowed,
        )
    }

    /// The route's rate-limit policies, if any: the headers of the most restrictive into
    /// `allowed`, or the refusal.
    fn rate_limit(
        &self,
        facts: &wire::Facts<'_>,
        check_request: &[u8],
        http: &[u8],
        now: u64,
        allowed: &mut answer::Allowed<'_>,
    ) -> Result<(), (Bytes, Verdict)> {
        let Some(lines) = facts.rl else { return Ok(()) };
        let Ok(lines) = std::str::from_utf8(lines) else {
            return Err((self.deny.clone(), Verdict::Unauthorized));
        };
        let source = wire::source_address(check_request);
        match self.rate_limits.check(lines, http, source, self.subs.backend(), now) {
            Ok(Some(p)) => allowed.response_headers = ratelimit::headers_of(&p.take, &p.name, now).to_vec(),
            Ok(None) => {}
            Err(ratelimit::Denied::Limited(answer)) => return Err((answer, Verdict::Limited)),
            Err(ratelimit::Denied::Malformed) => return Err((self.deny.clone(), Verdict::Unauthorized)),
        }
        Ok(())
    }
}

/// Where a stripped key is removed from.
enum Strip<'a> {
    No,
    Header(&'a str),
    Query(&'a str),
}

/// The key check: the key's view and what to strip, or `None` for the 401.
fn key_check<'s, 'r>(
    keys: &'s Snapshot,
    api: &str,
    name: &'r [u8],
    facts: &wire::Facts<'r>,
    http: &'r [u8],
    now: u64,
) -> Option<(KeyView<'s>, Strip<'r>)> {
    let name = std::str::from_utf8(name).ok()?;
    let in_query = facts.key_in == Some(b"query");
    let presented = if in_query {
        wire::path(http)
            .and_then(|p| std::str::from_utf8(p).ok())
            .and_then(|p| query_param(p, name))
            .map(str::as_bytes)
    } else {
        wire::header(http, name.as_bytes()).map(<[u8]>::trim_ascii)
    }?;
    match keys.decide(api, presented, now) {
        Decision::Allow(view) => {
            let strip = match (facts.strip == Some(b"true"), in_query) {
                (false, _) => Strip::No,
                (true, true) => Strip::Query(name),
                (true, false) => Strip::Header(name),
            };
            Some((view, strip))
        }
        Decision::Deny => None,
    }
}

/// The subscription check: the token from the header, else the cookie, else the key's application.
fn subscription<'s>(
    subs: &'s SubsSnapshot,
    api: &str,
    facts: &wire::Facts<'_>,
    http: &[u8],
    key_application: Option<&str>,
    now: u64,
) -> Result<&'s subs::Entry, Refusal> {
    let from_header = facts
        .sub_header
        .and_then(|h| wire::header(http, h))
        .map(<[u8]>::trim_ascii);
    let from_cookie = || {
        let name = facts.sub_cookie.filter(|c| !c.is_empty())?;
        wire::header(http, b"cookie").and_then(|c| wire::cookie(c, name))
    };
    let token = from_header
        .filter(|t| !t.is_empty())
        .or_else(|| from_cookie().map(<[u8]>::trim_ascii).filter(|t| !t.is_empty()));
    match (token, key_application) {
        (Some(t), _) => subs.by_token(api, t, now),
        (None, Some(app)) => subs.by_application(api, app, now),
        (None, None) => Err(Refusal::Missing),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The value of query parameter `name` in a request target, if present.
fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    let query = query.split_once('#').map_or(query, |(q, _)| q);
    query.split('&').find_map(|kv| match kv.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        _ => None,
    })
}

#[cfg(test)]
mod tests;
