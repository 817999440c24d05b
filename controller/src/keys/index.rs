//! How stored keys map onto the ext_authz index: the entries a key row contributes (its digest,
//! and its previous one while a rotation's grace lasts), and changes gathered over several keys.

use std::collections::BTreeSet;
use std::sync::Arc;

use tollgate_policies::authz::index::Digest;
use tollgate_policies::authz::{IndexWriter, KeyRecord};
use tollgate_proto::hex;
use tollgate_proto::keys::shard_of;

use crate::db::KeyRow;

/// Index changes collected over several keys, applied at once.
#[derive(Debug, Default)]
pub(super) struct Change {
    pub(super) remove: Vec<Digest>,
    pub(super) add: Vec<(Digest, KeyRecord)>,
    /// The key sets `(api, shard)` that changed.
    pub(super) sets: BTreeSet<(String, u8)>,
}

// === impl Change ===

impl Change {
    /// Applies the collected digests to the index (the sets stay, for publishing).
    pub(super) fn apply(&mut self, index: &mut IndexWriter) {
        if !self.remove.is_empty() || !self.add.is_empty() {
            index.change(std::mem::take(&mut self.remove), std::mem::take(&mut self.add));
        }
    }

    /// Records that `old` (if any) makes way for `new`.
    pub(super) fn replace(&mut self, old: Option<&KeyRow>, new: &KeyRow, now: i64) {
        if let Some(old) = old {
            self.sets.extend(sets_of(&new.api, digests_of(old)));
            self.remove.extend(digests_of(old));
        }
        self.add.extend(entries_of(new, now));
        self.sets.extend(sets_of(&new.api, digests_of(new)));
    }
}

/// What a stored key puts in the index: its digest, and its previous one while a rotation's grace
/// period lasts (`now` in Unix seconds).
pub(crate) fn entries_of(k: &KeyRow, now: i64) -> Vec<(Digest, KeyRecord)> {
    let record = |expires_at: Option<i64>| KeyRecord {
        api: Arc::from(k.api.as_str()),
        name: Arc::from(k.name.as_str()),
        application: k
            .application_name
            .as_deref()
            .or(k.application_id.as_deref())
            .map(Arc::from),
        expires_at: expires_at.map(|t| t.max(0) as u64),
    };
    let mut out = Vec::with_capacity(2);
    if let Some(d) = hex::decode_digest(&k.digest) {
        out.push((d, record(k.expires_at)));
    }
    if let (Some(d), Some(until)) = (
        k.previous_digest.as_deref().and_then(hex::decode_digest),
        k.previous_expires_at,
    ) && until > now
    {
        out.push((d, record(Some(until))));
    }
    out
}

/// The digests a stored key may have put in the index.
pub(super) fn digests_of(k: &KeyRow) -> Vec<Digest> {
    [Some(k.digest.as_str()), k.previous_digest.as_deref()]
        .into_iter()
        .flatten()
        .filter_map(hex::decode_digest)
        .collect()
}

/// The key sets `(api, shard)` that hold these digests.
pub(super) fn sets_of(api: &str, digests: impl IntoIterator<Item = Digest>) -> Vec<(String, u8)> {
    digests.into_iter().map(|d| (api.to_string(), shard_of(&d))).collect()
}
