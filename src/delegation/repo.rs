//! SQL of delegation: a token set with its account's facts, the refresh lease, and what a refresh leaves behind.
//!
//! The lease (`lease_owner`, `lease_until` on the token set) is what makes a refresh exactly-once across
//! instances: it is taken with a compare-and-swap on `version` and on the lease being free or expired, and the
//! refreshed tokens are stored only while the lease is still ours (fencing: a holder whose lease ran out and was
//! taken over writes nothing).

use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

use crate::{
    accounts::AccountStatus,
    db::Db,
    tokens::{
        IssuedTokenSet,
        repo::{SetKey, access_slot, refresh_slot},
        vault::Vault,
    },
};

/// A token set (sealed values only) with the facts of its account that decide whether it may be used.
#[derive(Debug, Clone)]
pub struct TokenSetRow {
    pub id: String,
    pub account_id: String,
    pub user_id: i64,
    pub provider: String,
    pub subject: String,
    pub status: AccountStatus,
    pub status_reason: Option<String>,
    pub resource_server: String,
    pub scopes: String,
    pub token_type: String,
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub expires_at: Option<i64>,
    pub issued_at: i64,
    pub version: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub failures: i64,
    pub cooldown_until: Option<i64>,
    /// The account's user is disabled: nothing may be done for them.
    pub user_disabled: bool,
}

impl TokenSetRow {
    /// What its sealed values are bound to.
    pub fn key(&self) -> SetKey<'_> {
        SetKey {
            id: &self.id,
            account_id: &self.account_id,
            resource_server: &self.resource_server,
        }
    }
}

const COLUMNS: &str = "t.id, t.account_id, a.user_id, a.provider, a.subject, a.status, a.status_reason, t.resource_server, t.scopes, \
     t.token_type, t.issued_at, t.access_token, t.refresh_token, t.expires_at, t.version, t.lease_owner, t.lease_until, \
     t.failures, t.cooldown_until, u.disabled_at AS user_disabled_at";

/// The tables [`COLUMNS`] reads.
const FROM: &str = "token_sets t JOIN linked_accounts a ON a.id = t.account_id JOIN users u ON u.id = a.user_id";

fn row(r: &AnyRow) -> Result<TokenSetRow, sqlx::Error> {
    let status: String = r.try_get("status")?;
    Ok(TokenSetRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        user_id: r.try_get("user_id")?,
        provider: r.try_get("provider")?,
        subject: r.try_get("subject")?,
        status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Error),
        status_reason: r.try_get("status_reason")?,
        resource_server: r.try_get("resource_server")?,
        scopes: r.try_get("scopes")?,
        token_type: r.try_get("token_type")?,
        access_token: r.try_get("access_token")?,
        refresh_token: r.try_get("refresh_token")?,
        expires_at: r.try_get("expires_at")?,
        issued_at: r.try_get("issued_at")?,
        version: r.try_get("version")?,
        lease_owner: r.try_get("lease_owner")?,
        lease_until: r.try_get("lease_until")?,
        failures: r.try_get("failures")?,
        cooldown_until: r.try_get("cooldown_until")?,
        user_disabled: r.try_get::<Option<i64>, _>("user_disabled_at")?.is_some(),
    })
}

/// The token set of (account, resource server); with `user_id`, only if the account is that user's.
pub async fn load(
    pool: &AnyPool,
    account_id: &str,
    resource_server: &str,
    user_id: Option<i64>,
) -> Result<Option<TokenSetRow>, sqlx::Error> {
    let found = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM {FROM} WHERE t.account_id = $1 AND t.resource_server = $2"
    ))
    .bind(account_id)
    .bind(resource_server)
    .fetch_optional(pool)
    .await?;
    let found = found.as_ref().map(row).transpose()?;
    Ok(found.filter(|r| user_id.is_none_or(|u| u == r.user_id)))
}

