//! The browser-facing half of Globus Auth: discovery, JWKS, the authorize endpoint with its consent page, the
//! consent decision, and userinfo.
//!
//! Driving the consent page from a test: `GET /v2/oauth2/authorize?...` answers 200 with a page whose form holds the
//! pending request in `<input type="hidden" name="request_id" value="...">` and one radio `identity` per demo
//! identity (the value is its `sub`). `POST /v2/oauth2/authorize/decision` with the form fields `request_id`,
//! `identity` and `decision=allow` (or `deny`) answers 303 to the client's redirect URI with `code`, `state` and `iss`
//! (or `error=access_denied`). A `request_id` is good for one decision within ten minutes.

use std::{sync::Arc, time::SystemTime};

use axum::{
    Router,
    body::Bytes,
    extract::{RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use url::Url;

use super::{
    Shared,
    data::{self, IDENTITIES, IDENTITY_PROVIDER, IDENTITY_PROVIDER_DISPLAY_NAME},
    html::{error_page, escape, page},
    id_token::{EVIL_ISSUER, IdentitySetEntry},
    scope::{self, AUTH_RS, OPENID},
    store::{Authorization, Subject},
    wire::{Params, bearer, json, json_no_store},
};

pub(crate) const AUTHORIZE_PATH: &str = "/v2/oauth2/authorize";
const DECISION_PATH: &str = "/v2/oauth2/authorize/decision";
/// The name the consent page gives the one registered client.
const CLIENT_NAME: &str = "onbehalf";

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwk.json", get(jwks))
        .route(AUTHORIZE_PATH, get(authorize))
        .route(DECISION_PATH, axum::routing::post(decide))
        .route("/v2/oauth2/userinfo", get(userinfo).post(userinfo))
}

/// OpenID Connect Discovery 1.0 §3, with the endpoint paths Globus Auth uses.
async fn discovery(State(shared): State<Arc<Shared>>) -> Response {
    let scopes: &[&str] = &[
        OPENID,
        "profile",
        "email",
        "urn:globus:auth:scope:auth.globus.org:view_identity_set",
        scope::TRANSFER_ALL,
    ];
    json(
        StatusCode::OK,
        &json!({
            "issuer": shared.issuer,
            "authorization_endpoint": shared.url(AUTHORIZE_PATH),
            "token_endpoint": shared.url("/v2/oauth2/token"),
            "userinfo_endpoint": shared.url("/v2/oauth2/userinfo"),
            "jwks_uri": shared.url("/jwk.json"),
            "revocation_endpoint": shared.url("/v2/oauth2/token/revoke"),
            "introspection_endpoint": shared.url("/v2/oauth2/token/introspect"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["EdDSA"],
            "scopes_supported": scopes,
            "claims_supported": [
                "iss", "aud", "sub", "exp", "iat", "nonce", "at_hash", "name", "email", "preferred_username",
                "organization", "identity_provider", "identity_provider_display_name", "last_authentication",
                "identity_set",
            ],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

async fn jwks(State(shared): State<Arc<Shared>>) -> Response {
    let jwks = shared.store().signing_key.jwks();
    match serde_json::to_value(&jwks) {
        Ok(body) => json(StatusCode::OK, &body),
        Err(err) => {
            tracing::error!("demo: cannot serialise the JWKS: {err}");
            json(StatusCode::INTERNAL_SERVER_ERROR, &json!({"error": "server_error"}))
        }
    }
}

/// The `iss` an authorization response carries (RFC 9207), or the wrong one when the fault is on.
fn callback_iss(shared: &Shared) -> String {
    if shared.store().switches.callback_iss_fault {
        EVIL_ISSUER.to_owned()
    } else {
        shared.issuer.clone()
    }
}

/// A redirect to the client carrying `pairs` after whatever query its redirect URI already has (RFC 6749 §3.1.2).
fn to_client(redirect_uri: &str, pairs: &[(&str, Option<&str>)], status: StatusCode) -> Response {
    let Ok(mut url) = Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "The redirect URI is not a valid URL.");
    };
    {
        let mut query = url.query_pairs_mut();
        for (name, value) in pairs {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (status, [(header::LOCATION, location)]).into_response(),
        Err(_) => error_page(StatusCode::BAD_REQUEST, "The redirect URI cannot be used."),
    }
}

/// An error answered to the client by redirect (RFC 6749 §4.1.2.1).
fn error_redirect(
    shared: &Shared,
    redirect_uri: &str,
    error: &str,
    description: &str,
    state: Option<&str>,
    status: StatusCode,
) -> Response {
    tracing::info!(error, description, "demo: authorization refused");
    let iss = callback_iss(shared);
    to_client(
        redirect_uri,
        &[
            ("error", Some(error)),
            ("error_description", Some(description)),
            ("state", state),
            ("iss", Some(&iss)),
        ],
        status,
    )
}

/// Any absolute http(s) URI without a fragment (RFC 6749 §3.1.2): the app's port varies in tests, so the demo's one
/// client has no registered list; the code is bound to the URI instead.
fn valid_redirect_uri(uri: &str) -> Option<Url> {
    let url = Url::parse(uri).ok()?;
    let ok = matches!(url.scheme(), "http" | "https") && url.host().is_some() && url.fragment().is_none();
    ok.then_some(url)
}

/// A base64url SHA-256 digest: 43 characters (RFC 7636 §4.2).
fn valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn authorize(State(shared): State<Arc<Shared>>, RawQuery(query): RawQuery) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    // Until client and redirect URI are known good, errors are shown here and never redirected: redirecting to an
    // unchecked URI would make the demo an open redirector (RFC 6749 §4.1.2.1).
    let client_id = match params.get("client_id") {
        Ok(Some(id)) if id == shared.config.client_id => id,
        Ok(Some(_)) => return error_page(StatusCode::BAD_REQUEST, "Unknown client_id."),
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The request has no client_id."),
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "client_id was given more than once."),
    };
    let redirect = match params.get("redirect_uri") {
        Ok(Some(uri)) => match valid_redirect_uri(uri) {
            Some(url) => url,
            None => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "The redirect_uri is not an absolute http(s) URI.",
                );
            }
        },
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "The request has no redirect_uri."),
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "redirect_uri was given more than once."),
    };
    let redirect_uri = params.get("redirect_uri").ok().flatten().unwrap_or_default();
    let state = params.get("state").ok().flatten();
    let fail = |error: &str, description: &str| {
        error_redirect(&shared, redirect_uri, error, description, state, StatusCode::FOUND)
    };
    if let Some(name) = params.first_duplicate() {
        return fail(
            "invalid_request",
            &format!("The parameter {name} was given more than once"),
        );
    }
    let get = |name: &str| params.get(name).ok().flatten();
    match get("response_type") {
        Some("code") => {}
        Some(_) => return fail("unsupported_response_type", "Only response_type=code is supported"),
        None => return fail("invalid_request", "response_type is required"),
    }
    let scopes = match get("scope").map(scope::parse) {
        Some(Ok(scopes)) => scopes,
        Some(Err(description)) => return fail("invalid_scope", &description),
        None => return fail("invalid_scope", "scope is required"),
    };
    // PKCE is required for every client (OAuth 2.0 Security BCP §2.1.1), and only S256 (RFC 7636 §4.2).
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, _) => return fail("invalid_request", "PKCE is required: code_challenge is missing"),
        (Some(_), None) => {
            return fail(
                "invalid_request",
                "PKCE is required: code_challenge_method must be S256",
            );
        }
        (Some(_), Some(method)) if method != "S256" => {
            return fail(
                "invalid_request",
                "Unsupported code_challenge_method: only S256 is accepted",
            );
        }
        (Some(challenge), Some(_)) if !valid_s256_challenge(challenge) => {
            return fail(
                "invalid_request",
                "code_challenge must be a base64url SHA-256 digest (43 characters)",
            );
        }
        (Some(challenge), Some(_)) => challenge.to_owned(),
    };
    let offline = match get("access_type") {
        None | Some("online") => false,
        Some("offline") => true,
        Some(_) => return fail("invalid_request", "access_type must be online or offline"),
    };
    let authorization = Authorization {
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scopes,
        state: state.map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        code_challenge,
        offline,
    };
    let request_id = shared.store().add_pending(authorization.clone(), SystemTime::now());
    tracing::info!(client_id, offline, "demo: consent page shown");
    let body = consent_body(&shared, &authorization, &redirect, &request_id);
    let origin = redirect.origin().ascii_serialization();
    page(
        StatusCode::OK,
        "Demo Globus — Allow onbehalf to act for you?",
        &body,
        Some(&origin),
    )
}

