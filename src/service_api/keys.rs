//! Service API keys: created, listed and revoked from the command line (`onbehalf apikey …`), presented by platform
//! backends as `Authorization: Bearer obk_…`. A key is 32 random bytes, shown once; the database keeps its SHA-256.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sqlx::AnyPool;

use crate::{accounts::link::sha256_hex, db::now_ms};

/// Every key starts with this, so secret scanners and people recognise one.
pub const PREFIX: &str = "obk_";

/// A stored key (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// Space-separated provider ids; `None`: every provider.
    pub providers: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Whether this key may act with accounts of `provider`.
    pub fn allows(&self, provider: &str) -> bool {
        self.providers
            .as_deref()
            .is_none_or(|list| list.split_whitespace().any(|p| p == provider))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key name is 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("a key named {0:?} exists (revoked keys keep their names: the audit log refers to them)")]
    NameTaken(String),
    #[error("no key is named {0:?}")]
    NotFound(String),
    #[error("key {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error("unknown provider {0:?} (configured: {1})")]
    UnknownProvider(String, String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, name, providers, created_at, revoked_at, last_used_at";

/// Creates a key; returns it with the secret to show once. `providers` empty: every provider. `known` are the
/// configured provider ids, to refuse a typo rather than create a key that can do nothing.
pub async fn create(
    pool: &AnyPool,
    name: &str,
    providers: &[String],
    known: &[String],
) -> Result<(ApiKey, String), KeyError> {
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        return Err(KeyError::BadName);
    }
    if let Some(unknown) = providers.iter().find(|p| !known.contains(p)) {
        return Err(KeyError::UnknownProvider(unknown.clone(), known.join(", ")));
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let providers = (!providers.is_empty()).then(|| providers.join(" "));
    let inserted = sqlx::query_as::<_, ApiKey>(&format!(
        "INSERT INTO api_keys (name, key_hash, providers, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(sha256_hex(&secret))
    .bind(&providers)
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    let key = inserted.ok_or_else(|| KeyError::NameTaken(name.to_owned()))?;
    Ok((key, secret))
}

pub async fn list(pool: &AnyPool) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY name"))
        .fetch_all(pool)
        .await
}

pub async fn revoke(pool: &AnyPool, name: &str) -> Result<(), KeyError> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(name)
        .execute(pool)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Err(match exists {
        Some(_) => KeyError::AlreadyRevoked(name.to_owned()),
        None => KeyError::NotFound(name.to_owned()),
    })
}

/// `last_used_at` moves at most this often: a write per request would make every API call a database commit.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// The live key whose secret was presented (and marks it used). `None` for an unknown or revoked key.
pub async fn authenticate(pool: &AnyPool, presented: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    if !presented.starts_with(PREFIX) {
        return Ok(None);
    }
    // Looked up by the hash: the comparison happens on a digest of the presented value, so its timing says nothing
    // about any stored key.
    let key: Option<ApiKey> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(sha256_hex(presented))
    .fetch_optional(pool)
    .await?;
    let now = now_ms();
    if let Some(key) = &key
        && key.last_used_at.is_none_or(|at| now - at >= LAST_USED_GRANULARITY_MS)
    {
        // Bookkeeping only: a failure (a busy database) must not refuse a valid key.
        if let Err(e) = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(key.id)
            .execute(pool)
            .await
        {
            tracing::warn!(key = key.name, "could not record the key's last use: {e}");
        }
    }
    Ok(key)
}
