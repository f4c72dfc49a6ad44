//! The OAuth legs of linking (DESIGN §3 "Link", "Reconnect / grant more access"; RFC 9700 for clients).
//!
//! `start`: a signed-in user's POST creates a flow — state (CSPRNG, stored hashed, single use, bound to the
//! session, 10-minute TTL), PKCE S256 verifier, OIDC nonce — and returns the provider's authorization URL.
//! `complete`: the callback consumes the flow, checks it belongs to this session and is fresh, handles `error=`,
//! checks `iss` (RFC 9207), exchanges the code with client authentication, verifies the ID token, resolves the
//! identity, then writes account, token sets and audit event in one transaction.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use openidconnect::{Nonce, PkceCodeChallenge};
use rand::RngCore;
use url::Url;

use super::{
    FLOW_TTL_MS, LinkError, LinkIntent,
    repo::{self, Consumed, FlowRow},
    status,
};
use crate::{
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    db::{Db, is_unique_violation, now_ms},
    digest::sha256_hex,
    providers::{
        Catalog, Provider, id_token,
        identity::{self, ExternalIdentity},
        revocation::{self, TokenKind},
        token_endpoint::{self, TokenEndpointError, TokenResponse},
    },
    tokens::{repo as tokens, vault::Vault},
    webhooks::outbox,
};

/// What linking needs, taken from the app state (`AppState::linker`): the database, the vault, the providers, the
/// outbound client, and the public origin the callback URL is made of. Cheap to clone (a reconnect revokes the
/// tokens it replaced on a task of its own).
#[derive(Clone)]
pub struct Linker {
    pub db: Db,
    pub vault: Arc<Vault>,
    pub catalog: Arc<Catalog>,
    pub http: reqwest::Client,
    pub origin: String,
}

impl Linker {
    fn revoker(&self) -> super::disconnect::Revoker<'_> {
        super::disconnect::Revoker {
            db: &self.db,
            vault: &self.vault,
            catalog: &self.catalog,
            http: &self.http,
        }
    }
}

/// Where the user lands after linking unless the form names another local path.
pub const DEFAULT_RETURN: &str = "/linked-accounts";

/// `{public_url}/oauth/{provider}/callback`, exactly (registered at the provider).
pub fn redirect_uri(linker: &Linker, provider_id: &str) -> String {
    format!("{}/oauth/{provider_id}/callback", linker.origin)
}

/// A local path, or the default: never another origin (`//host`, `/\host`, `https:`), never a control character.
pub fn local_return_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && p.len() <= 512 =>
        {
            p.to_owned()
        }
        _ => DEFAULT_RETURN.to_owned(),
    }
}

