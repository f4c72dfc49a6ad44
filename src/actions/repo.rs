//! `transfer_submissions`: transfers as users asked for them, with the Globus submission id reused on retries.

use sqlx::{AnyPool, Row, any::AnyRow};

use super::{Submission, TransferForm};

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
         updated_at) VALUES ($1, $2, $3, $4, $5, 'pending', $6, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(account_id)
    .bind(submission_id)
    .bind(serde_json::to_string(form).unwrap_or_default())
    .bind(now)
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

/// One of the user's submissions.
pub async fn find(pool: &AnyPool, user_id: i64, id: &str) -> Result<Option<Submission>, sqlx::Error> {
    let found = sqlx::query(
        "SELECT id, account_id, submission_id, document, status, task_id, last_error, created_at \
         FROM transfer_submissions WHERE id = $1 AND user_id = $2",
    )
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
