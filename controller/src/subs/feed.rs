//! Feeds usable subscriptions into the authz service's subscription index (the hot path's
//! [`SharedSubscriptions`], written through one [`SubscriptionWriter`]).

use std::sync::Arc;

use tollgate_policies::authz::quota::{PlanLimit, QuotaUnit};
use tollgate_policies::authz::subs::{SharedSubscriptions, SubscriptionRecord, SubscriptionWriter};
use tollgate_proto::hex::decode_digest;

use super::Usable;
use super::rules::Unit;

/// The index the authz service reads.
pub type SubsIndex = SharedSubscriptions;

/// Writes the subscription index.
#[derive(Debug)]
pub struct Feed {
    writer: SubscriptionWriter,
}

pub(crate) fn record(u: &Usable) -> SubscriptionRecord {
    SubscriptionRecord {
        id: u.id.as_str().into(),
        api: u.api.as_str().into(),
        application: u.application.as_deref().map(Into::into),
        plan_expires_at: u.plan_expires_at,
        limit: u.limit.map(|(count, unit, stop_on_reach)| PlanLimit {
            count,
            unit: match unit {
                Unit::Min => QuotaUnit::Minute,
                Unit::Hour => QuotaUnit::Hour,
                Unit::Day => QuotaUnit::Day,
                Unit::Month => QuotaUnit::Month,
            },
            stop_on_reach,
        }),
    }
}

// === impl Feed ===

impl Feed {
    /// A feed of `shared` (starting empty).
    pub fn new(shared: Arc<SharedSubscriptions>) -> Feed {
        Feed {
            writer: SubscriptionWriter::new(shared),
        }
    }

    /// Replaces everything with `all`.
    pub fn replace_all(&mut self, all: impl Iterator<Item = Usable>) {
        let all: Vec<Usable> = all.collect();
        // A token in its grace period goes in first, then moves aside for the current one.
        self.writer.replace_all(all.iter().map(|u| {
            let first = u.previous.as_ref().map(|p| &p.0).or(u.token_hash.as_ref());
            (first.and_then(|h| decode_digest(h)), record(u))
        }));
        for u in all.iter().filter(|u| u.previous.is_some()) {
            self.grace(u);
        }
    }

    /// Adds or replaces one subscription.
    pub fn put(&mut self, u: Usable) {
        match &u.previous {
            Some((old, _)) => {
                self.writer.upsert(decode_digest(old), record(&u));
                self.grace(&u);
            }
            None => self
                .writer
                .upsert(u.token_hash.as_deref().and_then(decode_digest), record(&u)),
        }
    }

    /// Moves `u`'s previous token into its grace period behind the current one.
    fn grace(&mut self, u: &Usable) {
        let until = u.previous.as_ref().map(|p| p.1);
        self.writer
            .set_token(&u.id, u.token_hash.as_deref().and_then(decode_digest), until);
    }

    /// Drops ended grace tokens and merges the index's layers (a periodic sweep, O(subscriptions)).
    pub fn compact(&mut self) {
        self.writer.compact(crate::clock::unix_secs().max(0) as u64);
    }

    /// Removes one subscription.
    pub fn remove(&mut self, id: &str) {
        self.writer.remove(id);
    }
}
