//! The API-key index of the hot path: an immutable map from the SHA-256 digest of a key to what the
//! key opens, swapped whole and atomically when keys change.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use arc_swap::ArcSwap;
use ring::digest::{SHA256, digest};

/// What one key opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRecord {
    /// The API the key belongs to (its handle).
    pub api: Arc<str>,
    /// The key's name (never the key).
    pub name: Arc<str>,
    /// The application the key was issued to, when known.
    pub application: Option<Arc<str>>,
    /// Seconds since the Unix epoch after which the key stops working.
    pub expires_at: Option<u64>,
}

/// A SHA-256 digest.
pub type Digest = [u8; 32];

/// Immutable key index.
#[derive(Debug, Default)]
pub struct KeyIndex {
    keys: HashMap<Digest, KeyRecord, BuildHasherDefault<DigestHasher>>,
}

/// The index shared by the authz service and the writers that replace it.
#[derive(Debug, Default)]
pub struct SharedIndex {
    current: ArcSwap<KeyIndex>,
}

/// The outcome of a check.
#[derive(Debug, PartialEq, Eq)]
pub enum Decision<'a> {
    /// The key is known, unexpired and belongs to the route's API.
    Allow(&'a KeyRecord),
    /// Anything else; the reason is deliberately not told apart.
    Deny,
}

/// Digests are uniformly distributed already: their first eight bytes are the hash.
#[derive(Debug, Default)]
pub struct DigestHasher(u64);

// === impl KeyIndex ===

impl KeyIndex {
    /// An index of these `(digest, record)` pairs.
    pub fn new(entries: impl IntoIterator<Item = (Digest, KeyRecord)>) -> Self {
        KeyIndex {
            keys: entries.into_iter().collect(),
        }
    }

    /// How many keys the index holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the index holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Decides for a key presented on a route of `api` at time `now` (Unix seconds). Does not
    /// allocate.
    pub fn decide(&self, api: &str, presented: &[u8], now: u64) -> Decision<'_> {
        if presented.is_empty() {
            return Decision::Deny;
        }
        match self.keys.get(&digest_of(presented)) {
            Some(r) if &*r.api == api && r.expires_at.is_none_or(|t| now < t) => Decision::Allow(r),
            _ => Decision::Deny,
        }
    }

    /// Every entry (for building the next index).
    pub fn entries(&self) -> impl Iterator<Item = (&Digest, &KeyRecord)> {
        self.keys.iter()
    }
}

/// The SHA-256 digest of a key, as stored.
pub fn digest_of(key: &[u8]) -> Digest {
    let d = digest(&SHA256, key);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

// === impl SharedIndex ===

impl SharedIndex {
    /// The current index; cheap, lock-free.
    pub fn load(&self) -> arc_swap::Guard<Arc<KeyIndex>> {
        self.current.load()
    }

    /// Replaces the index; checks that start after this see the new one.
    pub fn store(&self, index: KeyIndex) {
        self.current.store(Arc::new(index));
    }
}

// === impl DigestHasher ===

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 32]` hashes as its length then its bytes; keep the first eight digest bytes.
        if bytes.len() >= 8 && self.0 == 0 {
            let mut b = [0u8; 8];
            b.copy_from_slice(&bytes[..8]);
            self.0 = u64::from_le_bytes(b);
        }
    }

    fn write_usize(&mut self, _: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(api: &str, expires_at: Option<u64>) -> KeyRecord {
        KeyRecord {
            api: api.into(),
            name: "k".into(),
            application: None,
            expires_at,
        }
    }

    #[test]
    fn allows_only_a_known_unexpired_key_of_the_same_api() {
        let index = KeyIndex::new([
            (digest_of(b"good"), record("a", None)),
            (digest_of(b"old"), record("a", Some(100))),
            (digest_of(b"other"), record("b", None)),
        ]);
        assert!(matches!(index.decide("a", b"good", 50), Decision::Allow(r) if &*r.api == "a"));
        assert_eq!(index.decide("a", b"old", 99), Decision::Allow(&record("a", Some(100))));
        assert_eq!(
            index.decide("a", b"old", 100),
            Decision::Deny,
            "expired at its expiry time"
        );
        assert_eq!(index.decide("a", b"other", 50), Decision::Deny, "another API's key");
        assert_eq!(index.decide("a", b"unknown", 50), Decision::Deny);
        assert_eq!(index.decide("a", b"", 50), Decision::Deny);
        assert_eq!(index.decide("a", b"goo", 50), Decision::Deny);
    }

    #[test]
    fn a_stored_index_is_seen_by_the_next_check() {
        let shared = SharedIndex::default();
        assert_eq!(shared.load().decide("a", b"k", 0), Decision::Deny);
        shared.store(KeyIndex::new([(digest_of(b"k"), record("a", None))]));
        assert!(matches!(shared.load().decide("a", b"k", 0), Decision::Allow(_)));
        shared.store(KeyIndex::default());
        assert_eq!(
            shared.load().decide("a", b"k", 0),
            Decision::Deny,
            "revocation bites on the next check"
        );
    }

    #[test]
    fn many_keys_spread_over_the_map() {
        let index = KeyIndex::new((0..10_000u32).map(|i| (digest_of(&i.to_le_bytes()), record("a", None))));
        assert_eq!(index.len(), 10_000);
        for i in (0..10_000u32).step_by(997) {
            assert!(matches!(index.decide("a", &i.to_le_bytes(), 0), Decision::Allow(_)));
        }
    }
}
