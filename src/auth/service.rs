//! Local accounts: sign-up, sign-in, password change, enable/disable. The one place these rules live; the server
//! functions in `api.rs` and the CLI both call here.

use tower_sessions::Session;

use super::{
    PASSWORD_MAX_LEN, Role, UserDto, normalize_display_name, normalize_email, password, repo, repo::UserRow, session,
    throttle, validate_new_password,
};
use crate::{
    config::AuthSettings,
    connect::ConnectGrant,
    db::{Db, is_unique_violation, now_ms},
    error::{AppError, FieldError},
};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    Invalid(#[from] FieldError),
    #[error("email and password do not match")]
    InvalidCredentials,
    #[error("account disabled")]
    Disabled,
    #[error("throttled for {0:?}")]
    Throttled(std::time::Duration),
    #[error("sign-ups throttled for {0:?}")]
    SignUpsThrottled(std::time::Duration),
    #[error("email already registered")]
    EmailTaken,
    #[error("sign-up is disabled")]
    SignUpDisabled,
    #[error("no user with email {0}")]
    UnknownUser(String),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Password(#[from] password::PasswordError),
    #[error("session: {0}")]
    Session(#[from] session::SessionError),
}

impl From<AuthError> for AppError {
    fn from(err: AuthError) -> Self {
        match err {
            AuthError::Invalid(field) => field.into(),
            AuthError::InvalidCredentials | AuthError::UnknownUser(_) => AppError::InvalidCredentials,
            AuthError::Disabled => AppError::AccountDisabled,
            AuthError::Throttled(wait) => AppError::Throttled {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            },
            AuthError::SignUpsThrottled(wait) => AppError::SignUpsThrottled {
                retry_after_secs: wait.as_secs_f64().ceil() as u64,
            },
            AuthError::EmailTaken => AppError::EmailTaken,
            AuthError::SignUpDisabled => AppError::SignUpDisabled,
            other @ (AuthError::Database(_) | AuthError::Password(_) | AuthError::Session(_)) => {
                AppError::internal(other)
            }
        }
    }
}

/// A local account as the rest of the server sees it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    /// `None` only for a platform user whose platform gave none.
    pub email: Option<String>,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub created_at: i64,
    /// The platform's id of a platform user.
    pub external_id: Option<String>,
    /// Set while this user is in a session opened from a platform's connect link: what that session may do.
    pub connect: Option<ConnectGrant>,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        Self {
            id: row.id,
            role: row.role(),
            disabled: row.is_disabled(),
            email: row.email,
            display_name: row.display_name,
            created_at: row.created_at,
            external_id: row.external_id,
            connect: None,
        }
    }
}

impl User {
    pub fn to_dto(&self) -> UserDto {
        UserDto {
            email: self.email.clone().unwrap_or_default(),
            display_name: self.display_name.clone(),
            role: self.role,
            member_since: format_date(self.created_at),
            connect: self.connect.as_ref().map(ConnectGrant::view),
        }
    }

    /// The providers this session may act with: `None`, every one, except in a connect session, which may use the
    /// providers of the platform's key only.
    pub fn provider_scope(&self) -> Option<&[String]> {
        self.connect.as_ref().and_then(|grant| grant.providers.as_deref())
    }

    /// Whether this session may act with accounts of `provider` (see [`Self::provider_scope`]).
    pub fn may_use_provider(&self, provider: &str) -> bool {
        self.connect.as_ref().is_none_or(|grant| grant.allows(provider))
    }
}

fn format_date(unix_ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::OffsetDateTime::from_unix_timestamp(unix_ms / 1000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Another user has the email (the unique constraint said so), or another database error.
fn email_taken(e: sqlx::Error) -> AuthError {
    if is_unique_violation(&e, "users_email_key", "users.email") {
        AuthError::EmailTaken
    } else {
        e.into()
    }
}

/// Creates an account. Used by sign-up (after its own checks) and by `onbehalf user add`.
pub async fn create_user(
    db: &Db,
    email: &str,
    display_name: &str,
    new_password: &str,
    role: Role,
) -> Result<User, AuthError> {
    let email = normalize_email(email)?;
    let display_name = normalize_display_name(display_name, &email)?;
    validate_new_password("password", new_password, new_password)?;
    let hash = password::hash(new_password.to_owned()).await?;
    let now = now_ms();
    let id = repo::insert_user(&db.pool, &email, &display_name, &hash, role, now)
        .await
        .map_err(email_taken)?;
    Ok(User {
        id,
        email: Some(email),
        display_name,
        role,
        disabled: false,
        created_at: now,
        external_id: None,
        connect: None,
    })
}

/// A platform's user as its backend names them (`POST /api/v1/connect_sessions`).
pub struct PlatformUser<'a> {
    pub external_id: &'a str,
    pub email: Option<&'a str>,
    pub display_name: Option<&'a str>,
}

/// The platform user named `external_id`, created on first use with no password; the email and name are updated
/// when given. Any number of concurrent first calls make one user.
pub async fn platform_user(db: &Db, given: PlatformUser<'_>) -> Result<User, AuthError> {
    let external_id = super::validate_external_id(given.external_id)?;
    let email = match given.email.map(str::trim).filter(|e| !e.is_empty()) {
        Some(email) => Some(normalize_email(email).map_err(|e| FieldError::new("user.email", e.message))?),
        None => None,
    };
    let display_name = match given.display_name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => {
            Some(normalize_display_name(name, "").map_err(|e| FieldError::new("user.display_name", e.message))?)
        }
        None => None,
    };
    // A new user without a name is called by their email's local part, else by the platform's id.
    let fallback = match &email {
        Some(email) => normalize_display_name("", email)?,
        None => external_id.chars().take(super::DISPLAY_NAME_MAX_LEN).collect(),
    };
    let row = repo::upsert_platform_user(
        &db.pool,
        external_id,
        email.as_deref(),
        display_name.as_deref(),
        display_name.as_deref().unwrap_or(&fallback),
        now_ms(),
    )
    .await
    .map_err(email_taken)?;
    Ok(row.into())
}

