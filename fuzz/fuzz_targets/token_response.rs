//! A token endpoint's answer as `providers::token_endpoint` reads it: a status, whether it was labelled JSON, and the
//! body; then its token sets as one provider kind reads them (Globus with `other_tokens` and a resource server per
//! token, GitHub with its errors under 200, a standard OpenID provider).
//! Input: `[kind and label, status, body…]`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use onbehalf::{
    config::Settings,
    providers::{Catalog, token_endpoint},
};

const KINDS: [&str; 3] = ["globus", "github", "oidc"];
const STATUSES: [u16; 10] = [200, 200, 200, 400, 401, 403, 429, 500, 502, 503];

static CATALOG: LazyLock<Catalog> = LazyLock::new(|| {
    let mut settings = Settings::default();
    for kind in KINDS {
        let entry = serde_json::json!({
            "kind": kind, "client_id": "client", "client_secret": "secret", "issuer": "https://issuer.example",
        });
        settings
            .providers
            .insert(kind.to_owned(), serde_json::from_value(entry).unwrap());
    }
    Catalog::from_settings(&settings)
});

fuzz_target!(|data: &[u8]| {
    let [selector, status, body @ ..] = data else {
        return;
    };
    let provider = CATALOG.get(KINDS[*selector as usize % KINDS.len()]).unwrap();
    let status = STATUSES[*status as usize % STATUSES.len()];
    let is_json = selector & 0x80 == 0;
    let Ok(map) = token_endpoint::read_answer(status, is_json, None, body) else {
        return;
    };
    assert!((200..300).contains(&status), "only a 2xx answer is a success");
    if let Ok(response) = token_endpoint::parse(&provider, map, &["openid".to_owned()]) {
        assert!(!response.sets.is_empty());
        for set in &response.sets {
            assert!(!set.access_token().is_empty(), "an empty access token is not a token");
        }
    }
});
