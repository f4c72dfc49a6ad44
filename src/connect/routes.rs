//! The browser's side of connect sessions, as plain axum routes (the browser navigates to them):
//! `GET /connect/{token}` opens a link, `POST /connect/end` is "Back to <platform>".

use axum::{
    Router,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use tower_sessions::Session;

use super::service::{self, Platform, Refused};
use crate::{
    http::escape_html as escape,
    state::{AppState, current_user},
};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connect/end", post(end))
        .route("/connect/{token}", get(open))
}

/// A redirect that tells the next site nothing of where the browser came from (the link's URL is a credential
/// until used).
pub(crate) fn see_other(location: &str) -> Response {
    let mut response = Redirect::to(location).into_response();
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
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
        Err(Refused::Unknown) => page(
            StatusCode::NOT_FOUND,
            "This link has expired",
            "This link has expired or is not valid. Go back to the site that sent you here and try again.",
            None,
        ),
        Err(Refused::Spent { platform }) => page(
            StatusCode::GONE,
            "This link has expired",
            &format!(
                "This link has expired — go back to {} and try again. (A link works once, for a few minutes.)",
                platform.name
            ),
            Some(&platform),
        ),
        Err(Refused::UserDisabled { platform }) => page(
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

/// "Back to <platform>": ends the connect session and goes to the platform. Without a connect session there is
/// nowhere known to go back to.
async fn end(State(state): State<AppState>, session: Session) -> Response {
    match current_user(&state, &session).await {
        Ok(Some(user)) => match &user.connect {
            Some(grant) => see_other(&service::leave(&session, grant).await),
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
fn page(status: StatusCode, title: &str, message: &str, platform: Option<&Platform>) -> Response {
    let back = platform
        .map(|p| {
            format!(
                "<p><a class=\"button button-primary\" href=\"{}\">Back to {}</a></p>",
                escape(&p.return_to),
                escape(&p.name)
            )
        })
        .unwrap_or_default();
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} — onbehalf</title><link rel=\"stylesheet\" href=\"/pkg/onbehalf.css\">\
         <link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\"></head>\
         <body><main id=\"main\" class=\"main\"><section class=\"card\"><h1>{title}</h1>\
         <p role=\"alert\">{message}</p>{back}</section></main></body></html>\n",
        title = escape(title),
        message = escape(message),
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}
