//! Endpoints of a provider: configured or preset, completed by OpenID Connect discovery
//! (`{issuer}/.well-known/openid-configuration`, OIDC Discovery 1.0 §4) for `oidc` and `google`. A discovered
//! document is cached for an hour; explicitly configured endpoints always win over discovered ones.
//!
//! A discovered endpoint is trusted only on the issuer's own host and over https (http only when the issuer is
//! itself an http URL on loopback, as the demo and tests are): the document decides where the client secret, the
//! authorization code and the user's tokens go, so a document that names another host is refused rather than
//! followed. An operator who knows better configures that endpoint explicitly (the Google preset does, for its
//! googleapis.com endpoints). The authorization, token and JWKS endpoints are required, so a bad one fails discovery;
//! an untrusted optional one (userinfo, revocation, introspection) is ignored with a warning.

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
    #[error("discovery document names {name} `{url}`, which is {why}; configure {name} explicitly if it is right")]
    Untrusted {
        name: &'static str,
        url: String,
        why: String,
    },
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
            (true, Some(issuer)) => self.endpoints_from(issuer, &fetch(http, issuer).await?)?,
            _ => self.merge(None)?,
        });
        *self.cached.write().await = Some((endpoints.clone(), Instant::now()));
        Ok(endpoints)
    }

    /// The endpoints this provider uses, given the discovery document `body` fetched for `issuer`: read, its issuer
    /// checked, vetted and merged with the configured ones. Pure, so it is fuzzed (`fuzz/`).
    pub fn endpoints_from(&self, issuer: &str, body: &[u8]) -> Result<Endpoints, DiscoveryError> {
        let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
        let doc: Document = serde_json::from_slice(body).map_err(|e| DiscoveryError::Invalid {
            url,
            reason: e.to_string(),
        })?;
        // OIDC Discovery §4.3: the document's issuer must be exactly the one it was fetched for.
        if doc.issuer != issuer {
            return Err(DiscoveryError::IssuerMismatch {
                expected: issuer.to_owned(),
                found: doc.issuer,
            });
        }
        self.merge(Some(self.vet(issuer, doc)?))
    }

    /// The discovered endpoints this provider will use (those not configured), each on the issuer's host and over
    /// https (see the module documentation): a required one that is not fails, an optional one is dropped.
    fn vet(&self, issuer: &str, mut doc: Document) -> Result<Document, DiscoveryError> {
        let issuer = Url::parse(issuer).map_err(|e| DiscoveryError::Invalid {
            url: issuer.to_owned(),
            reason: e.to_string(),
        })?;
        let k = &self.known;
        let required = [
            (
                "authorization_endpoint",
                k.authorization.is_none().then_some(&doc.authorization_endpoint),
            ),
            ("token_endpoint", k.token.is_none().then_some(&doc.token_endpoint)),
            ("jwks_uri", k.jwks_uri.as_ref().map_or(doc.jwks_uri.as_ref(), |_| None)),
        ];
        for (name, url) in required {
            if let Some(url) = url
                && let Err(why) = trusted(&issuer, url)
            {
                return Err(DiscoveryError::Untrusted {
                    name,
                    url: url.to_string(),
                    why,
                });
            }
        }
        let optional = [
            ("userinfo_endpoint", k.userinfo.is_none(), &mut doc.userinfo_endpoint),
            (
                "revocation_endpoint",
                k.revocation.is_none(),
                &mut doc.revocation_endpoint,
            ),
            (
                "introspection_endpoint",
                k.introspection.is_none(),
                &mut doc.introspection_endpoint,
            ),
        ];
        for (name, used, slot) in optional {
            if let Some(url) = slot.as_ref()
                && used
                && let Err(why) = trusted(&issuer, url)
            {
                tracing::warn!(issuer = %issuer, "discovered {name} `{url}` ignored: it is {why}; configure it explicitly if it is right");
                *slot = None;
            }
        }
        Ok(doc)
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

/// Whether an endpoint discovered from `issuer` may be used: same host, and https unless the issuer is plain http
/// on a loopback address.
fn trusted(issuer: &Url, endpoint: &Url) -> Result<(), String> {
    if endpoint.host() != issuer.host() {
        return Err(format!(
            "not on the issuer's host {}",
            issuer.host_str().unwrap_or_default()
        ));
    }
    let loopback_issuer = issuer.scheme() == "http" && crate::http::is_loopback_url(issuer);
    match endpoint.scheme() {
        "https" => Ok(()),
        "http" if loopback_issuer => Ok(()),
        other => Err(format!("over {other}, not https")),
    }
}

/// The discovery document's bytes (capped).
async fn fetch(http: &reqwest::Client, issuer: &str) -> Result<Vec<u8>, DiscoveryError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let fetch_error = |reason: String| DiscoveryError::Fetch {
        url: url.clone(),
        reason,
    };
    let response = http.get(&url).send().await.map_err(|e| fetch_error(describe(&e)))?;
    if !response.status().is_success() {
        return Err(fetch_error(format!("HTTP {}", response.status())));
    }
    super::body::read_capped(response, super::body::SMALL)
        .await
        .map(|body| body.to_vec())
        .map_err(|e| fetch_error(e.to_string()))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn document(endpoint: &str) -> Document {
        serde_json::from_value(serde_json::json!({
            "issuer": "https://sso.example",
            "authorization_endpoint": "https://sso.example/authorize",
            "token_endpoint": endpoint,
            "jwks_uri": "https://sso.example/jwks",
            "userinfo_endpoint": "https://elsewhere.example/userinfo",
            "revocation_endpoint": "http://sso.example/revoke",
        }))
        .unwrap()
    }

    #[test]
    fn discovered_endpoints_must_be_https_on_the_issuers_host() {
        let cache = DiscoveryCache::new(KnownEndpoints::default(), true);
        let vetted = cache
            .vet("https://sso.example", document("https://sso.example/token"))
            .unwrap();
        assert_eq!(vetted.token_endpoint.as_str(), "https://sso.example/token");
        assert_eq!(
            vetted.userinfo_endpoint, None,
            "an optional endpoint elsewhere is dropped"
        );
        assert_eq!(vetted.revocation_endpoint, None, "and one over http");
        for (token, why) in [
            ("https://evil.example/token", "not on the issuer's host sso.example"),
            (
                "https://sso.example.evil.example/token",
                "not on the issuer's host sso.example",
            ),
            ("http://sso.example/token", "over http, not https"),
        ] {
            let err = cache.vet("https://sso.example", document(token)).unwrap_err();
            assert!(
                matches!(&err, DiscoveryError::Untrusted { name: "token_endpoint", why: w, .. } if w == why),
                "{token}: {err:?}"
            );
            assert!(err.to_string().contains("configure token_endpoint explicitly"), "{err}");
        }
        // Configured endpoints are the operator's word and are not vetted; the rest still are.
        let configured = DiscoveryCache::new(
            KnownEndpoints {
                token: Some(Url::parse("https://tokens.example/token").unwrap()),
                userinfo: Some(Url::parse("https://elsewhere.example/userinfo").unwrap()),
                ..Default::default()
            },
            true,
        );
        let vetted = configured
            .vet("https://sso.example", document("https://evil.example/token"))
            .unwrap();
        assert_eq!(
            configured.merge(Some(vetted)).unwrap().token.as_str(),
            "https://tokens.example/token"
        );
        // A loopback http issuer (the demo, tests) may name http endpoints on its own host.
        let local = |token: &str| {
            let mut doc = document(token);
            doc.authorization_endpoint = Url::parse("http://127.0.0.1:3100/authorize").unwrap();
            doc.jwks_uri = None;
            cache.vet("http://127.0.0.1:3100", doc)
        };
        assert!(local("http://127.0.0.1:3100/token").is_ok());
        assert!(local("http://127.0.0.2:3100/token").is_err());
    }
}
