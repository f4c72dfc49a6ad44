//! The built-in demo provider: a Globus-compatible authorization server and Transfer API subset on loopback.
//!
//! A newcomer links a "demo Globus" account without credentials, and the integration and end-to-end tests drive the
//! same server, so it is strict where Globus Auth is strict: PKCE S256 is required, codes are single use and bound to
//! their redirect URI, refresh tokens rotate and a reused one revokes its whole grant (OAuth 2.0 Security BCP §4.14),
//! and `invalid_grant` is a 401 as Globus sends it. Switches ([`DemoProvider::set_token_fault`] and friends, or the
//! `/demo/control/` routes) make it misbehave on purpose.
//!
//! Tests drive the consent page over HTTP: the page's form carries the pending request in
//! `<input type="hidden" name="request_id" value="...">`; see the `auth` module for the whole dance.
//!
//! Invariants: all state lives in one [`std::sync::Mutex`]-guarded store that is never held across an `.await`;
//! no token, code, secret or PKCE verifier value is ever logged.

mod auth;
mod control;
mod data;
mod files;
mod html;
mod id_token;
mod scope;
mod store;
mod token;
mod transfer;
mod wire;

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, OnceLock},
    time::Duration,
};

use axum::{Router, serve::ListenerExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use url::Url;

pub use id_token::{DemoIdToken, GlobusClaims, IdentitySetEntry};

use store::Store;

/// How the demo provider is reached and which client it knows.
#[derive(Clone)]
pub struct DemoConfig {
    /// Where to listen, e.g. `127.0.0.1:0` in tests.
    pub bind: SocketAddr,
    /// Issuer and base URL as clients see it; `None` means `http://{bound address}`. The routes are served at the
    /// root, so a path here only works behind a proxy that strips it.
    pub public_url: Option<Url>,
    /// The one registered client.
    pub client_id: String,
    pub client_secret: String,
    /// Lifetime of access tokens; Globus issues them for two days.
    pub access_token_lifetime: Duration,
    pub flavor: Flavor,
}

impl std::fmt::Debug for DemoConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so that the client secret never reaches a log through `{:?}`.
        f.debug_struct("DemoConfig")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("access_token_lifetime", &self.access_token_lifetime)
            .field("flavor", &self.flavor)
            .finish()
    }
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 3100)),
            public_url: None,
            client_id: "onbehalf-demo".to_owned(),
            client_secret: "demo-secret".to_owned(),
            access_token_lifetime: Duration::from_secs(172_800),
            flavor: Flavor::Globus,
        }
    }
}

/// The shape of token responses and errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// Globus Auth: one token per resource server (`other_tokens`), `invalid_grant` as 401.
    #[default]
    Globus,
    /// A plain RFC 6749 / OpenID Connect provider: one token for all scopes, every client error as 400.
    PlainOidc,
}

/// A failure the token endpoint answers with instead of doing its work.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenFault {
    /// 503 with `{"error":"temporarily_unavailable"}`.
    ServerError,
    /// 502 with an HTML page, as a proxy in front of the service would send.
    HtmlErrorPage,
    /// 200 `application/json` with a truncated body.
    MalformedJson,
    /// 200 `application/json` whose body never ends (chunked, 64 KiB at a time), as a broken or hostile server
    /// sends: the client must stop reading, not buffer it.
    EndlessBody,
    /// 401 `invalid_client`, as if the client secret had been rotated.
    InvalidClient,
    /// No answer for 60 seconds, then 503.
    Timeout,
}

/// A defect in the ID tokens issued from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdTokenFault {
    BadSignature,
    WrongAudience,
    WrongNonce,
    Expired,
    WrongIssuer,
    /// `azp` names another client (the audience is right).
    WrongAuthorizedParty,
    /// `iat` an hour in the future (still unexpired).
    IssuedInTheFuture,
    /// `iat` two hours ago, with an `exp` still ahead.
    IssuedLongAgo,
}

