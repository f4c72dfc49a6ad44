//! Endpoints of a provider: configured or preset, completed by OpenID Connect discovery
//! (`{issuer}/.well-known/openid-configuration`, OIDC Discovery 1.0 §4) for `oidc` and `google`. A discovered
//! document is cached for an hour; explicitly configured endpoints always win over discovered ones.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use serde::Deserialize;
use tokio::sync::RwLock;
use url::Url;

const TTL: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorization: Url,
    pub token: Url,
    pub userinfo: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub revocation: Option<Url>,
    pub introspection: Option<Url>,
    /// RFC 9207 §3: the provider promises `iss` on every authorization response, so a missing one is an attack.
    pub iss_parameter_supported: bool,
    /// `id_token_signing_alg_values_supported`, when discovery says.
    pub id_token_algs: Vec<String>,
}

/// Endpoints known without the network (configuration and preset); any may be missing when discovery fills it.
#[derive(Debug, Clone, Default)]
pub struct KnownEndpoints {
    pub authorization: Option<Url>,
    pub token: Option<Url>,
    pub userinfo: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub revocation: Option<Url>,
    pub introspection: Option<Url>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DiscoveryError {
    #[error("discovery document {url} could not be fetched: {reason}")]
    Fetch { url: String, reason: String },
    #[error("discovery document {url} is not valid: {reason}")]
    Invalid { url: String, reason: String },
    #[error("discovery document names issuer `{found}`, not the configured `{expected}`")]
    IssuerMismatch { expected: String, found: String },
    #[error("no {0} is configured or discovered")]
    Missing(&'static str),
}

#[derive(Debug, Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    jwks_uri: Option<Url>,
    revocation_endpoint: Option<Url>,
    introspection_endpoint: Option<Url>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
}

pub struct DiscoveryCache {
    known: KnownEndpoints,
    discover: bool,
    cached: RwLock<Option<(Arc<Endpoints>, Instant)>>,
}

impl DiscoveryCache {
    pub fn new(known: KnownEndpoints, discover: bool) -> Self {
        Self {
            known,
            discover,
            cached: RwLock::new(None),
        }
    }

    pub fn known(&self) -> &KnownEndpoints {
        &self.known
    }

    pub async fn get(&self, http: &reqwest::Client, issuer: Option<&str>) -> Result<Arc<Endpoints>, DiscoveryError> {
        if let Some((endpoints, at)) = self.cached.read().await.as_ref()
            && (!self.discover || at.elapsed() < TTL)
        {
            return Ok(endpoints.clone());
        }
        let endpoints = Arc::new(match (self.discover, issuer) {
            (true, Some(issuer)) => self.merge(Some(fetch(http, issuer).await?))?,
            _ => self.merge(None)?,
        });
        *self.cached.write().await = Some((endpoints.clone(), Instant::now()));
        Ok(endpoints)
    }

    fn merge(&self, doc: Option<Document>) -> Result<Endpoints, DiscoveryError> {
        let k = self.known.clone();
        let (d_auth, d_token, d_userinfo, d_jwks, d_revoke, d_introspect, iss_supported, algs) = match doc {
            Some(d) => (
                Some(d.authorization_endpoint),
                Some(d.token_endpoint),
                d.userinfo_endpoint,
                d.jwks_uri,
                d.revocation_endpoint,
                d.introspection_endpoint,
                d.authorization_response_iss_parameter_supported,
                d.id_token_signing_alg_values_supported,
            ),
            None => Default::default(),
        };
        Ok(Endpoints {
            authorization: k
                .authorization
                .or(d_auth)
                .ok_or(DiscoveryError::Missing("authorization_endpoint"))?,
            token: k.token.or(d_token).ok_or(DiscoveryError::Missing("token_endpoint"))?,
            userinfo: k.userinfo.or(d_userinfo),
            jwks_uri: k.jwks_uri.or(d_jwks),
            revocation: k.revocation.or(d_revoke),
            introspection: k.introspection.or(d_introspect),
            iss_parameter_supported: iss_supported,
            id_token_algs: algs,
        })
    }
}

async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Document, DiscoveryError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let fetch_error = |reason: String| DiscoveryError::Fetch {
        url: url.clone(),
        reason,
    };
    let response = http.get(&url).send().await.map_err(|e| fetch_error(describe(&e)))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("HTTP {}", response.status())));
    }
    let doc: Document = response.json().await.map_err(|e| DiscoveryError::Invalid {
        url: url.clone(),
        reason: e.to_string(),
    })?;
    // OIDC Discovery §4.3: the document's issuer must be exactly the one it was fetched for.
    if doc.issuer != issuer {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: doc.issuer,
        });
    }
    Ok(doc)
}

/// A reqwest error in words an operator can act on, without the URL's query (it could hold a token).
pub fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        "connection failed".to_owned()
    } else if err.is_decode() {
        "the body could not be read".to_owned()
    } else if err.is_request() {
        "the request failed".to_owned()
    } else {
        // Display includes the URL; print only the status when there is one.
        err.status()
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| "request error".to_owned())
    }
}