fn consent_body(shared: &Shared, authorization: &Authorization, redirect: &Url, request_id: &str) -> String {
    let mut scopes = String::new();
    for scope in &authorization.scopes {
        scopes.push_str(&format!(
            "<li>{} <code>{}</code></li>",
            escape(scope.description),
            escape(scope.base)
        ));
        for collection in &scope.data_access {
            let name = data::endpoint(collection).map_or("a collection", |e| e.display_name.as_str());
            scopes.push_str(&format!(
                "<li>Reach your data on {} <code>{}</code></li>",
                escape(name),
                escape(&scope::data_access_scope(collection))
            ));
        }
    }
    let mut identities = String::new();
    for (at, identity) in IDENTITIES.iter().enumerate() {
        identities.push_str(&format!(
            "<label><input type=\"radio\" name=\"identity\" value=\"{}\"{}> {} ({})</label>",
            escape(identity.sub),
            if at == 0 { " checked" } else { "" },
            escape(identity.name),
            escape(identity.username),
        ));
    }
    let offline = if authorization.offline {
        "<p class=\"note\">It asks to keep acting for you while you are away (refresh tokens).</p>"
    } else {
        ""
    };
    format!(
        "<h1>Demo Globus — Allow {client} to act for you?</h1>\
         <p><span class=\"client\">{client}</span> (client <code>{client_id}</code>) asks to:</p>\
         <ul>{scopes}</ul>{offline}\
         <p class=\"note\">Your answer returns you to <code>{origin}</code>.</p>\
         <form method=\"post\" action=\"{action}\">\
         <input type=\"hidden\" name=\"request_id\" value=\"{request_id}\">\
         <fieldset><legend>Sign in as</legend>{identities}</fieldset>\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Allow</button>\
         <button type=\"submit\" name=\"decision\" value=\"deny\">Deny</button>\
         </form>\
         <p class=\"note\">This is the demo identity provider: pick any identity, no password is needed.</p>",
        client = escape(CLIENT_NAME),
        client_id = escape(&authorization.client_id),
        origin = escape(&redirect.origin().ascii_serialization()),
        action = escape(&shared.url(DECISION_PATH)),
        request_id = escape(request_id),
    )
}

