//! The service API (`/api/v1`, JSON) for the platform's own backend: what the invenio use case needs without
//! re-implementing OAuth. A backend authenticates with a key (`keys`), lists a user's linked accounts, gets a
//! valid access token for an account and resource server (refreshed through the same exactly-once path as every
//! other use of a token), and runs a Globus or configured action with a user's account. Every call is audited with
//! the key's name, as an event of the user it concerns.
//!
//! Its OpenAPI document (`/api/v1/openapi.json`) is generated from the handlers and the types they answer with:
//! a route is registered together with its documentation ([`api`]), and `tests/it/service_api.rs` checks the document
//! against the live routes.
//!
//! Not a browser surface: no session, no cookies, so no cross-site request forgery to defend against (the router
//! mounts it outside the Origin check and the session layer).

pub mod accounts;
mod actions;
mod connect;
pub mod keys;
mod users;
mod webhooks;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::FromRequestParts,
    http::{HeaderMap, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{any, get},
};
use serde::Serialize;
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    accounts::repo::AccountRow,
    audit::{
        AuditAction, Outcome,
        repo::{self as audit, NewEvent},
    },
    auth,
    db::now_ms,
    delegation::Unavailable,
    state::AppState,
};
use keys::ApiKey;

/// The document's fixed parts; its paths and schemas come from the handlers registered in [`api`].
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "onbehalf service API",
        description = "For the platform's own backend: a user's linked accounts, fresh access tokens, and actions \
                       at their providers, each call audited with the API key's name. Keys: `onbehalf apikey create`."
    ),
    modifiers(&BearerKey, &WebhookSchemas),
    components(schemas(crate::webhooks::payload::Event)),
    security(("api_key" = [])),
    tags(
        (name = "accounts", description = "Linked accounts and their access tokens"),
        (name = "actions", description = "Acting at a provider with a user's linked account"),
        (name = "connect", description = "Connect sessions: your users link and manage their accounts, no password"),
        (name = "users", description = "Your users' history"),
        (name = "webhooks", description = "Webhook endpoints' health and replays. The events themselves are POSTed \
                                          to your endpoints, signed per Standard Webhooks 1.0: `WebhookEvent` and one \
                                          schema per type below")
    )
)]
struct ApiDoc;

struct BearerKey;

impl utoipa::Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut scheme = Http::new(HttpAuthScheme::Bearer);
        scheme.description = Some("An API key, `obk_…`, from `onbehalf apikey create`.".to_owned());
        components.add_security_scheme("api_key", SecurityScheme::Http(scheme));
    }
}

/// One schema per webhook event type: `WebhookEvent` with `type` fixed and the `data` fields the type always carries
/// required (`EventType::required_data`, the one list of them).
struct WebhookSchemas;

impl utoipa::Modify for WebhookSchemas {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            Ref,
            schema::{AllOfBuilder, ObjectBuilder, Type},
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        for kind in crate::webhooks::EventType::ALL {
            let mut data = ObjectBuilder::new();
            for field in kind.required_data() {
                data = data.required(*field);
            }
            let this = ObjectBuilder::new()
                .property(
                    "type",
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([kind.as_str()])),
                )
                .required("type")
                .property("data", data)
                .required("data");
            let schema = AllOfBuilder::new()
                .item(Ref::from_schema_name("WebhookEvent"))
                .item(this)
                .description(Some(format!("The body of a `{kind}` webhook.")));
            components.schemas.insert(kind.schema_name(), schema.into());
        }
    }
}

/// The service API's routes and the OpenAPI document of exactly those routes.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(accounts::list_accounts))
        .routes(routes!(accounts::token))
        .routes(routes!(accounts::disconnect))
        .routes(routes!(actions::run_action))
        .routes(routes!(connect::create_connect_session))
        .routes(routes!(users::events))
        .routes(routes!(webhooks::list))
        .routes(routes!(webhooks::replay))
        .split_for_parts()
}

pub fn routes() -> Router<AppState> {
    let (router, document) = api();
    let document: Arc<str> = document
        .to_pretty_json()
        .expect("the OpenAPI document serializes")
        .into();
    router
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let document = document.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], document.to_string()) }
            }),
        )
        // An unknown path under the API answers in the API's language, not with the site's HTML page.
        .route("/api/v1/{*rest}", any(unknown_path))
}

async fn unknown_path() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such API path: see /api/v1/openapi.json.",
    )
}

/// Every error answer's body.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `bad_request`, `invalid`, `provider_not_allowed`, `user_disabled`,
    /// `not_found`, `user_not_found`, `email_taken`, `needs_reconnect`, `needs_consent`, `provider_unavailable`,
    /// `busy`, `upstream`, `failed`, `internal`.
    pub error: String,
    /// What happened, for a person.
    pub message: String,
    /// `needs_consent`: the scopes the user must grant (at `/linked-accounts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `provider_unavailable`, `busy`: when to try again (also the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<i64>,
    /// `invalid`, `email_taken`: the parameter at fault (`return_to`, `user.external_id`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// A transfer submission that was recorded before the error (waiting for the user's fix, or for the provider):
    /// rerun `transfer` with `resume` = this id afterwards, so that at most one task starts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<String>,
    /// `upstream`: the provider's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
}

