//! ID-token verification (OIDC Core §3.1.3.7) through the `openidconnect` crate: signature against the provider's
//! JWKS, `iss`, `aud`, `exp` and the flow's `nonce`; then the two checks the crate leaves out, `azp` and the range
//! of `iat` (`check_beyond_the_crate`). No JWT code of our own.
//!
//! The JWKS is cached per provider. A token signed with a key the cache does not hold triggers one re-fetch
//! before it is refused: that is how providers rotate signing keys (OIDC Core §10.1.1). HMAC algorithms are never
//! accepted (they would make the client secret a signing key); the allowed algorithms are the asymmetric ones the
//! provider advertises, or all asymmetric ones when it does not say.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use openidconnect::{
    ClaimsVerificationError, ClientId, IssuerUrl, Nonce, SignatureVerificationError,
    core::{CoreIdToken, CoreIdTokenClaims, CoreIdTokenVerifier, CoreJsonWebKeySet, CoreJwsSigningAlgorithm},
};
use tokio::sync::RwLock;

use super::{Provider, discovery::Endpoints};

/// The per-provider JWKS cache; entries older than [`JWKS_TTL`] are fetched again, so a key the provider withdrew
/// stops being trusted.
#[derive(Default)]
pub struct JwksCache(RwLock<Option<(Arc<CoreJsonWebKeySet>, Instant)>>);

pub const JWKS_TTL: Duration = Duration::from_secs(3600);

/// How far ahead of our clock an ID token's `iat` may be (the provider's clock runs fast).
pub const IAT_SKEW: Duration = Duration::from_secs(5 * 60);
/// How old an ID token may be when it reaches us: it is issued by the token endpoint we just called, so anything
/// older is a replayed or cached one (OIDC Core §3.1.3.7 step 10 leaves the range to the client).
pub const IAT_MAX_AGE: Duration = Duration::from_secs(60 * 60);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdTokenError {
    #[error("the token response has no id_token")]
    Missing,
    #[error("the ID token is not a JWT")]
    Malformed,
    #[error("the ID token's signature does not verify")]
    BadSignature,
    #[error("the ID token is for another client (aud)")]
    WrongAudience,
    #[error("the ID token was issued by another issuer (iss)")]
    WrongIssuer,
    #[error("the ID token's nonce does not match this sign-in")]
    WrongNonce,
    #[error("the ID token has expired")]
    Expired,
    /// `azp` (OIDC Core §3.1.3.7 step 5) names another client.
    #[error("the ID token was issued to another client (azp)")]
    WrongAuthorizedParty,
    /// `iat` too far in the future or the past ([`IAT_SKEW`], [`IAT_MAX_AGE`]).
    #[error("the ID token's issue time is out of range (iat)")]
    IssueTimeOutOfRange,
    #[error("the ID token was rejected: {0}")]
    Other(String),
    #[error("the provider's signing keys could not be fetched: {0}")]
    Jwks(String),
}

impl IdTokenError {
    /// A short stable code for audit details and logs.
    pub fn code(&self) -> &'static str {
        match self {
            IdTokenError::Missing => "id_token_missing",
            IdTokenError::Malformed => "id_token_malformed",
            IdTokenError::BadSignature => "id_token_bad_signature",
            IdTokenError::WrongAudience => "id_token_wrong_audience",
            IdTokenError::WrongIssuer => "id_token_wrong_issuer",
            IdTokenError::WrongNonce => "id_token_wrong_nonce",
            IdTokenError::Expired => "id_token_expired",
            IdTokenError::WrongAuthorizedParty => "id_token_wrong_azp",
            IdTokenError::IssueTimeOutOfRange => "id_token_bad_iat",
            IdTokenError::Other(_) => "id_token_rejected",
            IdTokenError::Jwks(_) => "jwks_unavailable",
        }
    }
}

const ASYMMETRIC: [CoreJwsSigningAlgorithm; 10] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EcdsaP521Sha512,
    CoreJwsSigningAlgorithm::EdDsa,
];

fn allowed_algs(endpoints: &Endpoints) -> Vec<CoreJwsSigningAlgorithm> {
    let advertised: Vec<_> = ASYMMETRIC
        .into_iter()
        .filter(|alg| {
            serde_plain_name(alg)
                .map(|name| endpoints.id_token_algs.contains(&name))
                .unwrap_or(false)
        })
        .collect();
    if advertised.is_empty() {
        ASYMMETRIC.to_vec()
    } else {
        advertised
    }
}

fn serde_plain_name(alg: &CoreJwsSigningAlgorithm) -> Option<String> {
    match serde_json::to_value(alg).ok()? {
        serde_json::Value::String(s) => Some(s),
        _ => None,
    }
}

