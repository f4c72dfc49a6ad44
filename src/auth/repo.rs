//! SQL for local accounts and their sessions. Rows stay here; the service turns them into domain values.

use sqlx::AnyPool;

use super::Role;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
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

const USER_COLUMNS: &str = "id, email, display_name, password_hash, role, disabled_at, created_at";

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

pub async fn find_by_id(pool: &AnyPool, id: i64) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
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

/// Sets or clears `disabled_at`; returns false when no user has that email.
pub async fn set_disabled(
    pool: &AnyPool,
    email: &str,
    disabled_at: Option<i64>,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("UPDATE users SET disabled_at = $1, updated_at = $2 WHERE email = $3")
        .bind(disabled_at)
        .bind(now)
        .bind(email)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// Ends every session of a user (disabled account, changed password).
pub async fn delete_sessions_of(pool: &AnyPool, user_id: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
