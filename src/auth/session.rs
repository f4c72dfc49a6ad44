//! What a session knows about its signed-in user, and the rules of session lifetime.
//!
//! Invariants: the session id changes whenever the signed-in user changes (sign-in cycles it, sign-out deletes the
//! session), so a session id planted before sign-in is worthless after it (session fixation). A session ends after
//! `session_idle_timeout` without use and `session_absolute_timeout` after sign-in, whichever comes first; the
//! stored expiry is exactly that, so the database and the cookie agree.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};

use crate::{config::AuthSettings, connect::ConnectGrant, db::now_ms};

/// Session key of [`SessionAuth`]; the store reads `user_id` from it.
pub const AUTH_KEY: &str = "auth";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: i64,
    /// Unix ms of sign-in, for the absolute timeout.
    pub signed_in_at: i64,
    /// Unix ms at which the stored session ends, as last written. Kept here because tower-sessions does not give
    /// a loaded session's stored expiry back.
    pub expires_at: i64,
    /// Set when the session was opened from a platform's connect link: it may reach only this user's linked-accounts
    /// pages, for the platform's providers, and ends by `grant.ends_at` at the latest (`connect::gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect: Option<ConnectGrant>,
}

impl SessionAuth {
    /// When this session ends whatever its use: the absolute timeout after sign-in, or a connect session's own end.
    fn absolute_end(&self, settings: &AuthSettings) -> i64 {
        let end = self.signed_in_at + settings.session_absolute_timeout.as_millis() as i64;
        self.connect.as_ref().map_or(end, |grant| end.min(grant.ends_at))
    }
}

pub type SessionError = tower_sessions::session::Error;

/// The sliding idle expiry is written back at most this often (a tenth of the idle timeout, at most a minute),
/// not on every request.
fn refresh_granularity(settings: &AuthSettings) -> i64 {
    (settings.session_idle_timeout.as_millis() as i64 / 10).min(60_000)
}

/// When a session used at `now` ends (Unix ms).
fn expiry(auth: &SessionAuth, settings: &AuthSettings, now: i64) -> i64 {
    let idle_end = now + settings.session_idle_timeout.as_millis() as i64;
    idle_end.min(auth.absolute_end(settings))
}

/// Stores `auth` and makes the session (record and cookie) end at `auth.expires_at`.
async fn write(session: &Session, auth: &SessionAuth) -> Result<(), SessionError> {
    session.insert(AUTH_KEY, auth).await?;
    let end = OffsetDateTime::from_unix_timestamp_nanos(i128::from(auth.expires_at) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    session.set_expiry(Some(Expiry::AtDateTime(end)));
    Ok(())
}

/// Signs `user_id` in on this session under a new session id.
pub async fn begin(session: &Session, user_id: i64, settings: &AuthSettings) -> Result<(), SessionError> {
    begin_as(session, user_id, None, settings).await
}

/// Starts a connect session for `user_id` (see [`SessionAuth::connect`]) under a new session id, replacing whoever
/// was signed in on this browser.
pub async fn begin_connect(
    session: &Session,
    user_id: i64,
    grant: ConnectGrant,
    settings: &AuthSettings,
) -> Result<(), SessionError> {
    begin_as(session, user_id, Some(grant), settings).await
}

async fn begin_as(
    session: &Session,
    user_id: i64,
    connect: Option<ConnectGrant>,
    settings: &AuthSettings,
) -> Result<(), SessionError> {
    let now = now_ms();
    session.cycle_id().await?;
    let mut auth = SessionAuth {
        user_id,
        signed_in_at: now,
        expires_at: now,
        connect,
    };
    auth.expires_at = expiry(&auth, settings, now);
    write(session, &auth).await
}

/// The signed-in user of this session, if any; ends the session when its lifetime is over, and slides its idle
/// expiry forward.
pub async fn current(session: &Session, settings: &AuthSettings) -> Result<Option<SessionAuth>, SessionError> {
    let Some(mut auth) = session.get::<SessionAuth>(AUTH_KEY).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if now >= auth.expires_at.min(auth.absolute_end(settings)) {
        session.flush().await?;
        return Ok(None);
    }
    let wanted = expiry(&auth, settings, now);
    if wanted - auth.expires_at >= refresh_granularity(settings) {
        auth.expires_at = wanted;
        write(session, &auth).await?;
    }
    Ok(Some(auth))
}

/// Signs out: deletes the session record and expires the cookie.
pub async fn end(session: &Session) -> Result<(), SessionError> {
    session.flush().await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn expiry_slides_with_use_but_never_past_the_absolute_end() {
        let s = AuthSettings {
            session_idle_timeout: Duration::from_secs(3600),
            session_absolute_timeout: Duration::from_secs(4 * 3600),
            ..AuthSettings::default()
        };
        let t0 = 1_000_000;
        let mut auth = SessionAuth {
            user_id: 1,
            signed_in_at: t0,
            expires_at: t0,
            connect: None,
        };
        assert_eq!(expiry(&auth, &s, t0), t0 + 3_600_000, "fresh: one idle period ahead");
        assert_eq!(
            expiry(&auth, &s, t0 + 7_200_000),
            t0 + 10_800_000,
            "used two hours in: slides"
        );
        assert_eq!(
            expiry(&auth, &s, t0 + 12_600_000),
            t0 + 14_400_000,
            "3.5 hours in: capped at the absolute end"
        );
        assert_eq!(refresh_granularity(&s), 60_000);
        auth.connect = Some(ConnectGrant {
            mode: crate::connect::ConnectMode::Manage,
            platform_name: "Invenio".into(),
            return_to: "https://invenio.example/".into(),
            api_key_id: 1,
            providers: None,
            ends_at: t0 + 1_800_000,
        });
        assert_eq!(
            expiry(&auth, &s, t0 + 60_000),
            t0 + 1_800_000,
            "a connect session ends at its own end, however it is used"
        );
    }
}
