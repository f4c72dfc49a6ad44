//! The rules of connect sessions: making a link for a platform's user (the service API), and opening it (the
//! browser). The one place that decides what a link may do; `gate` enforces it on every later request.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use tower_sessions::Session;

use super::{
    ConnectGrant, ConnectMode, ConnectResult,
    repo::{self, ConnectRow, Consumed, NewLink},
};
use crate::{
    accounts::{
        AccountStatus, LinkIntent,
        link::{self, StartError, StartRequest},
    },
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    auth::{
        self,
        service::{AuthError, PlatformUser, User},
    },
    db::now_ms,
    digest::sha256_hex,
    error::FieldError,
    service_api::keys::{self, ApiKey},
    state::AppState,
};

/// `return_to` is kept in the session and sent back in a page: bounded.
const RETURN_TO_MAX_LEN: usize = 2048;

/// The query parameters the result is told in: removed from `return_to` when it is made, so the platform reads only
/// what onbehalf adds (a parser that takes the first value would otherwise read one planted in the link).
const RESULT_PARAMETERS: [&str; 3] = ["result", "account", "reason"];

/// `url` without the result parameters (and without an empty `?`).
fn without_result_parameters(mut url: url::Url) -> url::Url {
    if url.query().is_none() {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !RESULT_PARAMETERS.contains(&k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

/// The path of a link; the token follows.
pub const LINK_PATH: &str = "/connect/";

/// What a platform's backend asks for.
pub struct NewSession<'a> {
    pub user: PlatformUser<'a>,
    pub mode: &'a str,
    pub provider: Option<&'a str>,
    pub account: Option<&'a str>,
    pub return_to: &'a str,
}

/// A link made: the URL to send the user's browser to, and whom it is for.
#[derive(Debug)]
pub struct Created {
    pub url: String,
    pub expires_at: i64,
    pub user: User,
    pub mode: ConnectMode,
    pub provider: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("this API key may not act with {0} accounts")]
    ProviderNotAllowed(String),
    #[error("no such linked account of this user")]
    AccountNotFound,
    #[error("the user is disabled")]
    UserDisabled,
    #[error("another user has this email")]
    EmailTaken,
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("{0}")]
    Internal(String),
}

impl From<AuthError> for ConnectError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid(field) => ConnectError::Invalid(field),
            AuthError::EmailTaken => ConnectError::EmailTaken,
            AuthError::Database(e) => ConnectError::Database(e),
            other => ConnectError::Internal(other.to_string()),
        }
    }
}

