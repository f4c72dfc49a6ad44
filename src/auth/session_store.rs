//! tower-sessions store on our one `AnyPool`, so sessions live in the same SQLite or PostgreSQL database as
//! everything else and every app instance sees them.
//!
//! Why not `tower-sessions-sqlx-store`: it needs a typed `SqlitePool` or `PgPool` (a second pool and a second
//! schema per backend), and it cannot end all sessions of one user. Here the signed-in user's id is copied out of
//! the record into `sessions.user_id` on every save, which `auth::repo::delete_sessions_of` relies on.
//!
//! A session is stored under the SHA-256 of its id (`crate::digest`), never the id itself: the id is the bearer
//! credential the cookie carries, so a leaked database or backup must not contain it. Every lookup hashes the
//! cookie's id first.

use async_trait::async_trait;
use sqlx::AnyPool;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store::{Error, Result},
};

use super::session::AUTH_KEY;
use crate::{db::now_ms, digest::sha256_hex};

#[derive(Debug, Clone)]
pub struct DbSessionStore {
    pool: AnyPool,
}

impl DbSessionStore {
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Deletes expired sessions; called periodically by the housekeeping task.
    pub async fn delete_expired(&self) -> std::result::Result<u64, sqlx::Error> {
        let done = sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

/// The key a session is stored under.
fn stored_id(id: &Id) -> String {
    sha256_hex(&id.to_string())
}

fn backend(err: sqlx::Error) -> Error {
    Error::Backend(err.to_string())
}

fn columns(record: &Record) -> Result<(String, String, Option<i64>, i64)> {
    let data = serde_json::to_string(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
    let user_id = record
        .data
        .get(AUTH_KEY)
        .and_then(|auth| auth.get("user_id"))
        .and_then(|id| id.as_i64());
    let expires_at = (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64;
    Ok((stored_id(&record.id), data, user_id, expires_at))
}

impl DbSessionStore {
    /// Runs `sql` with the record's columns as `$1` id, `$2` user_id, `$3` data, `$4` expires_at; returns the
    /// number of rows it touched.
    async fn write(&self, sql: &str, record: &Record) -> Result<u64> {
        let (id, data, user_id, expires_at) = columns(record)?;
        let done = sqlx::query(sql)
            .bind(id)
            .bind(user_id)
            .bind(data)
            .bind(expires_at)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(done.rows_affected())
    }
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        // A fresh id that collides with a stored one (2^-128 per pair, but cheap to rule out) is drawn again.
        const INSERT: &str = "INSERT INTO sessions (id, user_id, data, expires_at) VALUES ($1, $2, $3, $4) \
                              ON CONFLICT (id) DO NOTHING";
        while self.write(INSERT, record).await? == 0 {
            record.id = Id::default();
        }
        Ok(())
    }

    /// Updates an existing record only. tower-sessions creates new records through `create`; a record that is gone
    /// was deleted on purpose (sign-out elsewhere, password change, account disabled) while this request ran, and
    /// must stay gone: an upsert here would bring it back to life.
    async fn save(&self, record: &Record) -> Result<()> {
        self.write(
            "UPDATE sessions SET user_id = $2, data = $3, expires_at = $4 WHERE id = $1",
            record,
        )
        .await?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let row: Option<(String, i64)> =
            sqlx::query_as("SELECT data, expires_at FROM sessions WHERE id = $1 AND expires_at > $2")
                .bind(stored_id(id))
                .bind(now_ms())
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?;
        let Some((data, expires_at)) = row else { return Ok(None) };
        let data = serde_json::from_str(&data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(expires_at) * 1_000_000)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id = $1")
            .bind(stored_id(id))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}
