//! What a session knows about its signed-in user, and the rules of session lifetime.
//!
//! Invariants: the session id changes whenever the signed-in user changes (sign-in cycles it, sign-out deletes the
//! session), so a session id planted before sign-in is worthless after it (session fixation). A session ends after
//! `session_idle_timeout` without use and `session_absolute_timeout` after sign-in, whichever comes first; the
//! stored expiry is exactly that, so the database and the cookie agree.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tower_sessions::{Expiry, Session};

use crate::{config::AuthSettings, db::now_ms};

/// Session key of [`SessionAuth`]; the store reads `user_id` from it.
pub const AUTH_KEY: &str = "auth";

/// The sliding idle expiry is written back at most this often, not on every request.
const IDLE_REFRESH_GRANULARITY: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct SessionAuth {
    pub user_id: i64,
    /// Unix ms of sign-in, for the absolute timeout.
    pub signed_in_at: i64,
}

pub type SessionError = tower_sessions::session::Error;

fn expiry(auth: &SessionAuth, settings: &AuthSettings, now: i64) -> OffsetDateTime {
    let idle_end = now + settings.session_idle_timeout.as_millis() as i64;
    let absolute_end = auth.signed_in_at + settings.session_absolute_timeout.as_millis() as i64;
    let end_ms = idle_end.min(absolute_end);
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(end_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Signs `user_id` in on this session under a new session id.
pub async fn begin(session: &Session, user_id: i64, settings: &AuthSettings) -> Result<(), SessionError> {
    let now = now_ms();
    let auth = SessionAuth {
        user_id,
        signed_in_at: now,
    };
    session.cycle_id().await?;
    session.insert(AUTH_KEY, auth).await?;
    session.set_expiry(Some(Expiry::AtDateTime(expiry(&auth, settings, now))));
    Ok(())
}

/// The signed-in user of this session, if any; ends the session when its absolute lifetime is over, and slides
/// its idle expiry forward.
pub async fn current(session: &Session, settings: &AuthSettings) -> Result<Option<SessionAuth>, SessionError> {
    let Some(auth) = session.get::<SessionAuth>(AUTH_KEY).await? else {
        return Ok(None);
    };
    let now = now_ms();
    if now >= auth.signed_in_at + settings.session_absolute_timeout.as_millis() as i64 {
        session.flush().await?;
        return Ok(None);
    }
    let wanted = expiry(&auth, settings, now);
    if wanted - session.expiry_date() > IDLE_REFRESH_GRANULARITY {
        session.set_expiry(Some(Expiry::AtDateTime(wanted)));
    }
    Ok(Some(auth))
}

/// Signs out: deletes the session record and expires the cookie.
pub async fn end(session: &Session) -> Result<(), SessionError> {
    session.flush().await
}
