//! Subscription plans and subscriptions: the rules of their bodies ([`rules`], [`plans`],
//! [`bodies`]) and what the authz service enforces ([`Subs`]): every write re-reads the rows it
//! touched and updates the hot path's subscription index, so the next request sees it.
//!
//! A subscription opens its API when it is `ACTIVE`, its API is stored here, and its plan (if it
//! names one) exists and is `ACTIVE`; anything else is absent from the index, which the authz
//! service answers with 403. A plan's expiry is checked on each request.

pub mod bodies;
mod feed;
pub mod persist;
pub mod plans;
pub mod rules;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::db::{Db, DbError, PlanRow, SubscriptionFilter, SubscriptionRow};
use crate::replica::SubSetPublisher;

pub(crate) use feed::record;
pub use feed::{Feed, SubsIndex};

/// What the authz service holds for one usable subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usable {
    pub id: String,
    /// The API's handle (what routes name).
    pub api: String,
    pub application: Option<String>,
    /// SHA-256 hex of the token; none for a subscription reached through its application only.
    pub token_hash: Option<String>,
    /// The token before a regeneration and until when (Unix seconds) it still opens.
    pub previous: Option<(String, u64)>,
    /// Unix seconds.
    pub plan_expires_at: Option<u64>,
    /// Requests per window, the window, and whether the quota stops requests.
    pub limit: Option<(u64, rules::Unit, bool)>,
}

/// Keeps the authz service's subscription index in step with the database (and, when replicas
/// are fed, the subscription sets published to them).
#[derive(Debug)]
pub struct Subs {
    db: Arc<Db>,
    feed: Mutex<Feed>,
    /// Taken while `feed` is held, so sets are published in the index's order.
    sets: Option<Mutex<SubSetPublisher>>,
}

// === impl Subs ===

impl Subs {
    /// Loads every usable subscription into `feed`'s index. Blocking.
    pub fn load(db: Arc<Db>, feed: Feed) -> Result<Subs, DbError> {
        Self::load_publishing(db, feed, None)
    }

    /// [`Subs::load`], also publishing every usable subscription to replicas through `sets`
    /// (and every later change). Blocking.
    pub fn load_publishing(db: Arc<Db>, mut feed: Feed, sets: Option<SubSetPublisher>) -> Result<Subs, DbError> {
        let plans: HashMap<String, PlanRow> = db.plans()?.into_iter().map(|p| (p.id.clone(), p)).collect();
        let handles = db.api_handles()?;
        let all = db.subscriptions(&SubscriptionFilter::default())?;
        let now = crate::clock::unix_secs().max(0) as u64;
        let usable: Vec<Usable> = all
            .iter()
            .filter_map(|s| {
                let plan = s.plan_id.as_ref().and_then(|p| plans.get(p));
                usable(s, plan, handles.get(&s.api_uuid).map(String::as_str), now)
            })
            .collect();
        let sets = sets.map(|mut p| {
            usable.iter().for_each(|u| p.put(u));
            p.flush();
            Mutex::new(p)
        });
        feed.replace_all(usable.into_iter());
        Ok(Subs {
            db,
            feed: Mutex::new(feed),
            sets,
        })
    }

    /// The database.
    pub fn db(&self) -> &Arc<Db> {
        &self.db
    }

