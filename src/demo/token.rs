//! The back-channel half of Globus Auth: the token endpoint (three grant types, injected faults), revocation
//! (RFC 7009) and introspection (RFC 7662), each behind client authentication.
//!
//! Strictness, on purpose: codes are single use and a replay revokes what the code produced (RFC 6749 §4.1.2);
//! refresh tokens rotate and a reused one revokes its whole grant (OAuth 2.0 Security BCP §4.14.2); PKCE S256 is
//! checked on every code. Token values never reach a log line.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{
    Flavor, Shared, TokenFault,
    id_token::{self, IdTokenRequest},
    scope::{self, AUTH_RS, OPENID, Scope},
    store::{Audience, Grant, Store, Subject, TokenKind, unix},
    wire::{Duplicate, Params, is_form, json_no_store},
};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v2/oauth2/token", post(token))
        .route("/v2/oauth2/token/revoke", post(revoke))
        .route("/v2/oauth2/token/introspect", post(introspect))
}

/// An OAuth error response (RFC 6749 §5.2).
#[derive(Debug)]
struct OAuthError {
    error: &'static str,
    description: String,
    /// The client tried HTTP Basic: a 401 then carries a `WWW-Authenticate: Basic` challenge.
    basic: bool,
}

impl OAuthError {
    fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
            basic: false,
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new("invalid_request", description)
    }

    fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new("invalid_grant", description)
    }

    fn response(&self, flavor: Flavor) -> Response {
        tracing::info!(error = self.error, description = %self.description, "demo: token endpoint refused");
        // Globus sends invalid_grant as 401 (fixture auth.token_exchange.invalid_grant.json); RFC 6749 §5.2 says 400.
        let status = match (self.error, flavor) {
            ("invalid_client", _) | ("invalid_grant", Flavor::Globus) => StatusCode::UNAUTHORIZED,
            _ => StatusCode::BAD_REQUEST,
        };
        let mut response = json_no_store(
            status,
            &json!({"error": self.error, "error_description": self.description}),
        );
        if self.error == "invalid_client" && self.basic {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Demo Globus\""),
            );
        }
        response
    }
}

impl From<Duplicate> for OAuthError {
    fn from(Duplicate(name): Duplicate) -> Self {
        Self::invalid_request(format!("The parameter {name} was given more than once"))
    }
}

/// Reads the form body of a back-channel request and authenticates the client (RFC 6749 §2.3.1): HTTP Basic or
/// `client_id` + `client_secret` in the form, never both.
fn authenticate(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<Params, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "The body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body);
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| decode_basic(credentials.trim()));
    let form_id = params.get("client_id")?;
    let form_secret = params.get("client_secret")?;
    let invalid = |basic: bool| OAuthError {
        basic,
        ..OAuthError::new("invalid_client", "Client authentication failed")
    };
    let authenticated = match (basic, form_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "Use one client authentication method, not both",
            ));
        }
        (Some(None), None) => return Err(invalid(true)),
        (Some(Some((id, secret))), None) => {
            if form_id.is_some_and(|form_id| form_id != id) {
                return Err(OAuthError::invalid_request(
                    "client_id does not match the authenticated client",
                ));
            }
            credentials_match(shared, &id, &secret)
                .then_some(())
                .ok_or_else(|| invalid(true))
        }
        (None, Some(secret)) => form_id
            .filter(|id| credentials_match(shared, id, secret))
            .map(|_| ())
            .ok_or_else(|| invalid(false)),
        (None, None) => Err(invalid(false)),
    };
    authenticated.map(|()| params)
}