pub struct SignUp<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub password: &'a str,
    pub password_confirm: &'a str,
}

/// Self-service sign-up from `client` (throttled per client), then sign-in on `session`.
pub async fn sign_up(
    db: &Db,
    settings: &AuthSettings,
    session: &Session,
    form: SignUp<'_>,
    client: &str,
) -> Result<User, AuthError> {
    if !settings.allow_sign_up {
        return Err(AuthError::SignUpDisabled);
    }
    // Malformed input costs nothing; a well-formed attempt is charged before the email is looked at.
    normalize_email(form.email)?;
    validate_new_password("password", form.password, form.password_confirm)?;
    if let throttle::Attempt::Refused(wait) = throttle::sign_up(&db.pool, &settings.throttle, client).await? {
        tracing::warn!(client, "sign-up refused: throttled");
        return Err(AuthError::SignUpsThrottled(wait));
    }
    let user = create_user(db, form.email, form.display_name, form.password, Role::User).await?;
    session::begin(session, user.id, settings).await?;
    tracing::info!(user_id = user.id, "user signed up");
    Ok(user)
}

/// Checks credentials (throttled) and signs the user in on `session` under a new session id.
pub async fn sign_in(
    db: &Db,
    settings: &AuthSettings,
    session: &Session,
    email: &str,
    password_given: &str,
    client: &str,
) -> Result<User, AuthError> {
    // Malformed input is not a guess at a password: say what is wrong and count nothing.
    let email = normalize_email(email)?;
    if password_given.is_empty() {
        return Err(FieldError::new("password", "Enter your password.").into());
    }
    if password_given.chars().count() > PASSWORD_MAX_LEN {
        return Err(FieldError::new(
            "password",
            format!("A password has at most {PASSWORD_MAX_LEN} characters."),
        )
        .into());
    }
    charge_attempt(db, settings, &email, client).await?;
    let row = repo::find_by_email(&db.pool, &email).await?;
    // A platform user has no password: verified against the dummy hash like an unknown email, so the answer and its
    // timing are the same, and no password opens the account.
    let stored = row.as_ref().and_then(|r| r.password_hash.clone());
    let matches = password::verify(password_given.to_owned(), stored).await?;
    let Some(row) = row.filter(|_| matches) else {
        tracing::info!(client, "sign-in failed: bad credentials");
        return Err(AuthError::InvalidCredentials);
    };
    throttle::record_success(&db.pool, &email, client).await?;
    if row.is_disabled() {
        tracing::info!(user_id = row.id, "sign-in refused: account disabled");
        return Err(AuthError::Disabled);
    }
    session::begin(session, row.id, settings).await?;
    tracing::info!(user_id = row.id, "user signed in");
    Ok(row.into())
}

/// Charges a password attempt to the throttle (see `throttle`), or refuses it.
async fn charge_attempt(db: &Db, settings: &AuthSettings, email: &str, client: &str) -> Result<(), AuthError> {
    match throttle::attempt(&db.pool, &settings.throttle, email, client).await? {
        throttle::Attempt::Allowed => Ok(()),
        throttle::Attempt::Refused(wait) => {
            tracing::warn!(client, "password attempt refused: throttled");
            Err(AuthError::Throttled(wait))
        }
    }
}

/// The signed-in, enabled user of `session`. A session whose user was disabled or deleted is ended.
pub async fn current_user(db: &Db, settings: &AuthSettings, session: &Session) -> Result<Option<User>, AuthError> {
    let Some(auth) = session::current(session, settings).await? else {
        return Ok(None);
    };
    match repo::find_by_id(&db.pool, auth.user_id).await? {
        Some(row) if !row.is_disabled() => {
            let mut user = User::from(row);
            user.connect = auth.connect;
            Ok(Some(user))
        }
        _ => {
            session::end(session).await?;
            Ok(None)
        }
    }
}

pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    pub new_confirm: &'a str,
}

/// Changes the password after checking the current one, then ends every other session of the user and gives
/// this one a new id.
pub async fn change_password(
    db: &Db,
    settings: &AuthSettings,
    session: &Session,
    user: &User,
    client: &str,
    change: PasswordChange<'_>,
) -> Result<(), AuthError> {
    let PasswordChange {
        current,
        new,
        new_confirm,
    } = change;
    if current.is_empty() {
        return Err(FieldError::new("current_password", "Enter your current password.").into());
    }
    validate_new_password("new_password", new, new_confirm)?;
    // Only a local account has a password to change (a connect session never reaches this page).
    let Some(email) = user
        .email
        .as_deref()
        .filter(|_| user.external_id.is_none() && user.connect.is_none())
    else {
        return Err(AuthError::InvalidCredentials);
    };
    // A borrowed signed-in session must not become a way to guess the password at full speed.
    charge_attempt(db, settings, email, client).await?;
    let row = repo::find_by_id(&db.pool, user.id)
        .await?
        .ok_or(AuthError::InvalidCredentials)?;
    if !password::verify(current.to_owned(), row.password_hash).await? {
        return Err(FieldError::new("current_password", "Your current password is not correct.").into());
    }
    throttle::record_success(&db.pool, email, client).await?;
    let hash = password::hash(new.to_owned()).await?;
    repo::update_password(&db.pool, user.id, &hash, now_ms()).await?;
    repo::delete_sessions_of(&db.pool, user.id).await?;
    session::begin(session, user.id, settings).await?;
    tracing::info!(user_id = user.id, "password changed; other sessions ended");
    Ok(())
}

/// Who changed a user's state, for the audit trail: an admin in the browser, or the operator at the command line.
#[derive(Debug, Clone, Copy)]
pub struct ChangedBy<'a> {
    /// The admin's user id; `None` for the `onbehalf user` command.
    pub actor_user_id: Option<i64>,
    pub request_id: Option<&'a str>,
}

/// Disables or enables a user (by id); disabling ends all their sessions at once, in the same transaction. A real
/// change is audited (`user_disabled` / `user_enabled`); asking for the state the user is already in changes and
/// records nothing. Returns the user as they are now.
pub async fn set_disabled(db: &Db, user_id: i64, disabled: bool, by: ChangedBy<'_>) -> Result<User, AuthError> {
    use crate::{
        audit::{
            AuditAction, Outcome,
            repo::{NewEvent, record},
        },
        webhooks::{EventType, outbox, payload},
    };
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    let Some(mut row) = repo::find_by_id(&mut *tx, user_id).await? else {
        return Err(AuthError::UnknownUser(format!("id {user_id}")));
    };
    // Changed only from the other state, in the statement itself: of two admins disabling a user at once, one
    // changes it and records it; the other changes and records nothing.
    let changed = row.is_disabled() != disabled && repo::set_disabled(&mut *tx, user_id, disabled, now).await?;
    if row.is_disabled() != disabled {
        // Changed by this call, or meanwhile by another: either way the user is now as asked.
        row.disabled_at = disabled.then_some(now);
    }
    if changed {
        if disabled {
            repo::delete_sessions_of(&mut *tx, user_id).await?;
        }
        let action = if disabled {
            AuditAction::UserDisabled
        } else {
            AuditAction::UserEnabled
        };
        let mut event = NewEvent::by_user(action, Outcome::Success, user_id);
        event.actor_user_id = by.actor_user_id;
        event.request_id = by.request_id;
        event.details = serde_json::json!({ "email": row.email });
        record(&mut tx, &event, now).await?;
        let kind = if disabled {
            EventType::UserDisabled
        } else {
            EventType::UserEnabled
        };
        let data = payload::EventData::new_for(Some((&row).into()), None);
        outbox::enqueue(&mut tx, kind, data, now).await?;
    }
    tx.commit().await?;
    if changed {
        outbox::committed();
    }
    Ok(row.into())
}

/// [`set_disabled`] for a user named by email (the command line).
pub async fn set_disabled_by_email(db: &Db, email: &str, disabled: bool) -> Result<User, AuthError> {
    let email = normalize_email(email)?;
    let row = repo::find_by_email(&db.pool, &email)
        .await?
        .ok_or(AuthError::UnknownUser(email))?;
    let by = ChangedBy {
        actor_user_id: None,
        request_id: None,
    };
    set_disabled(db, row.id, disabled, by).await
}

pub async fn list_users(db: &Db) -> Result<Vec<User>, AuthError> {
    Ok(repo::list_users(&db.pool).await?.into_iter().map(User::from).collect())
}
