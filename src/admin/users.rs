//! Users as admins see them: found by email, id or name, listed with their link counts, disabled and enabled.

use sqlx::Row;

use super::{
    PAGE_SIZE, UserList, UserQuery, UserSummary,
    sql::{Value, Where},
};
use crate::{
    auth::{
        Role,
        repo::{UserRefError, find_by_external_id, find_by_id_or_email},
        service::{self, AuthError, ChangedBy, User},
    },
    db::now_ms,
    error::AppError,
    state::AppState,
};

/// The user a filter names (`field` says which filter): a numeric id, an email, or a platform user's external id
/// (tried last, exactly as typed). One that names nobody is an error that says so, rather than an empty list that
/// looks like "no events".
pub async fn resolve(state: &AppState, field: &str, value: &str) -> Result<i64, AppError> {
    let value = value.trim();
    let found = match find_by_id_or_email(&state.db.pool, value).await {
        Ok(found) => found,
        Err(UserRefError::NotARef) => None,
        Err(UserRefError::Db(e)) => return Err(AppError::internal(e)),
    };
    let found = match found {
        Some(user) => Some(user),
        None => find_by_external_id(&state.db.pool, value)
            .await
            .map_err(AppError::internal)?,
    };
    found.map(|user| user.id).ok_or_else(|| {
        AppError::invalid(
            field,
            format!("No user is “{value}” (an id, an email or an external id)."),
        )
    })
}

/// One page of users by id, optionally those whose email or name starts with `q`.
pub async fn list(state: &AppState, me: i64, query: UserQuery) -> Result<UserList, AppError> {
    let mut filter = Where::default();
    if let Some(q) = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        // A prefix of the email or the name, case-insensitive (emails are stored lower-case; names are folded with
        // LOWER, which folds ASCII only on SQLite). It scans `users`, not accounts or events: cheap enough at the
        // scale of people. A backslash escapes LIKE's wildcards.
        let like = |q: &str| format!("{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
        let pattern = like(&q.to_lowercase());
        // External ids are the platform's, compared as given (case matters to the platform).
        filter.and(
            "(u.email LIKE {} ESCAPE '\\' OR LOWER(u.display_name) LIKE {} ESCAPE '\\' OR u.external_id LIKE {} ESCAPE '\\')",
            [Value::Text(pattern.clone()), Value::Text(pattern), Value::Text(like(q))],
        );
    }
    if let Some(after) = query.after {
        filter.and("u.id > {}", [Value::Int(after)]);
    }
    let limit = filter.placeholder(Value::Int(PAGE_SIZE as i64 + 1));
    let sql = format!(
        "SELECT u.id, COALESCE(u.email, '') AS email, u.external_id, u.display_name, u.role, u.disabled_at, u.created_at, \
         (SELECT COUNT(*) FROM linked_accounts a WHERE a.user_id = u.id) AS accounts \
         FROM users u WHERE {} ORDER BY u.id LIMIT {limit}",
        filter.sql()
    );
    let rows = filter
        .bind(sqlx::query(&sql))
        .fetch_all(&state.db.pool)
        .await
        .map_err(AppError::internal)?;
    let mut users = Vec::with_capacity(rows.len());
    for row in rows.iter().take(PAGE_SIZE) {
        let role: String = row.try_get("role").map_err(AppError::internal)?;
        users.push(UserSummary {
            id: row.try_get("id").map_err(AppError::internal)?,
            email: row.try_get("email").map_err(AppError::internal)?,
            external_id: row.try_get("external_id").map_err(AppError::internal)?,
            display_name: row.try_get("display_name").map_err(AppError::internal)?,
            role: Role::parse(&role).unwrap_or(Role::User),
            disabled: row
                .try_get::<Option<i64>, _>("disabled_at")
                .map_err(AppError::internal)?
                .is_some(),
            created_at: row.try_get("created_at").map_err(AppError::internal)?,
            accounts: row.try_get("accounts").map_err(AppError::internal)?,
        });
    }
    let next = (rows.len() > PAGE_SIZE).then(|| users.last().map(|u| u.id)).flatten();
    Ok(UserList {
        query,
        users,
        next,
        me,
        now: now_ms(),
    })
}

/// Disables or enables `user_id` for admin `me`; an admin cannot disable themselves (nobody could enable them
/// again from here).
pub async fn set_disabled(
    state: &AppState,
    me: i64,
    user_id: i64,
    disabled: bool,
    request_id: Option<&str>,
) -> Result<User, AppError> {
    if disabled && user_id == me {
        return Err(AppError::invalid(
            "user",
            "You cannot disable your own account: another admin (or `onbehalf user disable`) can.",
        ));
    }
    let by = ChangedBy {
        actor_user_id: Some(me),
        request_id,
    };
    match service::set_disabled(&state.db, user_id, disabled, by).await {
        Err(AuthError::UnknownUser(_)) => Err(AppError::NotFound { what: "user".into() }),
        other => Ok(other?),
    }
}
