//! One delegated API call: a bearer from [`Delegator::bearer`], sent only under the provider's API base URLs,
//! one forced refresh and one retry on a 401, consent errors turned into `needs_consent`, and an audit record
//! (provider, method, host, path template, status, latency; never bodies, tokens or query strings).

use std::{sync::Arc, time::Instant};

use url::Url;

use super::{Bearer, Delegator, Unavailable, consent, refresh, repo};
use crate::{
    audit::calls::CallRecord,
    db::now_ms,
    providers::{
        body::{self, BodyError},
        discovery::describe,
    },
};

/// API answers above this size are refused rather than buffered (`providers::body`).
const MAX_BODY: usize = 8 * 1024 * 1024;

/// What to call, for whom.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    pub user_id: i64,
    pub account_id: &'a str,
    pub resource_server: &'a str,
    pub method: reqwest::Method,
    pub url: Url,
    /// The route with its variable parts named, for the audit (`/v0.10/endpoint/{id}`).
    pub path_template: &'a str,
    pub json: Option<&'a serde_json::Value>,
    pub request_id: Option<&'a str>,
    /// What the call is about, for the audit to say it in words (`("label", "newcomer copy")`, `("action", "My
    /// repositories")`): a transfer's label, a configured action's title, never a body, a token, a path or a query.
    pub about: Vec<(&'static str, String)>,
    /// Top-level string fields of a successful JSON answer the audit keeps with `about` (`task_id`, `label`,
    /// `display_name`), at most 200 characters each.
    pub keep: &'static [&'static str],
}

/// The upstream's answer (any status the caller must interpret; 401 and consent errors never get here).
#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub body: bytes::Bytes,
}

impl ApiResponse {
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error(transparent)]
    Unavailable(#[from] Unavailable),
    /// Refused before sending: DESIGN §4, tokens go only to the provider's API base URLs.
    #[error("{0} is not under the provider's API base URLs; the token was not sent")]
    NotAllowed(String),
    #[error("the provider's API did not answer ({0})")]
    Unreachable(String),
    /// A 401 again after a fresh token: reported, never retried in a loop.
    #[error("the provider refused a freshly refreshed token (HTTP 401)")]
    Unauthorized,
    /// Past [`MAX_BODY`]: the announced size, or what had arrived when reading stopped.
    #[error("the provider's answer was too large (at least {0} bytes; the limit is {limit} MiB)", limit = MAX_BODY / (1024 * 1024))]
    TooLarge(u64),
    /// The provider wants a new sign-in (MFA, another identity) for this resource, not more scopes.
    #[error("the provider asks for a new sign-in before this resource can be used")]
    SessionRequired,
}

impl CallError {
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Unavailable(u) => u.code(),
            CallError::NotAllowed(_) => "not_allowed",
            CallError::Unreachable(_) => "unreachable",
            CallError::Unauthorized => "unauthorized",
            CallError::TooLarge(_) => "too_large",
            CallError::SessionRequired => "session_required",
        }
    }
}

impl Delegator {
    /// Makes `request` with the user's token. Every outcome is audited.
    pub async fn call(self: &Arc<Self>, request: ApiRequest<'_>) -> Result<ApiResponse, CallError> {
        let started = Instant::now();
        let (result, status) = self.call_inner(&request).await;
        let provider = match &result {
            Ok((_, bearer)) | Err((_, Some(bearer))) => bearer.provider.clone(),
            // No bearer (a dead link, an outage's cooldown): the audit and the metrics still name the provider.
            Err(_) => self.provider_of(&request).await,
        };
        let took = started.elapsed();
        let error = result.as_ref().err().map(|(e, _)| e.code());
        crate::metrics::delegated_call(&provider, status, error, took);
        let mut about = request.about.clone();
        if let Ok((response, _)) = &result
            && response.is_success()
            && !request.keep.is_empty()
            && let Ok(serde_json::Value::Object(body)) = response.json::<serde_json::Value>()
        {
            for key in request.keep {
                if let Some(value) = body.get(*key).and_then(|v| v.as_str()) {
                    about.push((key, value.chars().take(200).collect()));
                }
            }
        }
        self.calls
            .record(CallRecord {
                at: now_ms(),
                user_id: request.user_id,
                account_id: request.account_id.to_owned(),
                provider,
                resource_server: request.resource_server.to_owned(),
                method: method_name(&request.method),
                host: request.url.host_str().unwrap_or_default().to_owned(),
                path_template: request.path_template.to_owned(),
                status,
                latency_ms: took.as_secs_f64() * 1000.0,
                error: error.map(str::to_owned),
                request_id: request.request_id.map(str::to_owned),
                about,
            })
            .await;
        result.map(|(response, _)| response).map_err(|(e, _)| e)
    }

    /// The provider of the request's account, or "" when the account is gone (or the database is unreachable).
    async fn provider_of(&self, request: &ApiRequest<'_>) -> String {
        let Ok(mut conn) = self.db.pool.acquire().await else {
            return String::new();
        };
        match crate::accounts::repo::find_for_user(&mut conn, request.account_id, request.user_id).await {
            Ok(Some(account)) => account.provider,
            _ => String::new(),
        }
    }

