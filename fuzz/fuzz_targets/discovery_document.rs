//! An OpenID Connect discovery document as `providers::discovery` takes it: read, its issuer checked, every
//! endpoint vetted. Whatever the bytes, the endpoints it will send the client secret, codes and tokens to are on the
//! issuer's host, over https unless the issuer is plain http on loopback. Input: the document.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use onbehalf::providers::discovery::{DiscoveryCache, KnownEndpoints};

const ISSUERS: [&str; 2] = ["https://issuer.example", "http://127.0.0.1:8080"];

static CACHE: LazyLock<DiscoveryCache> = LazyLock::new(|| DiscoveryCache::new(KnownEndpoints::default(), true));

fuzz_target!(|data: &[u8]| {
    for issuer in ISSUERS {
        let Ok(endpoints) = CACHE.endpoints_from(issuer, data) else {
            continue;
        };
        let issuer = url::Url::parse(issuer).unwrap();
        let used = [Some(&endpoints.authorization), Some(&endpoints.token)]
            .into_iter()
            .chain(
                [
                    &endpoints.userinfo,
                    &endpoints.jwks_uri,
                    &endpoints.revocation,
                    &endpoints.introspection,
                ]
                .map(Option::as_ref),
            )
            .flatten();
        for endpoint in used {
            assert_eq!(endpoint.host(), issuer.host(), "{endpoint}");
            assert!(
                endpoint.scheme() == "https" || endpoint.scheme() == issuer.scheme(),
                "{endpoint}"
            );
        }
    }
});