/// What the user asked for at start.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub intent: LinkIntent,
    pub account_id: Option<String>,
    /// Scopes the form names. Only required, granted and consent-required ones may be named (they are asked for
    /// anyway): a form cannot make the user grant this client something the site never asks for.
    pub extra_scopes: Vec<String>,
    pub return_to: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("reconnect and grant need an account of yours")]
    NoSuchAccount,
    #[error("the provider's endpoints are not available: {0}")]
    Provider(String),
    #[error("scope `{0}` is not one this site asks for here")]
    ScopeNotOffered(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Creates the flow and returns the URL to send the browser to.
pub async fn start(
    linker: &Linker,
    provider: &Provider,
    user_id: i64,
    session_id: &str,
    request: StartRequest,
) -> Result<Url, StartError> {
    let endpoints = provider
        .endpoints(&linker.http)
        .await
        .map_err(|e| StartError::Provider(e.to_string()))?;
    let mut scopes = provider.scopes.clone();
    if request.intent != LinkIntent::Link {
        // DESIGN §3: required ∪ already granted ∪ newly required, so a reconnect never narrows the grant.
        let account_id = request.account_id.as_deref().ok_or(StartError::NoSuchAccount)?;
        let mut conn = linker.db.pool.acquire().await?;
        let account = repo::find_for_user(&mut conn, account_id, user_id)
            .await?
            .filter(|a| a.provider == provider.id)
            .ok_or(StartError::NoSuchAccount)?;
        // What the provider said is missing (needs_consent): "Grant access" asks for it without the browser
        // having to carry the scopes.
        scopes.extend(super::repo::consent_scopes_in(&mut conn, &account.id).await?);
        drop(conn);
        for meta in tokens::metadata_for_user(&linker.db.pool, user_id).await? {
            if meta.account_id == account.id {
                scopes.extend(meta.scopes.split_whitespace().map(str::to_owned));
            }
        }
    }
    if let Some(other) = request.extra_scopes.iter().find(|s| !scopes.contains(s)) {
        return Err(StartError::ScopeNotOffered(other.chars().take(200).collect()));
    }
    let mut seen = std::collections::HashSet::new();
    scopes.retain(|s| seen.insert(s.clone()));

    let state_token = random_token();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let nonce = provider.uses_id_token().then(|| Nonce::new_random().secret().clone());
    let now = now_ms();
    let flow = FlowRow {
        state_hash: sha256_hex(&state_token),
        session_hash: sha256_hex(session_id),
        user_id,
        provider: provider.id.clone(),
        intent: request.intent,
        account_id: request.account_id.filter(|_| request.intent != LinkIntent::Link),
        pkce_verifier: verifier.secret().clone(),
        nonce: nonce.clone(),
        requested_scopes: scopes.clone(),
        return_to: request.return_to,
        created_at: now,
        expires_at: now + FLOW_TTL_MS,
    };
    repo::insert_flow(&linker.db.pool, &flow).await?;

    let mut url = endpoints.authorization.clone();
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in &provider.authorize_params {
            query.append_pair(key, value);
        }
        // OIDC Core §11: a provider grants `offline_access` (a refresh token) only after the user consented to it
        // explicitly, which `prompt=consent` asks for; without it a strict provider leaves the link without a refresh
        // token. A `prompt` in the provider's entry is the operator's choice and wins.
        if scopes.iter().any(|s| s == super::view::OFFLINE_ACCESS) && !provider.authorize_params.contains_key("prompt")
        {
            query.append_pair("prompt", "consent");
        }
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", &redirect_uri(linker, &provider.id))
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", &state_token)
            .append_pair("code_challenge", challenge.as_str())
            .append_pair("code_challenge_method", "S256");
        if let Some(nonce) = &nonce {
            query.append_pair("nonce", nonce);
        }
    }
    Ok(url)
}

/// 256 bits from the OS CSPRNG, base64url (oauth2's `CsrfToken::new_random` gives 128).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The callback's query parameters. `Debug` hides the code and state: they are credentials until consumed.
#[derive(Default, Clone, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub iss: Option<String>,
    pub error: Option<String>,
}

impl std::fmt::Debug for CallbackParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackParams")
            .field("code", &self.code.as_ref().map(|_| "[redacted]"))
            .field("state", &self.state.as_ref().map(|_| "[redacted]"))
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Linked {
    New { account_id: String },
    Again { account_id: String },
}

/// A refused callback: what to tell the user, plus the facts for the audit event.
#[derive(Debug)]
pub struct Refused {
    pub error: LinkError,
    /// Machine-readable detail for the audit trail and log (e.g. `id_token_wrong_nonce`).
    pub reason: String,
    pub account_id: Option<String>,
}

impl Refused {
    fn new(error: LinkError, reason: impl Into<String>) -> Self {
        Self {
            error,
            reason: reason.into(),
            account_id: None,
        }
    }
}

impl From<sqlx::Error> for Refused {
    fn from(err: sqlx::Error) -> Self {
        let reference = crate::error::AppError::internal(err);
        Refused::new(LinkError::Internal, format!("internal: {reference}"))
    }
}

/// The caller's identity as the callback sees it.
pub struct Caller<'a> {
    pub user_id: Option<i64>,
    pub session_id: Option<&'a str>,
    pub request_id: Option<&'a str>,
}

