//! `GET /api/v1/accounts` and `POST /api/v1/accounts/{account}/token`.

use axum::{
    Json,
    extract::{
        Path, Query, State,
        rejection::{JsonRejection, QueryRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, Audit, Caller, ErrorBody, user_disabled};
use crate::{
    accounts::LinkedAccountView,
    audit::{AuditAction, Outcome, repo::NewEvent},
    auth,
    state::AppState,
};

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The user's id, or email.
    user: String,
}

/// A user, as the service API names them.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: i64,
    pub email: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AccountsResponse {
    pub user: UserRef,
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
        (status = 400, description = "No user named", body = ErrorBody),
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
    let Query(ListQuery { user }) = query.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Name the user: ?user=<id or email>.",
        )
    })?;
    let audit = Audit::new(&state, &key, &headers);
    let found = match auth::repo::find_by_id_or_email(&state.db.pool, &user).await {
        Ok(found) => found,
        Err(auth::repo::UserRefError::NotARef) => None,
        Err(auth::repo::UserRefError::Db(e)) => return Err(ApiError::internal(e)),
    };
    let Some(user) = found else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "user_not_found", "No such user."));
    };
    let event = NewEvent::by_user(AuditAction::ServiceAccountsListed, Outcome::Success, user.id);
    if user.is_disabled() {
        return Err(audit.refused(event, user_disabled()).await);
    }
    let page = crate::accounts::service::linked_accounts(&state, user.id)
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
        user: UserRef {
            id: user.id,
            email: user.email,
        },
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
    Path(account_id): Path<String>,
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
