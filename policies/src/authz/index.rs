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

/// Immutable key index, laid out compactly: digest → slot, slots of fixed size, and the names in
/// one string arena (so a key costs its digest, a 24-byte slot and its name's bytes).
#[derive(Debug, Default)]
pub struct KeyIndex {
    slots: HashMap<Digest, u32, BuildHasherDefault<DigestHasher>>,
    keys: Vec<Slot>,
    apis: Vec<Arc<str>>,
    text: String,
}

/// One key's facts; strings live in the index's arena.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Unix seconds; `u64::MAX` for never.
    expires_at: u64,
    text_start: u32,
    name_len: u16,
    /// Length of the application name stored after the key name; 0 for none.
    app_len: u16,
    api: u32,
}

/// What an allowed key is, borrowed from the index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyView<'a> {
    pub api: &'a str,
    pub name: &'a str,
    pub application: Option<&'a str>,
    pub expires_at: Option<u64>,
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
    Allow(KeyView<'a>),
    /// Anything else; the reason is deliberately not told apart.
    Deny,
}

/// Digests are uniformly distributed already: their first eight bytes are the hash.
#[derive(Debug, Default)]
pub struct DigestHasher(u64);

// === impl KeyIndex ===

impl KeyIndex {
    /// An index of these `(digest, record)` pairs. Names longer than 65,535 bytes are cut.
    pub fn new(entries: impl IntoIterator<Item = (Digest, KeyRecord)>) -> Self {
        let entries = entries.into_iter();
        let mut index = KeyIndex {
            slots: HashMap::with_capacity_and_hasher(entries.size_hint().0, Default::default()),
            keys: Vec::with_capacity(entries.size_hint().0),
            ..Default::default()
        };
        let mut api_ids: HashMap<Arc<str>, u32> = HashMap::new();
        for (digest, r) in entries {
            let api = *api_ids.entry(r.api.clone()).or_insert_with(|| {
                index.apis.push(r.api.clone());
                (index.apis.len() - 1) as u32
            });
            let text_start = index.text.len() as u32;
            let name = clip(&r.name);
            let app = r.application.as_deref().map(clip).unwrap_or("");
            index.text.push_str(name);
            index.text.push_str(app);
            let slot = Slot {
                expires_at: r.expires_at.unwrap_or(u64::MAX),
                text_start,
                name_len: name.len() as u16,
                app_len: app.len() as u16,
                api,
            };
            index.slots.insert(digest, index.keys.len() as u32);
            index.keys.push(slot);
        }
        index.keys.shrink_to_fit();
        index.text.shrink_to_fit();
        index
    }

    /// How many keys the index holds.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether the index holds no key.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Decides for a key presented on a route of `api` at time `now` (Unix seconds). Does not
    /// allocate.
    pub fn decide(&self, api: &str, presented: &[u8], now: u64) -> Decision<'_> {
        if presented.is_empty() {
            return Decision::Deny;
        }
        let Some(slot) = self
            .slots
            .get(&digest_of(presented))
            .and_then(|i| self.keys.get(*i as usize))
        else {
            return Decision::Deny;
        };
        let Some(slot_api) = self.apis.get(slot.api as usize) else {
            return Decision::Deny;
        };
        if &**slot_api != api || now >= slot.expires_at {
            return Decision::Deny;
        }
        let start = slot.text_start as usize;
        let (name_end, app_end) = (
            start + slot.name_len as usize,
            start + slot.name_len as usize + slot.app_len as usize,
        );
        Decision::Allow(KeyView {
            api: slot_api,
            name: self.text.get(start..name_end).unwrap_or(""),
            application: (slot.app_len > 0).then(|| self.text.get(name_end..app_end).unwrap_or("")),
            expires_at: (slot.expires_at != u64::MAX).then_some(slot.expires_at),
        })
    }
}

/// At most 65,535 bytes, cut on a character boundary.
fn clip(s: &str) -> &str {
    if s.len() <= u16::MAX as usize {
        return s;
    }
    let mut end = u16::MAX as usize;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
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
        assert!(matches!(index.decide("a", b"good", 50), Decision::Allow(r) if r.api == "a" && r.name == "k"));
        assert_eq!(
            index.decide("a", b"old", 99),
            Decision::Allow(KeyView {
                api: "a",
                name: "k",
                application: None,
                expires_at: Some(100)
            })
        );
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
    fn names_and_applications_come_back_from_the_arena() {
        let index = KeyIndex::new([
            (
                digest_of(b"1"),
                KeyRecord {
                    api: "a".into(),
                    name: "first".into(),
                    application: Some("shop".into()),
                    expires_at: None,
                },
            ),
            (
                digest_of(b"2"),
                KeyRecord {
                    api: "b".into(),
                    name: "second".into(),
                    application: None,
                    expires_at: None,
                },
            ),
        ]);
        assert_eq!(
            index.decide("a", b"1", 0),
            Decision::Allow(KeyView {
                api: "a",
                name: "first",
                application: Some("shop"),
                expires_at: None
            })
        );
        assert_eq!(
            index.decide("b", b"2", 0),
            Decision::Allow(KeyView {
                api: "b",
                name: "second",
                application: None,
                expires_at: None
            })
        );
        let long = "n".repeat(70_000);
        assert_eq!(clip(&long).len(), 65_535);
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
