//! "You need more consent" read out of an API's 401/403 (`delegation::consent`): the four Globus shapes at the top
//! level or in an `errors` list, and RFC 6750's `WWW-Authenticate: Bearer error="insufficient_scope"`.
//! Input: `[status, WWW-Authenticate value…, 0, body…]` (no 0: no header, all body).
#![no_main]

use libfuzzer_sys::fuzz_target;
use onbehalf::delegation::consent;

const STATUSES: [u16; 4] = [401, 403, 400, 200];

fuzz_target!(|data: &[u8]| {
    let [status, rest @ ..] = data else {
        return;
    };
    let status = STATUSES[*status as usize % STATUSES.len()];
    let (header, body) = match rest.iter().position(|b| *b == 0) {
        Some(at) => (std::str::from_utf8(&rest[..at]).ok(), &rest[at + 1..]),
        None => (None, rest),
    };
    if consent::requirement(status, header, body).is_some() {
        assert!(matches!(status, 401 | 403), "only a refusal states a requirement");
    }
});
