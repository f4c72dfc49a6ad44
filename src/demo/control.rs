//! The switches over HTTP, for end-to-end tests and the demo: the same effects as the [`DemoProvider`] methods.
//!
//! No authentication: the provider listens on loopback for a local demo and tests. Do not expose it.
//!
//! [`DemoProvider`]: super::DemoProvider

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, de::DeserializeOwned};
use serde_json::json;

use super::{DemoProvider, IdTokenFault, Shared, TokenFault, wire::json};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/expire-tokens", post(expire_tokens))
        .route("/revoke-grants", post(revoke_grants))
        .route("/token-fault", post(set_token_fault).delete(clear_token_fault))
        .route("/token-delay", post(set_token_delay))
        .route("/task-duration", post(set_task_duration))
        .route("/require-consent", post(require_consent))
        .route("/id-token-fault", post(set_id_token_fault))
        .route("/callback-iss-fault", post(set_callback_iss_fault))
        .route("/rotate-signing-key", post(rotate_signing_key))
        .route(
            "/revocation-fault",
            post(set_revocation_fault).delete(clear_revocation_fault),
        )
        .route("/counters", get(counters))
}

fn provider(shared: Arc<Shared>) -> DemoProvider {
    DemoProvider { shared }
}

/// A control request whose JSON body does not fit the switch.
struct BadBody(serde_json::Error);

impl IntoResponse for BadBody {
    fn into_response(self) -> Response {
        json(
            StatusCode::BAD_REQUEST,
            &json!({"error": "bad_request", "message": self.0.to_string()}),
        )
    }
}

/// Parses a JSON body; an empty body counts as `{}` so that `{identity?}` switches can be posted bare.
fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, BadBody> {
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        bytes
    };
    serde_json::from_slice(bytes).map_err(BadBody)
}

fn ok() -> Response {
    json(StatusCode::OK, &json!({"ok": true}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdentityBody {
    identity: Option<String>,
}

async fn expire_tokens(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: IdentityBody = body(&bytes)?;
    provider(shared).expire_access_tokens(request.identity.as_deref());
    Ok(ok())
}

async fn revoke_grants(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: IdentityBody = body(&bytes)?;
    provider(shared).revoke_grants(request.identity.as_deref());
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFaultBody {
    fault: TokenFault,
    times: Option<u32>,
}

async fn set_token_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: TokenFaultBody = body(&bytes)?;
    provider(shared).set_token_fault(request.fault, request.times);
    Ok(ok())
}

async fn clear_token_fault(State(shared): State<Arc<Shared>>) -> Response {
    provider(shared).clear_token_fault();
    ok()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DelayBody {
    millis: u64,
}

async fn set_token_delay(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: DelayBody = body(&bytes)?;
    provider(shared).set_token_delay(Duration::from_millis(request.millis));
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TaskDurationBody {
    millis: u64,
    identity: Option<String>,
}

/// At most a week: a task's end must stay a representable time.
const LONGEST_TASK: Duration = Duration::from_secs(7 * 86_400);

async fn set_task_duration(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: TaskDurationBody = body(&bytes)?;
    let duration = Duration::from_millis(request.millis).min(LONGEST_TASK);
    provider(shared).set_task_duration(request.identity.as_deref(), duration);
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    collection_id: String,
}

async fn require_consent(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: ConsentBody = body(&bytes)?;
    provider(shared).require_consent(&request.collection_id);
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IdTokenFaultBody {
    /// `null` (or absent) turns the fault off.
    fault: Option<IdTokenFault>,
}

async fn set_id_token_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: IdTokenFaultBody = body(&bytes)?;
    provider(shared).set_id_token_fault(request.fault);
    Ok(ok())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnBody {
    on: bool,
}

async fn set_callback_iss_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: OnBody = body(&bytes)?;
    provider(shared).set_callback_iss_fault(request.on);
    Ok(ok())
}

async fn rotate_signing_key(State(shared): State<Arc<Shared>>) -> Response {
    provider(shared).rotate_signing_key();
    ok()
}

async fn counters(State(shared): State<Arc<Shared>>) -> Response {
    let counters = provider(shared).counters();
    match serde_json::to_value(&counters) {
        Ok(body) => json(StatusCode::OK, &body),
        Err(err) => json(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"error": "server_error", "message": err.to_string()}),
        ),
    }
}

/// Body `{"identity": sub}` for that identity's tokens only; empty for everyone's.
async fn set_revocation_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: IdentityBody = body(&bytes)?;
    provider(shared).set_revocation_fault_for(request.identity.as_deref(), true);
    Ok(ok())
}

/// Body `{"identity": sub}` to clear that identity's fault; empty to clear every revocation fault.
async fn clear_revocation_fault(State(shared): State<Arc<Shared>>, bytes: Bytes) -> Result<Response, BadBody> {
    let request: IdentityBody = body(&bytes)?;
    provider(shared).set_revocation_fault_for(request.identity.as_deref(), false);
    Ok(ok())
}
