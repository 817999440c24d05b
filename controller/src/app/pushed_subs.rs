//! Plans and subscriptions the control plane pushes (`subscriptionPlan.*`, `subscription.*` and
//! the startup sync): stored like local ones, marked `control_plane`, and enforced at once. The
//! platform is authoritative for them: its deletions always apply.

use serde_json::Value;

use super::{App, AppError, Stored};
use crate::db::SubscriptionRow;
use crate::origin::Origin;
use crate::subs::{bodies, plans};

// === impl App ===

impl App {
    /// Stores a plan the control plane pushed; its subscriptions follow at once.
    pub async fn put_pushed_plan(&self, p: Value) -> Result<Stored, AppError> {
        let mut row = plans::pushed_plan(&p, &crate::clock::rfc3339_now()).map_err(AppError::Invalid)?;
        self.with_subs(move |s| {
            if let Some(old) = s.db().plan(&row.id)? {
                row.created_at = old.created_at.clone();
                row.updated_at = if same_plan(&old, &row) {
                    old.updated_at.clone()
                } else {
                    row.updated_at
                };
                if old == row {
                    return Ok(Stored::Unchanged);
                }
            }
            s.db().put_plan(&row)?;
            s.refresh_plan(&row.id)?;
            Ok(Stored::Applied)
        })
        .await
    }

    /// Deletes a plan the control plane deleted; its subscriptions stop opening anything.
    pub async fn delete_pushed_plan(&self, id: &str) -> Result<bool, AppError> {
        let id = id.to_string();
        self.with_subs(move |s| {
            let gone = s.db().delete_plan(&id)?;
            s.refresh_plan(&id)?;
            Ok(gone)
        })
        .await
    }

    /// Replaces every control-plane plan with the platform's listing (startup sync).
    pub async fn replace_pushed_plans(&self, listing: Vec<Value>) -> Result<usize, AppError> {
        let now = crate::clock::rfc3339_now();
        let rows: Vec<_> = listing
            .iter()
            .filter_map(|p| plans::pushed_plan(p, &now).ok())
            .collect();
        let n = rows.len();
        self.with_subs(move |s| {
            let before: Vec<String> = s.db().plans()?.into_iter().map(|p| p.id).collect();
            s.db().replace_plans(Origin::ControlPlane, &rows)?;
            for id in before.iter().chain(rows.iter().map(|r| &r.id)) {
                s.refresh_plan(id)?;
            }
            Ok(n)
        })
        .await
    }

    /// Stores a subscription the control plane pushed (created, or updated: status, plan, a new
    /// token, after which the old one opens nothing).
    pub async fn put_pushed_subscription(&self, p: Value) -> Result<Stored, AppError> {
        let row = bodies::pushed_subscription(&p, &crate::clock::rfc3339_now()).map_err(AppError::Invalid)?;
        self.with_subs(move |s| {
            let row = match s.db().subscription(&row.id)? {
                Some(old) if same_subscription(&old, &row) => return Ok(Stored::Unchanged),
                Some(old) => SubscriptionRow {
                    created_at: old.created_at,
                    // A token-less update (status only) keeps the token.
                    token_hash: row.token_hash.clone().or(old.token_hash),
                    ..row
                },
                None => row,
            };
            s.db().put_subscription(&row)?;
            s.refresh(std::slice::from_ref(&row.id))?;
            Ok(Stored::Applied)
        })
        .await
    }

    /// Deletes a subscription the control plane deleted; false when there was none.
    pub async fn delete_pushed_subscription(&self, id: &str) -> Result<bool, AppError> {
        let id = id.to_string();
        self.with_subs(move |s| {
            let gone = s.db().delete_subscription(&id)?;
            s.forget(std::slice::from_ref(&id));
            Ok(gone)
        })
        .await
    }

    /// Replaces the control-plane subscriptions of API `api_uuid` with the platform's listing.
    pub async fn replace_pushed_subscriptions(&self, api_uuid: &str, listing: Vec<Value>) -> Result<usize, AppError> {
        let now = crate::clock::rfc3339_now();
        let uuid = api_uuid.to_string();
        let rows: Vec<_> = listing
            .iter()
            .filter_map(|p| bodies::pushed_subscription(p, &now).ok())
            .filter(|r| r.api_uuid == uuid)
            .collect();
        let n = rows.len();
        self.with_subs(move |s| {
            let before: Vec<String> = s
                .db()
                .subscriptions(&crate::db::SubscriptionFilter {
                    api_uuid: Some(uuid.clone()),
                    ..Default::default()
                })?
                .into_iter()
                .map(|r| r.id)
                .collect();
            s.db().replace_subscriptions_of(&uuid, &rows)?;
            let ids: Vec<String> = before.into_iter().chain(rows.into_iter().map(|r| r.id)).collect();
            s.refresh(&ids)?;
            Ok(n)
        })
        .await
    }
}

/// Whether two plans say the same, timestamps aside.
fn same_plan(a: &crate::db::PlanRow, b: &crate::db::PlanRow) -> bool {
    let strip = |p: &crate::db::PlanRow| crate::db::PlanRow {
        created_at: String::new(),
        updated_at: String::new(),
        ..p.clone()
    };
    strip(a) == strip(b)
}

/// Whether a pushed subscription changes nothing stored (timestamps aside; no token = same token).
fn same_subscription(old: &SubscriptionRow, new: &SubscriptionRow) -> bool {
    let strip = |r: &SubscriptionRow, token: Option<String>| SubscriptionRow {
        created_at: String::new(),
        updated_at: String::new(),
        token_hash: token,
        ..r.clone()
    };
    let token = new.token_hash.clone().or(old.token_hash.clone());
    strip(old, old.token_hash.clone()) == strip(new, token)
}
