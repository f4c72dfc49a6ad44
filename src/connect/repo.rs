//! SQL of connect sessions. A link is consumed by one conditional `UPDATE`, so of two browsers opening it at once
//! exactly one gets the session.

use sqlx::AnyPool;

use super::ConnectMode;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConnectRow {
    pub api_key_id: i64,
    pub user_id: i64,
    pub mode: String,
    pub provider: Option<String>,
    pub account_id: Option<String>,
    pub return_to: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

impl ConnectRow {
    pub fn mode(&self) -> ConnectMode {
        // The column has a CHECK constraint; `manage` is the reading that cannot start a flow.
        ConnectMode::parse(&self.mode).unwrap_or(ConnectMode::Manage)
    }
}

const COLUMNS: &str = "api_key_id, user_id, mode, provider, account_id, return_to, created_at, expires_at, used_at";

pub struct NewLink<'a> {
    pub token_hash: &'a str,
    pub api_key_id: i64,
    pub user_id: i64,
    pub mode: ConnectMode,
    pub provider: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub return_to: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(pool: &AnyPool, link: &NewLink<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO connect_sessions (token_hash, api_key_id, user_id, mode, provider, account_id, return_to, \
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(link.token_hash)
    .bind(link.api_key_id)
    .bind(link.user_id)
    .bind(link.mode.as_str())
    .bind(link.provider)
    .bind(link.account_id)
    .bind(link.return_to)
    .bind(link.now)
    .bind(link.expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

/// What opening a link found.
#[derive(Debug)]
pub enum Consumed {
    /// Fresh and now used: this caller opens it.
    Fresh(ConnectRow),
    /// Opened before.
    Used(ConnectRow),
    /// Past its expiry, never opened.
    Expired(ConnectRow),
    /// No such link (never made, mistyped, or deleted after expiry).
    Unknown,
}

pub async fn consume(pool: &AnyPool, token_hash: &str, now: i64) -> Result<Consumed, sqlx::Error> {
    let fresh: Option<ConnectRow> = sqlx::query_as(&format!(
        "UPDATE connect_sessions SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1 \
         RETURNING {COLUMNS}"
    ))
    .bind(now)
    .bind(token_hash)
    .fetch_optional(pool)
    .await?;
    if let Some(row) = fresh {
        return Ok(Consumed::Fresh(row));
    }
    Ok(match find(pool, token_hash).await? {
        Some(row) if row.used_at.is_some() => Consumed::Used(row),
        Some(row) => Consumed::Expired(row),
        None => Consumed::Unknown,
    })
}

/// The link, without using it.
pub async fn find(pool: &AnyPool, token_hash: &str) -> Result<Option<ConnectRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM connect_sessions WHERE token_hash = $1"))
        .bind(token_hash)
        .fetch_optional(pool)
        .await
}

/// Deletes links a day past their expiry (housekeeping). Until then a reused link is still recognised as one.
pub async fn delete_stale(pool: &AnyPool, now: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM connect_sessions WHERE expires_at < $1")
        .bind(now - 24 * 3600 * 1000)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
