//! Errors that a plain (JavaScript-off) form post carries back to its page in the URL are signed, so that only the
//! server can put one there.
//!
//! Leptos sends a failed server function back to the form's page as `?__path=<server fn>&__err=<base64 JSON of
//! the AppError>`, and the page renders whatever it decodes. Unchecked, that is content spoofing on our own domain:
//! a link to `/sign-in?__path=/api/sign_in&__err=<"Your account is locked for fraud. Call …">` shows the sentence
//! in the real page's error box. So:
//! - [`sign`] (on responses) adds `__sig` to every such redirect: a vault seal of nothing whose associated data is
//!   the path, the error and an expiry ten minutes ahead — any instance with the vault's keys can check it, and it
//!   cannot be moved to another error, another server function or a later time;
//! - [`verify`] (on requests) removes `__path`, `__err` and `__sig` from the URL before the page sees it unless the
//!   signature holds, so a forged, altered or stale error is simply not shown.
//!
//! Why sign rather than map to closed codes: a field's message is written by the validator that refused the value
//! (`auth::validate_*`, the actions' forms), and a sign-up with JavaScript off deserves the same sentence as with it.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Uri, header},
    middleware::Next,
    response::Response,
};

use crate::{
    db::now_ms,
    tokens::vault::{Slot, Vault},
};

/// How long a signed error stays showable: the redirect is followed at once, a reload a little later still works.
const VALID_FOR_MS: i64 = 10 * 60 * 1000;
const PARAMS: [&str; 3] = ["__path", "__err", "__sig"];

fn associated_data(path: &str, err: &str, expires: i64) -> String {
    // Base64 and server-function paths hold no newline: the three parts cannot be shifted into each other.
    format!("{path}\n{err}\n{expires}")
}

fn slot(data: &str) -> Slot<'_> {
    Slot {
        table: "form_errors",
        row: data,
        column: "__sig",
        owner: None,
    }
}

/// `<expires>.<sealed>` for this error.
fn signature(vault: &Vault, path: &str, err: &str, now: i64) -> String {
    let expires = now + VALID_FOR_MS;
    format!(
        "{expires}.{}",
        vault.seal("", slot(&associated_data(path, err, expires)))
    )
}

fn valid(vault: &Vault, path: &str, err: &str, sig: &str, now: i64) -> bool {
    let Some((expires, sealed)) = sig.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    expires > now && vault.open(sealed, slot(&associated_data(path, err, expires))).is_ok()
}

/// A query split into the page's own pairs and ours.
#[derive(Debug, Default)]
struct Split {
    rest: Vec<(String, String)>,
    path: Option<String>,
    err: Option<String>,
    sig: Option<String>,
}

/// The query's pairs without ours, and the last `__path`, `__err` and `__sig` in it (Leptos appends a new error to
/// a page URL that may still hold an earlier one).
fn split(query: &str) -> Split {
    let mut split = Split::default();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "__path" => split.path = Some(value.into_owned()),
            "__err" => split.err = Some(value.into_owned()),
            "__sig" => split.sig = Some(value.into_owned()),
            _ => split.rest.push((key.into_owned(), value.into_owned())),
        }
    }
    split
}

fn with_query(rest: &[(String, String)], ours: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.extend_pairs(rest.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    query.extend_pairs(ours.iter().copied());
    query.finish()
}

/// Signs the error in a server function's redirect back to its form (and drops a stale signature from a redirect
/// that carries none).
pub async fn sign(State(vault): State<Arc<Vault>>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let Some(location) = res
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok())
    else {
        return res;
    };
    let Some(query) = location.query().filter(|q| PARAMS.iter().any(|p| q.contains(p))) else {
        return res;
    };
    let Split { rest, path, err, .. } = split(query);
    let ours = match (&path, &err) {
        (Some(path), Some(err)) => {
            let sig = signature(&vault, path, err, now_ms());
            with_query(&rest, &[("__path", path), ("__err", err), ("__sig", &sig)])
        }
        _ => with_query(&rest, &[]),
    };
    let mut signed = location.clone();
    signed.set_query((!ours.is_empty()).then_some(ours.as_str()));
    if let Ok(value) = HeaderValue::from_str(signed.as_str()) {
        res.headers_mut().insert(header::LOCATION, value);
    }
    res
}

/// Drops an error from the request's URL unless the server signed it (see the module documentation).
pub async fn verify(State(vault): State<Arc<Vault>>, mut req: Request, next: Next) -> Response {
    if let Some(query) = req.uri().query().filter(|q| PARAMS.iter().any(|p| q.contains(p))) {
        let Split { rest, path, err, sig } = split(query);
        let genuine = match (&path, &err, &sig) {
            (Some(path), Some(err), Some(sig)) => valid(&vault, path, err, sig, now_ms()),
            _ => false,
        };
        if !genuine {
            if path.is_some() || err.is_some() {
                tracing::info!("an unsigned or stale form error in the URL was not shown");
            }
            let query = with_query(&rest, &[]);
            let path_and_query = if query.is_empty() {
                req.uri().path().to_owned()
            } else {
                format!("{}?{query}", req.uri().path())
            };
            let mut parts = req.uri().clone().into_parts();
            if let Ok(pq) = path_and_query.parse() {
                parts.path_and_query = Some(pq);
                if let Ok(uri) = Uri::from_parts(parts) {
                    *req.uri_mut() = uri;
                }
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(current: &str, byte: u8) -> Vault {
        Vault::new(current, [(current.to_owned(), [byte; 32])].into()).unwrap()
    }

    #[test]
    fn a_signature_holds_for_its_path_error_and_time_only() {
        let v = vault("k", 1);
        let now = 1_000_000;
        let sig = signature(&v, "/api/sign_in", "eyJr", now);
        assert!(valid(&v, "/api/sign_in", "eyJr", &sig, now));
        assert!(valid(&v, "/api/sign_in", "eyJr", &sig, now + VALID_FOR_MS - 1));
        assert!(!valid(&v, "/api/sign_in", "eyJr", &sig, now + VALID_FOR_MS), "stale");
        assert!(!valid(&v, "/api/sign_in", "eyJs", &sig, now), "another error");
        assert!(!valid(&v, "/api/sign_up", "eyJr", &sig, now), "another server function");
        let later = sig.replacen(
            &(now + VALID_FOR_MS).to_string(),
            &(now + 10 * VALID_FOR_MS).to_string(),
            1,
        );
        assert!(!valid(&v, "/api/sign_in", "eyJr", &later, now), "a moved expiry");
        assert!(!valid(&vault("k", 2), "/api/sign_in", "eyJr", &sig, now), "another key");
        for junk in ["", "1", "x.y", "99999999999999.v1.k.AAAA"] {
            assert!(!valid(&v, "/api/sign_in", "eyJr", junk, now), "{junk}");
        }
    }

    #[test]
    fn our_parameters_are_split_from_the_rest_keeping_the_last_error() {
        let Split { rest, path, err, sig } = split("next=%2Faccount&__path=a&__err=old&__path=b&__err=new&__sig=s");
        assert_eq!(rest, vec![("next".to_owned(), "/account".to_owned())]);
        assert_eq!(
            (path.as_deref(), err.as_deref(), sig.as_deref()),
            (Some("b"), Some("new"), Some("s"))
        );
        assert_eq!(with_query(&rest, &[("__err", "e")]), "next=%2Faccount&__err=e");
    }
}
