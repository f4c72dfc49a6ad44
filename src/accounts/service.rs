//! Linked-account operations other than the OAuth legs (those are in `link`): listing for the page, and the
//! `error` state when a stored token cannot be decrypted. Tokens are handed out only by `delegation`.

use std::collections::BTreeMap;

use super::{AccountStatus, LinkedAccountView, LinkedAccounts, ProviderView, TokenSetView, repo};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::{Db, now_ms},
    state::AppState,
    tokens::{repo as tokens, vault::VaultError},
};

/// Everything the linked-accounts page shows for one user.
pub async fn linked_accounts(state: &AppState, user_id: i64) -> Result<LinkedAccounts, sqlx::Error> {
    let rows = repo::list_for_user(&state.db.pool, user_id).await?;
    let mut sets: BTreeMap<String, Vec<TokenSetView>> = BTreeMap::new();
    for meta in tokens::metadata_for_user(&state.db.pool, user_id).await? {
        sets.entry(meta.account_id).or_default().push(TokenSetView {
            resource_server: meta.resource_server,
            scopes: meta.scopes.split_whitespace().map(str::to_owned).collect(),
            expires_at: meta.expires_at,
            issued_at: meta.issued_at,
            has_refresh_token: meta.has_refresh_token,
        });
    }
    let provider_name = |id: &str| {
        state
            .catalog
            .get(id)
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let accounts = rows
        .into_iter()
        .map(|row| LinkedAccountView {
            token_sets: sets.remove(&row.id).unwrap_or_default(),
            provider_name: provider_name(&row.provider),
            id: row.id,
            provider_id: row.provider,
            subject: row.subject,
            username: row.username,
            display_name: row.display_name,
            email: row.email,
            status: row.status,
            status_reason: row.status_reason,
            created_at: row.created_at,
            last_refreshed_at: row.last_refreshed_at,
            last_used_at: row.last_used_at,
        })
        .collect();
    let providers = state
        .catalog
        .all()
        .iter()
        .map(|p| ProviderView {
            id: p.id.clone(),
            display_name: p.display_name.clone(),
        })
        .collect();
    Ok(LinkedAccounts { providers, accounts })
}

/// Marks the account `error` because one of its stored tokens does not decrypt, with an audit event, in one
/// transaction. The reason names the key, never a value.
pub async fn mark_undecryptable(db: &Db, account_id: &str, err: &VaultError) -> Result<(), sqlx::Error> {
    let now = now_ms();
    let reason = format!("A stored token cannot be decrypted: {err}. Reconnect the account to store new tokens.");
    let mut tx = db.begin_write().await?;
    if let Some(user_id) = repo::set_status(&mut tx, account_id, AccountStatus::Error, Some(&reason), now).await? {
        let mut event = NewEvent::by_user(AuditAction::TokenUndecryptable, Outcome::Failure, user_id);
        event.actor_user_id = None;
        event.account_id = Some(account_id);
        event.details = serde_json::json!({ "reason": err.to_string() });
        audit::record(&mut tx, &event, now).await?;
    }
    tx.commit().await
}
