//! Calls to a provider's token endpoint (RFC 6749 §4.1.3, §6) and the reading of its answers.
//!
//! Written on reqwest rather than through `oauth2`'s client because every way a token endpoint can fail must be
//! told apart — an OAuth error (`invalid_grant`, even when Globus sends it with 401), a 5xx, an HTML error page,
//! malformed JSON, a timeout — for the user's message and for the retry policy; the `oauth2` crate folds the
//! non-OAuth ones into one parse error without the status. Globus' `other_tokens` (one token set per resource
//! server) and GitHub's `200 {"error": ...}` are read here too.

use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Map, Value};

use super::{
    ClientAuth, Provider, TokenShape,
    body::{self, BodyError},
    discovery::describe,
};
use crate::tokens::IssuedTokenSet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenEndpointError {
    /// No connection (or it broke before the request was sent): the provider has not seen the request.
    #[error("the token endpoint could not be reached ({0})")]
    Unreachable(String),
    /// Connected, but no answer within the timeout: the provider may have handled the request.
    #[error("the token endpoint timed out (the request may have reached it)")]
    TimedOut,
    /// An OAuth error response (RFC 6749 §5.2), whatever the HTTP status.
    #[error("the token endpoint refused: {error}")]
    Rejected {
        status: u16,
        error: String,
        description: Option<String>,
        /// `Retry-After` in seconds (a 503 `temporarily_unavailable` may carry one).
        retry_after: Option<u64>,
    },
    /// A 5xx (or 429/408) that is not an OAuth error; `html` when it was a (proxy's) HTML error page;
    /// `retry_after` in seconds when the provider sent `Retry-After`.
    #[error("the token endpoint failed with HTTP {status}{}", if *html { " (an HTML error page)" } else { "" })]
    ServerError {
        status: u16,
        html: bool,
        retry_after: Option<u64>,
    },
    #[error("the token endpoint answered HTTP {status} with {what}")]
    BadResponse { status: u16, what: String },
}

impl TokenEndpointError {
    /// `invalid_client`/`unauthorized_client`: our credentials, not the user's grant, are at fault.
    pub fn is_client_error(&self) -> bool {
        matches!(self, TokenEndpointError::Rejected { error, .. }
            if error == "invalid_client" || error == "unauthorized_client")
    }

    pub fn is_invalid_grant(&self) -> bool {
        matches!(self, TokenEndpointError::Rejected { error, .. } if error == "invalid_grant")
    }

    /// The provider's `Retry-After`, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            TokenEndpointError::ServerError { retry_after, .. } | TokenEndpointError::Rejected { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// Worth retrying later (network, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            TokenEndpointError::Unreachable(_)
            | TokenEndpointError::TimedOut
            | TokenEndpointError::ServerError { .. } => true,
            TokenEndpointError::Rejected { status, error, .. } => {
                *status == 429 || *status >= 500 || error == "temporarily_unavailable"
            }
            TokenEndpointError::BadResponse { status, .. } => *status >= 500,
        }
    }
}

/// A successful token response: token sets (one per resource server) plus what else the provider said.
pub struct TokenResponse {
    pub sets: Vec<IssuedTokenSet>,
    pub id_token: Option<String>,
    /// Top-level members other than the tokens (ORCID's `orcid` and `name`).
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("sets", &self.sets)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

/// Exchanges an authorization code (with its PKCE verifier) for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    provider: &Provider,
    token_url: &url::Url,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: &str,
    requested_scopes: &[String],
) -> Result<TokenResponse, TokenEndpointError> {
    let form = vec![
        ("grant_type", "authorization_code".to_owned()),
        ("code", code.to_owned()),
        ("redirect_uri", redirect_uri.to_owned()),
        ("code_verifier", pkce_verifier.to_owned()),
    ];
    let body = post(http, provider, token_url, form).await?;
    parse(provider, body, requested_scopes)
}

/// Uses a refresh token (RFC 6749 §6). The response may rotate the refresh token or omit it (keep the old one).
pub async fn refresh(
    http: &reqwest::Client,
    provider: &Provider,
    token_url: &url::Url,
    refresh_token: &SecretString,
    granted_scopes: &[String],
) -> Result<TokenResponse, TokenEndpointError> {
    let form = vec![
        ("grant_type", "refresh_token".to_owned()),
        ("refresh_token", refresh_token.expose_secret().to_owned()),
    ];
    let body = post(http, provider, token_url, form).await?;
    parse(provider, body, granted_scopes)
}

