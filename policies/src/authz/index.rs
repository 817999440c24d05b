//! The API-key index of the hot path: an immutable map from the SHA-256 digest of a key to what the
//! key opens, swapped atomically when keys change.
//!
//! A check reads a [`Snapshot`]: a large compact [`KeyIndex`] built now and then, plus a small layer
//! of the keys added and removed since. A single-key write ([`IndexWriter`]) rebuilds only the small
//! layer, so its cost does not grow with the number of keys; the layer is merged into a new large
//! index when it passes [`COMPACT_AT`] changes.

use std::collections::{HashMap, HashSet};
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

/// What a check reads: the last full index and the changes made since.
#[derive(Debug, Default)]
pub struct Snapshot {
    base: Arc<KeyIndex>,
    /// Keys added or changed since `base` was built; they win over `base`.
    added: KeyIndex,
    /// Digests in `base` that no longer open anything.
    removed: HashSet<Digest, BuildHasherDefault<DigestHasher>>,
}

/// The index shared by the authz service and the writers that replace it.
#[derive(Debug, Default)]
pub struct SharedIndex {
    current: ArcSwap<Snapshot>,
}

/// Changes held in the small layer before it is merged into a new full index.
pub const COMPACT_AT: usize = 4096;

/// Applies key changes to a [`SharedIndex`]. Not shared: the owner serialises writes.
#[derive(Debug)]
pub struct IndexWriter {
    shared: Arc<SharedIndex>,
    base: Arc<KeyIndex>,
    added: HashMap<Digest, KeyRecord, BuildHasherDefault<DigestHasher>>,
    removed: HashSet<Digest, BuildHasherDefault<DigestHasher>>,
    compact_at: usize,
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
        let mut b = Builder::with_capacity(entries.size_hint().0);
        for (digest, r) in entries {
            b.push(digest, r.view());
        }
        b.finish()
    }

    /// Every `(digest, key)` in the index, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = (&Digest, KeyView<'_>)> {
        self.slots
            .iter()
            .filter_map(|(d, i)| self.keys.get(*i as usize).and_then(|s| self.view(s)).map(|v| (d, v)))
    }

    fn slot(&self, digest: &Digest) -> Option<&Slot> {
        self.slots.get(digest).and_then(|i| self.keys.get(*i as usize))
    }

    fn view(&self, slot: &Slot) -> Option<KeyView<'_>> {
        let api = self.apis.get(slot.api as usize)?;
        let start = slot.text_start as usize;
        let (name_end, app_end) = (
            start + slot.name_len as usize,
            start + slot.name_len as usize + slot.app_len as usize,
        );
        Some(KeyView {
            api,
            name: self.text.get(start..name_end).unwrap_or(""),
            application: (slot.app_len > 0).then(|| self.text.get(name_end..app_end).unwrap_or("")),
            expires_at: (slot.expires_at != u64::MAX).then_some(slot.expires_at),
        })
    }

    /// The decision for a key found at `slot`.
    fn judge(&self, slot: &Slot, api: &str, now: u64) -> Decision<'_> {
        match self.apis.get(slot.api as usize) {
            Some(slot_api) if &**slot_api == api && now < slot.expires_at => {
                self.view(slot).map_or(Decision::Deny, Decision::Allow)
            }
            _ => Decision::Deny,
        }
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
        match self.slot(&digest_of(presented)) {
            Some(slot) => self.judge(slot, api, now),
            None => Decision::Deny,
        }
    }
}

/// Builds a [`KeyIndex`] from borrowed keys.
struct Builder {
    index: KeyIndex,
    api_ids: HashMap<Arc<str>, u32>,
}

impl Builder {
    fn with_capacity(n: usize) -> Self {
        Builder {
            index: KeyIndex {
                slots: HashMap::with_capacity_and_hasher(n, Default::default()),
                keys: Vec::with_capacity(n),
                ..Default::default()
            },
            api_ids: HashMap::new(),
        }
    }

