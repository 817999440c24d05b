//! `tollgate.subs.v1`: the usable subscriptions of one API, token digests only, served over xDS to
//! remote ext_authz replicas beside the key sets. Hand-derived prost messages; the schema, for
//! other implementations:
//!
//! ```proto
//! syntax = "proto3";
//! package tollgate.subs.v1;
//!
//! // Resource name: "{api}/{xx}", xx (two lower-case hex digits) the shard of every subscription
//! // in the set: the low byte of the 32-bit FNV-1a hash of its id. Sharding by id (not by token
//! // digest, as key sets do) keeps a subscription in one set when its token is regenerated, and
//! // places subscriptions that have no token; one write resends one small set.
//! message SubscriptionSet {
//!   string api = 1;
//!   repeated SubscriptionDigest subscriptions = 2;  // sorted by id
//! }
//!
//! message SubscriptionDigest {
//!   string id = 1;               // the subscription id
//!   bytes token_sha256 = 2;      // SHA-256 of the token (never the token); empty: no token
//!   string application = 3;      // empty for none
//!   uint64 plan_expires_at = 4;  // Unix seconds; 0 for never
//!   uint64 limit_count = 5;      // requests per window; 0 for no quota
//!   QuotaUnit limit_unit = 6;    // the window (fixed UTC calendar windows)
//!   bool stop_on_reach = 7;      // refuse past the limit (else only report it)
//!   bytes grace_sha256 = 8;      // a replaced token's digest, still valid until grace_until
//!   uint64 grace_until = 9;      // Unix seconds
//! }
//!
//! enum QuotaUnit { QUOTA_UNIT_UNSPECIFIED = 0; MINUTE = 1; HOUR = 2; DAY = 3; MONTH = 4; }
//! ```

use super::keys::Digest;

/// The subscriptions of one API in one shard (resource name `{api}/{shard:02x}`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscriptionSet {
    /// The API handle.
    #[prost(string, tag = "1")]
    pub api: String,
    /// Sorted by id, so equal sets encode (and version) equally.
    #[prost(message, repeated, tag = "2")]
    pub subscriptions: Vec<SubscriptionDigest>,
}

/// One usable subscription.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct SubscriptionDigest {
    #[prost(string, tag = "1")]
    pub id: String,
    /// SHA-256 of the token; empty for none.
    #[prost(bytes = "vec", tag = "2")]
    pub token_sha256: Vec<u8>,
    /// Empty for none.
    #[prost(string, tag = "3")]
    pub application: String,
    /// Unix seconds; 0 for never.
    #[prost(uint64, tag = "4")]
    pub plan_expires_at: u64,
    /// 0 for no quota.
    #[prost(uint64, tag = "5")]
    pub limit_count: u64,
    #[prost(enumeration = "QuotaUnit", tag = "6")]
    pub limit_unit: i32,
    #[prost(bool, tag = "7")]
    pub stop_on_reach: bool,
    /// A replaced token's digest; empty for none.
    #[prost(bytes = "vec", tag = "8")]
    pub grace_sha256: Vec<u8>,
    /// Unix seconds until which `grace_sha256` still opens the subscription.
    #[prost(uint64, tag = "9")]
    pub grace_until: u64,
}

/// A plan's window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum QuotaUnit {
    Unspecified = 0,
    Minute = 1,
    Hour = 2,
    Day = 3,
    Month = 4,
}

/// The `Any` type URL of a [`SubscriptionSet`].
pub const TYPE_URL: &str = "type.googleapis.com/tollgate.subs.v1.SubscriptionSet";

/// Why a subscription set, or its resource name, is not well formed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SubSetError {
    /// The name is not `{api}/{xx}` with `xx` two lower-case hex digits.
    #[error("not a subscription set name")]
    BadName,
    /// The name's API is not the set's.
    #[error("not a subscription set name for API {0}")]
    OtherApi(String),
    /// A subscription has an empty id.
    #[error("a subscription without an id")]
    NoId,
    /// A digest is neither empty nor 32 bytes long.
    #[error("a digest of {0} bytes")]
    DigestLength(usize),
    /// A subscription is not in the set's shard.
    #[error("subscription {0} outside the set's shard")]
    OutsideShard(String),
    /// A quota with no (or an unknown) unit.
    #[error("subscription {0} has a quota without a unit")]
    NoUnit(String),
    /// The bytes are not a `SubscriptionSet`.
    #[error("{0}")]
    Decode(#[from] prost::DecodeError),
}

/// The shard of a subscription: the low byte of the 32-bit FNV-1a hash of its id.
pub fn shard_of(id: &str) -> u8 {
    let mut h: u32 = 0x811c_9dc5;
    for b in id.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h.to_le_bytes()[0]
}

/// The resource name of the set of `api`'s subscriptions in `shard`: `{api}/{shard:02x}`.
pub fn set_name(api: &str, shard: u8) -> String {
    super::keys::set_name(api, shard)
}