/// `base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1).
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |part: &str| -> Option<String> {
        let plus_as_space = part.replace('+', " ");
        percent_encoding::percent_decode_str(&plus_as_space)
            .decode_utf8()
            .ok()
            .map(|text| text.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// Compares digests, so the time taken says nothing about how much of the secret was right.
fn credentials_match(shared: &Shared, id: &str, secret: &str) -> bool {
    let expected = Sha256::digest(shared.config.client_secret.as_bytes());
    id == shared.config.client_id && Sha256::digest(secret.as_bytes()) == expected
}

async fn token(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let (fault, delay) = {
        let mut store = shared.store();
        store.counters.token_requests += 1;
        (store.take_token_fault(), store.switches.token_delay)
    };
    if let Some(fault) = fault {
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        tracing::info!(?fault, "demo: token fault injected");
        return fault_response(fault).await;
    }
    let flavor = shared.config.flavor;
    let outcome = authenticate(&shared, &headers, &body).and_then(|params| {
        let grant_type = params.get("grant_type")?;
        let mut store = shared.store();
        let now = SystemTime::now();
        let body = match grant_type {
            Some("authorization_code") => authorization_code(&shared, &mut store, &params, now),
            Some("refresh_token") => refresh_token(&shared, &mut store, &params, now),
            Some("client_credentials") => client_credentials(&shared, &mut store, &params, now),
            Some(_) => Err(OAuthError::new(
                "unsupported_grant_type",
                "Supported: authorization_code, refresh_token, client_credentials",
            )),
            None => Err(OAuthError::invalid_request("grant_type is required")),
        }?;
        if let Some(grant_type) = grant_type {
            store.count_grant(grant_type);
            tracing::info!(grant_type, "demo: tokens issued");
        }
        Ok(body)
    });
    // The grant is done on receipt and only its answer is held back, as at a provider that committed a rotation
    // before a slow response: a client that gives up (or dies) meanwhile has had its refresh token spent.
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    match outcome {
        Ok(body) => json_no_store(StatusCode::OK, &body),
        Err(err) => err.response(flavor),
    }
}

async fn fault_response(fault: TokenFault) -> Response {
    match fault {
        TokenFault::ServerError => {
            let mut response = json_no_store(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "temporarily_unavailable", "error_description": "Demo Globus is unavailable"}),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            response
        }
        TokenFault::HtmlErrorPage => (
            StatusCode::BAD_GATEWAY,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        )
            .into_response(),
        // Cut off mid-value, as a dropped connection behind a proxy leaves it; no real token is in it.
        TokenFault::MalformedJson => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            "{\"access_token\": \"AgBx7Qk2ZpW9e\", \"scope\": \"openid pro",
        )
            .into_response(),
        TokenFault::EndlessBody => {
            let filler = Bytes::from(vec![b' '; 64 * 1024]);
            let start = futures::stream::once(async { Ok(Bytes::from_static(b"{\"access_token\": \"")) });
            let rest = futures::stream::repeat_with(move || Ok::<_, std::convert::Infallible>(filler.clone()));
            (
                StatusCode::OK,
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CACHE_CONTROL, "no-store"),
                ],
                axum::body::Body::from_stream(futures::StreamExt::chain(start, rest)),
            )
                .into_response()
        }
        TokenFault::InvalidClient => {
            OAuthError::new("invalid_client", "Client authentication failed").response(Flavor::Globus)
        }
        TokenFault::Timeout => {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            json_no_store(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({"error": "temporarily_unavailable", "error_description": "Demo Globus timed out"}),
            )
        }
    }
}

/// The tokens issued for one resource server.
struct Issued {
    resource_server: &'static str,
    scopes: Vec<Scope>,
    access_token: String,
    refresh_token: Option<String>,
}

/// Issues the tokens of `grant`: one per resource server (Globus) or one for everything (plain OIDC). The Globus
/// Auth token comes first, as Globus puts it at the top level.
fn issue_tokens(
    shared: &Shared,
    store: &mut Store,
    grant: u64,
    scopes: &[Scope],
    offline: bool,
    now: SystemTime,
) -> Vec<Issued> {
    let lifetime = shared.config.access_token_lifetime;
    let mut groups = match shared.config.flavor {
        Flavor::Globus => scope::by_resource_server(scopes)
            .into_iter()
            .map(|(rs, scopes)| (Audience::ResourceServer(rs), rs, scopes))
            .collect::<Vec<_>>(),
        Flavor::PlainOidc => {
            let resource_server = scopes.first().map_or(AUTH_RS, |scope| scope.resource_server);
            vec![(Audience::Any, resource_server, scopes.to_vec())]
        }
    };
    groups.sort_by_key(|(_, rs, _)| *rs != AUTH_RS);
    groups
        .into_iter()
        .map(|(audience, resource_server, scopes)| {
            let access_token = store.issue(TokenKind::Access, grant, audience, scopes.clone(), lifetime, now);
            let refresh_token =
                offline.then(|| store.issue(TokenKind::Refresh, grant, audience, scopes.clone(), lifetime, now));
            Issued {
                resource_server,
                scopes,
                access_token,
                refresh_token,
            }
        })
        .collect()
}

