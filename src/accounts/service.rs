//! Linked-account operations other than the OAuth legs (those are in `link`): listing for the page, and the
//! `error` state when a stored token cannot be decrypted. Tokens are handed out only by `delegation`.

use std::collections::BTreeMap;

use super::{AccountStatus, LinkedAccountView, LinkedAccounts, ProviderView, ResourceServerView, ScopeView, repo};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::{Db, now_ms},
    providers::{Provider, scopes},
    state::AppState,
    tokens::{repo::TokenSetMeta, vault::VaultError},
};

/// Everything the linked-accounts page shows for one user.
pub async fn linked_accounts(state: &AppState, user_id: i64) -> Result<LinkedAccounts, sqlx::Error> {
    let page = repo::accounts_page(&state.db.pool, user_id).await?;
    let pending_revocations = if page.has_pending_revocations {
        super::disconnect::pending_for_user(state, user_id).await?
    } else {
        Vec::new()
    };
    let accounts = page
        .accounts
        .into_iter()
        .map(|(row, sets)| {
            let provider = state.catalog.get(&row.provider);
            LinkedAccountView {
                resource_servers: consent_status(provider.as_deref(), row.consent_scopes.as_deref(), sets),
                provider_name: provider
                    .as_ref()
                    .map(|p| p.display_name.clone())
                    .unwrap_or_else(|| row.provider.clone()),
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
            }
        })
        .collect();
    let providers = provider_views(state);
    Ok(LinkedAccounts {
        now: now_ms(),
        providers,
        accounts,
        pending_revocations,
    })
}

/// The providers users can connect, in configuration order.
pub fn provider_views(state: &AppState) -> Vec<ProviderView> {
    state
        .catalog
        .all()
        .iter()
        .map(|p| ProviderView {
            id: p.id.clone(),
            display_name: p.display_name.clone(),
        })
        .collect()
}

/// Each resource server the site needs or holds a token for, with every required or granted scope marked granted
/// or missing. Required: the provider's scopes and those it said are missing (`consent_scopes`).
fn consent_status(
    provider: Option<&Provider>,
    consent_scopes: Option<&str>,
    sets: Vec<TokenSetMeta>,
) -> Vec<ResourceServerView> {
    let mut servers: BTreeMap<String, ResourceServerView> = BTreeMap::new();
    let describe = |scope: &str| {
        provider
            .map(|p| scopes::describe(p, scope))
            .unwrap_or_else(|| scope.to_owned())
    };
    for set in sets {
        let view = ResourceServerView {
            scopes: set
                .scopes
                .split_whitespace()
                .map(|scope| ScopeView {
                    scope: scope.to_owned(),
                    description: describe(scope),
                    granted: true,
                })
                .collect(),
            has_token: true,
            expires_at: set.expires_at,
            has_refresh_token: set.has_refresh_token,
            resource_server: set.resource_server.clone(),
        };
        servers.insert(set.resource_server, view);
    }
    let Some(provider) = provider else {
        return servers.into_values().collect();
    };
    let required = provider
        .scopes
        .iter()
        .map(String::as_str)
        .chain(consent_scopes.unwrap_or("").split_whitespace());
    for scope in required {
        let server = servers
            .entry(scopes::resource_server_of(provider, scope))
            .or_insert_with_key(|name| ResourceServerView {
                resource_server: name.clone(),
                scopes: Vec::new(),
                has_token: false,
                expires_at: None,
                has_refresh_token: false,
            });
        // Globus writes a scope granted with dependent scopes as `scope[dependent …]`: it covers `scope` itself.
        let covered =
            |granted: &str| granted == scope || granted.strip_prefix(scope).is_some_and(|r| r.starts_with('['));
        if !server.scopes.iter().any(|s| covered(&s.scope)) {
            server.scopes.push(ScopeView {
                scope: scope.to_owned(),
                description: describe(scope),
                granted: false,
            });
        }
    }
    servers.into_values().collect()
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
