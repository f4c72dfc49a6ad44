//! SQL for `token_sets`. Values are sealed here, on the way in, bound to the row and to whom it is for (its account
//! and resource server: see `vault`); nothing returned from this module holds plaintext (`delegation` opens tokens,
//! for the calls it makes).

use sqlx::{AnyConnection, AnyPool, Row};

use super::{
    IssuedTokenSet,
    vault::{Owner, Slot, Vault},
};

pub const TABLE: &str = "token_sets";

/// A token set's row id and whom it is for: what its sealed values are bound to.
#[derive(Debug, Clone, Copy)]
pub struct SetKey<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub resource_server: &'a str,
}

pub fn access_slot(set: SetKey<'_>) -> Slot<'_> {
    slot(set, "access_token")
}

pub fn refresh_slot(set: SetKey<'_>) -> Slot<'_> {
    slot(set, "refresh_token")
}

fn slot<'a>(set: SetKey<'a>, column: &'static str) -> Slot<'a> {
    Slot {
        table: TABLE,
        row: set.id,
        column,
        owner: Some(Owner {
            account_id: set.account_id,
            resource_server: set.resource_server,
        }),
    }
}

/// Token-set metadata for pages: never a token.
#[derive(Debug, Clone)]
pub struct TokenSetMeta {
    pub account_id: String,
    pub resource_server: String,
    pub scopes: String,
    pub expires_at: Option<i64>,
    pub issued_at: i64,
    pub has_refresh_token: bool,
}

/// Whose token sets [`store_issued`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Account {
    /// An account created in this transaction: it has no token sets yet (nothing to read).
    New,
    /// An account that may have token sets already.
    Existing,
}

/// The sealed values a [`store_issued`] overwrote, for the revocation queue (`accounts::disconnect::queue_replaced`).
#[derive(Debug, Clone)]
pub struct Replaced {
    pub id: String,
    pub resource_server: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
}

/// Stores what a provider just issued, one row per resource server: an existing row for the same resource server is
/// overwritten (its version bumped), others are left as they are. Runs inside the caller's transaction. Returns what
/// was overwritten.
pub async fn store_issued(
    conn: &mut AnyConnection,
    vault: &Vault,
    account_id: &str,
    account: Account,
    sets: &[IssuedTokenSet],
    now: i64,
) -> Result<Vec<Replaced>, sqlx::Error> {
    // The account's sets, read once (the caller's transaction holds the write lock meanwhile; on SQLite every other
    // writer waits for each round trip inside it, so a new account skips this one).
    let existing_sets: std::collections::HashMap<String, Replaced> = match account {
        Account::New => Default::default(),
        Account::Existing => sqlx::query_as::<_, (String, String, String, Option<String>, Option<i64>)>(
            "SELECT id, resource_server, access_token, refresh_token, expires_at FROM token_sets \
             WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|(id, resource_server, access_token, refresh_token, expires_at)| {
            let replaced = Replaced {
                id,
                resource_server: resource_server.clone(),
                access_token,
                refresh_token,
                expires_at,
            };
            (resource_server, replaced)
        })
        .collect(),
    };
    let mut replaced = Vec::new();
    for set in sets {
        let existing = existing_sets.get(&set.resource_server);
        if let Some(old) = existing {
            replaced.push(old.clone());
        }
        let id = existing.map_or_else(|| uuid::Uuid::new_v4().to_string(), |old| old.id.clone());
        let key = SetKey {
            id: &id,
            account_id,
            resource_server: &set.resource_server,
        };
        let access = vault.seal(set.access_token(), access_slot(key));
        let refresh = set
            .refresh_token
            .as_ref()
            .map(|t| vault.seal(secrecy::ExposeSecret::expose_secret(t), refresh_slot(key)));
        let expires_at = set.expires_in.map(|s| now.saturating_add(s.saturating_mul(1000)));
        let scopes = set.scopes.join(" ");
        let query = if existing.is_some() {
            "UPDATE token_sets SET scopes = $3, token_type = $4, access_token = $5, refresh_token = $6, \
             expires_at = $7, issued_at = $8, version = version + 1, updated_at = $8, failures = 0, \
             cooldown_until = NULL, last_error = NULL, lease_owner = NULL, lease_until = NULL WHERE id = $1 AND account_id = $2"
        } else {
            "INSERT INTO token_sets (id, account_id, scopes, token_type, access_token, refresh_token, expires_at, \
             issued_at, version, updated_at, resource_server) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $8, $9)"
        };
        sqlx::query(query)
            .bind(&id)
            .bind(account_id)
            .bind(scopes)
            .bind(&set.token_type)
            .bind(access)
            .bind(refresh)
            .bind(expires_at)
            .bind(now)
            .bind(&set.resource_server)
            .execute(&mut *conn)
            .await?;
    }
    Ok(replaced)
}

/// Columns [`meta_from_row`] reads, for a query that joins `token_sets` as `t`.
pub const META_COLUMNS: &str = "t.account_id, t.resource_server, t.scopes, t.expires_at, t.issued_at, \
                                CASE WHEN t.refresh_token IS NULL THEN 0 ELSE 1 END AS has_refresh";

