//! The `plans` table: subscription plans and their quota (a count per calendar window).

use rusqlite::{OptionalExtension, Row, params};

use super::{Conflict, Db, DbError, is_constraint};
use crate::origin::Origin;

/// A stored subscription plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanRow {
    /// UUID (here) or the control plane's plan id.
    pub id: String,
    /// Unique without regard to case.
    pub name: String,
    /// The control plane's plan handle, when it sent one.
    pub handle: Option<String>,
    pub billing_plan: Option<String>,
    pub stop_on_quota_reach: bool,
    /// Requests per window; with `limit_unit`, or neither.
    pub limit_count: Option<i64>,
    /// `Min`, `Hour`, `Day` or `Month`.
    pub limit_unit: Option<String>,
    /// RFC 3339; the plan stops opening anything at that instant.
    pub expiry_time: Option<String>,
    /// `ACTIVE` or `INACTIVE`.
    pub status: String,
    pub origin: Origin,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, name, handle, billing_plan, stop_on_quota_reach, limit_count, limit_unit, expiry_time, \
     status, origin, created_at, updated_at";

fn read(r: &Row<'_>) -> rusqlite::Result<PlanRow> {
    Ok(PlanRow {
        id: r.get(0)?,
        name: r.get(1)?,
        handle: r.get(2)?,
        billing_plan: r.get(3)?,
        stop_on_quota_reach: r.get(4)?,
        limit_count: r.get(5)?,
        limit_unit: r.get(6)?,
        expiry_time: r.get(7)?,
        status: r.get(8)?,
        origin: r.get(9)?,
        created_at: r.get(10)?,
        updated_at: r.get(11)?,
    })
}

/// Inserts `p`, or replaces the plan with the same id.
fn upsert(conn: &rusqlite::Connection, p: &PlanRow) -> Result<(), DbError> {
    conn.execute(
        &format!(
            "INSERT INTO plans ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, handle = excluded.handle,
               billing_plan = excluded.billing_plan, stop_on_quota_reach = excluded.stop_on_quota_reach,
               limit_count = excluded.limit_count, limit_unit = excluded.limit_unit,
               expiry_time = excluded.expiry_time, status = excluded.status, origin = excluded.origin,
               updated_at = excluded.updated_at"
        ),
        params![
            p.id,
            p.name,
            p.handle,
            p.billing_plan,
            p.stop_on_quota_reach,
            p.limit_count,
            p.limit_unit,
            p.expiry_time,
            p.status,
            p.origin,
            p.created_at,
            p.updated_at
        ],
    )
    .map_err(|e| {
        if is_constraint(&e) {
            DbError::Conflict(Conflict::Plan(p.name.clone()))
        } else {
            DbError::Sqlite(e)
        }
    })?;
    Ok(())
}

// === impl Db ===

impl Db {
    /// Inserts a plan, or replaces the one with the same id. Another plan with the same name
    /// (without regard to case) is a conflict.
    pub fn put_plan(&self, p: &PlanRow) -> Result<(), DbError> {
        upsert(&self.write(), p)
    }

    /// One plan, by id.
    pub fn plan(&self, id: &str) -> Result<Option<PlanRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM plans WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], read).optional()?)
    }

    /// One plan, by name (without regard to case) or control-plane handle.
    pub fn plan_named(&self, name: &str) -> Result<Option<PlanRow>, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM plans WHERE name = ?1 COLLATE NOCASE OR handle = ?1 LIMIT 1");
        Ok(self.conn().query_row(&sql, [name], read).optional()?)
    }

    /// Every plan, by name.
    pub fn plans(&self) -> Result<Vec<PlanRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM plans ORDER BY name COLLATE NOCASE"))?;
        let rows = stmt.query_map([], read)?.collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Deletes a plan; false when there was none.
    pub fn delete_plan(&self, id: &str) -> Result<bool, DbError> {
        Ok(self.write().execute("DELETE FROM plans WHERE id = ?1", [id])? > 0)
    }

    /// Replaces every plan of `origin` with `plans`, in one transaction (a control-plane sync).
    pub fn replace_plans(&self, origin: Origin, plans: &[PlanRow]) -> Result<(), DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM plans WHERE origin = ?1", [origin])?;
        for p in plans {
            upsert(&tx, p)?;
        }
        tx.commit()?;
        Ok(())
    }
}
