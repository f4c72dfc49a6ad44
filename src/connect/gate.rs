//! What a connect session may reach: one middleware, default deny. A browser session opened from a platform's
//! connect link (see [`crate::auth::session::SessionAuth::connect`]) gets its user's linked-accounts pages, their
//! activity, the OAuth legs of the key's providers and the server functions those pages call — nothing else: not the
//! admin area, not the password pages, not the actions, not another user (those pages are scoped to the session's
//! user anyway). Everything else answers 403 with a way back to the platform.
//!
//! An allow list rather than checks in each page: a page added later is closed to connect sessions until it is
//! listed here.

use axum::{
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::ConnectGrant;
use crate::{
    auth::{
        self,
        session::{AUTH_KEY, SessionAuth},
    },
    http::escape_html as escape,
    service_api::keys,
    state::AppState,
};

/// Paths a connect session may open, exactly.
const PAGES: &[&str] = &[
    "/linked-accounts",
    "/linked-accounts/disconnect",
    "/activity",
    super::service::CHOOSER_PATH,
    "/connect/end",
];

/// The server functions those pages call (their `endpoint` names, under `/api/`).
const SERVER_FUNCTIONS: &[&str] = &[
    "list_linked_accounts",
    "disconnect_account",
    "retry_revocations",
    "user_activity",
    "get_current_user",
    "connect_choices",
];

/// Files every page needs, and nothing of anyone's.
fn is_asset(path: &str) -> bool {
    path.starts_with("/pkg/") || matches!(path, "/favicon.svg" | "/favicon.ico")
}

/// Whether `path` is already in its plain form: no `.` or `..` segment, no empty segment, no backslash, no encoded
/// dot, slash or backslash. Only such a path is compared with the list: a router behind this gate may resolve
/// `/pkg/../actions` or `/pkg/%2e%2e/account` to a page the list does not name (the static-file fallback renders
/// the app for the URL it normalises).
fn plain(path: &str) -> bool {
    !path.contains('\\')
        && !path.contains("//")
        && !crate::http::has_encoded_separator(path)
        && !path.split('/').any(|segment| segment == "." || segment == "..")
}

/// Whether a connect session with `grant` may open `path`.
pub fn allows(grant: &ConnectGrant, path: &str) -> bool {
    if !plain(path) {
        return false;
    }
    if PAGES.contains(&path) || is_asset(path) {
        return true;
    }
    if let Some(name) = path.strip_prefix("/api/") {
        return SERVER_FUNCTIONS.contains(&name);
    }
    // Another link replaces this session; opening one is always allowed.
    if path
        .strip_prefix(super::service::LINK_PATH)
        .is_some_and(|token| !token.is_empty() && !token.contains('/'))
    {
        return true;
    }
    // The OAuth legs, for the key's providers only.
    if let Some(rest) = path.strip_prefix("/oauth/")
        && let Some((provider, leg)) = rest.split_once('/')
    {
        return matches!(leg, "start" | "callback") && grant.allows(provider);
    }
    false
}

pub async fn restrict(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if is_asset(path) && plain(path) {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        return next.run(req).await;
    };
    // The session's record is loaded once per request and kept: the page reading the user later costs no second
    // read.
    let grant = match session.get::<SessionAuth>(AUTH_KEY).await {
        Ok(Some(SessionAuth {
            connect: Some(grant), ..
        })) => grant,
        _ => return next.run(req).await,
    };
    // The platform's key still lives: revoking it ends the sessions opened with it, at their next request.
    match keys::find(&state.db.pool, grant.api_key_id).await {
        Ok(Some(key)) if key.revoked_at.is_none() => {}
        Ok(_) => {
            tracing::info!("connect session ended: its API key was revoked");
            if let Err(e) = auth::session::end(&session).await {
                tracing::warn!("ending a connect session: {e}");
            }
            return ended();
        }
        Err(e) => {
            tracing::error!("connect gate: {e}");
            return (StatusCode::SERVICE_UNAVAILABLE, "Try again in a moment.").into_response();
        }
    }
    if allows(&grant, path) {
        return next.run(req).await;
    }
    // The site's home (its logo's link) is, for this session, the linked-accounts page.
    if path == "/" {
        return axum::response::Redirect::to("/linked-accounts").into_response();
    }
    tracing::info!(path, "refused in a connect session");
    refused(&grant)
}

fn ended() -> Response {
    super::routes::page(
        StatusCode::GONE,
        "This session has ended",
        "The platform that opened it can no longer act here. Go back to it and try again.",
        None,
    )
}

fn refused(grant: &ConnectGrant) -> Response {
    let platform = escape(&grant.platform_name);
    let body = format!(
        "<p role=\"alert\">This page is not part of what {platform} opened for you: only your linked accounts are.</p>\
         <p><a href=\"/linked-accounts\">Your linked accounts</a></p>\
         <form method=\"post\" action=\"/connect/end\"><button type=\"submit\" class=\"button button-primary\">\
         Back to {platform}</button></form>"
    );
    super::routes::card(StatusCode::FORBIDDEN, "Not available here", &body, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connect::ConnectMode;

    #[test]
    fn a_connect_session_reaches_its_linked_accounts_pages_only() {
        let grant = ConnectGrant {
            mode: ConnectMode::Manage,
            platform_name: "Invenio".into(),
            return_to: "https://invenio.example/".into(),
            api_key_id: 1,
            providers: Some(vec!["demo".into()]),
            ends_at: i64::MAX,
        };
        for ok in [
            "/linked-accounts",
            "/linked-accounts/disconnect",
            "/activity",
            "/connect",
            "/connect/end",
            "/connect/abc",
            "/oauth/demo/start",
            "/oauth/demo/callback",
            "/api/disconnect_account",
            "/pkg/onbehalf.css",
        ] {
            assert!(allows(&grant, ok), "{ok}");
        }
        for denied in [
            "/",
            "/admin",
            "/admin/accounts/x",
            "/admin/audit/export",
            "/account",
            "/sign-in",
            "/sign-up",
            "/actions",
            "/api/change_password",
            "/api/sign_in",
            "/api/admin_disconnect",
            "/api/globus_submit_transfer",
            "/oauth/github/start",
            "/oauth/demo/other",
            "/connect/a/b",
            "/linked-accounts/",
            "/LINKED-ACCOUNTS",
            "/pkg/../actions",
            "/pkg/%2e%2e/account",
            "/pkg/%2E%2E/admin",
            "/pkg/..%2factions",
            "/pkg/.%2e/account",
            "/pkg\\..\\account",
            "/linked-accounts/./../account",
            "//linked-accounts",
            "/oauth/demo/../github/start",
        ] {
            assert!(!allows(&grant, denied), "{denied}");
        }
    }
}