async fn decide(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let params = Params::parse(&body);
    let field = |name: &str| params.get(name).ok().flatten();
    let allow = match field("decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => return error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
    };
    let Some(identity) = field("identity").and_then(data::identity) else {
        return error_page(StatusCode::BAD_REQUEST, "Choose an identity to sign in as.");
    };
    let Some(request_id) = field("request_id") else {
        return error_page(StatusCode::BAD_REQUEST, "The consent form is incomplete.");
    };
    let now = SystemTime::now();
    // Removed whatever happens next: a consent request is answered once.
    let pending = shared.store().pending.remove(request_id);
    let Some(pending) = pending.filter(|pending| pending.expires_at > now) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            "This consent request has expired or was already answered.",
        );
    };
    let authorization = pending.authorization;
    let redirect_uri = authorization.redirect_uri.clone();
    let state = authorization.state.clone();
    if !allow {
        return error_redirect(
            &shared,
            &redirect_uri,
            "access_denied",
            "The user denied access",
            state.as_deref(),
            StatusCode::SEE_OTHER,
        );
    }
    let code = shared.store().add_code(authorization, identity, now);
    tracing::info!(identity = identity.username, "demo: consent given, code issued");
    let iss = callback_iss(&shared);
    to_client(
        &redirect_uri,
        &[("code", Some(&code)), ("state", state.as_deref()), ("iss", Some(&iss))],
        StatusCode::SEE_OTHER,
    )
}

/// OpenID Connect Core §5.3: the claims of the user an `openid` access token for Globus Auth acts for.
async fn userinfo(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let identity = bearer(&headers).and_then(|token| {
        let store = shared.store();
        let (token, grant) = store.access_token(token, AUTH_RS, SystemTime::now())?;
        if !scope::contains(&token.scopes, OPENID) {
            return None;
        }
        match grant.subject {
            Subject::User(identity) => Some((identity, grant.authenticated_at)),
            Subject::Client(_) => None,
        }
    });
    let Some((identity, authenticated_at)) = identity else {
        return unauthorized(bearer(&headers).is_some());
    };
    json_no_store(
        StatusCode::OK,
        &json!({
            "sub": identity.sub,
            "name": identity.name,
            "email": identity.email,
            "preferred_username": identity.username,
            "organization": identity.organization,
            "identity_provider": IDENTITY_PROVIDER,
            "identity_provider_display_name": IDENTITY_PROVIDER_DISPLAY_NAME,
            "identity_set": [IdentitySetEntry::new(identity, authenticated_at)],
        }),
    )
}

/// The 401 of `auth.userinfo.unauthorized.json`, with the challenge of RFC 6750 §3.
fn unauthorized(token_given: bool) -> Response {
    let mut response = json(
        StatusCode::UNAUTHORIZED,
        &json!({
            "errors": [{
                "status": "401",
                "id": uuid::Uuid::new_v4().to_string(),
                "code": "UNAUTHORIZED",
                "detail": "Call must be authenticated",
                "title": "Unauthorized",
            }],
            "error_description": "Unauthorized",
            "error": "unauthorized",
        }),
    );
    // RFC 6750 §3.1: no error code when the request carried no token at all.
    let challenge = if token_given {
        "Bearer error=\"invalid_token\""
    } else {
        "Bearer"
    };
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_http_without_fragment() {
        assert!(valid_redirect_uri("http://127.0.0.1:8080/callback?x=1").is_some());
        assert!(valid_redirect_uri("https://app.example/cb").is_some());
        assert!(valid_redirect_uri("/callback").is_none());
        assert!(valid_redirect_uri("javascript:alert(1)").is_none());
        assert!(valid_redirect_uri("https://app.example/cb#frag").is_none());
    }
}