    /// Adds a key; a digest added twice keeps the last.
    fn push(&mut self, digest: Digest, k: KeyView<'_>) {
        let index = &mut self.index;
        let api = match self.api_ids.get(k.api) {
            Some(id) => *id,
            None => {
                let a: Arc<str> = Arc::from(k.api);
                index.apis.push(a.clone());
                let id = (index.apis.len() - 1) as u32;
                self.api_ids.insert(a, id);
                id
            }
        };
        let text_start = index.text.len() as u32;
        let name = clip(k.name);
        let app = k.application.map(clip).unwrap_or("");
        index.text.push_str(name);
        index.text.push_str(app);
        let slot = Slot {
            expires_at: k.expires_at.unwrap_or(u64::MAX),
            text_start,
            name_len: name.len() as u16,
            app_len: app.len() as u16,
            api,
        };
        index.slots.insert(digest, index.keys.len() as u32);
        index.keys.push(slot);
    }

    fn finish(mut self) -> KeyIndex {
        self.index.keys.shrink_to_fit();
        self.index.text.shrink_to_fit();
        self.index
    }
}

// === impl KeyRecord ===

impl KeyRecord {
    fn view(&self) -> KeyView<'_> {
        KeyView {
            api: &self.api,
            name: &self.name,
            application: self.application.as_deref(),
            expires_at: self.expires_at,
        }
    }
}

// === impl Snapshot ===

impl Snapshot {
    /// Decides for a key presented on a route of `api` at time `now` (Unix seconds). Does not
    /// allocate.
    pub fn decide(&self, api: &str, presented: &[u8], now: u64) -> Decision<'_> {
        if presented.is_empty() {
            return Decision::Deny;
        }
        let digest = digest_of(presented);
        if let Some(slot) = self.added.slot(&digest) {
            return self.added.judge(slot, api, now);
        }
        if self.removed.contains(&digest) {
            return Decision::Deny;
        }
        match self.base.slot(&digest) {
            Some(slot) => self.base.judge(slot, api, now),
            None => Decision::Deny,
        }
    }

    /// How many keys open something (expired ones included).
    pub fn len(&self) -> usize {
        let shadowed = self
            .added
            .slots
            .keys()
            .filter(|d| self.base.slots.contains_key(*d) && !self.removed.contains(*d))
            .count();
        self.base.len() - self.removed.len() - shadowed + self.added.len()
    }

    /// Whether no key opens anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Changes held over the full index.
    pub fn layered(&self) -> usize {
        self.added.len() + self.removed.len()
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
    pub fn load(&self) -> arc_swap::Guard<Arc<Snapshot>> {
        self.current.load()
    }

    /// Replaces the whole index; checks that start after this see the new one.
    pub fn store(&self, index: KeyIndex) {
        self.current.store(Arc::new(Snapshot {
            base: Arc::new(index),
            ..Default::default()
        }));
    }
}

// === impl IndexWriter ===

impl IndexWriter {
    /// Builds the full index from `entries` and publishes it.
    pub fn new(shared: Arc<SharedIndex>, entries: impl IntoIterator<Item = (Digest, KeyRecord)>) -> Self {
        let base = Arc::new(KeyIndex::new(entries));
        let w = IndexWriter {
            shared,
            base,
            added: HashMap::default(),
            removed: HashSet::default(),
            compact_at: COMPACT_AT,
        };
        w.shared.current.store(Arc::new(w.snapshot()));
        w
    }

    /// Merges the layer once it holds more than `n` changes (default [`COMPACT_AT`]).
    pub fn compact_at(mut self, n: usize) -> Self {
        self.compact_at = n;
        self
    }

    /// Removes `remove`, then adds (or replaces) `add`, and publishes the result: checks that start
    /// after this returns see it. Costs O(changes since the last merge), not O(keys).
    pub fn change(
        &mut self,
        remove: impl IntoIterator<Item = Digest>,
        add: impl IntoIterator<Item = (Digest, KeyRecord)>,
    ) {
        for d in remove {
            self.added.remove(&d);
            if self.base.slots.contains_key(&d) {
                self.removed.insert(d);
            }
        }
        for (d, r) in add {
            self.added.insert(d, r);
        }
        self.publish();
    }

