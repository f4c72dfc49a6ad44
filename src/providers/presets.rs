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

/// Resolves one validated configuration entry into a provider.
pub fn resolve(id: &str, p: &ProviderSettings) -> Provider {
    let issuer = p.issuer.clone();
    let (default_name, issuer, known, discover, scopes, params, apis, identity, shape, resource_server) = match p.kind {
        ProviderKind::Globus => {
            // Globus' endpoints hang off its issuer; deriving them lets the demo provider (a `globus` kind with
            // its own issuer) reuse the preset.
            let issuer = issuer.unwrap_or_else(|| GLOBUS_ISSUER.to_owned());
            let base = issuer.trim_end_matches('/').to_owned();
            let at = |path: &str| url(&format!("{base}{path}"));
            (
                "Globus",
                Some(issuer.clone()),
                KnownEndpoints {
                    authorization: Some(at("/v2/oauth2/authorize")),
                    token: Some(at("/v2/oauth2/token")),
                    userinfo: Some(at("/v2/oauth2/userinfo")),
                    jwks_uri: Some(at("/jwk.json")),
                    revocation: Some(at("/v2/oauth2/token/revoke")),
                    introspection: Some(at("/v2/oauth2/token/introspect")),
                },
                false,
                vec!["openid", "profile", "email", GLOBUS_TRANSFER_SCOPE],
                vec![("access_type", "offline")],
                vec![
                    (TRANSFER_RESOURCE_SERVER, url(GLOBUS_TRANSFER_API)),
                    (GLOBUS_AUTH_RESOURCE_SERVER, at("/v2/")),
                ],
                IdentitySource::IdToken,
                TokenShape::Globus,
                GLOBUS_AUTH_RESOURCE_SERVER.to_owned(),
            )
        }
        ProviderKind::Github => (
            "GitHub",
            None,
            KnownEndpoints {
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
            false,
            vec!["read:user"],
            vec![],
            vec![("api.github.com", url("https://api.github.com/"))],
            IdentitySource::GithubUser,
            TokenShape::Standard,
            "api.github.com".to_owned(),
        ),
        ProviderKind::Orcid => (
            "ORCID",
            None,
            KnownEndpoints {
                authorization: Some(url("https://orcid.org/oauth/authorize")),
                token: Some(url("https://orcid.org/oauth/token")),
                revocation: Some(url("https://orcid.org/oauth/revoke")),
                ..Default::default()
            },
            false,
            vec!["/authenticate"],
            vec![],
            vec![("orcid.org", url("https://pub.orcid.org/v3.0/"))],
            IdentitySource::TokenResponse {
                subject: "orcid",
                name: "name",
            },
            TokenShape::Standard,
            "orcid.org".to_owned(),
        ),
        ProviderKind::Google => (
            "Google",
            Some(issuer.unwrap_or_else(|| "https://accounts.google.com".to_owned())),
            // Google's discovery document names these on googleapis.com, not the issuer's host: they are the
            // preset's word, so discovery (which trusts only the issuer's host) has only the rest to fill in.
            KnownEndpoints {
                token: Some(url("https://oauth2.googleapis.com/token")),
                userinfo: Some(url("https://openidconnect.googleapis.com/v1/userinfo")),
                jwks_uri: Some(url("https://www.googleapis.com/oauth2/v3/certs")),
                revocation: Some(url("https://oauth2.googleapis.com/revoke")),
                ..Default::default()
            },
            true,
            vec!["openid", "email", "profile"],
            // Without prompt=consent Google returns a refresh token only on the first consent.
            vec![("access_type", "offline"), ("prompt", "consent")],
            vec![("www.googleapis.com", url("https://www.googleapis.com/"))],
            IdentitySource::IdToken,
            TokenShape::Standard,
            "www.googleapis.com".to_owned(),
        ),
        ProviderKind::Oidc => {
            let host = p
                .issuer
                .as_deref()
                .and_then(|i| Url::parse(i).ok())
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_else(|| id.to_owned());
            (
                id,
                issuer,
                KnownEndpoints::default(),
                true,
                vec!["openid"],
                vec![],
                vec![],
                IdentitySource::IdToken,
                TokenShape::Standard,
                host,
            )
        }
        ProviderKind::Oauth2 => {
            let host = p
                .api_base_urls
                .iter()
                .flat_map(ApiBaseUrls::all)
                .next()
                .and_then(|u| u.host_str())
                .unwrap_or(id)
                .to_owned();
            (
                id,
                issuer,
                KnownEndpoints::default(),
                false,
                vec![],
                vec![],
                vec![],
                IdentitySource::Userinfo {
                    subject_claim: p.subject_claim.clone().unwrap_or_else(|| "sub".to_owned()),
                },
                TokenShape::Standard,
                host,
            )
        }
    };
    let known = KnownEndpoints {
        authorization: p.authorization_endpoint.clone().or(known.authorization),
        token: p.token_endpoint.clone().or(known.token),
        userinfo: p.userinfo_endpoint.clone().or(known.userinfo),
        jwks_uri: p.jwks_uri.clone().or(known.jwks_uri),
        revocation: p.revocation_endpoint.clone().or(known.revocation),
        introspection: p.introspection_endpoint.clone().or(known.introspection),
    };
    let actions = p.actions.clone().unwrap_or_else(|| preset_actions(p.kind));
    let default_resource_server = p.resource_server.clone().unwrap_or(resource_server);
    let mut authorize_params: BTreeMap<String, String> =
        params.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
    authorize_params.extend(p.authorize_params.clone());
    Provider {
        id: id.to_owned(),
        kind: p.kind,
        display_name: p.display_name.clone().unwrap_or_else(|| default_name.to_owned()),
        client_id: p.client_id.clone(),
        client_secret: p.client_secret.clone(),
        client_auth: p.client_auth,
        scopes: p
            .scopes
            .clone()
            .unwrap_or_else(|| scopes.into_iter().map(str::to_owned).collect()),
        authorize_params,
        api_base_urls: match &p.api_base_urls {
            None => apis
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
        issuer,
        identity,
        token_shape: shape,
        default_resource_server,
        refresh_skew: p.refresh_skew,
        actions,
        revocation_ends_grant: p.revocation_ends_grant.unwrap_or(p.kind == ProviderKind::Google),
        rotates_refresh_tokens: p.rotates_refresh_tokens.unwrap_or(matches!(
            p.kind,
            ProviderKind::Github | ProviderKind::Oidc | ProviderKind::Oauth2
        )),
        endpoints: DiscoveryCache::new(known, discover),
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

/// Read actions a preset ships: GitHub "my repositories", ORCID "my record". Globus has typed Transfer actions.
fn preset_actions(kind: ProviderKind) -> Vec<ActionSettings> {
    let param = |name: &str, title: &str, default: &str| ActionParam {
        name: name.to_owned(),
        title: title.to_owned(),
        required: false,
        default: Some(default.to_owned()),
    };
    match kind {
        ProviderKind::Github => vec![ActionSettings {
            name: "repositories".to_owned(),
            title: "My repositories".to_owned(),
            path: "user/repos".to_owned(),
            params: vec![param("sort", "Sort by", "updated"), param("per_page", "Per page", "30")],
        }],
        ProviderKind::Orcid => vec![ActionSettings {
            name: "record".to_owned(),
            title: "My ORCID record".to_owned(),
            path: "{subject}/record".to_owned(),
            params: vec![],
        }],
        _ => vec![],
    }
}
