//! Builds the whole application from `Settings`: database, router, middleware, housekeeping. Tests build it the
//! same way on port 0, so what they exercise is what runs in production.

use crate::delegation::Delegator;
use std::{net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{HeaderName, Request},
    middleware::{from_fn, from_fn_with_state},
    routing::get,
    serve::ListenerExt,
};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};
use tower_sessions::{Expiry, SessionManagerLayer, cookie::SameSite};

use crate::{
    accounts,
    app::{App, shell},
    auth::{session_store::DbSessionStore, throttle},
    config::Settings,
    db::{Db, DbError},
    demo::{DemoConfig, DemoProvider},
    http::{
        database_gate::refuse_while_unreachable,
        form_encoding::require_utf8_forms,
        form_errors,
        headers::{HeaderPolicy, sanitize_request_id, security_headers},
        health::{healthz, readyz},
        origin::{AllowedOrigin, require_same_origin},
        server_fn_status::server_fn_error_status,
    },
    providers::{Catalog, presets},
    state::{AppState, provide_request_context},
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("vault: {0}")]
    Vault(String),
    #[error("binding stored tokens to their accounts: {0}")]
    BindOwners(sqlx::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Connects and migrates the database (or checks it is migrated), binds the listener and assembles the router.
    pub async fn build(mut settings: Settings) -> Result<Self, StartupError> {
        let db = Db::connect(&settings.database).await?;
        db.prepare_schema(settings.database.migrate_on_start).await?;
        let addr = settings.server.bind;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| StartupError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?;
        // With port 0 (tests) the real port is only known now; the default public URL must use it.
        if settings.server.public_url.is_none() {
            settings.server.public_url = Some(url::Url::parse(&format!("http://{local}")).expect("valid URL"));
        }
        if let Some(warning) = settings.server.plain_http_warning() {
            tracing::warn!("{warning}");
        }
        let vault = crate::tokens::vault_from_settings(&settings).map_err(StartupError::Vault)?;
        let mut catalog = Catalog::from_settings(&settings);
        let demo = match settings.demo.enabled {
            true => {
                let demo = start_demo(&settings).await?;
                catalog.push(presets::demo(
                    demo.issuer_str(),
                    &demo_config().client_id,
                    &demo_config().client_secret,
                ));
                Some(demo)
            }
            false => None,
        };
        crate::tokens::rotation::bind_owners(&db, &vault, &catalog)
            .await
            .map_err(StartupError::BindOwners)?
            .log();
        let http = crate::providers::http_client(&settings.outbound);
        let catalog = Arc::new(catalog);
        let vault = Arc::new(vault);
        let delegation = Arc::new(Delegator::new(
            &settings,
            db.clone(),
            vault.clone(),
            catalog.clone(),
            http.clone(),
        ));
        let state = AppState {
            leptos_options: leptos_options(&settings, local),
            db,
            http,
            settings: Arc::new(settings),
            catalog,
            vault,
            delegation,
            demo,
        };
        Ok(Self {
            listener,
            router: router(state.clone()),
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until Ctrl-C / SIGTERM, finishing requests in flight.
    pub async fn run(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, finishing requests in flight; then stops this app's background work and
    /// closes its database pool. Production stops on a signal ([`Application::run`]); the tests stop each app when
    /// the test ends, since many apps share one test process and its PostgreSQL connection limit.
    pub async fn run_until(self, stop: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let db = self.state.db.clone();
        // Aborted when this set is dropped, as the function returns. Each is safe to stop anywhere: refreshes and
        // deliveries hold leases that run out, and the others only read or delete what is stale.
        let mut background = tokio::task::JoinSet::new();
        background.spawn(db.clone().watch_reachability());
        background.spawn(housekeeping(self.state.clone()));
        if self.state.settings.delegation.background.enabled {
            background.spawn(crate::delegation::background::run(self.state.delegation.clone()));
        }
        if self.state.settings.webhooks.dispatch {
            let dispatcher = crate::webhooks::dispatcher::Dispatcher::new(
                db.clone(),
                self.state.vault.clone(),
                self.state.settings.webhooks.clone(),
                &self.state.delegation.instance,
            );
            background.spawn(dispatcher.run());
        }
        let service = self.router.into_make_service_with_connect_info::<SocketAddr>();
        // Responses written in several pieces (static files, streamed bodies) otherwise wait ~40 ms for the
        // client's delayed ACK (Nagle's algorithm); measured in BENCHMARKS.md.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!("TCP_NODELAY not set: {err}");
            }
        });
        let served = axum::serve(listener, service).with_graceful_shutdown(stop).await;
        drop(background);
        if let Some(demo) = &self.state.demo {
            demo.stop();
        }
        // Waits for connections still checked out (a task a request spawned); bounded, so a stuck one cannot
        // keep the process from ending.
        if tokio::time::timeout(POOL_CLOSE_WAIT, db.pool.close()).await.is_err() {
            tracing::warn!("the database pool did not close within {POOL_CLOSE_WAIT:?}");
        }
        served
    }
}

/// How long stopping waits for the database connections still in use.
const POOL_CLOSE_WAIT: Duration = Duration::from_secs(5);

fn demo_config() -> DemoConfig {
    DemoConfig::default()
}

/// Starts the built-in demo provider next to the app (DESIGN §1): a newcomer links a demo Globus account with no
/// credentials. It shares the app's runtime and stops with it.
async fn start_demo(settings: &Settings) -> Result<DemoProvider, StartupError> {
    let addr = settings.demo.bind;
    let demo = DemoProvider::start(DemoConfig {
        bind: addr,
        ..demo_config()
    })
    .await
    .map_err(|source| StartupError::Bind { addr, source })?;
    tracing::warn!(
        "the demo provider runs at {} and is offered as \"Demo Globus\"; set demo.enabled = false \
         (ONBEHALF_DEMO__ENABLED=false) in production",
        demo.issuer_str()
    );
    Ok(demo)
}

fn leptos_options(settings: &Settings, local: SocketAddr) -> LeptosOptions {
    // cargo-leptos bakes its settings into the binary it builds; builds without it (cargo test) use the defaults.
    let built_by_cargo_leptos = option_env!("LEPTOS_OUTPUT_NAME").is_some();
    let mut options = built_by_cargo_leptos
        .then(|| get_configuration(None).ok())
        .flatten()
        .map(|conf| conf.leptos_options)
        .unwrap_or_else(|| LeptosOptions::builder().output_name("onbehalf").build());
    options.site_addr = local;
    options.site_root = settings.server.site_root.clone().into();
    options
}

/// The app's page routes, read once per process. Reading them renders the whole app with resource loading turned
/// off by a flag that is the process's, not the render's (leptos_server's `SuppressResourceLoad`): a page that
/// another app of the same process renders at that moment waits forever on its first resource
/// (leptos-rs/leptos#4773). A server process has one app and reads them before it serves; the tests start hundreds
/// of apps in one process while others serve, and did hang that way (a page request never answered).
static ROUTES: std::sync::LazyLock<Vec<leptos_axum::AxumRouteListing>> =
    std::sync::LazyLock::new(|| generate_route_list(App));

fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let routes = ROUTES.clone();
    let session_layer = SessionManagerLayer::new(DbSessionStore::new(state.db.pool.clone()))
        .with_name(if settings.server.is_https() {
            "__Host-onbehalf_session"
        } else {
            "onbehalf_session"
        })
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(settings.server.is_https())
        .with_path("/")
        // auth::session sets each signed-in session's exact end; this covers any other session record.
        .with_expiry(Expiry::OnInactivity(
            time::Duration::try_from(settings.auth.session_idle_timeout).unwrap_or(time::Duration::DAY),
        ));
    let policy = HeaderPolicy {
        https: settings.server.is_https(),
        extra_connect_src: None,
        form_action_origins: state.catalog.authorization_origins(),
    };
    let allowed = AllowedOrigin(settings.server.public_origin().into());
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request<Body>| {
        let request_id = req
            .headers()
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        // Path only: query strings may carry codes or tokens (OAuth callbacks) and never reach the logs.
        // A connect link's token is a credential until opened: its path is logged without it.
        let path = match req.uri().path() {
            "/connect/end" => "/connect/end",
            p if p.starts_with(crate::connect::service::LINK_PATH) => "/connect/[token]",
            p => p,
        };
        tracing::info_span!("request", request_id = %request_id, method = %req.method(), path = %path)
    });

    // Browser routes: sessions, the Origin check and the server-function error statuses apply to these only. The
    // machine surfaces (probes, metrics, the service API) authenticate otherwise and carry no cookies.
    let browser = Router::new()
        .merge(accounts::routes::routes())
        .merge(crate::connect::routes::routes())
        .merge(crate::admin::export::routes())
        .leptos_routes_with_context(&state, routes, provide_request_context, {
            let options = state.leptos_options.clone();
            move || shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(
            provide_request_context,
            shell,
        ))
        .layer(from_fn(server_fn_error_status))
        .layer(from_fn_with_state(state.vault.clone(), form_errors::sign))
        .layer(from_fn_with_state(state.vault.clone(), form_errors::verify))
        .layer(from_fn(require_utf8_forms))
        .layer(from_fn_with_state(state.clone(), crate::connect::gate::restrict))
        .layer(session_layer)
        .layer(from_fn_with_state(allowed, require_same_origin));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(crate::http::metrics::serve))
        .merge(crate::service_api::routes())
        .merge(browser)
        .layer(from_fn_with_state(state.db.clone(), refuse_while_unreachable))
        .layer(from_fn_with_state(policy, security_headers))
        .layer(
            ServiceBuilder::new()
                .layer(from_fn(sanitize_request_id))
                .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
                .layer(trace)
                .layer(PropagateRequestIdLayer::new(REQUEST_ID)),
        )
        .layer(from_fn(crate::http::owner::isolate))
        .with_state(state)
}

/// Periodic clean-up of expired sessions, stale throttle counters and old OAuth flows.
async fn housekeeping(state: AppState) {
    let store = DbSessionStore::new(state.db.pool.clone());
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    loop {
        tick.tick().await;
        if let Err(err) = store.delete_expired().await {
            tracing::warn!("deleting expired sessions failed: {err}");
        }
        if let Err(err) = throttle::delete_stale(&state.db.pool, &state.settings.auth.throttle).await {
            tracing::warn!("deleting stale throttle counters failed: {err}");
        }
        if let Err(err) = accounts::repo::delete_stale_flows(&state.db.pool, crate::db::now_ms()).await {
            tracing::warn!("deleting stale OAuth flows failed: {err}");
        }
        if let Err(err) = crate::connect::repo::delete_stale(&state.db.pool, crate::db::now_ms()).await {
            tracing::warn!("deleting stale connect links failed: {err}");
        }
        if let Err(err) = crate::webhooks::dispatcher::delete_old_events(&state.db, &state.settings.webhooks).await {
            tracing::warn!("deleting old webhook events failed: {err}");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