    /// What `digest` opens now, if anything (expired keys included).
    pub fn get(&self, digest: &Digest) -> Option<KeyView<'_>> {
        if let Some(r) = self.added.get(digest) {
            return Some(r.view());
        }
        if self.removed.contains(digest) {
            return None;
        }
        self.base.slot(digest).and_then(|s| self.base.view(s))
    }

    /// Removes every key of `api` (its API was deleted). Scans the index: O(keys).
    pub fn remove_api(&mut self, api: &str) {
        self.added.retain(|_, r| &*r.api != api);
        let gone: Vec<Digest> = self
            .base
            .entries()
            .filter(|(_, k)| k.api == api)
            .map(|(d, _)| *d)
            .collect();
        self.removed.extend(gone);
        self.publish();
    }

    /// Merges the layer into a new full index now (also drops keys expired before `now`).
    pub fn compact(&mut self, now: u64) {
        let added = std::mem::take(&mut self.added);
        let removed = std::mem::take(&mut self.removed);
        let mut b = Builder::with_capacity(self.base.len() + added.len());
        for (d, k) in self.base.entries() {
            if !removed.contains(d) && !added.contains_key(d) && k.expires_at.is_none_or(|t| t > now) {
                b.push(*d, k);
            }
        }
        for (d, r) in &added {
            if r.expires_at.is_none_or(|t| t > now) {
                b.push(*d, r.view());
            }
        }
        self.base = Arc::new(b.finish());
        self.shared.current.store(Arc::new(self.snapshot()));
    }

    fn publish(&mut self) {
        if self.added.len() + self.removed.len() > self.compact_at {
            return self.compact(super::unix_now());
        }
        self.shared.current.store(Arc::new(self.snapshot()));
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            base: self.base.clone(),
            added: KeyIndex::new(self.added.iter().map(|(d, r)| (*d, r.clone()))),
            removed: self.removed.clone(),
        }
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

    #[test]
    fn writer_changes_are_seen_by_the_next_check_and_agree_with_a_plain_map() {
        // Random adds, replacements and removals over 300 digests, checked against a HashMap after
        // every step; the layer is merged whenever it passes 40 changes.
        let shared = Arc::new(SharedIndex::default());
        let start: Vec<(Digest, KeyRecord)> = (0..100u32)
            .map(|i| (digest_of(&i.to_le_bytes()), record("a", None)))
            .collect();
        let mut model: HashMap<u32, &str> = (0..100u32).map(|i| (i, "a")).collect();
        let mut w = IndexWriter::new(shared.clone(), start).compact_at(40);
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut merges = 0;
        for step in 0..3000 {
            let i = rand(300) as u32;
            let d = digest_of(&i.to_le_bytes());
            match rand(3) {
                0 => {
                    w.change([d], []);
                    model.remove(&i);
                }
                1 => {
                    w.change([], [(d, record("a", None))]);
                    model.insert(i, "a");
                }
                _ => {
                    // Moves the key to API "b" (a replaced record under the same digest).
                    w.change([d], [(d, record("b", None))]);
                    model.insert(i, "b");
                }
            }
            let snap = shared.load();
            if snap.layered() == 0 {
                merges += 1;
            }
            if step % 7 == 0 || snap.layered() == 0 {
                for j in 0..300u32 {
                    let want = model.get(&j).copied();
                    for api in ["a", "b"] {
                        let got = matches!(snap.decide(api, &j.to_le_bytes(), 0), Decision::Allow(_));
                        assert_eq!(got, want == Some(api), "step {step}, key {j}, api {api}");
                    }
                }
                assert_eq!(snap.len(), model.len(), "step {step}");
            }
        }
        assert!(merges >= 10, "the layer was merged ({merges} times)");
    }

    #[test]
    fn writer_removes_an_apis_keys_and_merging_drops_expired_ones() {
        let shared = Arc::new(SharedIndex::default());
        let mut w = IndexWriter::new(
            shared.clone(),
            [
                (digest_of(b"a1"), record("a", None)),
                (digest_of(b"b1"), record("b", None)),
                (digest_of(b"old"), record("a", Some(10))),
            ],
        );
        w.change([], [(digest_of(b"a2"), record("a", None))]);
        w.remove_api("a");
        let snap = shared.load();
        for k in [&b"a1"[..], b"a2", b"old"] {
            assert_eq!(snap.decide("a", k, 0), Decision::Deny);
        }
        assert!(matches!(snap.decide("b", b"b1", 0), Decision::Allow(_)));
        w.change([], [(digest_of(b"soon"), record("b", Some(20)))]);
        w.compact(15);
        let snap = shared.load();
        assert_eq!(snap.layered(), 0);
        assert_eq!(snap.len(), 2, "b1 and the not yet expired key");
        assert!(matches!(snap.decide("b", b"soon", 15), Decision::Allow(_)));
        w.compact(25);
        assert_eq!(shared.load().len(), 1, "expired keys are dropped when merging");
        assert!(matches!(shared.load().decide("b", b"b1", 25), Decision::Allow(_)));
    }
}
