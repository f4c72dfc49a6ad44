//! SQL for local accounts and their sessions. Rows stay here; the service turns them into domain values.

use sqlx::AnyPool;

use super::Role;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    /// `None` only for a platform user whose platform gave no email.
    pub email: Option<String>,
    pub display_name: String,
    /// `None`: no password (a platform user), so no sign-in with one.
    pub password_hash: Option<String>,
    pub role: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    /// The platform's own id of a platform user; `None` for local accounts.
    pub external_id: Option<String>,
}

impl UserRow {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; anything else would be a corrupted row, and the safe reading is `user`.
        Role::parse(&self.role).unwrap_or(Role::User)
    }

    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

const USER_COLUMNS: &str = "id, email, display_name, password_hash, role, disabled_at, created_at, external_id";

pub async fn insert_user(
    pool: &AnyPool,
    email: &str,
    display_name: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO users (email, display_name, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
    )
    .bind(email)
    .bind(display_name)
    .bind(password_hash)
    .bind(role.as_str())
    .bind(now)
    .fetch_one(pool)
    .await
}

pub async fn find_by_email(pool: &AnyPool, email: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1"))
        .bind(email)
        .fetch_optional(pool)
        .await
}

pub async fn find_by_id<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await
}

static UPDATE_PLATFORM_USER: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "UPDATE users SET email = COALESCE($2, email), display_name = COALESCE($3, display_name), updated_at = $4 \
         WHERE external_id = $1 RETURNING {USER_COLUMNS}"
    )
});

pub async fn find_by_external_id(pool: &AnyPool, external_id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE external_id = $1"))
        .bind(external_id)
        .fetch_optional(pool)
        .await
}

/// Creates the platform user named `external_id`, or updates the email and name the platform gives (`None` keeps
/// what is stored). Any number of first calls at once make one user (the unique `external_id`): the insert does
/// nothing on a conflict and the winner's row is updated instead. Updating first, rather than one `INSERT … ON
/// CONFLICT DO UPDATE`, spends no id on the calls that find the user (an upsert draws one from the sequence each
/// time, and user ids would count the platform's calls). A new user without a given name is called
/// `new_display_name`. Fails with a unique violation of `users_email_key` when another user has the email.
pub async fn upsert_platform_user(
    pool: &AnyPool,
    external_id: &str,
    email: Option<&str>,
    display_name: Option<&str>,
    new_display_name: &str,
    now: i64,
) -> Result<UserRow, sqlx::Error> {
    let update = || {
        sqlx::query_as::<_, UserRow>(&UPDATE_PLATFORM_USER)
            .bind(external_id)
            .bind(email)
            .bind(display_name)
            .bind(now)
    };
    if let Some(row) = update().fetch_optional(pool).await? {
        return Ok(row);
    }
    let inserted = sqlx::query_as(&format!(
        "INSERT INTO users (external_id, email, display_name, password_hash, role, created_at, updated_at) \
         VALUES ($1, $2, $3, NULL, 'user', $4, $4) ON CONFLICT (external_id) DO NOTHING RETURNING {USER_COLUMNS}"
    ))
    .bind(external_id)
    .bind(email)
    .bind(new_display_name)
    .bind(now)
    .fetch_optional(pool)
    .await;
    match inserted {
        Ok(Some(row)) => Ok(row),
        // Another call made the user a moment ago.
        Ok(None) => update().fetch_one(pool).await,
        // PostgreSQL checks `ON CONFLICT` against its arbiter index only: when a concurrent first call with the same
        // email commits first, this insert fails on the email's index instead. The user exists then, and the update
        // finds it; when it finds no one, the email really is another user's.
        Err(e) if is_unique_violation_of_any(&e) => match update().fetch_optional(pool).await? {
            Some(row) => Ok(row),
            None => Err(e),
        },
        Err(e) => Err(e),
    }
}

fn is_unique_violation_of_any(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The user a reference names: a numeric id, else an email address (normalised as sign-in normalises it).
/// `Ok(None)` when it names nobody; `Err(UserRefError::NotARef)` when it is neither an id nor an email at all, so callers
/// can say which.
pub async fn find_by_id_or_email(pool: &AnyPool, reference: &str) -> Result<Option<UserRow>, UserRefError> {
    let reference = reference.trim();
    match reference.parse::<i64>() {
        Ok(id) => Ok(find_by_id(pool, id).await?),
        Err(_) => {
            let email = super::normalize_email(reference).map_err(|_| UserRefError::NotARef)?;
            Ok(find_by_email(pool, &email).await?)
        }
    }
}

/// Why [`find_by_id_or_email`] could not look a user up.
#[derive(Debug)]
pub enum UserRefError {
    /// Neither a number nor something shaped like an email address.
    NotARef,
    Db(sqlx::Error),
}

impl From<sqlx::Error> for UserRefError {
    fn from(e: sqlx::Error) -> Self {
        UserRefError::Db(e)
    }
}

pub async fn list_users(pool: &AnyPool) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))
        .fetch_all(pool)
        .await
}

pub async fn update_password(pool: &AnyPool, id: i64, password_hash: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(password_hash)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Disables (`disabled_at` = `now`) or enables a user that is in the other state; false when they were not.
pub async fn set_disabled<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    id: i64,
    disabled: bool,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let sql = if disabled {
        "UPDATE users SET disabled_at = $1, updated_at = $1 WHERE id = $2 AND disabled_at IS NULL"
    } else {
        "UPDATE users SET disabled_at = NULL, updated_at = $1 WHERE id = $2 AND disabled_at IS NOT NULL"
    };
    let done = sqlx::query(sql).bind(now).bind(id).execute(conn).await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every session of a user (disabled account, changed password).
pub async fn delete_sessions_of<'e>(
    conn: impl sqlx::Executor<'e, Database = sqlx::Any>,
    user_id: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(done.rows_affected())
}
