//! The `subscriptions` table (tokens as SHA-256 hex, never a token) and `quota_windows`, the
//! persisted counts of day and month quotas.

use rusqlite::{OptionalExtension, Row, params};

use super::{Conflict, Db, DbError, is_constraint};
use crate::origin::Origin;

/// A stored subscription.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionRow {
    pub id: String,
    /// The API's UUID.
    pub api_uuid: String,
    pub application_id: Option<String>,
    /// SHA-256 of the token (hex); none for a subscription reached only through its application.
    pub token_hash: Option<String>,
    /// The token before the last regeneration, valid until `previous_expires_at` (Unix seconds).
    pub previous_token_hash: Option<String>,
    pub previous_expires_at: Option<i64>,
    pub plan_id: Option<String>,
    pub billing_customer_id: Option<String>,
    pub billing_subscription_id: Option<String>,
    /// `ACTIVE`, `INACTIVE` or `REVOKED`.
    pub status: String,
    pub origin: Origin,
    pub created_at: String,
    pub updated_at: String,
}

/// The count of one subscription's current quota window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaWindow {
    pub subscription: String,
    /// Unix seconds.
    pub window_start: i64,
    pub count: i64,
}

const COLUMNS: &str = "id, api_uuid, application_id, token_hash, previous_token_hash, previous_expires_at, plan_id, \
     billing_customer_id, billing_subscription_id, status, origin, created_at, updated_at";

fn read(r: &Row<'_>) -> rusqlite::Result<SubscriptionRow> {
    Ok(SubscriptionRow {
        id: r.get(0)?,
        api_uuid: r.get(1)?,
        application_id: r.get(2)?,
        token_hash: r.get(3)?,
        previous_token_hash: r.get(4)?,
        previous_expires_at: r.get(5)?,
        plan_id: r.get(6)?,
        billing_customer_id: r.get(7)?,
        billing_subscription_id: r.get(8)?,
        status: r.get(9)?,
        origin: r.get(10)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

/// Inserts `s`, or replaces the subscription with the same id.
fn upsert(conn: &rusqlite::Connection, s: &SubscriptionRow) -> Result<(), DbError> {
    conn.execute(
        &format!(
            "INSERT INTO subscriptions ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
             ON CONFLICT (id) DO UPDATE SET api_uuid = excluded.api_uuid, application_id = excluded.application_id,
               token_hash = excluded.token_hash, previous_token_hash = excluded.previous_token_hash,
               previous_expires_at = excluded.previous_expires_at, plan_id = excluded.plan_id,
               billing_customer_id = excluded.billing_customer_id,
               billing_subscription_id = excluded.billing_subscription_id, status = excluded.status,
               origin = excluded.origin, updated_at = excluded.updated_at"
        ),
        params![
            s.id,
            s.api_uuid,
            s.application_id,
            s.token_hash,
            s.previous_token_hash,
            s.previous_expires_at,
            s.plan_id,
            s.billing_customer_id,
            s.billing_subscription_id,
            s.status,
            s.origin,
            s.created_at,
            s.updated_at
        ],
    )
    .map_err(|e| {
        if is_constraint(&e) {
            DbError::Conflict(Conflict::Subscription)
        } else {
            DbError::Sqlite(e)
        }
    })?;
    Ok(())
}

/// Which subscriptions a listing returns.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionFilter {
    pub api_uuid: Option<String>,
    pub application_id: Option<String>,
    pub status: Option<String>,
}

// === impl Db ===

impl Db {
    /// Inserts a subscription, or replaces the one with the same id. The same token twice on one
    /// API is a conflict.
    pub fn put_subscription(&self, s: &SubscriptionRow) -> Result<(), DbError> {
        upsert(&self.write(), s)
    }

    /// One subscription, by id.
    pub fn subscription(&self, id: &str) -> Result<Option<SubscriptionRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM subscriptions WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], read).optional()?)
    }

    /// The subscriptions `f` selects, oldest first.
    pub fn subscriptions(&self, f: &SubscriptionFilter) -> Result<Vec<SubscriptionRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM subscriptions
             WHERE (?1 IS NULL OR api_uuid = ?1) AND (?2 IS NULL OR application_id = ?2) AND (?3 IS NULL OR status = ?3)
             ORDER BY created_at, id"
        ))?;
        let rows = stmt
            .query_map(params![f.api_uuid, f.application_id, f.status], read)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Deletes a subscription; false when there was none.
    pub fn delete_subscription(&self, id: &str) -> Result<bool, DbError> {
        Ok(self.write().execute("DELETE FROM subscriptions WHERE id = ?1", [id])? > 0)
    }

    /// Deletes every subscription of an API; their ids.
    pub fn delete_subscriptions_of(&self, api_uuid: &str) -> Result<Vec<String>, DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let ids = {
            let mut stmt = tx.prepare("SELECT id FROM subscriptions WHERE api_uuid = ?1")?;
            stmt.query_map([api_uuid], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?
        };
        tx.execute("DELETE FROM subscriptions WHERE api_uuid = ?1", [api_uuid])?;
        tx.commit()?;
        Ok(ids)
    }

    /// Replaces every control-plane subscription of an API with `subs`, in one transaction.
    pub fn replace_subscriptions_of(&self, api_uuid: &str, subs: &[SubscriptionRow]) -> Result<(), DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM subscriptions WHERE api_uuid = ?1 AND origin = ?2",
            params![api_uuid, Origin::ControlPlane],
        )?;
        for s in subs {
            upsert(&tx, s)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// How many subscriptions are stored.
    pub fn count_subscriptions(&self) -> Result<u64, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM subscriptions", [], |r| r.get(0))?)
    }

    /// Stores the current windows of long quotas, replacing what was stored, in one transaction.
    /// Windows of subscriptions deleted meanwhile are skipped.
    pub fn put_quota_windows(&self, windows: &[QuotaWindow]) -> Result<(), DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM quota_windows", [])?;
        for w in windows {
            tx.execute(
                "INSERT INTO quota_windows (subscription, window_start, count)
                 SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM subscriptions WHERE id = ?1)",
                params![w.subscription, w.window_start, w.count],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored quota windows.
    pub fn quota_windows(&self) -> Result<Vec<QuotaWindow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT subscription, window_start, count FROM quota_windows")?;
        let rows = stmt
            .query_map([], |r| {
                Ok(QuotaWindow {
                    subscription: r.get(0)?,
                    window_start: r.get(1)?,
                    count: r.get(2)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

// === impl Db (lookups the subscription index needs) ===

impl Db {
    /// Every stored API's handle, by UUID.
    pub fn api_handles(&self) -> Result<std::collections::HashMap<String, String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT uuid, handle FROM apis")?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// The handle of the API with UUID `uuid`.
    pub fn api_handle(&self, uuid: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT handle FROM apis WHERE uuid = ?1", [uuid], |r| r.get(0))
            .optional()?)
    }

    /// The ids of the subscriptions on plan `plan_id`.
    pub fn subscriptions_on_plan(&self, plan_id: &str) -> Result<Vec<String>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT id FROM subscriptions WHERE plan_id = ?1")?;
        let rows = stmt.query_map([plan_id], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
