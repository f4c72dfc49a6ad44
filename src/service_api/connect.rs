//! `POST /api/v1/connect_sessions`: a single-use link that lets a platform's user link or manage their accounts
//! without a password of ours (the rules are in `connect::service`).

use axum::{
    Json,
    extract::{State, rejection::JsonRejection},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiError, Audit, Caller, ErrorBody, user_disabled};
use crate::auth::UserRef;
use crate::{
    audit::{AuditAction, Outcome, repo::NewEvent},
    auth::service::PlatformUser,
    connect::{
        ConnectMode,
        service::{self, ConnectError, NewSession},
    },
    state::AppState,
};

/// The platform's user, as the platform knows them.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformUserRequest {
    /// The platform's own id of the user: 1 to 255 bytes. The user is created on first use.
    external_id: String,
    /// Updated when given.
    email: Option<String>,
    /// Updated when given.
    display_name: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectSessionRequest {
    user: PlatformUserRequest,
    /// `connect`: link an account (straight to `provider`'s consent, or reconnect `account`, else a chooser of the
    /// key's providers) and come back with the result. `manage`: the user's linked-accounts page.
    #[schema(value_type = ConnectMode)]
    mode: String,
    /// `connect` only: the provider to link at.
    provider: Option<String>,
    /// `connect` only: an account of this user to reconnect (or grant more access to).
    account: Option<String>,
    /// Where the browser goes at the end; must start with one of the key's return URL prefixes
    /// (`onbehalf apikey create --return-url`). `connect` adds `result=linked&account=<id>`,
    /// `result=denied&reason=access_denied` or `result=failed&reason=<code>` to its query.
    return_to: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ConnectSessionResponse {
    /// Send the user's browser here (a redirect). Single use.
    pub url: String,
    /// Unix milliseconds after which the URL no longer opens.
    pub expires_at: i64,
    pub user: UserRef,
}

/// Create a connect session.
///
/// A single-use URL, valid for ten minutes (`connect.link_ttl`), that opens a browser session of this platform
/// user limited to their linked-accounts pages and the key's providers, for at most an hour, ending at
/// `return_to`.
#[utoipa::path(
    post,
    path = "/api/v1/connect_sessions",
    tag = "connect",
    request_body = ConnectSessionRequest,
    responses(
        (status = 201, description = "The URL to send the user to", body = ConnectSessionResponse),
        (status = 400, description = "A field is wrong (`field`), or the body is not JSON", body = ErrorBody),
        (status = 401, description = "Missing, unknown or revoked key", body = ErrorBody),
        (status = 403, description = "The key may not use this provider, or the user is disabled", body = ErrorBody),
        (status = 404, description = "No such account of this user", body = ErrorBody),
        (status = 409, description = "Another user has this email", body = ErrorBody),
    )
)]
pub(crate) async fn create_connect_session(
    State(state): State<AppState>,
    Caller(key): Caller,
    headers: HeaderMap,
    body: Result<Json<ConnectSessionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let audit = Audit::new(&state, &key, &headers);
    let new = NewSession {
        user: PlatformUser {
            external_id: &request.user.external_id,
            email: request.user.email.as_deref(),
            display_name: request.user.display_name.as_deref(),
        },
        mode: &request.mode,
        provider: request.provider.as_deref(),
        account: request.account.as_deref(),
        return_to: &request.return_to,
    };
    let created = match service::create(&state, &key, new).await {
        Ok(created) => created,
        Err(e) => return Err(error(e)),
    };
    let mut event = NewEvent::by_user(AuditAction::ConnectSessionCreated, Outcome::Success, created.user.id);
    event.provider = created.provider.as_deref();
    event.account_id = request.account.as_deref();
    event.details = json!({ "mode": created.mode.as_str() });
    audit.record(event).await?;
    let body = ConnectSessionResponse {
        url: created.url,
        expires_at: created.expires_at,
        user: UserRef {
            id: created.user.id,
            external_id: created.user.external_id,
            email: created.user.email,
        },
    };
    Ok((StatusCode::CREATED, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response())
}

fn error(e: ConnectError) -> ApiError {
    match e {
        ConnectError::Invalid(field) => ApiError::invalid(field.field, field.message),
        ConnectError::ProviderNotAllowed(provider) => ApiError::new(
            StatusCode::FORBIDDEN,
            "provider_not_allowed",
            format!("This API key may not act with {provider} accounts."),
        ),
        ConnectError::AccountNotFound => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This user has no such linked account.",
        ),
        ConnectError::UserDisabled => user_disabled(),
        ConnectError::EmailTaken => {
            let mut error = ApiError::new(
                StatusCode::CONFLICT,
                "email_taken",
                "Another user has this email: send another, or none.",
            );
            error.body.field = Some("user.email".to_owned());
            error
        }
        ConnectError::Database(e) => ApiError::internal(e),
        ConnectError::Internal(e) => ApiError::internal(e),
    }
}
