//! `transfer_submissions`: transfers as users asked for them, with the Globus submission id reused on retries;
//! `recent_collections`: the collections each account last transferred with, for the file manager's picker.

use sqlx::{AnyPool, Row, any::AnyRow};

use super::{Endpoint, Submission, TransferForm};

/// How many recent collections are kept per account.
pub const RECENT_COLLECTIONS: i64 = 8;

/// The columns [`row`] reads.
const SUBMISSION: &str = "SELECT id, account_id, submission_id, document, status, task_id, last_error, created_at \
                          FROM transfer_submissions";

fn row(r: &AnyRow) -> Result<Submission, sqlx::Error> {
    let document: String = r.try_get("document")?;
    Ok(Submission {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        submission_id: r.try_get("submission_id")?,
        form: serde_json::from_str::<TransferForm>(&document).unwrap_or_default(),
        status: r.try_get("status")?,
        task_id: r.try_get("task_id")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
    })
}

pub async fn insert(
    pool: &AnyPool,
    user_id: i64,
    account_id: &str,
    form: &TransferForm,
    submission_id: &str,
    now: i64,
) -> Result<Submission, sqlx::Error> {
    let id = uuid::Uuid::new_v4().to_string();
    sqlx::query(
        "INSERT INTO transfer_submissions (id, user_id, account_id, submission_id, document, status, created_at, \
         updated_at, form_key) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6, $7)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(account_id)
    .bind(submission_id)
    .bind(serde_json::to_string(form).unwrap_or_default())
    .bind(now)
    .bind(form.form_key.as_deref())
    .execute(pool)
    .await?;
    Ok(Submission {
        id,
        account_id: account_id.to_owned(),
        submission_id: submission_id.to_owned(),
        form: form.clone(),
        status: "pending".into(),
        task_id: None,
        last_error: None,
        created_at: now,
    })
}

/// The user's submission started from the form `key`.
pub async fn find_by_form_key(pool: &AnyPool, user_id: i64, key: &str) -> Result<Option<Submission>, sqlx::Error> {
    let found = sqlx::query(&format!("{SUBMISSION} WHERE user_id = $1 AND form_key = $2"))
        .bind(user_id)
        .bind(key)
        .fetch_optional(pool)
        .await?;
    found.as_ref().map(row).transpose()
}

/// One of the user's submissions.
pub async fn find(pool: &AnyPool, user_id: i64, id: &str) -> Result<Option<Submission>, sqlx::Error> {
    let found = sqlx::query(&format!("{SUBMISSION} WHERE id = $1 AND user_id = $2"))
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await?;
    found.as_ref().map(row).transpose()
}

pub async fn mark_submitted(pool: &AnyPool, id: &str, task_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE transfer_submissions SET status = 'submitted', task_id = $1, last_error = NULL, updated_at = $2 \
         WHERE id = $3",
    )
    .bind(task_id)
    .bind(now)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub async fn mark_failed(pool: &AnyPool, id: &str, error: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE transfer_submissions SET last_error = $1, updated_at = $2 WHERE id = $3")
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Remembers that a transfer used `collections` now, keeping the account's [`RECENT_COLLECTIONS`] latest.
pub async fn remember_collections(
    pool: &AnyPool,
    user_id: i64,
    account_id: &str,
    collections: &[&Endpoint],
    now: i64,
) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    for collection in collections {
        sqlx::query(
            "INSERT INTO recent_collections (user_id, account_id, endpoint_id, display_name, owner, entity_type, \
             used_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, account_id, endpoint_id) DO UPDATE \
             SET display_name = excluded.display_name, owner = excluded.owner, entity_type = excluded.entity_type, \
             used_at = excluded.used_at",
        )
        .bind(user_id)
        .bind(account_id)
        .bind(&collection.id)
        .bind(&collection.display_name)
        .bind(&collection.owner)
        .bind(&collection.entity_type)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query(
        "DELETE FROM recent_collections WHERE user_id = $1 AND account_id = $2 AND endpoint_id NOT IN \
         (SELECT endpoint_id FROM recent_collections WHERE user_id = $1 AND account_id = $2 \
         ORDER BY used_at DESC, endpoint_id LIMIT $3)",
    )
    .bind(user_id)
    .bind(account_id)
    .bind(RECENT_COLLECTIONS)
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// The account's recently used collections, latest first.
pub async fn recent_collections(pool: &AnyPool, user_id: i64, account_id: &str) -> Result<Vec<Endpoint>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT endpoint_id, display_name, owner, entity_type FROM recent_collections \
         WHERE user_id = $1 AND account_id = $2 ORDER BY used_at DESC, endpoint_id LIMIT $3",
    )
    .bind(user_id)
    .bind(account_id)
    .bind(RECENT_COLLECTIONS)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Endpoint {
                id: r.try_get("endpoint_id")?,
                display_name: r.try_get("display_name")?,
                owner: r.try_get("owner")?,
                entity_type: r.try_get("entity_type")?,
                description: None,
                organization: None,
            })
        })
        .collect()
}
