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
    /// GitHub, one token only (`DELETE /applications/{client_id}/token`): GitHub keeps one grant per user and app,
    /// so ending a grant to give back a refused link's token would also end another link's.
    GithubToken(url::Url),
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

    /// The method that ends one token and nothing else (a refused link's token, while the same identity may be
    /// linked elsewhere).
    pub fn single_token(self) -> Self {
        match self {
            Method::GithubGrant(mut url) => {
                let path = url.path().trim_end_matches("/grant").to_owned();
                url.set_path(&format!("{path}/token"));
                Method::GithubToken(url)
            }
            other => other,
        }
    }

    /// Whether a token of this kind is sent at all (GitHub's endpoints take access tokens only).
    pub fn takes(&self, kind: TokenKind) -> bool {
        match self {
            Method::Rfc7009(_) => true,
            Method::GithubGrant(_) | Method::GithubToken(_) => kind == TokenKind::Access,
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
        Method::GithubGrant(url) | Method::GithubToken(url) => delete_at_github(http, provider, url, token).await,
        Method::NotOffered => Ok(()),
    }
}

/// `DELETE /applications/{client_id}/grant` (or `/token`) with the app's credentials (basic) and the token in a
/// JSON body: 204 on success, 422 when the token is already invalid (nothing left to end). A 404 is not success:
/// GitHub answers it to wrong client credentials too.
async fn delete_at_github(
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
        200..=299 | 422 => Ok(()),
        status @ 500.. => Err(TokenEndpointError::ServerError {
            status,
            html: false,
            retry_after: None,
        }),
        status => Err(TokenEndpointError::BadResponse {
            status,
            what: "a refusal to delete the authorization".into(),
        }),
    }
}