/// Splits a set's resource name into its API and shard.
pub fn parse_set_name(name: &str) -> Result<(&str, u8), SubSetError> {
    super::keys::parse_set_name(name).map_err(|_| SubSetError::BadName)
}

// === impl SubscriptionDigest ===

impl SubscriptionDigest {
    /// One subscription as an index holds it; `None`s are written as the message's empty values.
    pub fn new(
        id: &str,
        token: Option<&Digest>,
        application: Option<&str>,
        plan_expires_at: Option<u64>,
        limit: Option<(u64, QuotaUnit, bool)>,
        grace: Option<(&Digest, u64)>,
    ) -> Self {
        let (limit_count, unit, stop_on_reach) = limit.unwrap_or((0, QuotaUnit::Unspecified, false));
        SubscriptionDigest {
            id: id.to_string(),
            token_sha256: token.map(|d| d.to_vec()).unwrap_or_default(),
            application: application.unwrap_or_default().to_string(),
            plan_expires_at: plan_expires_at.unwrap_or(0),
            limit_count,
            limit_unit: unit as i32,
            stop_on_reach,
            grace_sha256: grace.map(|(d, _)| d.to_vec()).unwrap_or_default(),
            grace_until: grace.map_or(0, |(_, t)| t),
        }
    }

    /// The token digest, `None` for none (or a malformed one, which decoding refuses).
    pub fn token(&self) -> Option<Digest> {
        self.token_sha256.as_slice().try_into().ok()
    }

    /// The replaced token's digest and its deadline, if any.
    pub fn grace(&self) -> Option<(Digest, u64)> {
        let d: Digest = self.grace_sha256.as_slice().try_into().ok()?;
        Some((d, self.grace_until))
    }

    /// The application, `None` for the empty string.
    pub fn application(&self) -> Option<&str> {
        (!self.application.is_empty()).then_some(self.application.as_str())
    }

    /// The plan expiry in Unix seconds, `None` for never (0).
    pub fn expiry(&self) -> Option<u64> {
        (self.plan_expires_at != 0).then_some(self.plan_expires_at)
    }

    /// The quota as (count, unit, stop on reach); `None` for none.
    pub fn limit(&self) -> Option<(u64, QuotaUnit, bool)> {
        let unit = QuotaUnit::try_from(self.limit_unit).ok()?;
        (self.limit_count > 0 && unit != QuotaUnit::Unspecified).then_some((self.limit_count, unit, self.stop_on_reach))
    }

    fn check(&self) -> Result<(), SubSetError> {
        if self.id.is_empty() {
            return Err(SubSetError::NoId);
        }
        for d in [&self.token_sha256, &self.grace_sha256] {
            if !d.is_empty() && d.len() != 32 {
                return Err(SubSetError::DigestLength(d.len()));
            }
        }
        if self.limit_count > 0 && self.limit().is_none() {
            return Err(SubSetError::NoUnit(self.id.clone()));
        }
        Ok(())
    }
}

// === impl SubscriptionSet ===

impl SubscriptionSet {
    /// The set of `api`'s `subscriptions`, sorted by id; `None` when there is none (the resource
    /// is removed instead).
    pub fn build(api: &str, subscriptions: impl IntoIterator<Item = SubscriptionDigest>) -> Option<Self> {
        let mut subscriptions: Vec<SubscriptionDigest> = subscriptions.into_iter().collect();
        if subscriptions.is_empty() {
            return None;
        }
        subscriptions.sort_by(|a, b| a.id.cmp(&b.id));
        Some(SubscriptionSet {
            api: api.to_string(),
            subscriptions,
        })
    }

    /// Decodes the set published as resource `name`, checking that the name is this set's and
    /// that every subscription is well formed and in the name's shard.
    pub fn decode_named(name: &str, bytes: &[u8]) -> Result<SubscriptionSet, SubSetError> {
        use prost::Message;
        let set = SubscriptionSet::decode(bytes)?;
        let shard = match parse_set_name(name) {
            Ok((api, shard)) if api == set.api => shard,
            Ok(_) => return Err(SubSetError::OtherApi(set.api)),
            Err(e) => return Err(e),
        };
        for s in &set.subscriptions {
            s.check()?;
            if shard_of(&s.id) != shard {
                return Err(SubSetError::OutsideShard(s.id.clone()));
            }
        }
        Ok(set)
    }
}

impl prost::Name for SubscriptionSet {
    const NAME: &'static str = "SubscriptionSet";
    const PACKAGE: &'static str = "tollgate.subs.v1";

    fn full_name() -> String {
        "tollgate.subs.v1.SubscriptionSet".into()
    }

    fn type_url() -> String {
        TYPE_URL.into()
    }
}

#[cfg(test)]
mod tests;
