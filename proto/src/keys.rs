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

impl prost::Name for ApiKeySet {
    const NAME: &'static str = "ApiKeySet";
    const PACKAGE: &'static str = "tollgate.keys.v1";

    fn full_name() -> String {
        "tollgate.keys.v1.ApiKeySet".into()
    }

    fn type_url() -> String {
        "type.googleapis.com/tollgate.keys.v1.ApiKeySet".into()
    }
}

#[cfg(test)]
mod tests {
    use prost::{Message, Name};

    use super::*;

    #[test]
    fn round_trips_and_names_its_type() {
        let set = ApiKeySet {
            api: "orders".into(),
            keys: vec![ApiKeyDigest {
                sha256: vec![7; 32],
                name: "ci".into(),
                application: String::new(),
                expires_at: 0,
            }],
        };
        let bytes = set.encode_to_vec();
        assert_eq!(ApiKeySet::decode(&bytes[..]).unwrap(), set);
        assert_eq!(ApiKeySet::type_url(), "type.googleapis.com/tollgate.keys.v1.ApiKeySet");
        // Field 1 (api, length-delimited) comes first: 0x0a, 6, "orders".
        assert_eq!(&bytes[..8], b"\x0a\x06orders");
    }
}
