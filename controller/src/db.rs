//! SQLite persistence (WAL). Every write is one transaction: when it returns, the change survives
//! a `kill -9`. The schema is versioned with `PRAGMA user_version` and upgraded forward at open.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension, params};

/// Forward migrations; entry `i` takes the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: APIs.
    "CREATE TABLE apis (
        handle TEXT PRIMARY KEY,
        uuid TEXT NOT NULL UNIQUE,
        display_name TEXT NOT NULL,
        version TEXT NOT NULL,
        document TEXT NOT NULL,
        deployed INTEGER NOT NULL,
        origin TEXT NOT NULL DEFAULT 'gateway_api',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        deployed_at TEXT,
        UNIQUE (display_name, version)
    );
    CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    // 2: API keys (digests only), one row per key; a regenerated key keeps its previous digest
    // until its grace period ends.
    "CREATE TABLE api_keys (
        uuid TEXT PRIMARY KEY,
        api TEXT NOT NULL REFERENCES apis (handle) ON DELETE CASCADE,
        name TEXT NOT NULL,
        digest TEXT NOT NULL UNIQUE,
        masked TEXT NOT NULL,
        status TEXT NOT NULL,
        source TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_by TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        expires_at INTEGER,
        application_id TEXT,
        application_name TEXT,
        plan TEXT,
        previous_digest TEXT,
        previous_expires_at INTEGER,
        origin TEXT NOT NULL DEFAULT 'gateway_api',
        UNIQUE (api, name)
    );",
    // 3: the control-plane link: which deployment an API came from and its concurrency token,
    // and what the platform API pushes besides APIs and keys (subscriptions, plans,
    // applications, revoked-key tombstones), stored as JSON by kind and id.
    "ALTER TABLE apis ADD COLUMN cp_deployment_id TEXT;
    ALTER TABLE apis ADD COLUMN cp_performed_at TEXT;
    CREATE TABLE cp_objects (
        kind TEXT NOT NULL,
        id TEXT NOT NULL,
        api TEXT,
        body TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (kind, id)
    );",
    // 4: key sets for remote authz replicas are sharded by the first byte of the digest; a key
    // in a rotation's grace period belongs to the shard of its previous digest too.
    "CREATE INDEX api_keys_previous_digest ON api_keys (previous_digest);",
];

/// The database.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

/// A stored API: the source document (JSON) and its bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiRow {
    pub handle: String,
    pub uuid: String,
    pub display_name: String,
    pub version: String,
    /// The source document as JSON text (vhosts filled in, templates unresolved).
    pub document: String,
    pub deployed: bool,
    /// `gateway_api` or `control_plane`.
    pub origin: String,
    pub created_at: String,
    pub updated_at: String,
    pub deployed_at: Option<String>,
    /// For control-plane APIs: the platform API's deployment id and `performedAt` (verbatim).
    pub cp_deployment_id: Option<String>,
    pub cp_performed_at: Option<String>,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A uniqueness rule was broken; the message says which.
    #[error("{0}")]
    Conflict(String),
    /// The database file has a schema newer than this build understands.
    #[error("database schema version {0} is newer than this build supports ({max}); upgrade Tollgate", max = MIGRATIONS.len())]
    TooNew(i64),
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