/// The platform's own token (RFC 6749 §4.4), for calls made as the application rather than for a user.
pub async fn client_credentials(
    http: &reqwest::Client,
    provider: &Provider,
    token_url: &url::Url,
    scopes: &[String],
) -> Result<TokenResponse, TokenEndpointError> {
    let mut form = vec![("grant_type", "client_credentials".to_owned())];
    if !scopes.is_empty() {
        form.push(("scope", scopes.join(" ")));
    }
    let body = post(http, provider, token_url, form).await?;
    parse(provider, body, scopes)
}

/// A form POST to one of the provider's OAuth endpoints, with the provider's client authentication.
fn authenticated(
    http: &reqwest::Client,
    provider: &Provider,
    url: &url::Url,
    mut form: Vec<(&'static str, String)>,
) -> reqwest::RequestBuilder {
    let mut request = http
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match (&provider.client_secret, provider.client_auth) {
        (Some(secret), ClientAuth::ClientSecretBasic) => {
            request = request.header(reqwest::header::AUTHORIZATION, basic_auth(&provider.client_id, secret));
        }
        (Some(secret), ClientAuth::ClientSecretPost) => {
            form.push(("client_id", provider.client_id.clone()));
            form.push(("client_secret", secret.expose_secret().to_owned()));
        }
        // A public client identifies itself; PKCE is its proof (RFC 7636).
        (None, _) => form.push(("client_id", provider.client_id.clone())),
    }
    request.form(&form)
}

/// Revokes one token (RFC 7009 §2.1; Globus `/v2/oauth2/token/revoke`). `Ok` on any 2xx: RFC 7009 answers 200
/// for unknown tokens too.
pub async fn revoke(
    http: &reqwest::Client,
    provider: &Provider,
    url: &url::Url,
    token: &SecretString,
    hint: &'static str,
) -> Result<(), TokenEndpointError> {
    let form = vec![
        ("token", token.expose_secret().to_owned()),
        ("token_type_hint", hint.to_owned()),
    ];
    let response = authenticated(http, provider, url, form)
        .send()
        .await
        .map_err(|e| TokenEndpointError::Unreachable(describe(&e)))?;
    let status = response.status().as_u16();
    // RFC 7009 §2.2 answers 200 for a token that is already invalid; Google answers 400 `invalid_token`. Either way
    // the token is dead, which is what was asked.
    let already_dead = status == 400
        && body::read_capped(response, body::SMALL)
            .await
            .is_ok_and(|body| String::from_utf8_lossy(&body).contains("\"invalid_token\""));
    match status {
        200..=299 => Ok(()),
        _ if already_dead => Ok(()),
        500.. => Err(TokenEndpointError::ServerError {
            status,
            html: false,
            retry_after: None,
        }),
        _ => Err(TokenEndpointError::BadResponse {
            status,
            what: "a refusal to revoke".into(),
        }),
    }
}

async fn post(
    http: &reqwest::Client,
    provider: &Provider,
    url: &url::Url,
    form: Vec<(&'static str, String)>,
) -> Result<Map<String, Value>, TokenEndpointError> {
    let response = authenticated(http, provider, url, form).send().await.map_err(|e| {
        if e.is_timeout() && !e.is_connect() {
            TokenEndpointError::TimedOut
        } else {
            TokenEndpointError::Unreachable(describe(&e))
        }
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let is_json = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| ct.contains("json"))
        .unwrap_or(false);
    let bytes = match body::read_capped(response, body::SMALL).await {
        Ok(bytes) => bytes,
        // The status line arrived: the provider has handled the request, whatever happens to its body (a refresh
        // it answered 200 may have rotated the token, `delegation::refresh` decides what that means).
        Err(BodyError::Read(reason)) => {
            return Err(TokenEndpointError::BadResponse {
                status,
                what: format!("a body that broke off ({reason})"),
            });
        }
        Err(BodyError::TooLarge { cap, .. }) => {
            return Err(TokenEndpointError::BadResponse {
                status,
                what: format!("a body larger than {} KiB", cap / 1024),
            });
        }
    };
    read_answer(status, is_json, retry_after, &bytes)
}

/// What a token endpoint's answer says, from its status, whether it was labelled JSON, its `Retry-After` and its
/// (capped) body: the JSON object of a success, or why not. Pure, so it is fuzzed (`fuzz/`).
pub fn read_answer(
    status: u16,
    is_json: bool,
    retry_after: Option<u64>,
    bytes: &[u8],
) -> Result<Map<String, Value>, TokenEndpointError> {
    let object = serde_json::from_slice::<Value>(bytes).ok().and_then(|v| match v {
        Value::Object(map) => Some(map),
        _ => None,
    });
    match object {
        // Throttled: retry later, whatever the body says.
        _ if status == 429 || status == 408 => Err(TokenEndpointError::ServerError {
            status,
            html: false,
            retry_after,
        }),
        // RFC 6749 §5.2 errors; GitHub sends them with 200, Globus `invalid_grant` with 401.
        Some(map) if map.get("error").and_then(Value::as_str).is_some() => Err(TokenEndpointError::Rejected {
            status,
            error: standard_error(map["error"].as_str().unwrap_or_default()),
            description: map.get("error_description").and_then(Value::as_str).map(str::to_owned),
            retry_after,
        }),
        Some(map) if (200..300).contains(&status) => Ok(map),
        _ if status >= 500 => Err(TokenEndpointError::ServerError {
            status,
            html: !is_json && looks_like_html(bytes),
            retry_after,
        }),
        Some(_) => Err(TokenEndpointError::BadResponse {
            status,
            what: "an unexpected JSON body".into(),
        }),
        None if looks_like_html(bytes) => Err(TokenEndpointError::BadResponse {
            status,
            what: "an HTML page instead of JSON".into(),
        }),
        None => Err(TokenEndpointError::BadResponse {
            status,
            what: "a body that is not JSON".into(),
        }),
    }
}

/// The RFC 6749 §5.2 code for a provider's own: GitHub answers `bad_verification_code`, `bad_refresh_token` and
/// `incorrect_client_credentials` where the standard says `invalid_grant` and `invalid_client`. Anything else is
/// kept only if it is a plain token (it reaches logs and audit details).
fn standard_error(error: &str) -> String {
    match error {
        "bad_verification_code" | "bad_refresh_token" => "invalid_grant".to_owned(),
        "incorrect_client_credentials" => "invalid_client".to_owned(),
        other => other
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect(),
    }
}

fn looks_like_html(bytes: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(256)]).to_ascii_lowercase();
    head.trim_start().starts_with('<')
}

/// `Basic base64(urlencode(id):urlencode(secret))`, as RFC 6749 §2.3.1 prescribes.
fn basic_auth(client_id: &str, secret: &SecretString) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        STANDARD.encode(format!("{}:{}", enc(client_id), enc(secret.expose_secret())))
    )
}

