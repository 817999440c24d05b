//! The `cp_objects` table: what the control plane pushed that Tollgate stores but does not enforce
//! yet (subscriptions, plans, applications) and the tombstones of keys it revoked, as JSON by kind
//! and id.

use std::fmt;
use std::str::FromStr;

use rusqlite::{OptionalExtension, params};

use super::{Db, DbError};

/// What kind of control-plane object a row holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CpKind {
    Subscription,
    Plan,
    Application,
    /// The tombstone of an API key the control plane revoked.
    RevokedKey,
}

/// A stored kind this build does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown control-plane object kind '{0}'")]
pub struct UnknownKind(pub String);

/// Something the control plane pushed that Tollgate stores but does not enforce yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpObject {
    pub kind: CpKind,
    pub id: String,
    /// The artifact UUID it belongs to, when it belongs to one.
    pub api: Option<String>,
    /// JSON.
    pub body: String,
    pub updated_at: String,
}

// === impl CpKind ===

impl CpKind {
    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            CpKind::Subscription => "subscription",
            CpKind::Plan => "plan",
            CpKind::Application => "application",
            CpKind::RevokedKey => "revoked_key",
        }
    }
}

impl FromStr for CpKind {
    type Err = UnknownKind;

    fn from_str(s: &str) -> Result<CpKind, UnknownKind> {
        match s {
            "subscription" => Ok(CpKind::Subscription),
            "plan" => Ok(CpKind::Plan),
            "application" => Ok(CpKind::Application),
            "revoked_key" => Ok(CpKind::RevokedKey),
            other => Err(UnknownKind(other.to_string())),
        }
    }
}

impl fmt::Display for CpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// === impl Db ===

impl Db {
    /// Inserts or replaces a control-plane object.
    pub fn put_cp_object(&self, o: &CpObject) -> Result<(), DbError> {
        self.write().execute(
            "INSERT INTO cp_objects (kind, id, api, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, id) DO UPDATE SET api = excluded.api, body = excluded.body,
             updated_at = excluded.updated_at",
            params![o.kind.as_str(), o.id, o.api, o.body, o.updated_at],
        )?;
        Ok(())
    }

    /// Deletes a control-plane object; false when there was none.
    pub fn delete_cp_object(&self, kind: CpKind, id: &str) -> Result<bool, DbError> {
        Ok(self.write().execute(
            "DELETE FROM cp_objects WHERE kind = ?1 AND id = ?2",
            params![kind.as_str(), id],
        )? == 1)
    }

    /// Replaces every object of `kind` (of `api`, when given) with `objects`, in one transaction.
    pub fn replace_cp_objects(&self, kind: CpKind, api: Option<&str>, objects: &[CpObject]) -> Result<(), DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        match api {
            Some(a) => tx.execute(
                "DELETE FROM cp_objects WHERE kind = ?1 AND api = ?2",
                [kind.as_str(), a],
            )?,
            None => tx.execute("DELETE FROM cp_objects WHERE kind = ?1", [kind.as_str()])?,
        };
        for o in objects {
            tx.execute(
                "INSERT OR REPLACE INTO cp_objects (kind, id, api, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![o.kind.as_str(), o.id, o.api, o.body, o.updated_at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every control-plane object of `kind`, by id.
    pub fn list_cp_objects(&self, kind: CpKind) -> Result<Vec<CpObject>, DbError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT kind, id, api, body, updated_at FROM cp_objects WHERE kind = ?1 ORDER BY id")?;
        let rows = stmt.query_map([kind.as_str()], cp_object)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many control-plane objects of `kind` there are.
    pub fn count_cp_objects(&self, kind: CpKind) -> Result<u64, DbError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM cp_objects WHERE kind = ?1",
            [kind.as_str()],
            |r| r.get(0),
        )?)
    }

    /// One control-plane object.
    pub fn get_cp_object(&self, kind: CpKind, id: &str) -> Result<Option<CpObject>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT kind, id, api, body, updated_at FROM cp_objects WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                cp_object,
            )
            .optional()?)
    }

    /// Whether a control-plane object exists.
    pub fn has_cp_object(&self, kind: CpKind, id: &str) -> Result<bool, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM cp_objects WHERE kind = ?1 AND id = ?2",
                params![kind.as_str(), id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// A `cp_objects` row selected as `kind, id, api, body, updated_at`.
fn cp_object(r: &rusqlite::Row<'_>) -> rusqlite::Result<CpObject> {
    Ok(CpObject {
        kind: {
            let text: String = r.get(0)?;
            text.parse()
                .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?
        },
        id: r.get(1)?,
        api: r.get(2)?,
        body: r.get(3)?,
        updated_at: r.get(4)?,
    })
}
