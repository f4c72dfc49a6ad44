//! `AppState`, shared by axum routes and (through Leptos context) by server functions, and the per-request
//! helpers every server function starts with: who is calling, from where, under which session.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
};

use axum::extract::{ConnectInfo, FromRef};
use leptos::prelude::*;
use tower_sessions::Session;

use crate::{
    auth::service::{self, User},
    config::Settings,
    db::Db,
    delegation::Delegator,
    demo::DemoProvider,
    error::AppError,
    providers::Catalog,
    tokens::vault::Vault,
};

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub settings: Arc<Settings>,
    /// The configured providers (plus the demo provider when it runs).
    pub catalog: Arc<Catalog>,
    pub vault: Arc<Vault>,
    /// Acting for users: bearers, exactly-once refresh, delegated calls and their audit.
    pub delegation: Arc<Delegator>,
    /// The one outbound client for provider calls (`providers::http_client`).
    pub http: reqwest::Client,
    /// The built-in demo provider, when `demo.enabled`.
    pub demo: Option<DemoProvider>,
}

impl AppState {
    /// What linking an account needs (cheap clones).
    pub fn linker(&self) -> crate::accounts::link::Linker {
        crate::accounts::link::Linker {
            db: self.db.clone(),
            vault: self.vault.clone(),
            catalog: self.catalog.clone(),
            http: self.http.clone(),
            origin: self.settings.server.public_origin(),
        }
    }

    /// What revoking tokens at providers needs, borrowed from here.
    pub fn revoker(&self) -> crate::accounts::disconnect::Revoker<'_> {
        crate::accounts::disconnect::Revoker {
            db: &self.db,
            vault: &self.vault,
            catalog: &self.catalog,
            http: &self.http,
        }
    }
}

/// The state, inside a server function or a component rendering on the server.
pub fn app_state() -> Result<AppState, AppError> {
    use_context::<AppState>().ok_or_else(|| AppError::internal("AppState missing from the Leptos context"))
}

/// This request's session (the `SessionManagerLayer` puts it in the request extensions).
pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(AppError::internal)
}

/// The signed-in user, or `None`. Always read from the session on the server, never from anything the client says.
/// Looked up once per request (see [`RequestUser`]).
pub async fn current_user(state: &AppState, session: &Session) -> Result<Option<User>, AppError> {
    let lookup = || async { Ok::<_, AppError>(service::current_user(&state.db, &state.settings.auth, session).await?) };
    match use_context::<RequestUser>() {
        Some(RequestUser(user)) => user.get_or_try_init(lookup).await.cloned(),
        None => lookup().await,
    }
}

/// The signed-in user of one request, once looked up. A page asks twice while it renders (the header, and the
/// page's own server function, concurrently): without this, each would load the user and slide the session.
/// Provided per request by [`provide_request_context`]; a failed lookup is not kept, the next caller tries again.
#[derive(Clone, Default)]
pub struct RequestUser(Arc<tokio::sync::OnceCell<Option<User>>>);

/// What every request's Leptos context holds besides `AppState`: the CSP nonce and the [`RequestUser`] slot.
pub fn provide_request_context() {
    crate::http::headers::provide_csp_nonce();
    provide_context(RequestUser::default());
}

/// The signed-in user, or `NotSignedIn`.
pub async fn require_user(state: &AppState, session: &Session) -> Result<User, AppError> {
    current_user(state, session).await?.ok_or(AppError::NotSignedIn)
}

/// The client's throttle key (see `auth::throttle::client_key`): from the configured proxy header when there is
/// one, else from the TCP peer. The header's last entry is used, the one the trusted proxy added (a client can put
/// anything before it); a value that is not an IP address falls back to the peer.
pub async fn client_ip(state: &AppState) -> String {
    let from_header = state.settings.server.client_ip_header.as_ref().and_then(|header| {
        let parts = use_context::<axum::http::request::Parts>()?;
        let value = parts.headers.get(header.as_str())?.to_str().ok()?;
        value.rsplit(',').next()?.trim().parse::<IpAddr>().ok()
    });
    let ip = match from_header {
        Some(ip) => Some(ip),
        None => leptos_axum::extract::<ConnectInfo<SocketAddr>>()
            .await
            .ok()
            .map(|ConnectInfo(addr)| addr.ip()),
    };
    ip.map(crate::auth::throttle::client_key)
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The request's id (set or sanitised by the HTTP layer), for audit events written by a server function.
pub fn request_id() -> Option<String> {
    use_context::<axum::http::request::Parts>()?
        .headers
        .get("x-request-id")?
        .to_str()
        .ok()
        .map(str::to_owned)
}

/// Ends a plain (JavaScript-off) form post with a redirect to `path`. Hydrated forms get no redirect: their page
/// decides what to do with the result (show it, or load `path` itself).
pub fn redirect_plain_form(path: &str) {
    let plain_form = use_context::<axum::http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(axum::http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|a| a.contains("text/html"))
        })
        .unwrap_or(false);
    if plain_form {
        leptos_axum::redirect(path);
    }
}