/// Makes a single-use link for the platform user `request.user` (created on first use). Everything the request says
/// is checked before the user is created or changed, so a bad request leaves nothing behind.
pub async fn create(state: &AppState, key: &ApiKey, request: NewSession<'_>) -> Result<Created, ConnectError> {
    let mode =
        ConnectMode::parse(request.mode).ok_or_else(|| FieldError::new("mode", "mode is `connect` or `manage`."))?;
    if request.return_to.len() > RETURN_TO_MAX_LEN {
        return Err(FieldError::new("return_to", format!("return_to has at most {RETURN_TO_MAX_LEN} bytes.")).into());
    }
    let return_to = if key.return_prefixes().next().is_none() {
        return Err(FieldError::new(
            "return_to",
            "This API key allows no return URLs: make one with `onbehalf apikey create --return-url PREFIX`.",
        )
        .into());
    } else {
        key.allowed_return(request.return_to).ok_or_else(|| {
            let prefixes: Vec<_> = key.return_prefixes().collect();
            FieldError::new(
                "return_to",
                format!("return_to must be an absolute URL under {}.", prefixes.join(" or ")),
            )
        })?
    };
    let return_to = without_result_parameters(return_to);
    if mode == ConnectMode::Manage && (request.provider.is_some() || request.account.is_some()) {
        let field = if request.provider.is_some() {
            "provider"
        } else {
            "account"
        };
        return Err(FieldError::new(field, "provider and account are for mode `connect`.").into());
    }
    if let Some(provider) = request.provider {
        if state.catalog.get(provider).is_none() {
            return Err(FieldError::new("provider", format!("No provider `{provider}` is configured here.")).into());
        }
        if !key.allows(provider) {
            return Err(ConnectError::ProviderNotAllowed(provider.to_owned()));
        }
    }
    let external_id = auth::validate_external_id(request.user.external_id)?;
    // The user as they are, before anything is written: a refused request changes no one.
    let existing = auth::repo::find_by_external_id(&state.db.pool, external_id).await?;
    if existing.as_ref().is_some_and(|u| u.is_disabled()) {
        return Err(ConnectError::UserDisabled);
    }
    let mut provider = request.provider.map(str::to_owned);
    if let Some(account_id) = request.account {
        if !crate::service_api::plausible_id(account_id) {
            return Err(ConnectError::AccountNotFound);
        }
        // A user made by this call has no accounts yet.
        let owner = existing.as_ref().ok_or(ConnectError::AccountNotFound)?;
        let mut conn = state.db.pool.acquire().await?;
        let account = crate::accounts::repo::find_for_user(&mut conn, account_id, owner.id)
            .await?
            .ok_or(ConnectError::AccountNotFound)?;
        if provider.as_deref().is_some_and(|p| p != account.provider) {
            return Err(FieldError::new("account", "This account is not at the provider named.").into());
        }
        if !key.allows(&account.provider) {
            return Err(ConnectError::ProviderNotAllowed(account.provider));
        }
        provider = Some(account.provider);
    }
    let user = auth::service::platform_user(&state.db, request.user).await?;
    if user.disabled {
        // Disabled between the two reads.
        return Err(ConnectError::UserDisabled);
    }
    let token = random_token();
    let now = now_ms();
    let expires_at = now + state.settings.connect.link_ttl.as_millis() as i64;
    repo::insert(
        &state.db.pool,
        &NewLink {
            token_hash: &sha256_hex(&token),
            api_key_id: key.id,
            user_id: user.id,
            mode,
            provider: provider.as_deref(),
            account_id: request.account,
            return_to: return_to.as_str(),
            now,
            expires_at,
        },
    )
    .await?;
    Ok(Created {
        url: format!("{}{LINK_PATH}{token}", state.settings.server.public_origin()),
        expires_at,
        user,
        mode,
        provider,
    })
}

/// 256 bits from the OS CSPRNG, base64url.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a link did not open. The platform's name and URL, when the link is known, let the page send the user back.
#[derive(Debug)]
pub enum Refused {
    /// Never made, mistyped or tampered with, or long gone.
    Unknown,
    /// Used before, expired, or its key revoked: "This link has expired".
    Spent { platform: Platform },
    /// The user is disabled at onbehalf.
    UserDisabled { platform: Platform },
}

#[derive(Debug, Clone)]
pub struct Platform {
    pub name: String,
    pub return_to: String,
}

