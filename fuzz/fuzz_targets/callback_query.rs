//! The OAuth callback's query string as the route reads it (`Query<CallbackParams>`), and what of it may reach logs
//! and the audit trail: `Debug` never shows the code or state, and a provider's `error` is cut to a short printable
//! token (`accounts::link::printable`). Input: the query string.
#![no_main]

use axum::{extract::Query, http::Uri};
use libfuzzer_sys::fuzz_target;
use onbehalf::accounts::link::{CallbackParams, printable};

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(uri) = format!("/oauth/demo/callback?{query}").parse::<Uri>() else {
        return;
    };
    let Ok(Query(params)) = Query::<CallbackParams>::try_from_uri(&uri) else {
        return;
    };
    let shown = format!("{params:?}");
    let visible = [&params.iss, &params.error];
    for secret in [&params.code, &params.state].into_iter().flatten() {
        // Long enough not to occur in the fixed text by chance, and not also given as a visible member.
        let echoed = visible
            .iter()
            .any(|v| v.as_deref().is_some_and(|v| v.contains(secret.as_str())));
        if secret.len() >= 16 && !echoed {
            assert!(!shown.contains(secret.as_str()), "{shown}");
        }
    }
    if let Some(error) = &params.error {
        let kept = printable(error);
        assert!(kept.len() <= 64 && kept.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }
});
