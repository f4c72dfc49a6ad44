//! `[providers.<id>]`: the provider catalog as the operator writes it. A preset (`kind`) fills in everything a
//! well-known provider needs; every endpoint can still be overridden (tests and the demo point them at loopback).
//! Validation here is static (no network): a bad entry stops start-up naming the provider and the key;
//! `onbehalf providers check` does the network half (discovery, JWKS).

use std::collections::BTreeMap;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Globus Auth: OIDC plus one token set per resource server (`other_tokens`).
    Globus,
    /// GitHub OAuth apps: not OIDC; identity from the REST API; comma-separated granted scopes.
    Github,
    /// ORCID: the iD and name come back in the token response.
    Orcid,
    /// Google: OIDC by discovery.
    Google,
    /// Any OpenID Connect provider: endpoints from `issuer` discovery.
    Oidc,
    /// Plain OAuth 2.0: explicit endpoints; identity from `userinfo_endpoint`'s `subject_claim`.
    Oauth2,
}

/// How the client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    pub kind: ProviderKind,
    /// Shown to users ("Connect Globus"); defaults to the preset's name or the provider id.
    pub display_name: Option<String>,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// The scopes the platform requires; defaults to the preset's.
    pub scopes: Option<Vec<String>>,
    /// Extra authorization request parameters (Globus `access_type = "offline"` is preset).
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
    /// The only URL prefixes this provider's tokens are ever sent to.
    pub api_base_urls: Option<ApiBaseUrls>,
    /// OIDC issuer, exactly as the provider writes it in `iss` (kept as written: `https://x.example/` and
    /// `https://x.example` are different issuers); for `oidc` and `google` the endpoints come from its discovery.
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub userinfo_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub revocation_endpoint: Option<Url>,
    pub introspection_endpoint: Option<Url>,
    /// `oauth2` kind: the userinfo member holding the stable account id (default `sub`).
    pub subject_claim: Option<String>,
    /// Name of the token set for providers that do not say which resource server a token is for.
    pub resource_server: Option<String>,
    /// Refresh this long before expiry; defaults to `delegation.refresh_skew`.
    #[serde(default, with = "humantime_serde")]
    pub refresh_skew: Option<std::time::Duration>,
    /// `[[providers.<id>.actions]]`: read actions users can run; replace the preset's when given.
    pub actions: Option<Vec<ActionSettings>>,
    /// Whether revoking any one token ends the whole grant of the user to this client, with every token issued under
    /// it (Google does: the preset says so). Such a provider's tokens are not given back for a refused link when
    /// another link lives on the same grant.
    pub revocation_ends_grant: Option<bool>,
    /// Whether the provider replaces the refresh token at each refresh (and may treat a second use of the old one
    /// as theft). A refresh request that may have reached such a provider without its answer being stored is never
    /// sent again. Preset: GitHub, `oidc` and `oauth2` yes (the safe guess), Globus, Google and ORCID no.
    pub rotates_refresh_tokens: Option<bool>,
}

/// `api_base_urls` as written: a list for a provider with one token set, or a table by resource server for one that
/// issues a token per resource server (`globus`), so that each token goes only to its own API: the Auth token must
/// never reach Transfer, nor the reverse.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ApiBaseUrls {
    List(Vec<Url>),
    ByResourceServer(BTreeMap<String, Vec<Url>>),
}

impl ApiBaseUrls {
    pub fn all(&self) -> Box<dyn Iterator<Item = &Url> + '_> {
        match self {
            ApiBaseUrls::List(urls) => Box::new(urls.iter()),
            ApiBaseUrls::ByResourceServer(map) => Box::new(map.values().flatten()),
        }
    }
}

/// One configured read action: a GET under the provider's first API base URL.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionSettings {
    /// Identifier in URLs (`/actions/<provider>/<name>`).
    pub name: String,
    pub title: String,
    /// Relative to the first API base URL, e.g. `user/repos`. `{subject}` is the linked account's id at the
    /// provider; `{<param>}` is a parameter; parameters not in the path go to the query string.
    pub path: String,
    #[serde(default)]
    pub params: Vec<ActionParam>,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ActionParam {
    pub name: String,
    pub title: String,
    #[serde(default)]
    pub required: bool,
    pub default: Option<String>,
}

/// Checks a configured action: identifiers, and a path that stays under its API base.
pub fn validate_action(action: &ActionSettings) -> Result<(), String> {
    if !is_identifier(&action.name) {
        return Err(format!(
            "action name `{}` must be 1-32 characters of a-z, 0-9, '-' and '_'",
            action.name
        ));
    }
    let path = &action.path;
    if path.starts_with('/')
        || path.contains("..")
        || path.contains("://")
        || path.contains(['#', '\\'])
        || path.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "action `{}`: path `{path}` must be relative to the API base (no leading '/', '..', scheme or fragment)",
            action.name
        ));
    }
    for param in &action.params {
        if !is_identifier(&param.name) || param.name == "subject" {
            return Err(format!(
                "action `{}`: parameter name `{}` must be an identifier other than `subject`",
                action.name, param.name
            ));
        }
    }
    Ok(())
}

