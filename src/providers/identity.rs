//! Who the linked account is at the provider: its stable subject plus display facts (username, name, email).
//! The subject is what makes an account unique (provider, subject); display facts are refreshed on every link.

use openidconnect::core::CoreIdTokenClaims;
use secrecy::ExposeSecret;
use serde_json::Value;

use super::{IdentitySource, Provider, discovery::Endpoints, token_endpoint::TokenResponse};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalIdentity {
    pub subject: String,
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the provider did not say who the account is ({0})")]
    Missing(&'static str),
    #[error("the provider's identity endpoint failed: {0}")]
    Endpoint(String),
}

pub fn from_id_token(claims: &CoreIdTokenClaims) -> ExternalIdentity {
    ExternalIdentity {
        subject: claims.subject().to_string(),
        username: claims.preferred_username().map(|u| u.to_string()),
        name: claims.name().and_then(|n| n.get(None)).map(|n| n.to_string()),
        email: claims.email().map(|e| e.to_string()),
    }
}

/// The identity for providers whose ID token is not the source (GitHub's API, ORCID's token response, userinfo).
pub async fn resolve_without_id_token(
    http: &reqwest::Client,
    provider: &Provider,
    endpoints: &Endpoints,
    response: &TokenResponse,
) -> Result<ExternalIdentity, IdentityError> {
    match &provider.identity {
        IdentitySource::IdToken => Err(IdentityError::Missing("id_token")),
        IdentitySource::TokenResponse { subject, name } => Ok(ExternalIdentity {
            subject: string_member(&response.extra, subject).ok_or(IdentityError::Missing(subject))?,
            username: None,
            name: string_member(&response.extra, name),
            email: None,
        }),
        IdentitySource::GithubUser => {
            let user = fetch_userinfo(http, provider, endpoints, response).await?;
            Ok(ExternalIdentity {
                subject: string_member(&user, "id").ok_or(IdentityError::Missing("id"))?,
                username: string_member(&user, "login"),
                name: string_member(&user, "name"),
                email: string_member(&user, "email"),
            })
        }
        IdentitySource::Userinfo { subject_claim } => {
            let user = fetch_userinfo(http, provider, endpoints, response).await?;
            Ok(ExternalIdentity {
                subject: string_member(&user, subject_claim).ok_or(IdentityError::Missing("subject claim"))?,
                username: string_member(&user, "preferred_username").or_else(|| string_member(&user, "login")),
                name: string_member(&user, "name"),
                email: string_member(&user, "email"),
            })
        }
    }
}

/// Strings and numbers (GitHub's `id` is a number) as text; absent, null or empty as `None`.
fn string_member(map: &serde_json::Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

async fn fetch_userinfo(
    http: &reqwest::Client,
    provider: &Provider,
    endpoints: &Endpoints,
    response: &TokenResponse,
) -> Result<serde_json::Map<String, Value>, IdentityError> {
    let url = endpoints
        .userinfo
        .as_ref()
        .ok_or(IdentityError::Missing("userinfo_endpoint"))?;
    let token = response.sets.first().ok_or(IdentityError::Missing("access token"))?;
    // DESIGN §4: a token goes only under its resource server's API base URLs.
    if !provider.may_receive_token(&token.resource_server, url) {
        return Err(IdentityError::Endpoint(format!(
            "{url} is not under the api_base_urls of {}",
            token.resource_server
        )));
    }
    let answer = http
        .get(url.clone())
        .bearer_auth(token.access_token.expose_secret())
        // GitHub requires a media type; others ignore it.
        .header(reqwest::header::ACCEPT, "application/vnd.github+json, application/json")
        .send()
        .await
        .map_err(|e| IdentityError::Endpoint(super::discovery::describe(&e)))?;
    if !answer.status().is_success() {
        return Err(IdentityError::Endpoint(format!(
            "{} answered HTTP {}",
            provider.display_name,
            answer.status()
        )));
    }
    let body = super::body::read_capped(answer, super::body::SMALL)
        .await
        .map_err(|e| IdentityError::Endpoint(format!("{}: {e}", provider.display_name)))?;
    serde_json::from_slice(&body).map_err(|_| IdentityError::Endpoint("the answer is not a JSON object".into()))
}