pub async fn load_by_id(pool: &AnyPool, id: &str) -> Result<Option<TokenSetRow>, sqlx::Error> {
    let found = sqlx::query(&format!("SELECT {COLUMNS} FROM {FROM} WHERE t.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await?;
    found.as_ref().map(row).transpose()
}

/// Token sets the background refresher should refresh now: of a configured provider, with a refresh token, a
/// usable account of an enabled user, no cooldown running, no live lease, and less left than both `window` and half the token's
/// lifetime (a token living less than the window is refreshed at half-life, not at every pass). Soonest first.
pub async fn due(
    pool: &AnyPool,
    providers: &[String],
    window: i64,
    now: i64,
    limit: i64,
) -> Result<Vec<TokenSetRow>, sqlx::Error> {
    if providers.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (0..providers.len()).map(|i| format!("${}", i + 4)).collect();
    let sql = format!(
        "SELECT {COLUMNS} FROM {FROM} \
         WHERE t.refresh_token IS NOT NULL AND u.disabled_at IS NULL AND t.expires_at IS NOT NULL \
           AND t.expires_at < $1 + $2 AND 2 * (t.expires_at - $1) < t.expires_at - t.issued_at \
           AND a.status IN ('active', 'needs_consent') AND a.provider IN ({}) \
           AND (t.cooldown_until IS NULL OR t.cooldown_until <= $1) \
           AND (t.lease_until IS NULL OR t.lease_until <= $1) \
         ORDER BY t.expires_at LIMIT $3",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(&sql).bind(now).bind(window).bind(limit);
    for provider in providers {
        query = query.bind(provider);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(row).collect()
}

/// Takes the refresh lease for `length` if the row is still as `seen` (same version: no refresh since; same
/// failure count: no failed refresh since; same lease owner: the caller knows whether it takes over a lease that
/// ran out while held), its account is usable (not marked dead meanwhile) and nobody holds a live lease. True when
/// taken. Without the failure count, a caller that read the row before a refresh failed with `invalid_grant` would
/// send the dead refresh token once more.
///
/// The lease's end is written, and a live lease told from an expired one, by the database's clock
/// (`Db::clock_ms`): two instances whose clocks disagree still agree on whose lease it is.
pub async fn acquire_lease(
    db: &Db,
    seen: &TokenSetRow,
    owner: &str,
    length: std::time::Duration,
) -> Result<bool, sqlx::Error> {
    let clock = db.clock_ms();
    let done = sqlx::query(&format!(
        "UPDATE token_sets SET lease_owner = $1, lease_until = {clock} + $2 \
         WHERE id = $3 AND version = $4 AND failures = $5 AND COALESCE(lease_owner, '') = $6 \
           AND (lease_until IS NULL OR lease_until <= {clock}) \
           AND EXISTS (SELECT 1 FROM linked_accounts a WHERE a.id = token_sets.account_id \
                       AND a.status IN ('active', 'needs_consent'))"
    ))
    .bind(owner)
    .bind(length.as_millis() as i64)
    .bind(&seen.id)
    .bind(seen.version)
    .bind(seen.failures)
    .bind(seen.lease_owner.as_deref().unwrap_or(""))
    .execute(&db.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores a refresh result while the lease is ours: new access token, the rotated refresh token if the provider
/// sent one (else `sent`, the one it was asked with, which stays valid), scopes, expiry; version bumped, failures
/// and lease cleared. Runs in the caller's transaction (which also writes the audit). False when the lease was lost:
/// nothing was written.
#[allow(clippy::too_many_arguments)]
pub async fn store_refreshed(
    conn: &mut AnyConnection,
    vault: &Vault,
    row: &TokenSetRow,
    owner: &str,
    set: &IssuedTokenSet,
    sent: &secrecy::SecretString,
    now: i64,
) -> Result<bool, sqlx::Error> {
    use secrecy::ExposeSecret;
    let access = vault.seal(set.access_token(), access_slot(row.key()));
    // A kept refresh token is sealed anew too (not left as stored): what was stored may predate owner binding
    // (`tokens::vault`'s `v1`), which this row's new access token would otherwise sit beside.
    let refresh = vault.seal(
        set.refresh_token.as_ref().unwrap_or(sent).expose_secret(),
        refresh_slot(row.key()),
    );
    let expires_at = set.expires_in.map(|s| now.saturating_add(s.saturating_mul(1000)));
    let done = sqlx::query(
        "UPDATE token_sets SET access_token = $1, refresh_token = $2, scopes = $3, \
         token_type = $4, expires_at = $5, issued_at = $6, updated_at = $6, version = version + 1, \
         lease_owner = NULL, lease_until = NULL, failures = 0, cooldown_until = NULL, last_error = NULL \
         WHERE id = $7 AND version = $8 AND lease_owner = $9",
    )
    .bind(access)
    .bind(refresh)
    .bind(set.scopes.join(" "))
    .bind(&set.token_type)
    .bind(expires_at)
    .bind(now)
    .bind(&row.id)
    .bind(row.version)
    .bind(owner)
    .execute(&mut *conn)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    sqlx::query("UPDATE linked_accounts SET last_refreshed_at = $1 WHERE id = $2")
        .bind(now)
        .bind(&row.account_id)
        .execute(&mut *conn)
        .await?;
    Ok(true)
}

/// Gives the lease back after a failed refresh, recording the failure count, the cooldown (if any) and why.
pub async fn release_failed(
    conn: &mut AnyConnection,
    row: &TokenSetRow,
    owner: &str,
    failures: i64,
    cooldown_until: Option<i64>,
    error: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE token_sets SET lease_owner = NULL, lease_until = NULL, failures = $1, cooldown_until = $2, \
         last_error = $3, updated_at = $4 WHERE id = $5 AND version = $6 AND lease_owner = $7",
    )
    .bind(failures)
    .bind(cooldown_until)
    .bind(error)
    .bind(now)
    .bind(&row.id)
    .bind(row.version)
    .bind(owner)
    .execute(conn)
    .await?;
    Ok(done.rows_affected() == 1)
}
