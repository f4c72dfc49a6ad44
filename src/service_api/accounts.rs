//! `GET /api/v1/accounts` and `POST /api/v1/accounts/{account}/token`.

use axum::{
    Json,
    extract::{
        Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, ApiPath, Audit, Caller, ErrorBody, user_disabled};
use crate::{
    accounts::LinkedAccountView,
    audit::{AuditAction, Outcome, repo::NewEvent},
    auth,
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The platform's own id of the user (a platform user, as named in connect sessions).
    external_id: Option<String>,
    /// Or: the user's onbehalf id, or email.
    user: Option<String>,
}

/// The user a call names: by the platform's `external_id`, else by onbehalf id or email (`user`). Reads never
/// create a user: an unknown one is `user_not_found`.
pub(crate) async fn named_user(
    state: &AppState,
    external_id: Option<&str>,
    user: Option<&str>,
) -> Result<auth::repo::UserRow, ApiError> {
    let found = match (external_id, user) {
        // One that could never have been made names nobody (and a NUL byte never reaches PostgreSQL).
        (Some(external_id), None) if auth::validate_external_id(external_id).is_err() => None,
        (Some(external_id), None) => auth::repo::find_by_external_id(&state.db.pool, external_id)
            .await
            .map_err(ApiError::internal)?,
        (None, Some(user)) => match auth::repo::find_by_id_or_email(&state.db.pool, user).await {
            Ok(found) => found,
            Err(auth::repo::UserRefError::NotARef) => None,
            Err(auth::repo::UserRefError::Db(e)) => return Err(ApiError::internal(e)),
        },
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Name the user: ?external_id=<the platform's id>, or ?user=<onbehalf id or email>.",
            ));
        }
    };
    found.ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "No such user."))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountsResponse {
    pub user: auth::UserRef,
    /// The user's accounts at the providers the key may use.
    pub accounts: Vec<LinkedAccountView>,
}

/// A user's linked accounts.
///
/// The accounts at the providers the key may use, with status and consent status per resource server; never a
/// token. (The user is a query parameter, not a path segment: request paths are logged, and an email is personal
/// data.)
#[utoipa::path(
    get,
    path = "/api/v1/accounts",
    tag = "accounts",
    params(ListQuery),
    responses(
        (status = 200, description = "The user's accounts", body = AccountsResponse),
        (status = 400, description = "No user named, or named twice", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The user is disabled", body = ErrorBody),
        (status = 404, description = "No such user", body = ErrorBody),
    )
)]
pub(crate) async fn list_accounts(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(ListQuery { external_id, user }) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Name the user: ?external_id=<the platform's id>, or ?user=<onbehalf id or email>.",
        )
    })?;
    let audit = Audit::new(&state, &key, &headers);
    let user = named_user(&state, external_id.as_deref(), user.as_deref()).await?;
    let event = NewEvent::by_user(AuditAction::ServiceAccountsListed, Outcome::Success, user.id);
    if user.is_disabled() {
        return Err(audit.refused(event, user_disabled()).await);
    }
    let page = crate::accounts::service::linked_accounts(&state.db, &state.catalog, user.id)
        .await
        .map_err(ApiError::internal)?;
    let accounts: Vec<_> = page
        .accounts
        .into_iter()
        .filter(|a| key.allows(&a.provider_id))
        .collect();
    let mut event = event;
    event.details = json!({ "accounts": accounts.len() });
    audit.record(event).await?;
    let body = AccountsResponse {
        user: auth::UserRef::from(&user),
        accounts,
    };
    Ok(Json(body).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The resource server the token is for, e.g. `transfer.api.globus.org`.
    resource_server: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Unix milliseconds; absent when the provider gave no lifetime.
    pub expires_at: Option<i64>,
    pub scopes: Vec<String>,
    pub resource_server: String,
    pub account_id: String,
    pub provider: String,
}