/// An error answer: a status and an [`ErrorBody`].
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: code.to_owned(),
                message: message.into(),
                ..Default::default()
            },
        }
    }

    /// `invalid` (400): the parameter `field` is wrong, and `message` says how.
    fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::BAD_REQUEST, "invalid", message);
        error.body.field = Some(field.into());
        error
    }

    fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!("service API: {err}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
    }

    fn code(&self) -> &str {
        &self.body.error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.body.retry_after_seconds;
        let mut response = (self.status, Json(self.body)).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, "Bearer realm=\"onbehalf\"".parse().unwrap());
        }
        if let Some(retry_after) = retry_after {
            headers.insert(header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

/// Seconds until `retry_at` (Unix ms), rounded up: a client that waits exactly this long finds the cooldown over.
fn seconds_until(retry_at: i64) -> i64 {
    ((retry_at - now_ms() + 999) / 1000).max(1)
}

impl From<Unavailable> for ApiError {
    fn from(u: Unavailable) -> Self {
        let status = match &u {
            Unavailable::NotFound => StatusCode::NOT_FOUND,
            Unavailable::NeedsReconnect { .. } | Unavailable::NeedsConsent { .. } => StatusCode::CONFLICT,
            Unavailable::ProviderUnavailable { .. } | Unavailable::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Unavailable::UserDisabled => StatusCode::FORBIDDEN,
            // Ours to fix, not the caller's: the details (key ids, provider ids) go to the log only.
            Unavailable::KeyNotConfigured(_) | Unavailable::ProviderGone(_) | Unavailable::Internal(_) => {
                return Self::internal(u);
            }
        };
        let mut error = Self::new(status, u.code(), u.to_string());
        match u {
            Unavailable::NeedsConsent { scopes } => error.body.scopes = Some(scopes),
            Unavailable::ProviderUnavailable { retry_at } => {
                error.body.retry_after_seconds = Some(seconds_until(retry_at))
            }
            Unavailable::Busy => error.body.retry_after_seconds = Some(1),
            _ => {}
        }
        error
    }
}

/// A path's parameters, refused in the API's own JSON (`bad_request`) when they do not decode (say, invalid UTF-8
/// in a percent-encoded id) instead of axum's plain-text answer.
pub(crate) struct ApiPath<T>(pub T);

impl<T> FromRequestParts<AppState> for ApiPath<T>
where
    T: serde::de::DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ApiPath(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )),
        }
    }
}

/// The key a request presents, checked: extracting this is what makes a handler require a live key.
pub(crate) struct Caller(ApiKey);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(presented) = crate::http::bearer_credentials(&parts.headers) else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send an API key as `Authorization: Bearer obk_…` (onbehalf apikey create).",
            ));
        };
        match keys::authenticate(&state.db.pool, presented).await {
            Ok(Some(key)) => Ok(Caller(key)),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "This API key is unknown or revoked.",
            )),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// One call's audit: an event about a user, by the key (named in the details; no user acted), with the request id
/// that ties it to the logs.
pub(crate) struct Audit<'a> {
    state: &'a AppState,
    key: &'a ApiKey,
    request_id: Option<String>,
}

impl Audit<'_> {
    fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    fn new<'a>(state: &'a AppState, key: &'a ApiKey, headers: &HeaderMap) -> Audit<'a> {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Audit { state, key, request_id }
    }

    async fn record(&self, mut event: NewEvent<'_>) -> Result<(), ApiError> {
        event.actor_user_id = None;
        event.request_id = self.request_id.as_deref();
        if let Some(details) = event.details.as_object_mut() {
            details.insert("key".into(), self.key.name.clone().into());
        }
        let mut conn = self.state.db.pool.acquire().await.map_err(ApiError::internal)?;
        audit::record(&mut conn, &event, now_ms())
            .await
            .map_err(ApiError::internal)
    }

    /// Records a refused call (`rejected`, with the error code) and hands the error back.
    async fn refused(&self, mut event: NewEvent<'_>, error: ApiError) -> ApiError {
        event.outcome = Outcome::Rejected;
        event.details = serde_json::json!({ "error": error.code() });
        match self.record(event).await {
            Ok(()) => error,
            Err(audit_failed) => audit_failed,
        }
    }

    /// The account a call names, once the key may act with its provider and its user is enabled. A refusal is
    /// recorded as a `rejected` `action` event of the account's user. The key's scope is checked first: a key
    /// learns nothing about the users of providers it may not use.
    async fn usable_account(
        &self,
        action: AuditAction,
        account_id: &str,
        resource_server: Option<&str>,
    ) -> Result<AccountRow, ApiError> {
        if !plausible_id(account_id) {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "No such linked account.",
            ));
        }
        let account = crate::accounts::repo::find(&self.state.db.pool, account_id)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such linked account."))?;
        let mut event = NewEvent::by_user(action, Outcome::Rejected, account.user_id);
        event.provider = Some(&account.provider);
        event.account_id = Some(&account.id);
        event.resource_server = resource_server;
        if !self.key.allows(&account.provider) {
            let error = ApiError::new(
                StatusCode::FORBIDDEN,
                "provider_not_allowed",
                format!("This API key may not act with {} accounts.", account.provider),
            );
            return Err(self.refused(event, error).await);
        }
        let user = auth::repo::find_by_id(&self.state.db.pool, account.user_id)
            .await
            .map_err(ApiError::internal)?;
        if user.is_none_or(|u| u.is_disabled()) {
            return Err(self.refused(event, user_disabled()).await);
        }
        Ok(account)
    }
}

/// Whether an id from a request could name a row: ids are short and printable, and PostgreSQL refuses a NUL byte
/// in text outright (an error, not "no such row").
pub(crate) fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && !id.chars().any(char::is_control)
}

fn user_disabled() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "user_disabled",
        "This user is disabled: nothing is done on their behalf.",
    )
}
