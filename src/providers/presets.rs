//! What each `kind` brings: endpoints, default scopes, authorize parameters, API bases and quirks. Every value
//! can be overridden by the provider's configuration entry.

use std::collections::BTreeMap;

use url::Url;

use crate::actions::TRANSFER_RESOURCE_SERVER;

use super::{
    ApiBase, IdentitySource, Provider, ProviderKind, TokenShape,
    discovery::{DiscoveryCache, KnownEndpoints},
    id_token::JwksCache,
    settings::{ActionParam, ActionSettings, ApiBaseUrls, ProviderSettings},
};

pub const GLOBUS_ISSUER: &str = "https://auth.globus.org";
pub const GLOBUS_TRANSFER_API: &str = "https://transfer.api.globus.org/v0.10/";
pub const GLOBUS_TRANSFER_SCOPE: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
/// The resource server Globus names its Auth tokens by (`resource_server` in token responses); Transfer's is
/// `actions::TRANSFER_RESOURCE_SERVER`.
pub const GLOBUS_AUTH_RESOURCE_SERVER: &str = "auth.globus.org";

fn url(s: &str) -> Url {
    Url::parse(s).expect("preset URLs are valid")
}

/// What a `kind` brings before the provider's configuration entry overrides any of it. A kind fills in what differs
/// from the standard (an OAuth 2.0 provider that knows nothing, [`Preset::default`]) and leaves the rest to
/// `..Preset::default()`; adding a kind is one arm of [`preset`], plus its line in the test below.
struct Preset {
    /// Shown when the entry names none.
    display_name: String,
    issuer: Option<String>,
    endpoints: KnownEndpoints,
    /// Whether discovery (`issuer/.well-known/openid-configuration`) completes `endpoints`.
    discover: bool,
    scopes: &'static [&'static str],
    authorize_params: &'static [(&'static str, &'static str)],
    /// URL prefixes, and the resource server whose tokens may be sent under each.
    api_bases: Vec<(&'static str, Url)>,
    identity: IdentitySource,
    token_shape: TokenShape,
    /// The resource server a standard token response's tokens are for.
    resource_server: String,
    /// Read actions shipped with the kind (Globus' Transfer actions are typed, in `actions::globus`).
    actions: Vec<ActionSettings>,
    /// Whether revoking one token ends the whole grant (Google), so disconnecting one account revokes only once.
    revocation_ends_grant: bool,
    /// Whether a refresh answer may replace the refresh token. Assumed unless the kind is known not to: resending a
    /// replaced token trips a strict provider's reuse detection, while not resending one that was still good only
    /// costs a reconnect after a crash (`delegation::refresh`).
    rotates_refresh_tokens: bool,
}

impl Default for Preset {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            issuer: None,
            endpoints: KnownEndpoints::default(),
            discover: false,
            scopes: &[],
            authorize_params: &[],
            api_bases: vec![],
            identity: IdentitySource::IdToken,
            token_shape: TokenShape::Standard,
            resource_server: String::new(),
            actions: vec![],
            revocation_ends_grant: false,
            rotates_refresh_tokens: true,
        }
    }
}

