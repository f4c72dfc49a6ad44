//! The admin dashboard: links by provider and status, the last day's refreshes and calls, links needing attention.

use sqlx::Row;

use super::{Dashboard, LinkCount, accounts};
use crate::{accounts::AccountStatus, db::now_ms, error::AppError, state::AppState};

/// How many links needing attention the dashboard lists (the accounts list has them all).
const ATTENTION_SHOWN: i64 = 10;
const DAY_MS: i64 = 86_400_000;

pub async fn dashboard(state: &AppState) -> Result<Dashboard, AppError> {
    let pool = &state.db.pool;
    let now = now_ms();
    let counts = crate::accounts::repo::count_by_provider_and_status(pool)
        .await
        .map_err(AppError::internal)?;
    let mut links: Vec<LinkCount> = counts
        .into_iter()
        .map(|(provider, status, count)| LinkCount {
            provider_name: state.catalog.display_name(&provider),
            provider_id: provider,
            status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Error),
            count,
        })
        .collect();
    links.sort_by(|a, b| (&a.provider_name, a.status.as_str()).cmp(&(&b.provider_name, b.status.as_str())));

    let (users, disabled_users): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(CASE WHEN disabled_at IS NULL THEN 0 ELSE 1 END), 0) FROM users")
            .fetch_one(pool)
            .await
            .map_err(AppError::internal)?;

    // The day's events of the kinds counted, by action and outcome: one range scan of the `at` index.
    let day = sqlx::query(
        "SELECT action, outcome, COUNT(*) AS n FROM audit_events WHERE at >= $1 \
         AND action IN ('token_refreshed', 'provider_unavailable', 'account_status_changed', 'delegated_call') \
         GROUP BY action, outcome",
    )
    .bind(now - DAY_MS)
    .fetch_all(pool)
    .await
    .map_err(AppError::internal)?;
    let (mut refreshes, mut refresh_failures, mut calls, mut call_failures) = (0, 0, 0, 0);
    for row in &day {
        let action: String = row.try_get("action").map_err(AppError::internal)?;
        let outcome: String = row.try_get("outcome").map_err(AppError::internal)?;
        let n: i64 = row.try_get("n").map_err(AppError::internal)?;
        match action.as_str() {
            "token_refreshed" => refreshes += n,
            "provider_unavailable" | "account_status_changed" => refresh_failures += n,
            _ if outcome == "success" => calls += n,
            _ => {
                calls += n;
                call_failures += n;
            }
        }
    }

    let attention_total = links
        .iter()
        .filter(|l| l.status != AccountStatus::Active)
        .map(|l| l.count)
        .sum();
    let rows = sqlx::query(&format!(
        "SELECT {} FROM linked_accounts a JOIN users u ON u.id = a.user_id WHERE a.status <> 'active' \
         ORDER BY a.updated_at DESC, a.id DESC LIMIT $1",
        accounts::SUMMARY_COLUMNS
    ))
    .bind(ATTENTION_SHOWN)
    .fetch_all(pool)
    .await
    .map_err(AppError::internal)?;
    let attention = rows
        .iter()
        .map(|r| accounts::summary(state, r))
        .collect::<Result<_, _>>()
        .map_err(AppError::internal)?;
    Ok(Dashboard {
        links,
        users,
        disabled_users,
        refreshes,
        refresh_failures,
        calls,
        call_failures,
        attention,
        attention_total,
        now,
    })
}
