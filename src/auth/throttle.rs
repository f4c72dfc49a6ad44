//! Sign-in (and sign-up, [`sign_up`]) throttling, shared by every app instance through the database.
//!
//! Every password attempt is charged *before* the password is checked (and refunded on success), so a burst of
//! parallel requests cannot all slip past a check that no failure has been recorded yet. Three counters per
//! attempt, each forgotten after `window` without attempts:
//! - **account** (from anywhere): the first `account_free_failures` attempts go through at once; the last of them
//!   starts a wait, and from then on one attempt may go through per wait, which doubles from `account_base_delay`
//!   up to `account_max_delay`. Exactly one attempt wins each slot (a conditional update), so parallel requests
//!   do not multiply it. It never locks: anyone can type a victim's email, so the worst an attacker can do to the
//!   real user is make them wait a minute.
//! - **client + account**: after `client_account_lockout_failures` attempts, that client is refused for
//!   `lockout` on that account. The real user, on another client, is not.
//! - **client** (any accounts, against password spraying): after `client_lockout_failures` attempts, refused for
//!   `lockout`. Clients are keyed by IPv4 address or IPv6 /64 (one host usually owns a whole /64).
//!
//! A refused attempt is answered before the password is checked, with the same words whether or not the account
//! exists. A successful sign-in clears the account counters and refunds the client's, so knowing one password
//! does not reset a sprayer's count.

use std::{net::IpAddr, time::Duration};

use sqlx::AnyPool;

use crate::{config::ThrottleSettings, db::now_ms};

/// Whether a password attempt may be checked now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    Allowed,
    Refused(Duration),
}

/// The throttle key of a client address: the IPv4 address, or the /64 of an IPv6 address.
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

/// The wait the `attempts`-th attempt on an account starts (attempts before the last free one start none).
fn account_delay(attempts: u32, settings: &ThrottleSettings) -> Duration {
    let doublings = attempts.saturating_sub(settings.account_free_failures).min(30);
    settings
        .account_base_delay
        .saturating_mul(1 << doublings)
        .min(settings.account_max_delay)
}

/// Counts one attempt on `key` (atomically, across instances) and returns the attempt number within the window
/// and the key's current `blocked_until`.
async fn charge(pool: &AnyPool, key: &str, now: i64, window_start: i64) -> Result<(u32, i64), sqlx::Error> {
    let (attempts, blocked_until): (i64, i64) = sqlx::query_as(
        "INSERT INTO sign_in_throttles (key, failures, last_failure_at, blocked_until) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN sign_in_throttles.last_failure_at < $3 THEN 1 \
                           ELSE sign_in_throttles.failures + 1 END, \
           last_failure_at = $2 \
         RETURNING failures, blocked_until",
    )
    .bind(key)
    .bind(now)
    .bind(window_start)
    .fetch_one(pool)
    .await?;
    Ok((u32::try_from(attempts).unwrap_or(u32::MAX), blocked_until))
}

/// Blocks `key` until `until`, only if it is not blocked now; true when this call set it.
async fn claim(pool: &AnyPool, key: &str, now: i64, until: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE sign_in_throttles SET blocked_until = $1 WHERE key = $2 AND blocked_until <= $3")
        .bind(until)
        .bind(key)
        .bind(now)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() == 1)
}

fn wait(until: i64, now: i64) -> Duration {
    Duration::from_millis(until.saturating_sub(now).max(1) as u64)
}

/// Charges an attempt from `client` on `email` and says whether its password may be checked.
pub async fn attempt(
    pool: &AnyPool,
    settings: &ThrottleSettings,
    email: &str,
    client: &str,
) -> Result<Attempt, sqlx::Error> {
    let now = now_ms();
    let window_start = now - settings.window.as_millis() as i64;
    let lockout_until = now + settings.lockout.as_millis() as i64;

    // The client keys first: a client refused there must not use up the account's slot below.
    let mut refused_until = 0;
    for (key, threshold) in [
        (format!("client:{client}"), settings.client_lockout_failures),
        (
            format!("client_account:{client}|{email}"),
            settings.client_account_lockout_failures,
        ),
    ] {
        let (attempts, blocked_until) = charge(pool, &key, now, window_start).await?;
        if blocked_until > now || attempts > threshold {
            refused_until = refused_until.max(blocked_until.max(now + 1));
        } else if attempts == threshold {
            // The last attempt allowed; it goes through and locks the key behind it.
            claim(pool, &key, now, lockout_until).await?;
        }
    }
    if refused_until > now {
        return Ok(Attempt::Refused(wait(refused_until, now)));
    }

    let key = format!("account:{email}");
    let (attempts, blocked_until) = charge(pool, &key, now, window_start).await?;
    if attempts < settings.account_free_failures {
        return Ok(Attempt::Allowed);
    }
    let until = now + account_delay(attempts, settings).as_millis() as i64;
    if blocked_until <= now && claim(pool, &key, now, until).await? {
        Ok(Attempt::Allowed)
    } else {
        let blocked_until: i64 = sqlx::query_scalar("SELECT blocked_until FROM sign_in_throttles WHERE key = $1")
            .bind(&key)
            .fetch_one(pool)
            .await?;
        Ok(Attempt::Refused(wait(blocked_until, now)))
    }
}

/// Charges a sign-up from `client` (any outcome: an "already exists" answer tells whether an email has an account,
/// so probing is counted too) and says whether it may go ahead. The `sign_ups_per_client`-th within the window goes
/// through and starts a wait of one window; an attempt after the wait, while the client still has not paused for a
/// window, starts another.
pub async fn sign_up(pool: &AnyPool, settings: &ThrottleSettings, client: &str) -> Result<Attempt, sqlx::Error> {
    let now = now_ms();
    let window = settings.window.as_millis() as i64;
    let key = format!("sign_up:{client}");
    let (attempts, blocked_until) = charge(pool, &key, now, now - window).await?;
    if blocked_until > now {
        return Ok(Attempt::Refused(wait(blocked_until, now)));
    }
    if attempts >= settings.sign_ups_per_client {
        claim(pool, &key, now, now + window).await?;
        if attempts > settings.sign_ups_per_client {
            return Ok(Attempt::Refused(wait(now + window, now)));
        }
    }
    Ok(Attempt::Allowed)
}

/// After a correct password: forgets the account's counters and refunds the client's charge.
pub async fn record_success(pool: &AnyPool, email: &str, client: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sign_in_throttles WHERE key IN ($1, $2)")
        .bind(format!("account:{email}"))
        .bind(format!("client_account:{client}|{email}"))
        .execute(pool)
        .await?;
    sqlx::query("UPDATE sign_in_throttles SET failures = failures - 1 WHERE key = $1 AND failures > 0")
        .bind(format!("client:{client}"))
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
    fn account_wait_starts_at_the_last_free_attempt_doubles_and_caps() {
        let s = ThrottleSettings::default();
        let delays: Vec<u64> = (5..=13).map(|n| account_delay(n, &s).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(account_delay(10_000, &s), s.account_max_delay);
    }

    #[test]
    fn clients_are_keyed_by_ipv4_address_or_ipv6_network() {
        assert_eq!(client_key("203.0.113.7".parse().unwrap()), "203.0.113.7");
        assert_eq!(client_key("2001:db8:1:2:aaaa::1".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(client_key("2001:db8:1:2:bbbb::9".parse().unwrap()), "2001:db8:1:2::/64");
        assert_eq!(client_key("::ffff:203.0.113.7".parse().unwrap()), "203.0.113.7");
    }
}
