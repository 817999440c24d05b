//! `tollgate.keys.v1`: the API keys of one API, as digests, served over xDS to remote ext_authz
//! replicas. Hand-derived prost messages (no `.proto` compiler needed); the schema, for other
//! implementations:
//!
//! ```proto
//! syntax = "proto3";
//! package tollgate.keys.v1;
//!
//! // Resource name: "{api}/{xx}", xx the first byte (lower-case hex) of every digest in the set:
//! // an API's keys are split into up to 256 sets, so one key write resends one small set.
//! message ApiKeySet {
//!   string api = 1;
//!   repeated ApiKeyDigest keys = 2;  // sorted by sha256
//! }
//!
//! message ApiKeyDigest {
//!   bytes sha256 = 1;       // SHA-256 of the key as presented (never the key)
//!   string name = 2;        // the key's name
//!   string application = 3; // the application it was issued to; empty for none
//!   uint64 expires_at = 4;  // Unix seconds after which it stops working; 0 for never
//! }
//! ```
//!
//! The codec lives here too, so the publisher and the replicas share one definition of a set's
//! name, its shard and what a well-formed set is.

/// The keys of one API whose digests start with one byte (resource name `{api}/{byte:02x}`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct ApiKeySet {
    /// The API handle.
    #[prost(string, tag = "1")]
    pub api: String,
    /// Sorted by digest, so equal sets encode (and version) equally.
    #[prost(message, repeated, tag = "2")]
    pub keys: Vec<ApiKeyDigest>,
}

/// One key, as its digest.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct ApiKeyDigest {
    /// SHA-256 of the key as presented.
    #[prost(bytes = "vec", tag = "1")]
    pub sha256: Vec<u8>,
    #[prost(string, tag = "2")]
    pub name: String,
    /// Empty for none.
    #[prost(string, tag = "3")]
    pub application: String,
    /// Unix seconds; 0 for never.
    #[prost(uint64, tag = "4")]
    pub expires_at: u64,
}

/// The `Any` type URL of an [`ApiKeySet`].
pub const TYPE_URL: &str = "type.googleapis.com/tollgate.keys.v1.ApiKeySet";

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Why a key set, or its resource name, is not well formed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeySetError {
    /// The name is not `{api}/{xx}` with `xx` two lower-case hex digits.
    #[error("not a key set name")]
    BadName,
    /// The name's API is not the set's.
    #[error("not a key set name for API {0}")]
    OtherApi(String),
    /// A digest is not 32 bytes long.
    #[error("a digest of {0} bytes")]
    DigestLength(usize),
    /// A digest does not start with the set's shard byte.
    #[error("a digest outside the set's shard")]
    OutsideShard,
    /// The bytes are not an `ApiKeySet`.
    #[error("{0}")]
    Decode(#[from] prost::DecodeError),
}

/// The shard of a digest: its first byte.
pub fn shard_of(digest: &Digest) -> u8 {
    digest[0]
}

/// The resource name of the set of `api`'s keys in `shard`: `{api}/{shard:02x}`.
pub fn set_name(api: &str, shard: u8) -> String {
    format!("{api}/{shard:02x}")
}

/// Splits a set's resource name into its API and shard.
pub fn parse_set_name(name: &str) -> Result<(&str, u8), KeySetError> {
    let (api, shard) = name.rsplit_once('/').ok_or(KeySetError::BadName)?;
    let well_formed = shard.len() == 2 && shard.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if api.is_empty() || !well_formed {
        return Err(KeySetError::BadName);
    }
    let shard = u8::from_str_radix(shard, 16).map_err(|_| KeySetError::BadName)?;
    Ok((api, shard))
}

/// The API named in a set's resource name, for messages: a shard is a digest's first byte, and
/// digests (or their prefixes) are never logged.
pub fn api_of_set_name(name: &str) -> &str {
    name.rsplit_once('/').map_or(name, |(api, _)| api)
}

// === impl ApiKeyDigest ===

impl ApiKeyDigest {
    /// One key as an index holds it; `None`s are written as the message's empty values.
    pub fn new(digest: &Digest, name: &str, application: Option<&str>, expires_at: Option<u64>) -> Self {
        ApiKeyDigest {
            sha256: digest.to_vec(),
            name: name.to_string(),
            application: application.unwrap_or_default().to_string(),
            expires_at: expires_at.unwrap_or(0),
        }
    }

    /// The application, `None` for the empty string.
    pub fn application(&self) -> Option<&str> {
        (!self.application.is_empty()).then_some(self.application.as_str())
    }

    /// The expiry in Unix seconds, `None` for never (0).
    pub fn expiry(&self) -> Option<u64> {
        (self.expires_at != 0).then_some(self.expires_at)
    }
}

// === impl ApiKeySet ===

impl ApiKeySet {
    /// The set of `api`'s `keys`, sorted so that equal sets encode (and version) equally; `None`
    /// when there is no key (the resource is removed instead).
    pub fn build(api: &str, keys: impl IntoIterator<Item = ApiKeyDigest>) -> Option<Self> {
        let mut keys: Vec<ApiKeyDigest> = keys.into_iter().collect();
        if keys.is_empty() {
            return None;
        }
        keys.sort();
        Some(ApiKeySet {
            api: api.to_string(),
            keys,
        })
    }

    /// Decodes the set published as resource `name`, checking that the name is this set's and
    /// that every digest is whole and in the name's shard. Returns the API and each key with its
    /// digest.
    pub fn decode_named(name: &str, bytes: &[u8]) -> Result<(String, Vec<(Digest, ApiKeyDigest)>), KeySetError> {
        use prost::Message;
        let set = ApiKeySet::decode(bytes)?;
        let shard = match parse_set_name(name) {
            Ok((api, shard)) if api == set.api => shard,
            _ => return Err(KeySetError::OtherApi(set.api)),
        };
        let mut entries = Vec::with_capacity(set.keys.len());
        for k in set.keys {
            let digest: Digest = k
                .sha256
                .as_slice()
                .try_into()
                .map_err(|_| KeySetError::DigestLength(k.sha256.len()))?;
            if shard_of(&digest) != shard {
                return Err(KeySetError::OutsideShard);
            }
            entries.push((digest, k));
        }
        Ok((set.api, entries))
    }
}

impl prost::Name for ApiKeySet {
    const NAME: &'static str = "ApiKeySet";
    const PACKAGE: &'static str = "tollgate.keys.v1";

    fn full_name() -> String {
        "tollgate.keys.v1.ApiKeySet".into()
    }

    fn type_url() -> String {
        TYPE_URL.into()
    }
}

#[cfg(test)]
mod tests;