/// One token entry of a Globus response (`auth.token_exchange.other_tokens.json`).
fn globus_entry(shared: &Shared, issued: &Issued, state: Option<&str>) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("access_token".into(), json!(issued.access_token));
    entry.insert("scope".into(), json!(scope::join(&issued.scopes)));
    entry.insert(
        "expires_in".into(),
        json!(shared.config.access_token_lifetime.as_secs()),
    );
    entry.insert("token_type".into(), json!("Bearer"));
    entry.insert("resource_server".into(), json!(issued.resource_server));
    if let Some(state) = state {
        entry.insert("state".into(), json!(state));
    }
    if let Some(refresh_token) = &issued.refresh_token {
        entry.insert("refresh_token".into(), json!(refresh_token));
    }
    entry
}

/// The response body: Globus's per-resource-server shape, or RFC 6749 §5.1 for plain OIDC.
fn token_response(shared: &Shared, issued: &[Issued], state: Option<&str>, id_token: Option<String>) -> Value {
    let Some((top, others)) = issued.split_first() else {
        return json!({});
    };
    let mut body = match shared.config.flavor {
        Flavor::Globus => {
            let mut body = globus_entry(shared, top, state);
            let others: Vec<Value> = others
                .iter()
                .map(|other| Value::Object(globus_entry(shared, other, state)))
                .collect();
            body.insert("other_tokens".into(), Value::Array(others));
            body
        }
        Flavor::PlainOidc => {
            let mut body = Map::new();
            body.insert("access_token".into(), json!(top.access_token));
            body.insert("token_type".into(), json!("Bearer"));
            body.insert(
                "expires_in".into(),
                json!(shared.config.access_token_lifetime.as_secs()),
            );
            if let Some(refresh_token) = &top.refresh_token {
                body.insert("refresh_token".into(), json!(refresh_token));
            }
            body.insert("scope".into(), json!(scope::join(&top.scopes)));
            body
        }
    };
    if let Some(id_token) = id_token {
        body.insert("id_token".into(), json!(id_token));
    }
    Value::Object(body)
}