/// A base64url token of 32 bytes: anything else is not one, and costs no database read.
fn well_formed(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What a fresh link will do, shown before it is used. Opening a link is a POST from this page: a link followed by
/// a mail scanner or a preview (GET or HEAD) spends nothing, and a link someone made for another user does not
/// silently replace this browser's session — the page names whose session it starts.
#[derive(Debug)]
pub struct Preview {
    pub platform: Platform,
    pub mode: ConnectMode,
    /// The platform's user the session would be for: their name, and their email when known.
    pub user_name: String,
    pub user_email: Option<String>,
    pub provider_name: Option<String>,
}

pub async fn preview(state: &AppState, token: &str) -> Result<Preview, Refused> {
    if !well_formed(token) {
        return Err(Refused::Unknown);
    }
    let row = repo::find(&state.db.pool, &sha256_hex(token))
        .await
        .map_err(|e| internal(&e))?
        .ok_or(Refused::Unknown)?;
    let spent = if row.used_at.is_some() {
        Some("used")
    } else if row.expires_at <= now_ms() {
        Some("expired")
    } else {
        None
    };
    let link = inspect(state, &row, spent).await?;
    let (Some(user), None) = (link.user, link.refusal) else {
        return Err(Refused::from_reason(link.refusal.unwrap_or("user_gone"), link.platform));
    };
    Ok(Preview {
        platform: link.platform,
        mode: row.mode(),
        user_name: user.display_name,
        user_email: user.email,
        provider_name: row
            .provider
            .as_deref()
            .and_then(|p| state.catalog.get(p))
            .map(|p| p.display_name.clone()),
    })
}

/// A link as it stands now: its key, the platform it returns to, its user, and why it cannot be used (if it
/// cannot) — the one place that decides, for looking at a link and for using it alike.
struct Inspected {
    key: ApiKey,
    platform: Platform,
    user: Option<auth::repo::UserRow>,
    /// `used`, `expired` (from `spent`), `key_revoked`, `user_disabled` or `user_gone`.
    refusal: Option<&'static str>,
}

async fn inspect(state: &AppState, row: &ConnectRow, spent: Option<&'static str>) -> Result<Inspected, Refused> {
    let pool = &state.db.pool;
    let key = keys::find(pool, row.api_key_id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or(Refused::Unknown)?;
    let user = auth::repo::find_by_id(pool, row.user_id)
        .await
        .map_err(|e| internal(&e))?;
    let refusal = match (spent, &user) {
        (Some(why), _) => Some(why),
        _ if key.revoked_at.is_some() => Some("key_revoked"),
        (_, Some(u)) if u.is_disabled() => Some("user_disabled"),
        (_, None) => Some("user_gone"),
        _ => None,
    };
    let platform = Platform {
        name: key.platform_name().to_owned(),
        return_to: row.return_to.clone(),
    };
    Ok(Inspected {
        key,
        platform,
        user,
        refusal,
    })
}

impl Refused {
    /// What the browser is told about a link refused for `reason` (see [`Inspected::refusal`]).
    fn from_reason(reason: &str, platform: Platform) -> Self {
        match reason {
            "user_disabled" => Refused::UserDisabled { platform },
            _ => Refused::Spent { platform },
        }
    }
}

/// A database failure while opening a link: logged with a reference, and shown as a link that cannot be used.
fn internal(e: &dyn std::fmt::Display) -> Refused {
    let reference = crate::error::AppError::internal(e.to_string());
    tracing::error!("opening a connect link failed: {reference}");
    Refused::Unknown
}

/// Opens the link `token` on this browser: consumes it (single use), starts the connect session for its user, and
/// says where the browser goes next (the provider's consent, the chooser, or the linked-accounts page).
pub async fn open(
    state: &AppState,
    session: &Session,
    token: &str,
    request_id: Option<&str>,
) -> Result<String, Refused> {
    let now = now_ms();

    if !well_formed(token) {
        return Err(Refused::Unknown);
    }
    let consumed = repo::consume(&state.db.pool, &sha256_hex(token), now)
        .await
        .map_err(|e| internal(&e))?;
    let (row, spent) = match consumed {
        Consumed::Fresh(row) => (row, None),
        Consumed::Used(row) => (row, Some("used")),
        Consumed::Expired(row) => (row, Some("expired")),
        Consumed::Unknown => return Err(Refused::Unknown),
    };
    let Inspected {
        key, platform, refusal, ..
    } = inspect(state, &row, spent).await?;
    let mut event = NewEvent::by_user(AuditAction::ConnectSessionOpened, Outcome::Success, row.user_id);
    event.actor_user_id = None;
    event.request_id = request_id;
    event.provider = row.provider.as_deref();
    event.account_id = row.account_id.as_deref();
    event.details = serde_json::json!({ "key": key.name, "mode": row.mode });
    if let Some(why) = refusal {
        event.outcome = Outcome::Rejected;
        event.details["error"] = why.into();
        if why != "user_gone" {
            record(state, &event).await;
        }
        tracing::info!(reason = why, "connect link refused");
        return Err(Refused::from_reason(why, platform));
    }
    let grant = ConnectGrant {
        mode: row.mode(),
        platform_name: platform.name.clone(),
        return_to: row.return_to.clone(),
        api_key_id: key.id,
        providers: key.provider_list(),
        ends_at: now + state.settings.connect.session_max.as_millis() as i64,
    };
    let begun = async {
        auth::session::begin_connect(session, row.user_id, grant.clone(), &state.settings.auth).await?;
        // The id now, not at the end of the request: the flow started below is bound to it.
        session.save().await
    };
    if let Err(e) = begun.await {
        return Err(internal(&e));
    }
    record(state, &event).await;
    Ok(next_location(state, session, &row, &grant).await)
}

async fn record(state: &AppState, event: &NewEvent<'_>) {
    let recorded = async {
        let mut conn = state.db.pool.acquire().await?;
        audit::record(&mut conn, event, now_ms()).await
    };
    if let Err(e) = recorded.await {
        tracing::error!("recording {} failed: {e}", event.action.as_str());
    }
}

/// Where an opened link sends the browser.
async fn next_location(state: &AppState, session: &Session, row: &ConnectRow, grant: &ConnectGrant) -> String {
    if grant.mode == ConnectMode::Manage {
        return link::DEFAULT_RETURN.to_owned();
    }
    let Some(provider_id) = row.provider.as_deref() else {
        return CHOOSER_PATH.to_owned();
    };
    let Some(provider) = state.catalog.get(provider_id) else {
        return finish(
            session,
            grant,
            ConnectResult::Failed {
                reason: "provider_unavailable",
            },
        )
        .await;
    };
    let intent = match &row.account_id {
        None => LinkIntent::Link,
        Some(account_id) => {
            let status = crate::accounts::repo::find(&state.db.pool, account_id)
                .await
                .ok()
                .flatten()
                .map(|a| a.status);
            if status == Some(AccountStatus::NeedsConsent) {
                LinkIntent::Grant
            } else {
                LinkIntent::Reconnect
            }
        }
    };
    let request = StartRequest {
        intent,
        account_id: row.account_id.clone(),
        extra_scopes: Vec::new(),
        return_to: link::DEFAULT_RETURN.to_owned(),
    };
    let session_id = session.id().map(|id| id.to_string()).unwrap_or_default();
    match link::start(&state.linker(), &provider, row.user_id, &session_id, request).await {
        Ok(url) => url.to_string(),
        Err(StartError::NoSuchAccount) => {
            finish(session, grant, ConnectResult::Failed { reason: "account_gone" }).await
        }
        Err(StartError::Provider(reason)) => {
            tracing::warn!(provider = provider_id, "cannot start a connect link's flow: {reason}");
            finish(
                session,
                grant,
                ConnectResult::Failed {
                    reason: "provider_unavailable",
                },
            )
            .await
        }
        // No scopes are named here, so only a database error lands in this arm.
        Err(e @ (StartError::Db(_) | StartError::ScopeNotOffered(_))) => {
            let reference = crate::error::AppError::internal(e);
            tracing::error!("starting a connect link's flow: {reference}");
            finish(session, grant, ConnectResult::Failed { reason: "internal" }).await
        }
    }
}

/// The chooser of a `connect` link that names no provider.
pub const CHOOSER_PATH: &str = "/connect";

/// Ends a connect session and gives the platform URL to send the browser to, with `result` when the session was a
/// `connect` one (a `manage` session just goes back).
pub async fn finish(session: &Session, grant: &ConnectGrant, result: ConnectResult) -> String {
    let back = leave(session, grant).await;
    match grant.mode {
        ConnectMode::Connect => result.apply(&back),
        ConnectMode::Manage => back,
    }
}

/// Ends a connect session on "Back to <platform>": the platform's URL as it was given.
pub async fn leave(session: &Session, grant: &ConnectGrant) -> String {
    if let Err(e) = auth::session::end(session).await {
        tracing::warn!("ending a connect session: {e}");
    }
    grant.return_to.clone()
}