    fn feed(&self) -> MutexGuard<'_, Feed> {
        self.feed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The replicas' publisher, if any (take it while holding the feed).
    fn sets(&self) -> Option<MutexGuard<'_, SubSetPublisher>> {
        self.sets.as_ref().map(|m| m.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Re-reads subscriptions `ids` and updates the index (removing the ones gone or no longer
    /// usable). Blocking.
    pub fn refresh(&self, ids: &[String]) -> Result<(), DbError> {
        let now = crate::clock::unix_secs().max(0) as u64;
        let mut feed = self.feed();
        let mut sets = self.sets();
        // Published even when a read fails half-way: what was fed so far is what replicas get.
        let result = self.refresh_into(ids, now, &mut feed, sets.as_deref_mut());
        if let Some(p) = sets.as_deref_mut() {
            p.flush();
        }
        result
    }

    fn refresh_into(
        &self,
        ids: &[String],
        now: u64,
        feed: &mut Feed,
        mut sets: Option<&mut SubSetPublisher>,
    ) -> Result<(), DbError> {
        for id in ids {
            let row = self.db.subscription(id)?;
            let (plan, handle) = match &row {
                Some(r) => (
                    match r.plan_id.as_deref() {
                        Some(p) => self.db.plan(p)?,
                        None => None,
                    },
                    self.db.api_handle(&r.api_uuid)?,
                ),
                None => (None, None),
            };
            match row
                .as_ref()
                .and_then(|r| usable(r, plan.as_ref(), handle.as_deref(), now))
            {
                Some(u) => {
                    if let Some(p) = sets.as_deref_mut() {
                        p.put(&u);
                    }
                    feed.put(u)
                }
                None => {
                    if let Some(p) = sets.as_deref_mut() {
                        p.remove(id);
                    }
                    feed.remove(id)
                }
            }
        }
        Ok(())
    }

    /// Re-reads every subscription `filter` selects. Blocking.
    pub fn refresh_where(&self, filter: &SubscriptionFilter) -> Result<(), DbError> {
        let ids: Vec<String> = self.db.subscriptions(filter)?.into_iter().map(|s| s.id).collect();
        self.refresh(&ids)
    }

    /// Re-reads the subscriptions on plan `plan_id`. Blocking.
    pub fn refresh_plan(&self, plan_id: &str) -> Result<(), DbError> {
        let ids = self.db.subscriptions_on_plan(plan_id)?;
        self.refresh(&ids)
    }

    /// Drops ended grace tokens from the index and merges its layers. Blocking; once a minute.
    pub fn compact(&self) {
        self.feed().compact();
    }

    /// Removes subscriptions from the index (their rows are gone).
    pub fn forget(&self, ids: &[String]) {
        let mut feed = self.feed();
        let mut sets = self.sets();
        for id in ids {
            feed.remove(id);
            if let Some(p) = sets.as_deref_mut() {
                p.remove(id);
            }
        }
        if let Some(p) = sets.as_deref_mut() {
            p.flush();
        }
    }
}

/// What the index holds for `s`, if it opens anything: `ACTIVE`, its API stored here, its plan
/// (when named) present and `ACTIVE`.
fn usable(s: &SubscriptionRow, plan: Option<&PlanRow>, handle: Option<&str>, now: u64) -> Option<Usable> {
    if s.status != "ACTIVE" {
        return None;
    }
    let api = handle?.to_string();
    let (plan_expires_at, limit) = match (&s.plan_id, plan) {
        (None, _) => (None, None),
        (Some(_), None) => return None,
        (Some(_), Some(p)) if p.status != "ACTIVE" => return None,
        (Some(_), Some(p)) => {
            let expires = p
                .expiry_time
                .as_deref()
                .and_then(crate::clock::parse_secs)
                .map(|t| t.max(0) as u64);
            let limit = match (p.limit_count, p.limit_unit.as_deref().and_then(rules::Unit::parse)) {
                (Some(n), Some(unit)) if n > 0 => Some((n as u64, unit, p.stop_on_quota_reach)),
                _ => None,
            };
            (expires, limit)
        }
    };
    let previous = match (&s.previous_token_hash, s.previous_expires_at) {
        (Some(h), Some(until)) if until > 0 && (until as u64) > now => Some((h.clone(), until as u64)),
        _ => None,
    };
    Some(Usable {
        id: s.id.clone(),
        api,
        application: s.application_id.clone(),
        token_hash: s.token_hash.clone(),
        previous,
        plan_expires_at,
        limit,
    })
}

#[cfg(test)]
mod tests;
