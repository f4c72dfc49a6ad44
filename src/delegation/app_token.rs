//! The client-credentials authorizer: the platform's own token at a provider (RFC 6749 §4.4), for calls made as
//! the application. Cached per (provider, scopes) until the skew before expiry; one fetch at a time per instance
//! (the lock is held across it), so a burst of callers causes one grant.

use std::{collections::HashMap, sync::Arc};

use secrecy::SecretString;

use super::{Delegator, Unavailable};
use crate::db::now_ms;

/// (provider id, space-joined scopes) → (token, expiry in Unix ms).
type Tokens = HashMap<(String, String), (SecretString, Option<i64>)>;

#[derive(Default)]
pub struct Cache {
    tokens: tokio::sync::Mutex<Tokens>,
}

impl Delegator {
    /// A valid application token for `provider_id` with `scopes`.
    pub async fn app_token(
        self: &Arc<Self>,
        provider_id: &str,
        scopes: &[String],
    ) -> Result<SecretString, Unavailable> {
        let provider = self
            .catalog
            .get(provider_id)
            .ok_or_else(|| Unavailable::ProviderGone(provider_id.to_owned()))?;
        let key = (provider_id.to_owned(), scopes.join(" "));
        let skew = self.skew_ms(&provider);
        let mut tokens = self.app_tokens.tokens.lock().await;
        if let Some((token, expires_at)) = tokens.get(&key)
            && expires_at.is_none_or(|at| at - skew > now_ms())
        {
            return Ok(token.clone());
        }
        let endpoints = provider
            .endpoints(&self.http)
            .await
            .map_err(|e| Unavailable::Internal(format!("the provider's endpoints are unavailable: {e}")))?;
        let now = now_ms();
        let response =
            crate::providers::token_endpoint::client_credentials(&self.http, &provider, &endpoints.token, scopes)
                .await
                .map_err(|e| {
                    tracing::warn!(provider = provider_id, "client credentials grant failed: {e}");
                    if e.is_transient() {
                        Unavailable::ProviderUnavailable {
                            retry_at: now + e.retry_after().unwrap_or(5) as i64 * 1000,
                        }
                    } else {
                        Unavailable::Internal(format!("the provider refused the application's credentials: {e}"))
                    }
                })?;
        let set = response
            .sets
            .into_iter()
            .next()
            .ok_or_else(|| Unavailable::Internal("no token in the response".into()))?;
        let expires_at = set.expires_in.map(|s| now + s * 1000);
        tokens.insert(key, (set.access_token.clone(), expires_at));
        Ok(set.access_token)
    }
}
