//! Where webhooks may go: `https://` URLs of public hosts. A webhook URL is chosen by whoever administers the
//! platform, but it makes *this* server send requests, so it must not reach what only this server can reach: the
//! loopback, private networks, link-local addresses (cloud metadata services at 169.254.169.254), and the like.
//!
//! Checked twice: when an endpoint is added (a clear error for the admin), and at every connection, by the
//! dispatcher's DNS resolver ([`GuardedResolver`]) — a name that resolved to a public address yesterday may resolve
//! to 10.0.0.1 today (DNS rebinding), and only the address actually connected to counts. IP literals never reach a
//! resolver, so [`check_url`] runs before every request too. Redirects are never followed.
//!
//! `webhooks.allow_http_loopback` (tests, a receiver on the same machine) lets `http://` and loopback addresses
//! through, nothing else.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;

/// What the rules allow besides public https.
#[derive(Debug, Clone, Copy, Default)]
pub struct Policy {
    pub allow_http_loopback: bool,
}

/// Whether `ip` is an address anyone on the internet could also reach (not loopback, private, link-local, shared,
/// multicast, documentation, reserved…).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let [first, second, ..] = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || (first == 0x2001 && second == 0x0db8) // documentation 2001:db8::/32
                || (first == 0x2001 && second == 0) // Teredo 2001::/32 (embeds IPv4)
                || (first == 0x2001 && second == 2) // benchmarking 2001:2::/48
                || (first == 0x0064 && second == 0xff9b) // NAT64 64:ff9b::/96 and 64:ff9b:1::/48 (embed IPv4)
                || (first == 0x0100 && v6.segments()[1..4] == [0; 3]) // discard-only 100::/64
                || first == 0x2002 // 6to4 (embeds IPv4)
                || v6.segments()[..6] == [0; 6] // IPv4-compatible ::a.b.c.d
                || v6.segments()[..6] == [0, 0, 0, 0, 0xffff, 0]) // SIIT ::ffff:0:a.b.c.d
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn allowed(ip: IpAddr, policy: Policy) -> bool {
    is_public(ip) || (policy.allow_http_loopback && ip.is_loopback())
}

/// Why a URL is refused, in words for the admin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

fn refused(message: impl Into<String>) -> Refused {
    Refused(message.into())
}

/// Checks a webhook URL's form and, for an IP literal, its address (names are checked when they resolve).
pub fn check_url(raw: &str, policy: Policy) -> Result<Url, Refused> {
    if raw.len() > MAX_URL_LEN {
        return Err(refused(format!("The URL is longer than {MAX_URL_LEN} characters.")));
    }
    let url = Url::parse(raw).map_err(|e| refused(format!("This is not a URL ({e}).")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("The URL must not carry a user name or password."));
    }
    if url.fragment().is_some() {
        return Err(refused("The URL must not have a #fragment."));
    }
    let host = url.host().ok_or_else(|| refused("The URL has no host."))?;
    let loopback = match &host {
        Host::Ipv4(ip) => Some(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => Some(IpAddr::V6(*ip)),
        Host::Domain(_) => None,
    };
    let named_loopback = matches!(&host, Host::Domain(d) if d.eq_ignore_ascii_case("localhost"));
    match url.scheme() {
        "https" => {}
        "http" if policy.allow_http_loopback && crate::http::is_loopback_url(&url) => {}
        "http" if policy.allow_http_loopback => {
            return Err(refused(
                "Only a loopback URL may use http:// (webhooks.allow_http_loopback); use https://.",
            ));
        }
        "http" => return Err(refused("Webhook URLs must use https://.")),
        other => return Err(refused(format!("Webhook URLs must use https://, not {other}://."))),
    }
    if let Some(ip) = loopback
        && !allowed(ip, policy)
    {
        return Err(refused(format!(
            "{ip} is not a public address: webhooks are not sent to loopback, private or link-local networks."
        )));
    }
    if named_loopback && !policy.allow_http_loopback {
        return Err(refused(
            "localhost is not a public address: webhooks are not sent to loopback, private or link-local networks.",
        ));
    }
    Ok(url)
}

/// Resolves `host` now and refuses it when every address it has is one webhooks may not reach. A name that does not
/// resolve yet is accepted (the receiver may not be deployed yet); the resolver checks again at every connection.
pub async fn check_resolved(url: &Url, policy: Policy) -> Result<(), Refused> {
    let Some(Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let Ok(addrs) = tokio::net::lookup_host((name, port)).await else {
        return Ok(());
    };
    let addrs: Vec<SocketAddr> = addrs.collect();
    match addrs.iter().find(|a| !allowed(a.ip(), policy)) {
        Some(bad) => Err(refused(format!(
            "{name} resolves to {}, which is not a public address: webhooks are not sent to loopback, private or \
             link-local networks.",
            bad.ip()
        ))),
        None => Ok(()),
    }
}

/// The dispatcher's DNS resolver: the system's answer without the addresses webhooks may not reach; an error when
/// none is left.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver(pub Policy);

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed(a.ip(), policy))
                .collect();
            if addrs.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

impl GuardedResolver {
    pub fn shared(policy: Policy) -> Arc<Self> {
        Arc::new(Self(policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Policy = Policy {
        allow_http_loopback: false,
    };
    const LOOPBACK: Policy = Policy {
        allow_http_loopback: true,
    };

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b:1::a00:1",
            "::ffff:0:a00:1",
            "2001:0:4136:e378::1",
            "2001:2::1",
            "100::1",
            "2002:a00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "::ffff:93.184.216.34",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn urls_are_https_to_public_hosts_unless_loopback_is_allowed() {
        assert!(check_url("https://hooks.example.org/onbehalf", STRICT).is_ok());
        let refusals = [
            ("http://hooks.example.org/", "must use https://"),
            ("ftp://hooks.example.org/", "not ftp://"),
            ("https://10.0.0.1/", "not a public address"),
            ("https://[::1]/", "not a public address"),
            ("https://169.254.169.254/latest/meta-data", "not a public address"),
            ("https://localhost/", "not a public address"),
            ("https://user:pw@hooks.example.org/", "user name or password"),
            ("https://hooks.example.org/#x", "fragment"),
            ("not a url", "not a URL"),
        ];
        for (url, message) in refusals {
            let err = check_url(url, STRICT).unwrap_err();
            assert!(err.0.contains(message), "{url}: {err}");
        }
        assert!(check_url(&format!("https://example.org/{}", "a".repeat(MAX_URL_LEN)), STRICT).is_err());

        assert!(check_url("http://127.0.0.1:8080/hook", LOOPBACK).is_ok());
        assert!(check_url("http://localhost:8080/hook", LOOPBACK).is_ok());
        assert!(check_url("http://[::1]:8080/hook", LOOPBACK).is_ok());
        let err = check_url("http://hooks.example.org/", LOOPBACK).unwrap_err();
        assert!(err.0.contains("Only a loopback URL may use http://"), "{err}");
        assert!(
            check_url("https://10.0.0.1/", LOOPBACK).is_err(),
            "private stays refused"
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_what_may_not_be_reached() {
        let strict = GuardedResolver(STRICT);
        let err = match strict.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost resolved under the strict policy"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("no public address"), "{err}");
        let addrs: Vec<_> = GuardedResolver(LOOPBACK)
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));

        let url = Url::parse("https://localhost/").unwrap();
        assert!(check_resolved(&url, STRICT).await.is_err());
        assert!(check_resolved(&url, LOOPBACK).await.is_ok());
    }
}