fn preset(id: &str, p: &ProviderSettings) -> Preset {
    let issuer = p.issuer.clone();
    match p.kind {
        ProviderKind::Globus => {
            // Globus' endpoints hang off its issuer; deriving them lets the demo provider (a `globus` kind with
            // its own issuer) reuse the preset.
            let issuer = issuer.unwrap_or_else(|| GLOBUS_ISSUER.to_owned());
            let base = issuer.trim_end_matches('/').to_owned();
            let at = |path: &str| url(&format!("{base}{path}"));
            Preset {
                display_name: "Globus".to_owned(),
                endpoints: KnownEndpoints {
                    authorization: Some(at("/v2/oauth2/authorize")),
                    token: Some(at("/v2/oauth2/token")),
                    userinfo: Some(at("/v2/oauth2/userinfo")),
                    jwks_uri: Some(at("/jwk.json")),
                    revocation: Some(at("/v2/oauth2/token/revoke")),
                    introspection: Some(at("/v2/oauth2/token/introspect")),
                },
                scopes: &["openid", "profile", "email", GLOBUS_TRANSFER_SCOPE],
                authorize_params: &[("access_type", "offline")],
                api_bases: vec![
                    (TRANSFER_RESOURCE_SERVER, url(GLOBUS_TRANSFER_API)),
                    (GLOBUS_AUTH_RESOURCE_SERVER, at("/v2/")),
                ],
                token_shape: TokenShape::Globus,
                resource_server: GLOBUS_AUTH_RESOURCE_SERVER.to_owned(),
                rotates_refresh_tokens: false,
                issuer: Some(issuer),
                ..Preset::default()
            }
        }
        ProviderKind::Github => Preset {
            display_name: "GitHub".to_owned(),
            endpoints: KnownEndpoints {
                authorization: Some(url("https://github.com/login/oauth/authorize")),
                token: Some(url("https://github.com/login/oauth/access_token")),
                userinfo: Some(url("https://api.github.com/user")),
                // Not RFC 7009: GitHub ends a grant by `DELETE` here (`revocation::Method::GithubGrant`).
                revocation: Some(url(&format!(
                    "https://api.github.com/applications/{}/grant",
                    url::form_urlencoded::byte_serialize(p.client_id.as_bytes()).collect::<String>()
                ))),
                ..Default::default()
            },
            scopes: &["read:user"],
            api_bases: vec![("api.github.com", url("https://api.github.com/"))],
            identity: IdentitySource::GithubUser,
            resource_server: "api.github.com".to_owned(),
            actions: vec![ActionSettings {
                name: "repositories".to_owned(),
                title: "My repositories".to_owned(),
                path: "user/repos".to_owned(),
                params: vec![
                    optional_param("sort", "Sort by", "updated"),
                    optional_param("per_page", "Per page", "30"),
                ],
            }],
            ..Preset::default()
        },
        ProviderKind::Orcid => Preset {
            display_name: "ORCID".to_owned(),
            endpoints: KnownEndpoints {
                authorization: Some(url("https://orcid.org/oauth/authorize")),
                token: Some(url("https://orcid.org/oauth/token")),
                revocation: Some(url("https://orcid.org/oauth/revoke")),
                ..Default::default()
            },
            scopes: &["/authenticate"],
            api_bases: vec![("orcid.org", url("https://pub.orcid.org/v3.0/"))],
            identity: IdentitySource::TokenResponse {
                subject: "orcid",
                name: "name",
            },
            resource_server: "orcid.org".to_owned(),
            actions: vec![ActionSettings {
                name: "record".to_owned(),
                title: "My ORCID record".to_owned(),
                path: "{subject}/record".to_owned(),
                params: vec![],
            }],
            rotates_refresh_tokens: false,
            ..Preset::default()
        },
        ProviderKind::Google => Preset {
            display_name: "Google".to_owned(),
            issuer: Some(issuer.unwrap_or_else(|| "https://accounts.google.com".to_owned())),
            // Google's discovery document names these on googleapis.com, not the issuer's host: they are the
            // preset's word, so discovery (which trusts only the issuer's host) has only the rest to fill in.
            endpoints: KnownEndpoints {
                token: Some(url("https://oauth2.googleapis.com/token")),
                userinfo: Some(url("https://openidconnect.googleapis.com/v1/userinfo")),
                jwks_uri: Some(url("https://www.googleapis.com/oauth2/v3/certs")),
                revocation: Some(url("https://oauth2.googleapis.com/revoke")),
                ..Default::default()
            },
            discover: true,
            scopes: &["openid", "email", "profile"],
            // Without prompt=consent Google returns a refresh token only on the first consent.
            authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
            api_bases: vec![("www.googleapis.com", url("https://www.googleapis.com/"))],
            resource_server: "www.googleapis.com".to_owned(),
            revocation_ends_grant: true,
            rotates_refresh_tokens: false,
            ..Preset::default()
        },
        ProviderKind::Oidc => Preset {
            display_name: id.to_owned(),
            resource_server: issuer
                .as_deref()
                .and_then(|i| Url::parse(i).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| id.to_owned()),
            issuer,
            discover: true,
            scopes: &["openid"],
            ..Preset::default()
        },
        ProviderKind::Oauth2 => Preset {
            display_name: id.to_owned(),
            issuer,
            identity: IdentitySource::Userinfo {
                subject_claim: p.subject_claim.clone().unwrap_or_else(|| "sub".to_owned()),
            },
            resource_server: p
                .api_base_urls
                .iter()
                .flat_map(ApiBaseUrls::all)
                .next()
                .and_then(|u| u.host_str())
                .unwrap_or(id)
                .to_owned(),
            ..Preset::default()
        },
    }
}

