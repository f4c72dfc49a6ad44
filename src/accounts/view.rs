//! An account as every reader sees it — the linked-accounts page, the service API, webhook bodies: its stored row
//! and token sets made into [`LinkedAccountView`], with the consent status of each resource server. Pure: it reads
//! nothing, so the webhook body, built inside the transaction of a change, uses it as the page does.

use std::collections::BTreeMap;

use super::{LinkedAccountView, ProviderView, ResourceServerView, ScopeView, repo::AccountRow};
use crate::{
    providers::{Catalog, Provider, scopes},
    tokens::repo::TokenSetMeta,
};

/// One account as the page, the service API and webhooks show it: with its consent status per resource server.
pub fn view(catalog: &Catalog, row: AccountRow, sets: Vec<TokenSetMeta>) -> LinkedAccountView {
    let provider = catalog.get(&row.provider);
    LinkedAccountView {
        resource_servers: consent_status(provider.as_deref(), row.consent_scopes.as_deref(), sets),
        provider_name: catalog.display_name(&row.provider),
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
}

/// The providers users can connect, in configuration order.
pub fn provider_views(catalog: &Catalog) -> Vec<ProviderView> {
    catalog
        .all()
        .iter()
        .map(|p| ProviderView {
            id: p.id.clone(),
            display_name: p.display_name.clone(),
        })
        .collect()
}

/// The OpenID Connect scope that asks for a refresh token.
pub const OFFLINE_ACCESS: &str = "offline_access";

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
    // `offline_access` (OIDC Core §11) asks for a refresh token, not for access to an API: it is satisfied by the
    // refresh token, and when none came the card says when the link ends instead (Grant access could not fix it).
    let required = provider
        .scopes
        .iter()
        .map(String::as_str)
        .chain(consent_scopes.unwrap_or("").split_whitespace())
        .filter(|scope| *scope != OFFLINE_ACCESS);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::presets;

    #[test]
    fn offline_access_is_never_a_missing_scope() {
        let settings = serde_json::from_value(serde_json::json!({
            "kind": "oidc", "client_id": "c", "issuer": "https://sso.example",
            "scopes": ["openid", "offline_access", "api:read"],
        }))
        .unwrap();
        let provider = presets::resolve("sso", &settings);
        let set = TokenSetMeta {
            account_id: "a".into(),
            resource_server: provider.default_resource_server.clone(),
            scopes: "openid".into(),
            expires_at: Some(1),
            issued_at: 0,
            has_refresh_token: false,
        };
        let servers = consent_status(Some(&provider), None, vec![set]);
        let missing: Vec<&str> = servers
            .iter()
            .flat_map(|rs| rs.missing())
            .map(|s| s.scope.as_str())
            .collect();
        assert_eq!(
            missing,
            vec!["api:read"],
            "offline_access is the refresh token's business"
        );
    }
}
