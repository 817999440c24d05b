//! SQLite persistence (WAL, `synchronous=FULL`). Every write is one transaction: when it returns,
//! the change survives a `kill -9` and a power loss or OS crash (the WAL is synced at each commit).
//! A 2xx answered for a key revocation so never comes back undone. The schema is versioned with `PRAGMA user_version` and upgraded forward at open.
//! One file per table under `db/`. Every call blocks: callers run it off the async workers.

mod apis;
mod cp_objects;
mod keys;
mod plans;
mod secrets;
mod subscriptions;

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension};
use tollgate_xds::metrics::Histogram;

pub use apis::{ApiFailure, ApiRow};
pub use cp_objects::{CpKind, CpObject};
pub use keys::KeyRow;
pub use plans::PlanRow;
pub use secrets::SecretRow;
pub use subscriptions::{QuotaWindow, SubscriptionFilter, SubscriptionRow};

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
    // 5: APIs an Envoy rejected: Envoy's message and the document still served in their place
    // (the last one Envoy accepted; none for an API that was never accepted).
    "CREATE TABLE api_failures (
        handle TEXT PRIMARY KEY REFERENCES apis (handle) ON DELETE CASCADE,
        message TEXT NOT NULL,
        served_document TEXT,
        failed_at TEXT NOT NULL
    );",
    // 6: subscription plans and subscriptions (tokens as SHA-256 hex only), made here or pushed by
    // the control plane, and the quota windows of long (day, month) plans, so a spent quota
    // survives a restart. A subscription names its API by UUID: the control plane may announce it
    // before the API is deployed here.
    "CREATE TABLE plans (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        handle TEXT,
        billing_plan TEXT,
        stop_on_quota_reach INTEGER NOT NULL,
        limit_count INTEGER,
        limit_unit TEXT,
        expiry_time TEXT,
        status TEXT NOT NULL,
        origin TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE UNIQUE INDEX plans_name ON plans (name COLLATE NOCASE);
    CREATE TABLE subscriptions (
        id TEXT PRIMARY KEY,
        api_uuid TEXT NOT NULL,
        application_id TEXT,
        token_hash TEXT,
        previous_token_hash TEXT,
        previous_expires_at INTEGER,
        plan_id TEXT,
        billing_customer_id TEXT,
        billing_subscription_id TEXT,
        status TEXT NOT NULL,
        origin TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (api_uuid, token_hash)
    );
    CREATE INDEX subscriptions_plan ON subscriptions (plan_id);
    CREATE TABLE quota_windows (
        subscription TEXT PRIMARY KEY REFERENCES subscriptions (id) ON DELETE CASCADE,
        window_start INTEGER NOT NULL,
        count INTEGER NOT NULL
    );",
    // 7: secrets that API documents reference (`{{ secret "id" }}`), each value AES-256-GCM
    // sealed; the ciphertext names the key version that sealed it.
    "CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        display_name TEXT NOT NULL,
        description TEXT,
        ciphertext TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );",
];

/// How SQLite syncs the WAL at a commit (`PRAGMA synchronous`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Durability {
    /// Synced at each commit: a committed write survives a power loss. What Tollgate runs with.
    #[default]
    Full,
    /// Synced at checkpoints only: a committed write survives a process kill, not a power loss.
    /// For the benchmark that measures what `Full` costs.
    Normal,
}

/// The database.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
    /// How long write transactions take, lock held to commit (`tollgate_db_write_duration_seconds`).
    writes: Histogram,
}

/// The connection held for one write: the time from taking it to dropping it (after the commit)
/// is recorded when it is dropped.
struct Write<'a> {
    conn: std::sync::MutexGuard<'a, Connection>,
    started: Instant,
    writes: &'a Histogram,
}

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// A uniqueness rule was broken (which one, and by what).
    #[error(transparent)]
    Conflict(#[from] Conflict),
    /// The database file has a schema newer than this build understands.
    #[error("database schema version {0} is newer than this build supports ({max}); upgrade Tollgate", max = MIGRATIONS.len())]
    TooNew(i64),
    /// SQLite failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// Which uniqueness rule a write broke, with the values that clash. The wording is the one the
/// management API answers with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Conflict {
    /// Another API has this handle.
    #[error("configuration with handle '{0}' already exists")]
    Handle(String),
    /// Another API has this display name and version.
    #[error("configuration with name '{name}' and version '{version}' already exists")]
    NameVersion { name: String, version: String },
    /// The API already has a key with this name, or another key has this value.
    #[error("an API key named '{0}' already exists for this API, or the value is in use")]
    Key(String),
    /// Another plan has this name (compared without case).
    #[error("Subscription plan already exists")]
    Plan(String),
    /// Another secret has this id.
    #[error("secret with id '{0}' already exists")]
    Secret(String),
    /// The API already has a subscription with this token.
    #[error("Application already subscribed to this API")]
    Subscription,
    /// An operation would take requests meant for another API's operation (see
    /// `tollgate_model::overlap`).
    #[error("operation {method} {path} on vhost '{vhost}' overlaps operation {method} {other_path} of API '{other}'")]
    Overlap {
        /// The other API's handle.
        other: String,
        vhost: String,
        method: &'static str,
        path: String,
        other_path: String,
    },
}

// === impl Db ===

impl Db {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Self::open_with(path, Durability::Full)
    }

    /// [`Db::open`] with another durability (benchmarks).
    pub fn open_with(path: &Path, durability: Durability) -> Result<Db, DbError> {
        let conn = Connection::open(path)?;
        Self::init(conn, durability)
    }

    /// An in-memory database, for tests.
    pub fn memory() -> Result<Db, DbError> {
        Self::init(Connection::open_in_memory()?, Durability::Full)
    }

    fn init(mut conn: Connection, durability: Durability) -> Result<Db, DbError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL with WAL: each commit syncs the WAL, so a write answered 2xx survives a power loss
        // too (NORMAL loses the last commits then). One connection does every write.
        let synchronous = match durability {
            Durability::Full => "FULL",
            Durability::Normal => "NORMAL",
        };
        conn.pragma_update(None, "synchronous", synchronous)?;
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
        Ok(Db {
            conn: Mutex::new(conn),
            writes: Histogram::new(crate::metrics::LATENCY_BUCKETS),
        })
    }

    /// Whether the database answers a trivial query.
    pub fn answers(&self) -> bool {
        self.conn().query_row("SELECT 1", [], |r| r.get::<_, i64>(0)).is_ok()
    }

    /// The connection (held for one statement or one transaction).
    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection for one write statement or transaction, timed.
    fn write(&self) -> Write<'_> {
        let conn = self.conn();
        Write {
            conn,
            started: Instant::now(),
            writes: &self.writes,
        }
    }

    /// The write latency histogram.
    pub fn write_latency(&self) -> &Histogram {
        &self.writes
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
        self.write().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

// === impl Write ===

impl std::ops::Deref for Write<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Write<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }
}

impl Drop for Write<'_> {
    fn drop(&mut self) {
        self.writes.observe(self.started.elapsed());
    }
}

/// Whether SQLite refused a write for breaking a uniqueness rule.
fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

#[cfg(test)]
mod tests;