/// Reads a token response into token sets.
pub fn parse(
    provider: &Provider,
    mut body: Map<String, Value>,
    requested_scopes: &[String],
) -> Result<TokenResponse, TokenEndpointError> {
    let bad = |what: &str| TokenEndpointError::BadResponse {
        status: 200,
        what: what.to_owned(),
    };
    let id_token = match body.remove("id_token") {
        Some(Value::String(s)) => Some(s),
        Some(_) => return Err(bad("an id_token that is not a string")),
        None => None,
    };
    let others = match (provider.token_shape, body.remove("other_tokens")) {
        (TokenShape::Globus, Some(Value::Array(items))) => items,
        (TokenShape::Globus, Some(_)) => return Err(bad("other_tokens that is not a list")),
        _ => Vec::new(),
    };
    let mut sets = vec![token_set(provider, &mut body, requested_scopes).ok_or_else(|| bad("no access_token"))?];
    for item in others {
        let Value::Object(mut item) = item else {
            return Err(bad("an other_tokens entry that is not an object"));
        };
        sets.push(token_set(provider, &mut item, &[]).ok_or_else(|| bad("an other_tokens entry without a token"))?);
    }
    if provider.token_shape == TokenShape::Globus && sets.iter().any(|s| s.resource_server.is_empty()) {
        return Err(bad("a token without resource_server"));
    }
    Ok(TokenResponse {
        sets,
        id_token,
        extra: body,
    })
}