    #[allow(clippy::type_complexity)]
    async fn call_inner(
        self: &Arc<Self>,
        request: &ApiRequest<'_>,
    ) -> (Result<(ApiResponse, Bearer), (CallError, Option<Bearer>)>, Option<u16>) {
        let mut bearer = match self
            .bearer(request.user_id, request.account_id, request.resource_server)
            .await
        {
            Ok(bearer) => bearer,
            Err(e) => return (Err((e.into(), None)), None),
        };
        let Some(provider) = self.catalog.get(&bearer.provider) else {
            return (
                Err((Unavailable::ProviderGone(bearer.provider.clone()).into(), None)),
                None,
            );
        };
        if !provider.may_receive_token(request.resource_server, &request.url) {
            let shown = format!("{}{}", request.url.origin().ascii_serialization(), request.url.path());
            return (Err((CallError::NotAllowed(shown), Some(bearer))), None);
        }
        let mut retried = false;
        loop {
            let mut builder = self
                .http
                .request(request.method.clone(), request.url.clone())
                .header(reqwest::header::AUTHORIZATION, bearer.authorization())
                .header(reqwest::header::ACCEPT, "application/json");
            if let Some(json) = request.json {
                builder = builder.json(json);
            }
            let response = match builder.send().await {
                Ok(response) => response,
                Err(e) => return (Err((CallError::Unreachable(describe(&e)), Some(bearer))), None),
            };
            let status = response.status().as_u16();
            let www_authenticate = response
                .headers()
                .get(reqwest::header::WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let body = match body::read_capped(response, MAX_BODY).await {
                Ok(body) => body,
                Err(BodyError::TooLarge { size, .. }) => {
                    return (Err((CallError::TooLarge(size), Some(bearer))), Some(status));
                }
                Err(BodyError::Read(reason)) => {
                    return (Err((CallError::Unreachable(reason), Some(bearer))), Some(status));
                }
            };
            if let Some(requirement) = consent::requirement(status, www_authenticate.as_deref(), &body) {
                return (
                    Err((self.consent_needed(&bearer, requirement).await, Some(bearer))),
                    Some(status),
                );
            }
            if status == 401 {
                if retried {
                    // A token refreshed a moment ago is refused too: the provider no longer honours the grant.
                    // Marking the link stops every later call from forcing a refresh of its own.
                    return (Err((self.refused_twice(&bearer).await, Some(bearer))), Some(status));
                }
                retried = true;
                match self.bearer_after_401(&bearer).await {
                    Ok(fresh) => {
                        bearer = fresh;
                        continue;
                    }
                    Err(e) => return (Err((e.into(), Some(bearer))), Some(status)),
                }
            }
            return (Ok((ApiResponse { status, body }, bearer)), Some(status));
        }
    }

    async fn refused_twice(&self, bearer: &Bearer) -> CallError {
        let reason = "The provider refused the account's token even after a refresh. Reconnect the account.";
        match repo::load(&self.db.pool, &bearer.account_id, &bearer.resource_server, None).await {
            // Only if the refused token is still the stored one: a newer version is someone else's fresh result.
            Ok(Some(row)) if row.version != bearer.version => CallError::Unauthorized,
            Ok(Some(row)) => {
                if let Err(e) = refresh::mark_needs_reconnect(self, &row, reason, "unauthorized_after_refresh").await {
                    return Unavailable::from(e).into();
                }
                CallError::Unauthorized
            }
            Ok(None) => Unavailable::NotFound.into(),
            Err(e) => Unavailable::from(e).into(),
        }
    }

    /// Records what the provider asked for and returns the error the caller turns into "Grant access". A demand
    /// for a new session with no scope (MFA, a particular identity) concerns this one resource, not the whole
    /// account: it is the caller's error only, and the account keeps its status.
    async fn consent_needed(&self, bearer: &Bearer, requirement: consent::Requirement) -> CallError {
        if requirement.scopes.is_empty() {
            return CallError::SessionRequired;
        }
        let row = match repo::load(&self.db.pool, &bearer.account_id, &bearer.resource_server, None).await {
            Ok(Some(row)) => row,
            Ok(None) => return Unavailable::NotFound.into(),
            Err(e) => return Unavailable::from(e).into(),
        };
        if let Err(e) = refresh::mark_needs_consent(self, &row, &requirement.scopes).await {
            return Unavailable::from(e).into();
        }
        Unavailable::NeedsConsent {
            scopes: requirement.scopes,
        }
        .into()
    }
}

fn method_name(method: &reqwest::Method) -> &'static str {
    match *method {
        reqwest::Method::GET => "GET",
        reqwest::Method::POST => "POST",
        reqwest::Method::PUT => "PUT",
        reqwest::Method::PATCH => "PATCH",
        reqwest::Method::DELETE => "DELETE",
        _ => "OTHER",
    }
}
