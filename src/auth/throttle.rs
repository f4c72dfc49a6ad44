//! Sign-in throttling, shared by every app instance through the database.
//!
//! Three counters per failed attempt, each forgotten after `window` without failures:
//! - **account** (from anywhere): after `account_free_failures`, every further attempt must wait a delay that
//!   doubles from `account_base_delay` up to `account_max_delay`. It never locks: anyone can type a victim's email,
//!   so the worst an attacker can do to the real user is make them wait a minute.
//! - **client + account**: after `client_account_lockout_failures`, that client is refused for `lockout` on that
//!   account. The real user, on another client, is not.
//! - **client** (any accounts, against password spraying): after `client_lockout_failures`, refused for `lockout`.
//!
//! A refused attempt is answered before the password is checked, with the same words whether or not the account
//! exists. A successful sign-in clears the account counters, not the client's, so knowing one password does not
//! reset a sprayer's count.

use std::time::Duration;

use sqlx::AnyPool;

use crate::{config::ThrottleSettings, db::now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Account,
    ClientAccount,
    Client,
}

fn keys(email: &str, client: &str) -> [(KeyKind, String); 3] {
    [
        (KeyKind::Account, format!("account:{email}")),
        (KeyKind::ClientAccount, format!("client_account:{client}|{email}")),
        (KeyKind::Client, format!("client:{client}")),
    ]
}

/// How long to refuse after the `failures`-th failure on a key of this kind (zero: not at all).
fn block_for(kind: KeyKind, failures: u32, settings: &ThrottleSettings) -> Duration {
    match kind {
        KeyKind::Account if failures > settings.account_free_failures => {
            let doublings = (failures - settings.account_free_failures - 1).min(30);
            settings
                .account_base_delay
                .saturating_mul(1 << doublings)
                .min(settings.account_max_delay)
        }
        KeyKind::ClientAccount if failures >= settings.client_account_lockout_failures => settings.lockout,
        KeyKind::Client if failures >= settings.client_lockout_failures => settings.lockout,
        _ => Duration::ZERO,
    }
}

/// If an attempt from `client` on `email` must be refused now, for how much longer.
pub async fn blocked_for(pool: &AnyPool, email: &str, client: &str) -> Result<Option<Duration>, sqlx::Error> {
    let [(_, a), (_, b), (_, c)] = keys(email, client);
    let until: Option<i64> =
        sqlx::query_scalar("SELECT MAX(blocked_until) FROM sign_in_throttles WHERE key IN ($1, $2, $3)")
            .bind(a)
            .bind(b)
            .bind(c)
            .fetch_one(pool)
            .await?;
    let now = now_ms();
    Ok(until
        .filter(|&until| until > now)
        .map(|until| Duration::from_millis((until - now) as u64)))
}

/// Counts a failed attempt on all three keys. The count is incremented in the database (one statement), so
/// concurrent failures on several instances are all counted.
pub async fn record_failure(
    pool: &AnyPool,
    settings: &ThrottleSettings,
    email: &str,
    client: &str,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let window_start = now - settings.window.as_millis() as i64;
    for (kind, key) in keys(email, client) {
        let failures: i64 = sqlx::query_scalar(
            "INSERT INTO sign_in_throttles (key, failures, last_failure_at, blocked_until) VALUES ($1, 1, $2, 0) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN sign_in_throttles.last_failure_at < $3 THEN 1 \
                               ELSE sign_in_throttles.failures + 1 END, \
               last_failure_at = $2 \
             RETURNING failures",
        )
        .bind(&key)
        .bind(now)
        .bind(window_start)
        .fetch_one(pool)
        .await?;
        let block = block_for(kind, u32::try_from(failures).unwrap_or(u32::MAX), settings);
        if !block.is_zero() {
            sqlx::query("UPDATE sign_in_throttles SET blocked_until = $1 WHERE key = $2 AND blocked_until < $1")
                .bind(now + block.as_millis() as i64)
                .bind(&key)
                .execute(pool)
                .await?;
        }
    }
    Ok(())
}

/// Forgets the account's failures after a successful sign-in (the client's stay).
pub async fn record_success(pool: &AnyPool, email: &str, client: &str) -> Result<(), sqlx::Error> {
    let [(_, account), (_, client_account), _] = keys(email, client);
    sqlx::query("DELETE FROM sign_in_throttles WHERE key IN ($1, $2)")
        .bind(account)
        .bind(client_account)
        .execute(pool)
        .await?;
    Ok(())
}

/// Drops counters that are past their window and no longer block anyone.
pub async fn delete_stale(pool: &AnyPool, settings: &ThrottleSettings) -> Result<u64, sqlx::Error> {
    let now = now_ms();
    let done = sqlx::query("DELETE FROM sign_in_throttles WHERE last_failure_at < $1 AND blocked_until < $2")
        .bind(now - settings.window.as_millis() as i64)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_delay_doubles_then_caps_and_never_locks() {
        let s = ThrottleSettings::default();
        let delays: Vec<u64> = (1..=14).map(|n| block_for(KeyKind::Account, n, &s).as_secs()).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(block_for(KeyKind::Account, 10_000, &s), s.account_max_delay);
    }

    #[test]
    fn client_keys_lock_at_their_thresholds() {
        let s = ThrottleSettings::default();
        assert!(block_for(KeyKind::ClientAccount, 9, &s).is_zero());
        assert_eq!(block_for(KeyKind::ClientAccount, 10, &s), s.lockout);
        assert!(block_for(KeyKind::Client, 49, &s).is_zero());
        assert_eq!(block_for(KeyKind::Client, 50, &s), s.lockout);
    }
}