/// Runs the callback. On refusal, writes the `link_rejected` audit event (when a user is known) and returns why.
pub async fn complete(
    linker: &Linker,
    provider: &Provider,
    caller: Caller<'_>,
    params: CallbackParams,
) -> Result<(Linked, String), Refused> {
    let result = complete_inner(linker, provider, &caller, params).await;
    if let (Err(refused), Some(user_id)) = (&result, caller.user_id) {
        let mut event = NewEvent::by_user(AuditAction::LinkRejected, Outcome::Rejected, user_id);
        event.provider = Some(&provider.id);
        event.account_id = refused.account_id.as_deref();
        event.request_id = caller.request_id;
        event.details = serde_json::json!({ "error": refused.error.code(), "reason": refused.reason });
        tracing::info!(provider = %provider.id, error = refused.error.code(), reason = %refused.reason, "link refused");
        if let Ok(mut conn) = linker.db.pool.acquire().await
            && let Err(err) = audit::record(&mut conn, &event, now_ms()).await
        {
            tracing::error!("recording link_rejected failed: {err}");
        }
    }
    result
}

async fn complete_inner(
    linker: &Linker,
    provider: &Provider,
    caller: &Caller<'_>,
    params: CallbackParams,
) -> Result<(Linked, String), Refused> {
    let state_token = params
        .state
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Refused::new(LinkError::StateMissing, "state_missing"))?;
    let now = now_ms();
    // Bound to the session and user that started it: a callback URL planted in another browser goes nowhere.
    let other_session = || Refused::new(LinkError::StateOtherSession, "state_other_session");
    let (Some(session_id), Some(user_id)) = (caller.session_id, caller.user_id) else {
        return Err(other_session());
    };
    let session_hash = sha256_hex(session_id);
    let owner = repo::FlowOwner {
        session_hash: &session_hash,
        user_id,
        provider: &provider.id,
    };
    let flow = match repo::consume_flow(&linker.db.pool, &sha256_hex(state_token), &owner, now).await? {
        Consumed::Fresh(flow) => *flow,
        Consumed::Replayed => return Err(Refused::new(LinkError::StateReplayed, "state_replayed")),
        Consumed::NotYours => return Err(other_session()),
        Consumed::Unknown => return Err(Refused::new(LinkError::StateUnknown, "state_unknown")),
    };
    let refuse = |error: LinkError, reason: &str| Refused {
        error,
        reason: reason.to_owned(),
        account_id: flow.account_id.clone(),
    };
    if now > flow.expires_at {
        return Err(refuse(LinkError::StateExpired, "state_expired"));
    }
    if let Some(error) = params.error.as_deref() {
        return Err(match error {
            "access_denied" => refuse(LinkError::AccessDenied, "access_denied"),
            other => refuse(
                LinkError::ProviderError,
                &format!("provider_error:{}", printable(other)),
            ),
        });
    }
    let endpoints = provider
        .endpoints(&linker.http)
        .await
        .map_err(|e| refuse(LinkError::ProviderUnavailable, &format!("discovery: {e}")))?;
    // RFC 9207 §2.4: compare `iss` when present; require it when the provider advertises it (mix-up defence).
    match (params.iss.as_deref(), provider.issuer.as_deref()) {
        (Some(iss), Some(expected)) if iss != expected => {
            return Err(refuse(LinkError::IssuerMismatch, "iss_mismatch"));
        }
        (None, Some(_)) if endpoints.iss_parameter_supported => {
            return Err(refuse(LinkError::IssuerMismatch, "iss_missing"));
        }
        _ => {}
    }
    let code = params
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| refuse(LinkError::CodeMissing, "code_missing"))?;
    let response = token_endpoint::exchange_code(
        &linker.http,
        provider,
        &endpoints.token,
        code,
        &redirect_uri(linker, &provider.id),
        &flow.pkce_verifier,
        &flow.requested_scopes,
    )
    .await
    .map_err(|e| refuse(token_error(&e), &format!("token_endpoint: {e}")))?;
    let identity = if provider.uses_id_token() {
        let raw = response
            .id_token
            .as_deref()
            .ok_or_else(|| refuse(LinkError::IdTokenInvalid, id_token::IdTokenError::Missing.code()))?;
        let claims = id_token::verify(
            provider,
            &endpoints,
            &linker.http,
            raw,
            flow.nonce.as_deref().unwrap_or(""),
        )
        .await
        .map_err(|e| match e {
            id_token::IdTokenError::Jwks(_) => refuse(LinkError::ProviderUnavailable, e.code()),
            e => refuse(LinkError::IdTokenInvalid, e.code()),
        })?;
        identity::from_id_token(&claims)
    } else {
        identity::resolve_without_id_token(&linker.http, provider, &endpoints, &response)
            .await
            .map_err(|e| refuse(LinkError::IdentityUnavailable, &format!("identity: {e}")))?
    };
    match store(linker, provider, &flow, &identity, &response, caller.request_id).await {
        Ok(linked) => Ok((linked, flow.return_to)),
        Err(mut refused) => {
            // Tokens we will not keep are given back: no live grant is left behind for an identity that was refused.
            // Unless giving them back would end the grant another link of this identity lives on (at Google one
            // revocation ends every token of the user's grant to this client, and the identity is linked here).
            let method = revocation::Method::of(provider, &endpoints).single_token();
            if provider.revocation_ends_grant && identity_is_linked(linker, provider, &identity.subject).await {
                refused.reason = format!(
                    "{} (tokens not revoked: that would end the grant another link of this identity uses)",
                    refused.reason
                );
            } else if method != revocation::Method::NotOffered {
                let revoked = revoke_all(linker, provider, &method, &response).await;
                refused.reason = format!("{} (tokens revoked: {revoked})", refused.reason);
            }
            Err(refused)
        }
    }
}