/// `S256`: `BASE64URL(SHA256(ASCII(code_verifier)))` (RFC 7636 §4.2, §4.6).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// 43 to 128 unreserved characters (RFC 7636 §4.1).
fn valid_verifier(verifier: &str) -> bool {
    (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

fn authorization_code(
    shared: &Shared,
    store: &mut Store,
    params: &Params,
    now: SystemTime,
) -> Result<Value, OAuthError> {
    let value = params
        .get("code")?
        .ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let redirect_uri = params.get("redirect_uri")?;
    let verifier = params.get("code_verifier")?;
    let Some(code) = store.codes.get_mut(value) else {
        return Err(OAuthError::invalid_grant("Unknown authorization code"));
    };
    if code.used {
        // RFC 6749 §4.1.2: a code used twice may have been stolen; revoke what it produced.
        let revoked = code.exchanged_for.map(|grant| store.revoke_tokens(grant, |_| true));
        tracing::warn!(revoked, "demo: authorization code replayed");
        return Err(OAuthError::invalid_grant(
            "The authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    // Presenting a code uses it up, even when the exchange fails below: a code is tried once.
    code.used = true;
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant("The authorization code has expired"));
    }
    if code.authorization.client_id != shared.config.client_id {
        return Err(OAuthError::invalid_grant("The code was issued to another client"));
    }
    if redirect_uri != Some(code.authorization.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri does not match the one of the authorization request",
        ));
    }
    let Some(verifier) = verifier else {
        return Err(OAuthError::invalid_grant("code_verifier is required (PKCE)"));
    };
    if !valid_verifier(verifier) || s256(verifier) != code.authorization.code_challenge {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let authorization = code.authorization.clone();
    let identity = code.identity;
    let grant = store.add_grant(Grant {
        client_id: authorization.client_id.clone(),
        subject: Subject::User(identity),
        authenticated_at: now,
    });
    if let Some(code) = store.codes.get_mut(value) {
        code.exchanged_for = Some(grant);
    }
    let issued = issue_tokens(shared, store, grant, &authorization.scopes, authorization.offline, now);
    let id_token = if scope::contains(&authorization.scopes, OPENID) {
        let access_token = issued.first().map_or("", |first| first.access_token.as_str());
        let request = IdTokenRequest {
            issuer: &shared.issuer,
            client_id: &authorization.client_id,
            identity,
            nonce: authorization.nonce.as_deref(),
            access_token,
            authenticated_at: now,
            fault: store.switches.id_token_fault,
        };
        match id_token::sign(&store.signing_key, &request) {
            Ok(id_token) => Some(id_token),
            Err(err) => {
                tracing::error!("demo: {err}");
                return Err(OAuthError::new("server_error", "The ID token could not be signed"));
            }
        }
    } else {
        None
    };
    Ok(token_response(
        shared,
        &issued,
        authorization.state.as_deref(),
        id_token,
    ))
}

fn refresh_token(shared: &Shared, store: &mut Store, params: &Params, now: SystemTime) -> Result<Value, OAuthError> {
    let value = params
        .get("refresh_token")?
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let requested = params
        .get("scope")?
        .map(scope::parse)
        .transpose()
        .map_err(|description| OAuthError::new("invalid_scope", description))?;
    let Some(token) = store
        .tokens
        .get_mut(value)
        .filter(|token| token.kind == TokenKind::Refresh)
    else {
        return Err(OAuthError::invalid_grant("Unknown refresh token"));
    };
    let grant = token.grant;
    if token.consumed {
        // Reuse of a rotated refresh token: either the client or an attacker holds a stale copy, and the server
        // cannot tell which, so the whole grant goes (OAuth 2.0 Security BCP §4.14.2).
        store.counters.refresh_token_reuse += 1;
        let revoked = store.revoke_tokens(grant, |_| true);
        tracing::warn!(revoked, "demo: refresh token reused; grant revoked");
        return Err(OAuthError::invalid_grant(
            "The refresh token was already used; every token of this grant is revoked",
        ));
    }
    if token.revoked {
        return Err(OAuthError::invalid_grant("The refresh token has been revoked"));
    }
    let granted = token.scopes.clone();
    let audience = token.audience;
    let resource_server = token.resource_server();
    if store
        .grants
        .get(&grant)
        .is_none_or(|g| g.client_id != shared.config.client_id)
    {
        return Err(OAuthError::invalid_grant(
            "The refresh token was issued to another client",
        ));
    }
    // RFC 6749 §6: the new access token may be narrower; the new refresh token keeps the original scope.
    let scopes = match requested {
        Some(requested) if !scope::is_subset(&requested, &granted) => {
            return Err(OAuthError::new(
                "invalid_scope",
                "The requested scope exceeds the scope of the refresh token",
            ));
        }
        Some(requested) => requested,
        None => granted.clone(),
    };
    let rotate = !store.switches.keep_refresh_tokens;
    if rotate && let Some(token) = store.tokens.get_mut(value) {
        token.consumed = true;
    }
    let lifetime = shared.config.access_token_lifetime;
    let access_token = store.issue(TokenKind::Access, grant, audience, scopes.clone(), lifetime, now);
    let refresh_token = rotate.then(|| store.issue(TokenKind::Refresh, grant, audience, granted, lifetime, now));
    let issued = Issued {
        resource_server,
        scopes,
        access_token,
        refresh_token,
    };
    // Shaped like `auth.refresh_token.derived.json`: no state, no ID token, `other_tokens: []`.
    Ok(token_response(shared, std::slice::from_ref(&issued), None, None))
}

fn client_credentials(
    shared: &Shared,
    store: &mut Store,
    params: &Params,
    now: SystemTime,
) -> Result<Value, OAuthError> {
    let scopes = params
        .get("scope")?
        .ok_or_else(|| OAuthError::new("invalid_scope", "scope is required"))
        .and_then(|list| scope::parse(list).map_err(|description| OAuthError::new("invalid_scope", description)))?;
    let grant = store.add_grant(Grant {
        client_id: shared.config.client_id.clone(),
        subject: Subject::Client(shared.config.client_id.clone()),
        authenticated_at: now,
    });
    let issued = issue_tokens(shared, store, grant, &scopes, false, now);
    Ok(token_response(shared, &issued, None, None))
}

/// RFC 7009. Always `{"active": false}`, whether or not the token existed (§2.2: nothing to learn from it).
async fn revoke(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match authenticate(&shared, &headers, &body) {
        Ok(params) => params,
        Err(err) => return err.response(shared.config.flavor),
    };
    let value = match params.get("token") {
        Ok(Some(value)) => value,
        Ok(None) => return OAuthError::invalid_request("token is required").response(shared.config.flavor),
        Err(duplicate) => return OAuthError::from(duplicate).response(shared.config.flavor),
    };
    let mut store = shared.store();
    let owner = store
        .tokens
        .get(value)
        .and_then(|token| store.grants.get(&token.grant))
        .map(|grant| grant.subject.sub().to_owned());
    if store.switches.revocation_fault.applies_to(owner.as_deref()) {
        store.counters.faults_injected += 1;
        return json_no_store(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"error": "temporarily_unavailable", "error_description": "revocation is down (demo switch)"}),
        );
    }
    let found = store
        .tokens
        .get(value)
        .filter(|token| !token.revoked)
        .map(|token| (token.kind, token.grant, token.audience));
    let revoked = match found {
        // A refresh token takes the tokens it stands for along (§2.1): its grant's tokens for that resource server.
        Some((TokenKind::Refresh, grant, audience)) => store.revoke_tokens(grant, |token| token.audience == audience),
        Some((TokenKind::Access, _, _)) => {
            if let Some(token) = store.tokens.get_mut(value) {
                token.revoked = true;
            }
            1
        }
        None => 0,
    };
    if revoked > 0 {
        store.counters.revocations += 1;
    }
    tracing::info!(revoked, "demo: revocation request");
    json_no_store(StatusCode::OK, &json!({"active": false}))
}

