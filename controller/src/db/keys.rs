//! The `api_keys` table: key digests and their bookkeeping, never a key.

use rusqlite::params;

use super::{Conflict, Db, DbError};

/// A stored API key: its SHA-256 digest (hex) and bookkeeping, never the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRow {
    pub uuid: String,
    pub api: String,
    pub name: String,
    pub digest: String,
    /// `***` and the last five characters.
    pub masked: String,
    /// Revoked keys are deleted, so always active.
    pub status: crate::keys::KeyStatus,
    /// Generated here, or supplied by the caller.
    pub source: crate::keys::KeySource,
    pub created_at: String,
    pub created_by: String,
    pub updated_at: String,
    /// Unix seconds.
    pub expires_at: Option<i64>,
    pub application_id: Option<String>,
    pub application_name: Option<String>,
    pub plan: Option<String>,
    /// The value before the last regeneration, valid until `previous_expires_at`.
    pub previous_digest: Option<String>,
    pub previous_expires_at: Option<i64>,
    /// Made here, or pushed by the platform API.
    pub origin: crate::origin::Origin,
}

const KEY_COLUMNS: &str = "uuid, api, name, digest, masked, status, source, created_at, created_by, updated_at, \
     expires_at, application_id, application_name, plan, previous_digest, previous_expires_at, origin";
const KEY_VALUES: &str = "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17";

/// Runs `sql` (an insert of every column) for `k`; a broken uniqueness rule is a conflict.
fn insert(conn: &rusqlite::Connection, sql: &str, k: &KeyRow) -> Result<usize, DbError> {
    conn.execute(
        sql,
        params![
            k.uuid,
            k.api,
            k.name,
            k.digest,
            k.masked,
            k.status,
            k.source,
            k.created_at,
            k.created_by,
            k.updated_at,
            k.expires_at,
            k.application_id,
            k.application_name,
            k.plan,
            k.previous_digest,
            k.previous_expires_at,
            k.origin
        ],
    )
    .map_err(|e| {
        if super::is_constraint(&e) {
            key_conflict(k)
        } else {
            DbError::Sqlite(e)
        }
    })
}

fn key_conflict(k: &KeyRow) -> DbError {
    DbError::Conflict(Conflict::Key(k.name.clone()))
}

// === impl Db ===

impl Db {
    /// Inserts a key, or updates the one stored under the same uuid: only if that is the same key
    /// (same API and name), so a uuid never rewrites another key's digest. A duplicate name on the
    /// API, a digest already stored, or a uuid of another key is a conflict.
    pub fn put_key(&self, k: &KeyRow) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({KEY_VALUES})
             ON CONFLICT (uuid) DO UPDATE SET digest = excluded.digest, masked = excluded.masked,
             status = excluded.status, updated_at = excluded.updated_at, expires_at = excluded.expires_at,
             previous_digest = excluded.previous_digest, previous_expires_at = excluded.previous_expires_at
             WHERE api_keys.api = excluded.api AND api_keys.name = excluded.name"
        );
        let written = insert(&self.write(), &sql, k)?;
        if written != 1 {
            return Err(key_conflict(k));
        }
        Ok(())
    }

    /// Stores `k` in place of the key of its API and name, in one transaction: the key stored under
    /// that name must be of `replaces` (its origin, as read by the caller; `None`: there must be
    /// none). On any conflict nothing changes, so the old digest is never half-replaced.
    pub fn replace_key(&self, k: &KeyRow, replaces: Option<crate::origin::Origin>) -> Result<(), DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        if let Some(origin) = replaces {
            let gone = tx.execute(
                "DELETE FROM api_keys WHERE api = ?1 AND name = ?2 AND origin = ?3",
                params![k.api, k.name, origin],
            )?;
            if gone != 1 {
                return Err(key_conflict(k));
            }
        }
        let sql = format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({KEY_VALUES})");
        insert(&tx, &sql, k)?;
        tx.commit()?;
        Ok(())
    }

    /// Deletes the key `name` of `api`; false when there was none.
    pub fn delete_key(&self, api: &str, name: &str) -> Result<bool, DbError> {
        Ok(self
            .write()
            .execute("DELETE FROM api_keys WHERE api = ?1 AND name = ?2", [api, name])?
            == 1)
    }

    /// Every stored key.
    pub fn list_keys(&self) -> Result<Vec<KeyRow>, DbError> {
        self.query_keys("ORDER BY api, name", [])
    }

    /// The keys of `api`, by name.
    pub fn list_keys_of(&self, api: &str) -> Result<Vec<KeyRow>, DbError> {
        self.query_keys("WHERE api = ?1 ORDER BY name", [api])
    }

    /// The keys of `api` whose digest, or previous digest, starts with the byte `shard` (hex).
    pub fn list_keys_in_shard(&self, api: &str, shard: u8) -> Result<Vec<KeyRow>, DbError> {
        let lo = format!("{shard:02x}");
        // Lower-case hex sorts like the bytes it spells; the shard after ff starts past "f".
        let hi = shard
            .checked_add(1)
            .map_or_else(|| "g".to_string(), |n| format!("{n:02x}"));
        self.query_keys(
            "WHERE api = ?1 AND ((digest >= ?2 AND digest < ?3) OR (previous_digest >= ?2 AND previous_digest < ?3))",
            [api, lo.as_str(), hi.as_str()],
        )
    }

    /// The keys stored with this origin.
    pub fn list_keys_by_origin(&self, origin: crate::origin::Origin) -> Result<Vec<KeyRow>, DbError> {
        self.query_keys("WHERE origin = ?1 ORDER BY api, name", [origin])
    }

    /// The key `name` of `api`.
    pub fn get_key(&self, api: &str, name: &str) -> Result<Option<KeyRow>, DbError> {
        Ok(self.query_keys("WHERE api = ?1 AND name = ?2", [api, name])?.pop())
    }

    /// The key with this UUID.
    pub fn key_by_uuid(&self, uuid: &str) -> Result<Option<KeyRow>, DbError> {
        Ok(self.query_keys("WHERE uuid = ?1", [uuid])?.pop())
    }

    /// How many keys are stored, over every API (for metrics).
    pub fn count_all_keys(&self) -> Result<u64, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM api_keys", [], |r| r.get(0))?)
    }

    /// How many keys `user` created for `api`.
    pub fn count_keys(&self, api: &str, user: &str) -> Result<u32, DbError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM api_keys WHERE api = ?1 AND created_by = ?2",
            [api, user],
            |r| r.get(0),
        )?)
    }

    fn query_keys<P: rusqlite::Params>(&self, filter: &str, params: P) -> Result<Vec<KeyRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!("SELECT {KEY_COLUMNS} FROM api_keys {filter}"))?;
        let rows = stmt.query_map(params, |r| {
            Ok(KeyRow {
                uuid: r.get(0)?,
                api: r.get(1)?,
                name: r.get(2)?,
                digest: r.get(3)?,
                masked: r.get(4)?,
                status: r.get(5)?,
                source: r.get(6)?,
                created_at: r.get(7)?,
                created_by: r.get(8)?,
                updated_at: r.get(9)?,
                expires_at: r.get(10)?,
                application_id: r.get(11)?,
                application_name: r.get(12)?,
                plan: r.get(13)?,
                previous_digest: r.get(14)?,
                previous_expires_at: r.get(15)?,
                origin: r.get(16)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
