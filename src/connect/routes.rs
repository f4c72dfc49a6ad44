//! The browser's side of connect sessions, as plain axum routes (the browser navigates to them):
//! `GET /connect/{token}` shows what a link will do, `POST /connect/{token}` (its Continue button, under the Origin
//! check) opens it, `POST /connect/end` is "Back to <platform>".

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{Html, IntoResponse, Response},
    routing::{get, post},
};
use tower_sessions::Session;

use super::{
    ConnectMode,
    service::{self, Platform, Refused},
};
use crate::{
    http::{escape_html as escape, see_other, without_referrer},
    state::{AppState, current_user},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect/end", post(end))
        .route("/connect/{token}", get(confirm).post(open))
}

/// The page a link shows before it is used: for whom, from which platform, and a Continue button. Looking at it
/// spends nothing.
async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let preview = match service::preview(&state, &token).await {
        Ok(preview) => preview,
        Err(refused) => return refusal(refused),
    };
    let who = match &preview.user_email {
        Some(email) => format!("{} ({email})", preview.user_name),
        None => preview.user_name.clone(),
    };
    let (title, what) = match (preview.mode, &preview.provider_name) {
        (ConnectMode::Manage, _) => (
            "Manage your linked accounts",
            "to manage the accounts linked".to_owned(),
        ),
        (ConnectMode::Connect, Some(provider)) => ("Link an account", format!("to link your {provider} account")),
        (ConnectMode::Connect, None) => ("Link an account", "to link an account".to_owned()),
    };
    let body = format!(
        "<p>{platform} sends you here {what} for <strong>{who}</strong> at onbehalf, which keeps the tokens and acts \
         for {platform}.</p>\
         <form method=\"post\" action=\"/connect/{token}\"><button type=\"submit\" class=\"button button-primary\">\
         Continue</button></form>\
         <p><a href=\"{back}\">Back to {platform}</a></p>",
        platform = escape(&preview.platform.name),
        what = escape(&what),
        who = escape(&who),
        token = escape(&token),
        back = escape(&preview.platform.return_to),
    );
    // The site's `Referrer-Policy: same-origin` stays: under `no-referrer` a browser sends `Origin: null` with the
    // Continue post, which the Origin check must refuse. The link's URL goes to no other site either way.
    card(StatusCode::OK, title, &body, "")
}

async fn open(
    State(state): State<AppState>,
    Path(token): Path<String>,
    session: Session,
    headers: HeaderMap,
) -> Response {
    let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
    match service::open(&state, &session, &token, request_id).await {
        Ok(location) => see_other(&location),
        Err(refused) => refusal(refused),
    }
}

/// The page of a link that cannot be used.
fn refusal(refused: Refused) -> Response {
    match refused {
        Refused::Unknown => page(
            StatusCode::NOT_FOUND,
            "This link has expired",
            "This link has expired or is not valid. Go back to the site that sent you here and try again.",
            None,
        ),
        Refused::Spent { platform } => page(
            StatusCode::GONE,
            "This link has expired",
            &format!(
                "This link has expired — go back to {} and try again. (A link works once, for a few minutes.)",
                platform.name
            ),
            Some(&platform),
        ),
        Refused::UserDisabled { platform } => page(
            StatusCode::FORBIDDEN,
            "Your account is disabled",
            &format!(
                "Your account at onbehalf is disabled, so nothing can be linked for you. Ask {}'s administrators.",
                platform.name
            ),
            Some(&platform),
        ),
    }
}

/// The way out of a connect session to the platform, after a form post: a page of ours that moves the browser on
/// (a `refresh` and a link), not a redirect. Content-Security-Policy's `form-action` governs every redirect that
/// follows a form submission — ours allows no platform origin, and providers' consent pages (the demo's among them)
/// allow only our callback — so a redirect to the platform at the end of such a chain is blocked by the browser.
/// A navigation from a page of our own is not a form submission; it works with JavaScript off too.
pub(crate) fn forward(platform_name: &str, url: &str) -> Response {
    let url = escape(url);
    let platform = escape(platform_name);
    let body = format!("<p><a class=\"button button-primary\" href=\"{url}\">Continue to {platform}</a></p>");
    let refresh = format!("<meta http-equiv=\"refresh\" content=\"0; url={url}\">");
    without_referrer(card(
        StatusCode::OK,
        &format!("Back to {platform_name}"),
        &body,
        &refresh,
    ))
}

/// "Back to <platform>": ends the connect session and goes to the platform. Without a connect session there is
/// nowhere known to go back to.
async fn end(State(state): State<AppState>, session: Session) -> Response {
    match current_user(&state, &session).await {
        Ok(Some(user)) => match &user.connect {
            Some(grant) => forward(&grant.platform_name, &service::leave(&session, grant).await),
            None => see_other("/linked-accounts"),
        },
        _ => page(
            StatusCode::GONE,
            "This session has ended",
            "This session has ended. Go back to the site that sent you here and try again.",
            None,
        ),
    }
}

/// The page a link that cannot be used shows: a sentence, and the way back when the platform is known.
pub(crate) fn page(status: StatusCode, title: &str, message: &str, platform: Option<&Platform>) -> Response {
    let back = platform
        .map(|p| {
            format!(
                "<p><a class=\"button button-primary\" href=\"{}\">Back to {}</a></p>",
                escape(&p.return_to),
                escape(&p.name)
            )
        })
        .unwrap_or_default();
    let body = format!("<p role=\"alert\">{}</p>{back}", escape(message));
    without_referrer(card(status, title, &body, ""))
}

/// The few pages of connect sessions that are not Leptos pages (they answer before, or instead of, the app): the
/// site's stylesheet around one card. `title` is text; `body` and `head` are HTML, escaped by the caller.
pub(crate) fn card(status: StatusCode, title: &str, body: &str, head: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{head}\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — onbehalf</title><link rel=\"stylesheet\" href=\"/pkg/onbehalf.css\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\"></head>\
         <body><main id=\"main\" class=\"main\"><section class=\"card\"><h1>{title}</h1>{body}</section></main>\
         </body></html>\n",
        title = escape(title),
    );
    (status, Html(html)).into_response()
}