/// Whether an account is linked to `subject` at `provider` (a database error counts as yes: revoking then could
/// break a link, keeping the tokens only leaves them to expire).
async fn identity_is_linked(linker: &Linker, provider: &Provider, subject: &str) -> bool {
    let Ok(mut conn) = linker.db.pool.acquire().await else {
        return true;
    };
    !matches!(repo::find_by_subject(&mut conn, &provider.id, subject).await, Ok(None))
}

/// Revokes every token of a response (refresh tokens first: at most providers that ends the whole grant);
/// returns how many the provider accepted.
async fn revoke_all(
    linker: &Linker,
    provider: &Provider,
    method: &revocation::Method,
    response: &TokenResponse,
) -> usize {
    let refresh = response
        .sets
        .iter()
        .filter_map(|s| s.refresh_token.as_ref().map(|t| (t, TokenKind::Refresh)));
    let access = response.sets.iter().map(|s| (&s.access_token, TokenKind::Access));
    let mut revoked = 0;
    for (token, kind) in refresh.chain(access).filter(|(_, kind)| method.takes(*kind)) {
        match revocation::revoke(&linker.http, provider, method, token, kind).await {
            Ok(()) => revoked += 1,
            Err(err) => tracing::warn!(provider = %provider.id, "revoking a refused link's token failed: {err}"),
        }
    }
    revoked
}

fn token_error(err: &TokenEndpointError) -> LinkError {
    match err {
        e if e.is_invalid_grant() => LinkError::CodeRejected,
        e if e.is_client_error() => LinkError::ClientRejected,
        e if e.is_transient() => LinkError::ProviderUnavailable,
        TokenEndpointError::Rejected { .. } => LinkError::ProviderError,
        _ => LinkError::ProviderBadResponse,
    }
}

/// Provider-chosen text goes to the audit trail only as a short printable token (fuzzed: `fuzz/`).
pub fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(64)
        .collect()
}