/// Checks one entry without the network. `Err((key, message))` names the key under `providers.<id>`.
pub fn validate(id: &str, p: &ProviderSettings) -> Result<(), (String, String)> {
    let key = |k: &str| format!("providers.{id}.{k}");
    if !is_identifier(id) {
        return Err((
            format!("providers.{id}"),
            "a provider id is 1-32 characters of a-z, 0-9, '-' and '_' (it appears in the callback URL)".into(),
        ));
    }
    if p.client_id.trim().is_empty() {
        return Err((key("client_id"), "must not be empty".into()));
    }
    let endpoints = [
        ("authorization_endpoint", &p.authorization_endpoint),
        ("token_endpoint", &p.token_endpoint),
        ("userinfo_endpoint", &p.userinfo_endpoint),
        ("jwks_uri", &p.jwks_uri),
        ("revocation_endpoint", &p.revocation_endpoint),
        ("introspection_endpoint", &p.introspection_endpoint),
    ];
    for (name, url) in endpoints {
        if let Some(url) = url
            && !is_web_url(url)
        {
            return Err((key(name), format!("`{url}` must be an http:// or https:// URL")));
        }
    }
    if let Some(issuer) = &p.issuer
        && !Url::parse(issuer).is_ok_and(|u| is_web_url(&u) && u.query().is_none() && u.fragment().is_none())
    {
        return Err((
            key("issuer"),
            format!("`{issuer}` must be an http:// or https:// URL without query"),
        ));
    }
    match (p.kind, &p.api_base_urls) {
        (ProviderKind::Globus, Some(ApiBaseUrls::List(_))) => {
            return Err((
                key("api_base_urls"),
                "a globus provider issues one token per resource server: write a table naming each one's URLs, \
                 e.g. { \"transfer.api.globus.org\" = [\"https://transfer.api.globus.org/v0.10/\"], \
                 \"auth.globus.org\" = [\"https://auth.globus.org/v2/\"] }"
                    .into(),
            ));
        }
        (kind, Some(ApiBaseUrls::ByResourceServer(_))) if kind != ProviderKind::Globus => {
            return Err((
                key("api_base_urls"),
                format!(
                    "a {} provider has one token set: give api_base_urls as a list",
                    kind_name(kind)
                ),
            ));
        }
        _ => {}
    }
    for url in p.api_base_urls.iter().flat_map(ApiBaseUrls::all) {
        if !is_web_url(url) || url.query().is_some() {
            return Err((
                key("api_base_urls"),
                format!("`{url}` must be an http(s) URL without a query"),
            ));
        }
    }
    if let Some(scopes) = &p.scopes
        && let Some(bad) = scopes.iter().find(|s| s.is_empty() || s.contains(char::is_whitespace))
    {
        return Err((
            key("scopes"),
            format!("`{bad}` is not a scope (one scope per list entry, no spaces)"),
        ));
    }
    for reserved in [
        "state",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "redirect_uri",
        "client_id",
        "response_type",
        "scope",
    ] {
        if p.authorize_params.contains_key(reserved) {
            return Err((
                key("authorize_params"),
                format!("`{reserved}` is set by onbehalf for every request"),
            ));
        }
    }
    for action in p.actions.iter().flatten() {
        validate_action(action).map_err(|message| (key("actions"), message))?;
        if p.kind == ProviderKind::Globus && crate::actions::GLOBUS_ACTIONS.contains(&action.name.as_str()) {
            return Err((
                key("actions"),
                format!(
                    "action name `{}` is taken by the built-in Globus action of that name; choose another",
                    action.name
                ),
            ));
        }
    }
    if p.actions.as_ref().is_some_and(|a| !a.is_empty())
        && p.api_base_urls.as_ref().is_some_and(|b| b.all().next().is_none())
    {
        return Err((
            key("actions"),
            "actions need an api_base_urls entry to run under".into(),
        ));
    }
    let required: &[(&str, bool)] = match p.kind {
        ProviderKind::Oidc => &[("issuer", p.issuer.is_some())],
        ProviderKind::Oauth2 => &[
            ("authorization_endpoint", p.authorization_endpoint.is_some()),
            ("token_endpoint", p.token_endpoint.is_some()),
            ("userinfo_endpoint", p.userinfo_endpoint.is_some()),
            ("api_base_urls", p.api_base_urls.is_some()),
        ],
        _ => &[],
    };
    if let Some((name, _)) = required.iter().find(|(_, present)| !present) {
        return Err((key(name), format!("is required for kind `{}`", kind_name(p.kind))));
    }
    Ok(())
}

pub fn kind_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Globus => "globus",
        ProviderKind::Github => "github",
        ProviderKind::Orcid => "orcid",
        ProviderKind::Google => "google",
        ProviderKind::Oidc => "oidc",
        ProviderKind::Oauth2 => "oauth2",
    }
}

/// 1-32 characters of a-z, 0-9, '-' and '_': safe in URLs, sealed values and environment variable names (which
/// figment folds to lower case). Provider ids and vault key ids follow it.
pub fn is_identifier(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn is_web_url(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.host_str().is_some()
}