/// Takes one token set's members out of `map` (what remains is the response's extra members).
fn token_set(provider: &Provider, map: &mut Map<String, Value>, requested: &[String]) -> Option<IssuedTokenSet> {
    let access_token = match map.remove("access_token")? {
        Value::String(s) if !s.is_empty() => SecretString::from(s),
        _ => return None,
    };
    let refresh_token = match map.remove("refresh_token") {
        Some(Value::String(s)) if !s.is_empty() => Some(SecretString::from(s)),
        _ => None,
    };
    let resource_server = match (provider.token_shape, map.remove("resource_server")) {
        (TokenShape::Globus, Some(Value::String(rs))) => rs,
        (TokenShape::Globus, _) => String::new(),
        (TokenShape::Standard, _) => provider.default_resource_server.clone(),
    };
    // RFC 6749 §5.1: an omitted scope means the requested one. GitHub separates scopes with commas.
    let scopes = match map.remove("scope") {
        Some(Value::String(s)) => s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => requested.to_vec(),
    };
    let expires_in = match map.remove("expires_in") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let token_type = match map.remove("token_type") {
        Some(Value::String(s)) => s,
        _ => "Bearer".to_owned(),
    };
    map.remove("state");
    Some(IssuedTokenSet {
        resource_server,
        scopes,
        token_type,
        access_token,
        refresh_token,
        expires_in,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::{presets, settings::ProviderSettings};

    fn provider(kind: &str) -> Provider {
        let s: ProviderSettings = serde_json::from_value(serde_json::json!({"kind": kind, "client_id": "c"})).unwrap();
        presets::resolve(kind, &s)
    }

    fn fixture(name: &str) -> Map<String, Value> {
        let path = format!("{}/tests/fixtures/globus/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    #[test]
    fn globus_other_tokens_become_one_set_per_resource_server() {
        let response = parse(
            &provider("globus"),
            fixture("auth.token_exchange.other_tokens.json"),
            &[],
        )
        .unwrap();
        let summary: Vec<_> = response
            .sets
            .iter()
            .map(|s| {
                (
                    s.resource_server.as_str(),
                    s.scopes.join(" "),
                    s.refresh_token.is_some(),
                    s.expires_in,
                )
            })
            .collect();
        assert_eq!(
            summary,
            vec![
                ("auth.globus.org", "profile email openid".to_owned(), true, Some(172800)),
                (
                    "transfer.api.globus.org",
                    "urn:globus:auth:scope:transfer.api.globus.org:all".to_owned(),
                    true,
                    Some(172800)
                ),
            ]
        );
        assert_eq!(response.id_token.as_deref(), Some("openid_token"));
        assert_eq!(response.sets[1].access_token(), "transfer_access_token");
    }

    #[test]
    fn globus_refresh_response_without_other_tokens_is_one_set() {
        let response = parse(&provider("globus"), fixture("auth.refresh_token.derived.json"), &[]).unwrap();
        assert_eq!(response.sets.len(), 1);
        assert_eq!(response.sets[0].resource_server, "transfer.api.globus.org");
    }

    #[test]
    fn github_comma_scopes_and_default_resource_server() {
        let body = serde_json::json!({"access_token": "gho_x", "token_type": "bearer", "scope": "repo,gist"});
        let response = parse(&provider("github"), body.as_object().unwrap().clone(), &[]).unwrap();
        assert_eq!(response.sets[0].scopes, vec!["repo", "gist"]);
        assert_eq!(response.sets[0].resource_server, "api.github.com");
    }

    #[test]
    fn orcid_identity_fields_stay_in_extra_and_omitted_scope_means_requested() {
        let body = serde_json::json!({"access_token": "a", "token_type": "bearer", "orcid": "0000-0002-1825-0097",
                                      "name": "Josiah Carberry", "expires_in": "631138518"});
        let requested = vec!["/authenticate".to_owned()];
        let response = parse(&provider("orcid"), body.as_object().unwrap().clone(), &requested).unwrap();
        assert_eq!(response.extra["orcid"], "0000-0002-1825-0097");
        assert_eq!(response.sets[0].scopes, requested);
        assert_eq!(response.sets[0].expires_in, Some(631138518));
    }

    #[test]
    fn a_response_without_access_token_is_a_bad_response() {
        let body = serde_json::json!({"token_type": "bearer"});
        let err = parse(&provider("github"), body.as_object().unwrap().clone(), &[]).unwrap_err();
        assert!(matches!(err, TokenEndpointError::BadResponse { .. }), "{err:?}");
    }

    #[test]
    fn debug_output_never_holds_tokens() {
        let response = parse(
            &provider("globus"),
            fixture("auth.token_exchange.other_tokens.json"),
            &[],
        )
        .unwrap();
        let shown = format!("{response:?}");
        for secret in [
            "auth_access_token",
            "transfer_refresh",
            "openid_token",
            "auth_refresh_token",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn github_error_codes_map_to_the_standard_ones_and_odd_text_is_cleaned() {
        assert_eq!(standard_error("bad_verification_code"), "invalid_grant");
        assert_eq!(standard_error("incorrect_client_credentials"), "invalid_client");
        assert_eq!(standard_error("invalid_grant"), "invalid_grant");
        assert_eq!(standard_error("x\n<script>"), "xscript");
    }

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        let header = basic_auth("id:1", &SecretString::from("s p&c"));
        let decoded = String::from_utf8(STANDARD.decode(header.trim_start_matches("Basic ")).unwrap()).unwrap();
        assert_eq!(decoded, "id%3A1:s+p%26c");
    }
}
