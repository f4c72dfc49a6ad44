//! Giving a user's tokens back to the provider when they disconnect: RFC 7009 where the provider offers it (Globus'
//! `/v2/oauth2/token/revoke`, ORCID, Google, any discovered `revocation_endpoint`), GitHub's grant deletion
//! (`DELETE /applications/{client_id}/grant`, which ends every token of the grant), and a plain "not offered" for the
//! rest, so the page can tell the user where to remove the access by hand.

use secrecy::{ExposeSecret, SecretString};

use super::{Provider, ProviderKind, discovery::Endpoints, token_endpoint};

/// Which token a request names (RFC 7009 §2.1 `token_type_hint`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn hint(self) -> &'static str {
        match self {
            TokenKind::Access => "access_token",
            TokenKind::Refresh => "refresh_token",
        }
    }

    pub fn parse(hint: &str) -> Option<Self> {
        match hint {
            "access_token" => Some(TokenKind::Access),
            "refresh_token" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// How the provider takes tokens back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// RFC 7009 at this URL: one request per token, refresh tokens first (revoking one ends its access tokens).
    Rfc7009(url::Url),
    /// GitHub: deleting the grant with any of its access tokens ends all of them; refresh tokens cannot be sent.
    GithubGrant(url::Url),
    /// The provider has no revocation endpoint.
    NotOffered,
}

impl Method {
    pub fn of(provider: &Provider, endpoints: &Endpoints) -> Self {
        match (&endpoints.revocation, provider.kind) {
            (Some(url), ProviderKind::Github) => Method::GithubGrant(url.clone()),
            (Some(url), _) => Method::Rfc7009(url.clone()),
            (None, _) => Method::NotOffered,
        }
    }

    /// Whether a token of this kind is sent at all (GitHub's grant deletion takes access tokens only).
    pub fn takes(&self, kind: TokenKind) -> bool {
        match self {
            Method::Rfc7009(_) => true,
            Method::GithubGrant(_) => kind == TokenKind::Access,
            Method::NotOffered => false,
        }
    }
}

/// Revokes one token. `Ok` when the provider no longer honours it, including "already unknown" answers.
pub async fn revoke(
    http: &reqwest::Client,
    provider: &Provider,
    method: &Method,
    token: &SecretString,
    kind: TokenKind,
) -> Result<(), token_endpoint::TokenEndpointError> {
    match method {
        Method::Rfc7009(url) => token_endpoint::revoke(http, provider, url, token, kind.hint()).await,
        Method::GithubGrant(url) => delete_github_grant(http, provider, url, token).await,
        Method::NotOffered => Ok(()),
    }
}

/// `DELETE /applications/{client_id}/grant` with the app's credentials (basic) and the token in a JSON body: 204 on
/// success, 404 or 422 when the token is already invalid (nothing left to end).
async fn delete_github_grant(
    http: &reqwest::Client,
    provider: &Provider,
    url: &url::Url,
    token: &SecretString,
) -> Result<(), token_endpoint::TokenEndpointError> {
    use token_endpoint::TokenEndpointError;
    let response = http
        .delete(url.clone())
        .basic_auth(
            &provider.client_id,
            provider.client_secret.as_ref().map(|s| s.expose_secret()),
        )
        .header(reqwest::header::ACCEPT, "application/vnd.github+json")
        .json(&serde_json::json!({ "access_token": token.expose_secret() }))
        .send()
        .await
        .map_err(|e| TokenEndpointError::Unreachable(super::discovery::describe(&e)))?;
    match response.status().as_u16() {
        200..=299 | 404 | 422 => Ok(()),
        status @ 500.. => Err(TokenEndpointError::ServerError {
            status,
            html: false,
            retry_after: None,
        }),
        status => Err(TokenEndpointError::BadResponse {
            status,
            what: "a refusal to delete the grant".into(),
        }),
    }
}