/// The metadata in a row selected with [`META_COLUMNS`]; `None` when an outer join found no token set.
pub fn meta_from_row(r: &sqlx::any::AnyRow) -> Result<Option<TokenSetMeta>, sqlx::Error> {
    let Some(resource_server) = r.try_get::<Option<String>, _>("resource_server")? else {
        return Ok(None);
    };
    Ok(Some(TokenSetMeta {
        account_id: r.try_get("account_id")?,
        resource_server,
        scopes: r.try_get("scopes")?,
        expires_at: r.try_get("expires_at")?,
        issued_at: r.try_get("issued_at")?,
        has_refresh_token: r.try_get::<i32, _>("has_refresh")? == 1,
    }))
}

/// Metadata of every token set of one local user's accounts.
pub async fn metadata_for_user(pool: &AnyPool, user_id: i64) -> Result<Vec<TokenSetMeta>, sqlx::Error> {
    let rows = sqlx::query(&format!(
        "SELECT {META_COLUMNS} FROM token_sets t JOIN linked_accounts a ON a.id = t.account_id \
         WHERE a.user_id = $1 ORDER BY t.resource_server"
    ))
    .bind(user_id)
    .fetch_all(pool)
    .await?;
    rows.iter().filter_map(|r| meta_from_row(r).transpose()).collect()
}

/// Sealed columns of one row, as stored.
#[derive(Debug, Clone)]
pub struct SealedRow {
    pub id: String,
    pub account_id: String,
    pub resource_server: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub version: i64,
}

/// A page of rows ordered by id, after `after` (keyset pagination: rotation walks the whole table).
pub async fn sealed_page(pool: &AnyPool, after: &str, limit: i64) -> Result<Vec<SealedRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, account_id, resource_server, access_token, refresh_token, version FROM token_sets \
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(sealed_row).collect()
}

/// Rows holding a `v1` value (sealed before values were bound to their owner), after `after` by id.
pub async fn unbound_page(pool: &AnyPool, after: &str, limit: i64) -> Result<Vec<SealedRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT id, account_id, resource_server, access_token, refresh_token, version FROM token_sets \
         WHERE id > $1 AND (access_token LIKE 'v1.%' OR refresh_token LIKE 'v1.%') ORDER BY id LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(sealed_row).collect()
}

fn sealed_row(r: &sqlx::any::AnyRow) -> Result<SealedRow, sqlx::Error> {
    Ok(SealedRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        resource_server: r.try_get("resource_server")?,
        access_token: r.try_get("access_token")?,
        refresh_token: r.try_get("refresh_token")?,
        version: r.try_get("version")?,
    })
}

impl SealedRow {
    pub fn key(&self) -> SetKey<'_> {
        SetKey {
            id: &self.id,
            account_id: &self.account_id,
            resource_server: &self.resource_server,
        }
    }
}

/// Replaces a row's sealed values with the same tokens sealed anew (bound to their owner) if they are still exactly
/// the ones read. Neither the version nor a lease is looked at or moved: the tokens are unchanged, so a refresh
/// under way may still commit what it receives (its fenced commit compares the version), and any other writer
/// changes the values, which makes this a no-op.
pub async fn rebind_sealed(
    pool: &AnyPool,
    row: &SealedRow,
    access_token: &str,
    refresh_token: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let same_refresh = match row.refresh_token {
        Some(_) => "refresh_token = $5",
        None => "refresh_token IS NULL",
    };
    let sql = format!(
        "UPDATE token_sets SET access_token = $1, refresh_token = $2 WHERE id = $3 AND access_token = $4 AND {same_refresh}"
    );
    let mut query = sqlx::query(&sql)
        .bind(access_token)
        .bind(refresh_token)
        .bind(&row.id)
        .bind(&row.access_token);
    if let Some(old) = &row.refresh_token {
        query = query.bind(old);
    }
    Ok(query.execute(pool).await?.rows_affected() == 1)
}

/// Replaces the sealed values if the row is still at `version` and no refresh holds its lease (a concurrent writer
/// wins; its values are fresh; a leased row is retried by the caller's next walk, since re-sealing it would make
/// the refresh's fenced commit fail and lose a rotated refresh token).
pub async fn replace_sealed(
    db: &crate::db::Db,
    row: &SealedRow,
    access_token: &str,
    refresh_token: Option<&str>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    // A row under a live refresh lease (by the database's clock, as leases are judged) is left to its holder.
    let done = sqlx::query(&format!(
        "UPDATE token_sets SET access_token = $1, refresh_token = $2, version = version + 1, updated_at = $3 \
         WHERE id = $4 AND version = $5 AND (lease_until IS NULL OR lease_until <= {})",
        db.clock_ms()
    ))
    .bind(access_token)
    .bind(refresh_token)
    .bind(now)
    .bind(&row.id)
    .bind(row.version)
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