fn optional_param(name: &str, title: &str, default: &str) -> ActionParam {
    ActionParam {
        name: name.to_owned(),
        title: title.to_owned(),
        required: false,
        default: Some(default.to_owned()),
    }
}

/// Resolves one validated configuration entry into a provider: its kind's [`Preset`], overridden by what the entry
/// says.
pub fn resolve(id: &str, p: &ProviderSettings) -> Provider {
    let preset = preset(id, p);
    let known = KnownEndpoints {
        authorization: p.authorization_endpoint.clone().or(preset.endpoints.authorization),
        token: p.token_endpoint.clone().or(preset.endpoints.token),
        userinfo: p.userinfo_endpoint.clone().or(preset.endpoints.userinfo),
        jwks_uri: p.jwks_uri.clone().or(preset.endpoints.jwks_uri),
        revocation: p.revocation_endpoint.clone().or(preset.endpoints.revocation),
        introspection: p.introspection_endpoint.clone().or(preset.endpoints.introspection),
    };
    let default_resource_server = p.resource_server.clone().unwrap_or(preset.resource_server);
    let mut authorize_params: BTreeMap<String, String> = preset
        .authorize_params
        .iter()
        .map(|&(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    authorize_params.extend(p.authorize_params.clone());
    Provider {
        id: id.to_owned(),
        kind: p.kind,
        display_name: p.display_name.clone().unwrap_or(preset.display_name),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        client_auth: p.client_auth,
        scopes: p
            .scopes
            .clone()
            .unwrap_or_else(|| preset.scopes.iter().map(|&s| s.to_owned()).collect()),
        authorize_params,
        api_base_urls: match &p.api_base_urls {
            None => preset
                .api_bases
                .into_iter()
                .map(|(resource_server, url)| ApiBase {
                    resource_server: resource_server.to_owned(),
                    url,
                })
                .collect(),
            Some(ApiBaseUrls::List(urls)) => urls
                .iter()
                .map(|url| ApiBase {
                    resource_server: default_resource_server.clone(),
                    url: url.clone(),
                })
                .collect(),
            Some(ApiBaseUrls::ByResourceServer(map)) => map
                .iter()
                .flat_map(|(resource_server, urls)| {
                    urls.iter().map(|url| ApiBase {
                        resource_server: resource_server.clone(),
                        url: url.clone(),
                    })
                })
                .collect(),
        },
        issuer: preset.issuer,
        identity: preset.identity,
        token_shape: preset.token_shape,
        default_resource_server,
        refresh_skew: p.refresh_skew,
        actions: p.actions.clone().unwrap_or(preset.actions),
        revocation_ends_grant: p.revocation_ends_grant.unwrap_or(preset.revocation_ends_grant),
        rotates_refresh_tokens: p.rotates_refresh_tokens.unwrap_or(preset.rotates_refresh_tokens),
        endpoints: DiscoveryCache::new(known, preset.discover),
        jwks: JwksCache::default(),
    }
}

/// The catalog entry of the built-in demo provider: a `globus` kind at the demo's issuer, whose Transfer API
/// lives on the same server.
pub fn demo(issuer: &str, client_id: &str, client_secret: &str) -> Provider {
    let base = issuer.trim_end_matches('/');
    let settings = ProviderSettings {
        kind: ProviderKind::Globus,
        display_name: Some("Demo Globus".to_owned()),
        client_id: client_id.to_owned(),
        client_secret: Some(client_secret.to_owned().into()),
        client_auth: Default::default(),
        scopes: None,
        authorize_params: BTreeMap::new(),
        api_base_urls: Some(ApiBaseUrls::ByResourceServer(BTreeMap::from([
            (
                TRANSFER_RESOURCE_SERVER.to_owned(),
                vec![url(&format!("{base}/v0.10/"))],
            ),
            (
                GLOBUS_AUTH_RESOURCE_SERVER.to_owned(),
                vec![url(&format!("{base}/v2/"))],
            ),
        ]))),
        issuer: Some(issuer.to_owned()),
        authorization_endpoint: None,
        token_endpoint: None,
        userinfo_endpoint: None,
        jwks_uri: None,
        revocation_endpoint: None,
        introspection_endpoint: None,
        subject_claim: None,
        resource_server: None,
        refresh_skew: None,
        actions: None,
        revocation_ends_grant: None,
        // The demo provider rotates strictly: a reused refresh token revokes the grant.
        rotates_refresh_tokens: Some(true),
    };
    resolve(crate::config::DEMO_PROVIDER_ID, &settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One line per kind: what its preset says where the configuration entry says nothing.
    #[test]
    fn each_kind_brings_its_name_resource_server_and_refresh_token_habits() {
        for (kind, display_name, resource_server, rotates, revocation_ends_grant) in [
            ("globus", "Globus", GLOBUS_AUTH_RESOURCE_SERVER, false, false),
            ("github", "GitHub", "api.github.com", true, false),
            ("orcid", "ORCID", "orcid.org", false, false),
            ("google", "Google", "www.googleapis.com", false, true),
            ("oidc", "p", "id.example", true, false),
            ("oauth2", "p", "api.example", true, false),
        ] {
            let settings: ProviderSettings = serde_json::from_value(serde_json::json!({
                "kind": kind, "client_id": "c", "issuer": "https://id.example/",
                "api_base_urls": if kind == "oauth2" { Some(["https://api.example/v1/"]) } else { None },
            }))
            .unwrap();
            let p = resolve("p", &settings);
            assert_eq!(
                (
                    p.display_name.as_str(),
                    p.default_resource_server.as_str(),
                    p.rotates_refresh_tokens,
                    p.revocation_ends_grant
                ),
                (display_name, resource_server, rotates, revocation_ends_grant),
                "{kind}"
            );
            assert!(
                kind == "oidc" || kind == "oauth2" || !p.api_base_urls.is_empty(),
                "{kind}: a known API"
            );
        }
    }

    #[test]
    fn the_entry_overrides_the_preset() {
        let settings: ProviderSettings = serde_json::from_value(serde_json::json!({
            "kind": "google", "client_id": "c", "display_name": "Work Google", "scopes": ["openid"],
            "authorize_params": {"prompt": "select_account"}, "rotates_refresh_tokens": true,
            "revocation_ends_grant": false, "actions": [],
        }))
        .unwrap();
        let p = resolve("g", &settings);
        assert_eq!(p.display_name, "Work Google");
        assert_eq!(p.scopes, ["openid"]);
        assert_eq!(p.authorize_params["prompt"], "select_account");
        assert_eq!(
            p.authorize_params["access_type"], "offline",
            "kept where the entry is silent"
        );
        assert!(p.rotates_refresh_tokens && !p.revocation_ends_grant);
        assert!(p.actions.is_empty());
    }
}