/// What the provider has seen, for tests and the demo's status page.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub token_requests: u64,
    /// Successful token requests by `grant_type`.
    pub grants: BTreeMap<String, u64>,
    pub revocations: u64,
    pub refresh_token_reuse: u64,
    pub faults_injected: u64,
    pub transfer_requests: u64,
    pub consent_required: u64,
}

/// A demo user one can "sign in as" on the consent page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Globus identity id (a UUID).
    pub sub: &'static str,
    /// Globus username, e.g. `ada@demo.globus.org`.
    pub username: &'static str,
    pub name: &'static str,
    pub email: &'static str,
    pub organization: &'static str,
}

/// State shared by every request handler.
pub(crate) struct Shared {
    config: DemoConfig,
    /// The issuer as it appears in `iss`: no trailing slash, like `https://auth.globus.org`.
    issuer: String,
    issuer_url: Url,
    addr: SocketAddr,
    store: Mutex<Store>,
    /// The task accepting connections ([`DemoProvider::stop`]).
    server: OnceLock<tokio::task::AbortHandle>,
}

impl Shared {
    /// Locks the store. A panic while it was held (a bug) must not take the whole demo down, so poisoning is ignored.
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An absolute URL under the issuer.
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Handle on a running demo provider; clones share the same server and state.
#[derive(Clone)]
pub struct DemoProvider {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for DemoProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Hand-written so that the client secret never reaches a log through `{:?}`.
        f.debug_struct("DemoProvider")
            .field("issuer", &self.shared.issuer)
            .field("client_id", &self.shared.config.client_id)
            .finish_non_exhaustive()
    }
}