/// Account, token sets, audit event and webhook in one transaction.
async fn store(
    linker: &Linker,
    provider: &Provider,
    flow: &FlowRow,
    identity: &ExternalIdentity,
    response: &TokenResponse,
    request_id: Option<&str>,
) -> Result<Linked, Refused> {
    let now = now_ms();
    let mut tx = linker.db.begin_write().await?;
    let existing = repo::find_by_subject(&mut tx, &provider.id, &identity.subject).await?;
    let linked = match (flow.intent, flow.account_id.as_deref()) {
        (LinkIntent::Link, _) => match existing {
            Some(account) if account.user_id != flow.user_id => {
                return Err(Refused::new(LinkError::IdentityTaken, "identity_owned_by_another_user"));
            }
            Some(account) => Linked::Again { account_id: account.id },
            None => Linked::New {
                account_id: uuid::Uuid::new_v4().to_string(),
            },
        },
        (_, Some(account_id)) => {
            let account = repo::find_for_user(&mut tx, account_id, flow.user_id)
                .await?
                .ok_or_else(|| Refused::new(LinkError::AccountGone, "account_gone"))?;
            if account.subject != identity.subject {
                return Err(Refused {
                    error: LinkError::SubjectMismatch,
                    reason: "different_subject".into(),
                    account_id: Some(account.id),
                });
            }
            Linked::Again { account_id: account.id }
        }
        (_, None) => return Err(Refused::new(LinkError::AccountGone, "account_gone")),
    };
    let (account_id, new) = match &linked {
        Linked::New { account_id } => (account_id.as_str(), true),
        Linked::Again { account_id } => (account_id.as_str(), false),
    };
    let stored = status::Stored {
        user_id: flow.user_id,
        provider: &provider.id,
        account_id,
        intent: flow.intent,
        new,
        details: serde_json::json!({
            "intent": flow.intent.as_str(),
            "resource_servers": response.sets.iter().map(|s| serde_json::json!({
                "resource_server": s.resource_server, "scopes": s.scopes,
            })).collect::<Vec<_>>(),
        }),
        request_id,
    };
    if new {
        match status::create(&mut tx, &stored, identity, now).await {
            Ok(()) => {}
            // Another user linked this identity a moment ago.
            Err(e)
                if is_unique_violation(
                    &e,
                    "linked_accounts_provider_subject_key",
                    "linked_accounts.provider, linked_accounts.subject",
                ) =>
            {
                return Err(Refused::new(LinkError::IdentityTaken, "identity_owned_by_another_user"));
            }
            Err(e) => return Err(e.into()),
        }
    } else {
        status::reactivate(&mut tx, account_id, identity, now).await?;
    }
    let whose = if new {
        tokens::Account::New
    } else {
        tokens::Account::Existing
    };
    let replaced = tokens::store_issued(&mut tx, &linker.vault, account_id, whose, &response.sets, now).await?;
    // What the reconnect replaced is given back to the provider: an older refresh token must not outlive the link.
    let label = super::label(&identity.username, &identity.email, &identity.name, &identity.subject);
    let queued = super::disconnect::queue_replaced(
        &mut tx,
        &linker.vault,
        provider,
        flow.user_id,
        account_id,
        label,
        &replaced,
        &response.sets,
        now,
    )
    .await?;
    status::announce_link(&mut tx, &linker.catalog, stored, now).await?;
    tx.commit().await?;
    outbox::committed();
    if queued > 0 {
        // On a task of its own: the reconnect's answer does not wait for the provider.
        let (linker, user_id, account_id) = (linker.clone(), flow.user_id, account_id.to_owned());
        tokio::spawn(async move { super::disconnect::revoke_replaced(linker.revoker(), user_id, &account_id).await });
    }
    Ok(linked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_paths_stay_local() {
        assert_eq!(local_return_path(Some("/actions?x=1")), "/actions?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "evil",
            "/a\nb",
            "",
        ] {
            assert_eq!(local_return_path(Some(bad)), DEFAULT_RETURN, "{bad:?}");
        }
        assert_eq!(local_return_path(None), DEFAULT_RETURN);
    }

    #[test]
    fn state_tokens_are_long_and_unique() {
        let a = random_token();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_token());
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