/// A valid access token.
///
/// The token of (account, resource server), refreshed first when it is due: exactly once however many ask at the
/// same moment, through the same path as every other use of the user's token.
#[utoipa::path(
    post,
    path = "/api/v1/accounts/{account}/token",
    tag = "accounts",
    params(("account" = String, Path, description = "The linked account's id")),
    request_body = TokenRequest,
    responses(
        (status = 200, description = "A valid access token (`Cache-Control: no-store`)", body = TokenResponse),
        (status = 400, description = "The body is not a token request", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key may not use this provider, or the user is disabled", body = ErrorBody),
        (status = 404, description = "No such account, or no token for that resource server", body = ErrorBody),
        (status = 409, description = "The user must reconnect the account or grant consent", body = ErrorBody),
        (status = 503, description = "The provider is unavailable; retry after `Retry-After`", body = ErrorBody),
    )
)]
pub(crate) async fn token(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    ApiPath(account_id): ApiPath<String>,
    body: Result<Json<TokenRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(TokenRequest { resource_server }) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let audit = Audit::new(&state, &key, &headers);
    let action = AuditAction::ServiceTokenIssued;
    let account = audit
        .usable_account(action, &account_id, Some(&resource_server))
        .await?;
    let mut event = NewEvent::by_user(action, Outcome::Success, account.user_id);
    event.provider = Some(&account.provider);
    event.account_id = Some(&account.id);
    event.resource_server = Some(&resource_server);
    let result = state
        .delegation
        .bearer(account.user_id, &account.id, &resource_server)
        .await;
    if let Err(e) = &result {
        event.outcome = Outcome::Failure;
        event.details = json!({ "error": e.code() });
    }
    audit.record(event).await?;
    let bearer = result?;
    let body = TokenResponse {
        access_token: bearer.secret().expose_secret().to_owned(),
        token_type: "Bearer".to_owned(),
        expires_at: bearer.expires_at,
        scopes: bearer.scopes.clone(),
        resource_server: bearer.resource_server.clone(),
        account_id: bearer.account_id.clone(),
        provider: bearer.provider.clone(),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DisconnectResponse {
    pub account_id: String,
    pub provider: String,
    /// Revocation requests the provider accepted.
    pub revoked: u32,
    /// Tokens the provider did not confirm revoked: queued, retried, shown to the user.
    pub failed: u32,
    /// `complete` (every token revoked), `pending` (some are queued for a retry) or `not_offered` (the provider has
    /// no revocation: the user removes the access in the provider's settings).
    pub revocation: String,
}

/// Disconnect an account.
///
/// The same path as the user's Disconnect button: the account and its tokens are deleted at once (nothing can act
/// with them from then on), and every token is revoked at the provider, refresh tokens first. A revocation the
/// provider does not confirm is kept and retried; the local tokens are gone either way. Allowed for a disabled user
/// too: it only takes access away.
#[utoipa::path(
    delete,
    path = "/api/v1/accounts/{account}",
    tag = "accounts",
    params(("account" = String, Path, description = "The linked account's id")),
    responses(
        (status = 200, description = "Disconnected; what the provider did with the tokens", body = DisconnectResponse),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key may not use this provider", body = ErrorBody),
        (status = 404, description = "No such account (or already disconnected)", body = ErrorBody),
    )
)]
pub(crate) async fn disconnect(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    ApiPath(account_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    use crate::accounts::disconnect::{self, DisconnectError, DisconnectedBy};
    let audit = Audit::new(&state, &key, &headers);
    let gone = || ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such linked account.");
    if !super::plausible_id(&account_id) {
        return Err(gone());
    }
    let account = crate::accounts::repo::find(&state.db.pool, &account_id)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(gone)?;
    if !key.allows(&account.provider) {
        let mut event = NewEvent::by_user(AuditAction::AccountDisconnected, Outcome::Rejected, account.user_id);
        event.provider = Some(&account.provider);
        event.account_id = Some(&account.id);
        let error = ApiError::new(
            StatusCode::FORBIDDEN,
            "provider_not_allowed",
            format!("This API key may not act with {} accounts.", account.provider),
        );
        return Err(audit.refused(event, error).await);
    }
    let by = DisconnectedBy::Platform { key: &key.name };
    let outcome =
        match disconnect::disconnect(state.revoker(), account.user_id, &account.id, by, audit.request_id()).await {
            Ok(outcome) => outcome,
            // A concurrent disconnect won.
            Err(DisconnectError::NotFound) => return Err(gone()),
            Err(DisconnectError::Database(e)) => return Err(ApiError::internal(e)),
        };
    let revocation = if outcome.not_offered {
        "not_offered"
    } else if outcome.failed > 0 {
        "pending"
    } else {
        "complete"
    };
    let body = DisconnectResponse {
        account_id: account.id,
        provider: account.provider,
        revoked: outcome.revoked,
        failed: outcome.failed,
        revocation: revocation.to_owned(),
    };
    Ok(Json(body).into_response())
}
