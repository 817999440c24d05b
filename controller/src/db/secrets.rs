//! The `secrets` table: secrets referenced from API documents, each value sealed (see
//! `crate::secrets::crypto`); the plaintext never reaches the database.

use rusqlite::{Row, params};

use super::{Conflict, Db, DbError, is_constraint};

/// A stored secret: its metadata and its sealed value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretRow {
    /// The secret's handle (`metadata.name`), what `{{ secret "id" }}` names.
    pub id: String,
    pub display_name: String,
    pub description: Option<String>,
    /// `enc:aesgcm:v1:<key version>:<base64>`.
    pub ciphertext: String,
    pub created_at: String,
    pub updated_at: String,
}

const COLUMNS: &str = "id, display_name, description, ciphertext, created_at, updated_at";

fn read(r: &Row<'_>) -> rusqlite::Result<SecretRow> {
    Ok(SecretRow {
        id: r.get(0)?,
        display_name: r.get(1)?,
        description: r.get(2)?,
        ciphertext: r.get(3)?,
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

// === impl Db (secrets) ===

impl Db {
    /// Every stored secret, by id.
    pub fn list_secrets(&self) -> Result<Vec<SecretRow>, DbError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {COLUMNS} FROM secrets ORDER BY id"))?;
        let rows = stmt.query_map([], read)?.collect::<Result<_, _>>()?;
        Ok(rows)
    }

    /// How many secrets are stored.
    pub fn count_secrets(&self) -> Result<usize, DbError> {
        let n: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Stores a new secret; a taken id is a conflict.
    pub fn insert_secret(&self, s: &SecretRow) -> Result<(), DbError> {
        let r = self.write().execute(
            &format!("INSERT INTO secrets ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                s.id,
                s.display_name,
                s.description,
                s.ciphertext,
                s.created_at,
                s.updated_at
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if is_constraint(&e) => Err(Conflict::Secret(s.id.clone()).into()),
            Err(e) => Err(e.into()),
        }
    }

    /// Replaces a secret's metadata and value; false when there is none with this id.
    pub fn update_secret(&self, s: &SecretRow) -> Result<bool, DbError> {
        let n = self.write().execute(
            "UPDATE secrets SET display_name = ?2, description = ?3, ciphertext = ?4, updated_at = ?5 WHERE id = ?1",
            params![s.id, s.display_name, s.description, s.ciphertext, s.updated_at],
        )?;
        Ok(n == 1)
    }

    /// Deletes a secret; false when there was none.
    pub fn delete_secret(&self, id: &str) -> Result<bool, DbError> {
        Ok(self.write().execute("DELETE FROM secrets WHERE id = ?1", [id])? == 1)
    }

    /// Replaces the sealed values of several secrets in one transaction (key rotation): all or
    /// nothing. Returns how many rows changed.
    pub fn reseal_secrets(&self, sealed: &[(String, String)]) -> Result<usize, DbError> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let mut n = 0;
        for (id, ciphertext) in sealed {
            n += tx.execute(
                "UPDATE secrets SET ciphertext = ?2 WHERE id = ?1",
                params![id, ciphertext],
            )?;
        }
        tx.commit()?;
        Ok(n)
    }
}