impl DemoProvider {
    /// Binds `config.bind` and serves on the current tokio runtime until the runtime shuts down.
    pub async fn start(config: DemoConfig) -> std::io::Result<DemoProvider> {
        let listener = TcpListener::bind(config.bind).await?;
        let addr = listener.local_addr()?;
        let issuer_url = match &config.public_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{addr}")).map_err(std::io::Error::other)?,
        };
        let issuer = issuer_url.as_str().trim_end_matches('/').to_owned();
        let store = Store::new().map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            config,
            issuer,
            issuer_url,
            addr,
            store: Mutex::new(store),
            server: OnceLock::new(),
        });
        let provider = DemoProvider { shared };
        let app = provider.router();
        // Token responses are small and written at once, but the consent page and endpoint lists are not: without
        // TCP_NODELAY they wait for the client's delayed ACK (see `startup.rs`).
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set: {err}");
            }
        });
        let server = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!("demo provider stopped: {err}");
            }
        });
        // Set once: the server task exists only after the provider it serves.
        let _ = provider.shared.server.set(server.abort_handle());
        tracing::info!(issuer = %provider.shared.issuer, "demo provider listening");
        Ok(provider)
    }

    /// Stops accepting connections and frees the port; connections already open finish what they are doing. The
    /// app stops its demo provider when it stops (`Application::run_until`), so that apps sharing a process (the
    /// tests) leave no listener behind.
    pub fn stop(&self) {
        if let Some(server) = self.shared.server.get() {
            server.abort();
        }
    }

    /// The issuer and base URL. Its string form may end in `/` (as `Url` normalises); `iss` never does, see
    /// [`DemoProvider::issuer_str`].
    pub fn issuer(&self) -> Url {
        self.shared.issuer_url.clone()
    }

    /// The issuer exactly as it appears in `iss`, without a trailing slash.
    pub fn issuer_str(&self) -> &str {
        &self.shared.issuer
    }

    /// The address the listener is bound to.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// All routes, for mounting the provider somewhere else than its own listener.
    pub fn router(&self) -> Router {
        Router::new()
            .merge(auth::routes())
            .merge(token::routes())
            .merge(transfer::routes())
            .nest("/demo/control", control::routes())
            .with_state(self.shared.clone())
    }

    /// Makes the access tokens of `identity` (a `sub`), or everyone's, expired now; refresh tokens keep working.
    pub fn expire_access_tokens(&self, identity: Option<&str>) {
        self.shared.store().expire_access_tokens(identity);
    }

    /// Revokes every grant (and so every token) of `identity`, or of everyone.
    pub fn revoke_grants(&self, identity: Option<&str>) {
        self.shared.store().revoke_grants(identity);
    }

    /// Makes the token endpoint fail with `fault` for the next `times` requests, or until cleared when `None`.
    pub fn set_token_fault(&self, fault: TokenFault, times: Option<u32>) {
        self.shared.store().switches.token_fault = Some((fault, times));
    }

    pub fn clear_token_fault(&self) {
        self.shared.store().switches.token_fault = None;
    }

    /// Delays every token endpoint answer by `delay` (zero turns it off); the grant itself is done on receipt.
    pub fn set_token_delay(&self, delay: Duration) {
        self.shared.store().switches.token_delay = delay;
    }

    /// Tasks that `identity` (a `sub`), or anyone, submits from now on stay ACTIVE for `duration` (until cancelled)
    /// rather than `transfer::ACTIVE_FOR`.
    pub fn set_task_duration(&self, identity: Option<&str>, duration: Duration) {
        let durations = &mut self.shared.store().switches.task_durations;
        durations.insert(identity.map(str::to_owned), duration);
    }

    /// From now on, a transfer touching `collection_id` needs a grant that consented to its `data_access` scope.
    pub fn require_consent(&self, collection_id: &str) {
        self.shared
            .store()
            .switches
            .consent_required
            .insert(collection_id.to_ascii_lowercase());
    }

    /// Makes the ID tokens issued from now on defective, or correct again with `None`.
    pub fn set_id_token_fault(&self, fault: Option<IdTokenFault>) {
        self.shared.store().switches.id_token_fault = fault;
    }

    /// With `true`, authorization responses carry `iss=https://evil.example` (RFC 9207 mix-up defence tests).
    pub fn set_callback_iss_fault(&self, on: bool) {
        self.shared.store().switches.callback_iss_fault = on;
    }

    /// Replaces the ID token signing key; the JWKS serves only the new key from now on.
    pub fn rotate_signing_key(&self) {
        self.shared.store().rotate_signing_key();
    }

    /// With `true`, refresh tokens stop rotating: a refresh answers without `refresh_token` and the old one stays
    /// valid (as GitHub, ORCID and Google do).
    pub fn keep_refresh_tokens(&self, on: bool) {
        self.shared.store().switches.keep_refresh_tokens = on;
    }

    /// With `true`, the Transfer API answers 401 to every token, fresh ones included.
    pub fn reject_api_tokens(&self, on: bool) {
        self.shared.store().switches.reject_api_tokens = on;
    }

    /// With `true`, the revocation endpoint fails (503) and revokes nothing.
    pub fn set_revocation_fault(&self, on: bool) {
        self.set_revocation_fault_for(None, on);
    }

    /// Turns the revocation fault on or off for the tokens of `identity` (a `sub`), or for everyone.
    pub fn set_revocation_fault_for(&self, identity: Option<&str>, on: bool) {
        let fault = &mut self.shared.store().switches.revocation_fault;
        match identity {
            None => {
                fault.everyone = on;
                if !on {
                    fault.identities.clear();
                }
            }
            Some(sub) if on => {
                fault.identities.insert(sub.to_owned());
            }
            Some(sub) => {
                fault.identities.remove(sub);
            }
        }
    }

    /// The `submission_id` of every transfer task created so far, in order.
    pub fn submission_ids(&self) -> Vec<String> {
        self.shared
            .store()
            .tasks
            .iter()
            .map(|t| t.submission_id.clone())
            .collect()
    }

    pub fn counters(&self) -> Counters {
        self.shared.store().counters.clone()
    }

    /// Every access token, refresh token and authorization code issued so far, so tests can scan logs, pages and
    /// responses for leaks.
    pub fn issued_token_values(&self) -> Vec<String> {
        self.shared.store().issued.clone()
    }

    /// The demo identities, in the order the consent page lists them.
    pub fn identities() -> &'static [Identity] {
        data::IDENTITIES
    }
}