/// RFC 7662, shaped like `auth.token_introspect.json`. Only access tokens are reported active.
async fn introspect(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let params = match authenticate(&shared, &headers, &body) {
        Ok(params) => params,
        Err(err) => return err.response(shared.config.flavor),
    };
    let (value, include) = match (params.get("token"), params.get("include")) {
        (Ok(Some(value)), Ok(include)) => (value, include.unwrap_or_default()),
        (Ok(None), _) => return OAuthError::invalid_request("token is required").response(shared.config.flavor),
        (Err(duplicate), _) | (_, Err(duplicate)) => {
            return OAuthError::from(duplicate).response(shared.config.flavor);
        }
    };
    let store = shared.store();
    let now = SystemTime::now();
    let Some(token) = store
        .tokens
        .get(value)
        .filter(|token| token.kind == TokenKind::Access && token.is_active(now))
    else {
        return json_no_store(StatusCode::OK, &json!({"active": false}));
    };
    let Some(grant) = store.grants.get(&token.grant) else {
        return json_no_store(StatusCode::OK, &json!({"active": false}));
    };
    let (username, name, email) = match grant.subject {
        Subject::User(identity) => (
            identity.username.to_owned(),
            json!(identity.name),
            json!(identity.email),
        ),
        Subject::Client(ref client_id) => (format!("{client_id}@clients.auth.globus.org"), Value::Null, Value::Null),
    };
    let mut audiences: Vec<&str> = match token.audience {
        Audience::ResourceServer(rs) => vec![rs],
        Audience::Any => scope::by_resource_server(&token.scopes)
            .iter()
            .map(|(rs, _)| *rs)
            .collect(),
    };
    audiences.push(&grant.client_id);
    let mut body = json!({
        "active": true,
        "token_type": "Bearer",
        "scope": scope::join(&token.scopes),
        "client_id": grant.client_id,
        "username": username,
        "name": name,
        "email": email,
        "exp": token.expires_at.map(unix),
        "iat": unix(token.issued_at),
        "nbf": unix(token.issued_at),
        "sub": grant.subject.sub(),
        "aud": audiences,
        "iss": shared.issuer,
    });
    if include.split(',').any(|item| item.trim() == "identity_set") {
        body["identity_set"] = json!([grant.subject.sub()]);
    }
    json_no_store(StatusCode::OK, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(valid_verifier(verifier));
        assert_eq!(s256(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        assert!(!valid_verifier("short"));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = STANDARD.encode("my%20client:s%3Acret+x");
        assert_eq!(decode_basic(&header), Some(("my client".into(), "s:cret x".into())));
        assert_eq!(decode_basic("not base64!"), None);
    }
}
