//! The `apis` table: one row per API with its source document and bookkeeping.

use rusqlite::params;

use super::{Conflict, Db, DbError};
use crate::origin::Origin;

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
    /// Made here or pushed by the control plane (stored as `gateway_api` / `control_plane`).
    pub origin: Origin,
    pub created_at: String,
    pub updated_at: String,
    pub deployed_at: Option<String>,
    /// For control-plane APIs: the platform API's deployment id and `performedAt` (verbatim).
    pub cp_deployment_id: Option<String>,
    pub cp_performed_at: Option<String>,
}

/// Why an Envoy refused an API, and what is served in its place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiFailure {
    /// Envoy's error text.
    pub message: String,
    /// The last document Envoy accepted for the API (JSON), served instead; `None`: nothing is.
    pub served_document: Option<String>,
    pub failed_at: String,
}

// === impl Db ===

impl Db {
    /// Inserts a new API; a duplicate handle or name+version is a conflict.
    pub fn insert_api(&self, row: &ApiRow) -> Result<(), DbError> {
        let conn = self.write();
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
                row.origin.as_str(),
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
        let conn = self.write();
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
                    row.origin.as_str(),
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
        Ok(self.write().execute("DELETE FROM apis WHERE handle = ?1", [handle])? == 1)
    }

    /// Records (or, with `None`, clears) the failure of API `handle`.
    pub fn set_api_failure(&self, handle: &str, failure: Option<&ApiFailure>) -> Result<(), DbError> {
        let conn = self.write();
        match failure {
            None => conn.execute("DELETE FROM api_failures WHERE handle = ?1", [handle])?,
            Some(f) => conn.execute(
                "INSERT INTO api_failures (handle, message, served_document, failed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (handle) DO UPDATE SET message = ?2, served_document = ?3, failed_at = ?4",
                params![handle, f.message, f.served_document, f.failed_at],
            )?,
        };
        Ok(())
    }

    /// Every recorded failure, by handle.
    pub fn api_failures(&self) -> Result<std::collections::HashMap<String, ApiFailure>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT handle, message, served_document, failed_at FROM api_failures")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                ApiFailure {
                    message: r.get(1)?,
                    served_document: r.get(2)?,
                    failed_at: r.get(3)?,
                },
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
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
                origin: origin(r, 6)?,
                created_at: r.get(7)?,
                updated_at: r.get(8)?,
                deployed_at: r.get(9)?,
                cp_deployment_id: r.get(10)?,
                cp_performed_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The structured conflict behind a refused API write.
fn conflict(e: rusqlite::Error, row: &ApiRow) -> DbError {
    let rusqlite::Error::SqliteFailure(_, Some(msg)) = &e else {
        return DbError::Sqlite(e);
    };
    if !super::is_constraint(&e) {
        return DbError::Sqlite(e);
    }
    if msg.contains("display_name") {
        Conflict::NameVersion {
            name: row.display_name.clone(),
            version: row.version.clone(),
        }
        .into()
    } else {
        Conflict::Handle(row.handle.clone()).into()
    }
}

/// The origin in column `i`; an unknown one is a conversion error, not a guess.
fn origin(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Origin> {
    let text: String = r.get(i)?;
    text.parse()
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}