// === impl Db ===

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        let conn = Connection::open(path)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn memory() -> Result<Db, DbError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Db, DbError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL with WAL: a committed transaction survives a process kill (not a power loss).
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let target = MIGRATIONS.len() as i64;
        if version > target {
            return Err(DbError::TooNew(version));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)?;
            tx.commit()?;
        }
        Ok(Db { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Inserts a new API; a duplicate handle or name+version is a conflict.
    pub fn insert_api(&self, row: &ApiRow) -> Result<(), DbError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO apis (handle, uuid, display_name, version, document, deployed, origin, created_at, updated_at,
             deployed_at, cp_deployment_id, cp_performed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            params![
                row.handle,
                row.uuid,
                row.display_name,
                row.version,
                row.document,
                row.deployed,
                row.origin,
                row.created_at,
                row.updated_at,
                row.deployed_at,
                row.cp_deployment_id,
                row.cp_performed_at
            ],
        )
        .map_err(|e| conflict(e, row))?;
        Ok(())
    }

    /// Replaces an existing API's row (by handle). Returns false when there is none.
    pub fn update_api(&self, row: &ApiRow) -> Result<bool, DbError> {
        let conn = self.conn();
        let n = conn
            .execute(
                "UPDATE apis SET display_name = ?2, version = ?3, document = ?4, deployed = ?5, origin = ?6,
                 updated_at = ?7, deployed_at = ?8, uuid = ?9, cp_deployment_id = ?10, cp_performed_at = ?11
                 WHERE handle = ?1",
                params![
                    row.handle,
                    row.display_name,
                    row.version,
                    row.document,
                    row.deployed,
                    row.origin,
                    row.updated_at,
                    row.deployed_at,
                    row.uuid,
                    row.cp_deployment_id,
                    row.cp_performed_at
                ],
            )
            .map_err(|e| conflict(e, row))?;
        Ok(n == 1)
    }

    /// Deletes an API. Returns false when there was none.
    pub fn delete_api(&self, handle: &str) -> Result<bool, DbError> {
        Ok(self.conn().execute("DELETE FROM apis WHERE handle = ?1", [handle])? == 1)
    }

    /// Every stored API, by handle.
    pub fn list_apis(&self) -> Result<Vec<ApiRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT handle, uuid, display_name, version, document, deployed, origin, created_at, updated_at, deployed_at,
             cp_deployment_id, cp_performed_at FROM apis ORDER BY handle",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(ApiRow {
                handle: r.get(0)?,
                uuid: r.get(1)?,
                display_name: r.get(2)?,
                version: r.get(3)?,
                document: r.get(4)?,
                deployed: r.get(5)?,
                origin: r.get(6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
                deployed_at: r.get(9)?,
                cp_deployment_id: r.get(10)?,
                cp_performed_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A stored setting.
    pub fn setting(&self, key: &str) -> Result<Option<String>, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Stores a setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

/// Something the control plane pushed that Tollgate stores but does not enforce yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpObject {
    /// `subscription`, `plan`, `application` or `revoked_key`.
    pub kind: String,
    pub id: String,
    /// The artifact UUID it belongs to, when it belongs to one.
    pub api: Option<String>,
    /// JSON.
    pub body: String,
    pub updated_at: String,
}

impl Db {
    /// Inserts or replaces a control-plane object.
    pub fn put_cp_object(&self, o: &CpObject) -> Result<(), DbError> {
        self.conn().execute(
            "INSERT INTO cp_objects (kind, id, api, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, id) DO UPDATE SET api = excluded.api, body = excluded.body,
             updated_at = excluded.updated_at",
            params![o.kind, o.id, o.api, o.body, o.updated_at],
        )?;
        Ok(())
    }

    /// Deletes a control-plane object; false when there was none.
    pub fn delete_cp_object(&self, kind: &str, id: &str) -> Result<bool, DbError> {
        Ok(self
            .conn()
            .execute("DELETE FROM cp_objects WHERE kind = ?1 AND id = ?2", [kind, id])?
            == 1)
    }

    /// Replaces every object of `kind` (of `api`, when given) with `objects`, in one transaction.
    pub fn replace_cp_objects(&self, kind: &str, api: Option<&str>, objects: &[CpObject]) -> Result<(), DbError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        match api {
            Some(a) => tx.execute("DELETE FROM cp_objects WHERE kind = ?1 AND api = ?2", [kind, a])?,
            None => tx.execute("DELETE FROM cp_objects WHERE kind = ?1", [kind])?,
        };
        for o in objects {
            tx.execute(
                "INSERT OR REPLACE INTO cp_objects (kind, id, api, body, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![o.kind, o.id, o.api, o.body, o.updated_at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every control-plane object of `kind`, by id.
    pub fn list_cp_objects(&self, kind: &str) -> Result<Vec<CpObject>, DbError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare("SELECT kind, id, api, body, updated_at FROM cp_objects WHERE kind = ?1 ORDER BY id")?;
        let rows = stmt.query_map([kind], cp_object)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many control-plane objects of `kind` there are.
    pub fn count_cp_objects(&self, kind: &str) -> Result<u64, DbError> {
        Ok(self
            .conn()
            .query_row("SELECT COUNT(*) FROM cp_objects WHERE kind = ?1", [kind], |r| r.get(0))?)
    }

    /// One control-plane object.
    pub fn get_cp_object(&self, kind: &str, id: &str) -> Result<Option<CpObject>, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT kind, id, api, body, updated_at FROM cp_objects WHERE kind = ?1 AND id = ?2",
                [kind, id],
                cp_object,
            )
            .optional()?)
    }

    /// Whether a control-plane object exists.
    pub fn has_cp_object(&self, kind: &str, id: &str) -> Result<bool, DbError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM cp_objects WHERE kind = ?1 AND id = ?2",
                [kind, id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

/// A `cp_objects` row selected as `kind, id, api, body, updated_at`.
fn cp_object(r: &rusqlite::Row<'_>) -> rusqlite::Result<CpObject> {
    Ok(CpObject {
        kind: r.get(0)?,
        id: r.get(1)?,
        api: r.get(2)?,
        body: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

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

impl Db {
    /// Inserts or replaces (by uuid) a key. A duplicate name on the API, or a digest already stored,
    /// is a conflict.
    pub fn put_key(&self, k: &KeyRow) -> Result<(), DbError> {
        let sql = format!(
            "INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
             ON CONFLICT (uuid) DO UPDATE SET digest = excluded.digest, masked = excluded.masked,
             status = excluded.status, updated_at = excluded.updated_at, expires_at = excluded.expires_at,
             previous_digest = excluded.previous_digest, previous_expires_at = excluded.previous_expires_at"
        );
        self.conn()
            .execute(
                &sql,
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
            .map_err(|e| match &e {
                rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                    DbError::Conflict(format!(
                        "an API key named '{}' already exists for this API, or the value is in use",
                        k.name
                    ))
                }
                _ => DbError::Sqlite(e),
            })?;
        Ok(())
    }

    /// Deletes the key `name` of `api`; false when there was none.
    pub fn delete_key(&self, api: &str, name: &str) -> Result<bool, DbError> {
        Ok(self
            .conn()
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

fn conflict(e: rusqlite::Error, row: &ApiRow) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(f, Some(msg)) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
            if msg.contains("display_name") {
                DbError::Conflict(format!(
                    "configuration with name '{}' and version '{}' already exists",
                    row.display_name, row.version
                ))
            } else {
                DbError::Conflict(format!("configuration with handle '{}' already exists", row.handle))
            }
        }
        _ => DbError::Sqlite(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(handle: &str, name: &str) -> ApiRow {
        ApiRow {
            handle: handle.into(),
            uuid: format!("uuid-{handle}"),
            display_name: name.into(),
            version: "v1".into(),
            document: "{}".into(),
            deployed: true,
            origin: "gateway_api".into(),
            created_at: "t0".into(),
            updated_at: "t0".into(),
            deployed_at: Some("t0".into()),
            cp_deployment_id: None,
            cp_performed_at: None,
        }
    }

    #[test]
    fn insert_update_delete_round_trip() {
        let db = Db::memory().unwrap();
        db.insert_api(&row("a", "A")).unwrap();
        let mut r = row("a", "A2");
        r.deployed = false;
        assert!(db.update_api(&r).unwrap());
        assert_eq!(db.list_apis().unwrap(), vec![r]);
        assert!(!db.update_api(&row("zz", "Z")).unwrap());
        assert!(db.delete_api("a").unwrap());
        assert!(!db.delete_api("a").unwrap());
        assert!(db.list_apis().unwrap().is_empty());
    }

    #[test]
    fn duplicates_are_conflicts_with_clear_messages() {
        let db = Db::memory().unwrap();
        db.insert_api(&row("a", "A")).unwrap();
        let mut dup = row("a", "B");
        dup.uuid = "other".into();
        let e = db.insert_api(&dup).unwrap_err().to_string();
        assert_eq!(e, "configuration with handle 'a' already exists");
        let e = db.insert_api(&row("b", "A")).unwrap_err().to_string();
        assert_eq!(e, "configuration with name 'A' and version 'v1' already exists");
    }

    #[test]
    fn reopening_keeps_data_and_schema_version() {
        let dir = std::env::temp_dir().join(format!("tollgate-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.db");
        {
            let db = Db::open(&path).unwrap();
            db.insert_api(&row("a", "A")).unwrap();
            db.set_setting("k", "v").unwrap();
        }
        let db = Db::open(&path).unwrap();
        assert_eq!(db.list_apis().unwrap().len(), 1);
        assert_eq!(db.setting("k").unwrap().as_deref(), Some("v"));
        drop(db);
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(matches!(Db::open(&path), Err(DbError::TooNew(99))));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