/// Verifies `raw` for `provider` and this flow's `nonce`; returns the verified claims.
pub async fn verify(
    provider: &Provider,
    endpoints: &Endpoints,
    http: &reqwest::Client,
    raw: &str,
    nonce: &str,
) -> Result<CoreIdTokenClaims, IdTokenError> {
    let token: CoreIdToken = raw.parse().map_err(|_| IdTokenError::Malformed)?;
    let issuer = provider
        .issuer
        .clone()
        .ok_or_else(|| IdTokenError::Other("no issuer is configured for this provider".into()))?;
    let check = |keys: Arc<CoreJsonWebKeySet>| {
        let verifier = CoreIdTokenVerifier::new_public_client(
            ClientId::new(provider.client_id.clone()),
            IssuerUrl::new(issuer.clone()).expect("issuer was validated as a URL"),
            (*keys).clone(),
        )
        .set_allowed_algs(allowed_algs(endpoints));
        token.claims(&verifier, &Nonce::new(nonce.to_owned())).cloned()
    };
    let cached = provider.jwks.0.read().await.clone();
    let keys = match cached {
        Some((keys, at)) if at.elapsed() < JWKS_TTL => keys,
        _ => refresh_jwks(provider, endpoints, http).await?,
    };
    let claims = match check(keys) {
        Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
            // Possibly a rotated key: fetch the set once more, then decide.
            let keys = refresh_jwks(provider, endpoints, http).await?;
            check(keys).map_err(classify)
        }
        other => other.map_err(classify),
    }?;
    check_beyond_the_crate(&claims, &provider.client_id, crate::db::now_ms() / 1000)?;
    Ok(claims)
}

/// The checks `openidconnect` leaves to its caller: `azp`, when present, must be our client id (its code for
/// this is commented out), and `iat` must be within [`IAT_SKEW`] ahead and [`IAT_MAX_AGE`] behind `now_secs`.
fn check_beyond_the_crate(claims: &CoreIdTokenClaims, client_id: &str, now_secs: i64) -> Result<(), IdTokenError> {
    if claims.authorized_party().is_some_and(|azp| azp.as_str() != client_id) {
        return Err(IdTokenError::WrongAuthorizedParty);
    }
    let iat = claims.issue_time().timestamp();
    if iat > now_secs + IAT_SKEW.as_secs() as i64 || iat < now_secs - IAT_MAX_AGE.as_secs() as i64 {
        return Err(IdTokenError::IssueTimeOutOfRange);
    }
    Ok(())
}

async fn refresh_jwks(
    provider: &Provider,
    endpoints: &Endpoints,
    http: &reqwest::Client,
) -> Result<Arc<CoreJsonWebKeySet>, IdTokenError> {
    let uri = endpoints
        .jwks_uri
        .as_ref()
        .ok_or_else(|| IdTokenError::Jwks("no jwks_uri is configured or discovered".into()))?;
    let keys = fetch_jwks(http, uri).await.map_err(IdTokenError::Jwks)?;
    let keys = Arc::new(keys);
    *provider.jwks.0.write().await = Some((keys.clone(), Instant::now()));
    Ok(keys)
}

/// Fetches and parses a JWKS document (also used by `onbehalf providers check`).
pub async fn fetch_jwks(http: &reqwest::Client, uri: &url::Url) -> Result<CoreJsonWebKeySet, String> {
    let response = http
        .get(uri.clone())
        .send()
        .await
        .map_err(|e| super::discovery::describe(&e))?;
    if !response.status().is_success() {
        return Err(format!("{uri} answered HTTP {}", response.status()));
    }
    let body = super::body::read_capped(response, super::body::SMALL)
        .await
        .map_err(|e| format!("{uri}: {e}"))?;
    serde_json::from_slice::<CoreJsonWebKeySet>(&body).map_err(|e| format!("{uri} is not a JWK set: {e}"))
}

fn classify(err: ClaimsVerificationError) -> IdTokenError {
    match err {
        ClaimsVerificationError::Expired(_) => IdTokenError::Expired,
        ClaimsVerificationError::InvalidAudience(_) => IdTokenError::WrongAudience,
        ClaimsVerificationError::InvalidIssuer(_) => IdTokenError::WrongIssuer,
        ClaimsVerificationError::InvalidNonce(_) => IdTokenError::WrongNonce,
        ClaimsVerificationError::SignatureVerification(_) => IdTokenError::BadSignature,
        other => IdTokenError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(iat: i64, azp: Option<&str>) -> CoreIdTokenClaims {
        let mut json = serde_json::json!({
            "iss": "https://issuer.example", "aud": "us", "sub": "s", "iat": iat, "exp": iat + 7200,
        });
        if let Some(azp) = azp {
            json["azp"] = azp.into();
        }
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn azp_must_be_us_and_iat_within_its_range() {
        let now = 1_800_000_000;
        let check = |iat: i64, azp: Option<&str>| check_beyond_the_crate(&claims(iat, azp), "us", now);
        assert_eq!(check(now, None), Ok(()));
        assert_eq!(check(now, Some("us")), Ok(()));
        assert_eq!(check(now, Some("them")), Err(IdTokenError::WrongAuthorizedParty));
        let skew = IAT_SKEW.as_secs() as i64;
        let max_age = IAT_MAX_AGE.as_secs() as i64;
        assert_eq!(check(now + skew, None), Ok(()));
        assert_eq!(check(now + skew + 1, None), Err(IdTokenError::IssueTimeOutOfRange));
        assert_eq!(check(now - max_age, None), Ok(()));
        assert_eq!(check(now - max_age - 1, None), Err(IdTokenError::IssueTimeOutOfRange));
    }
}
