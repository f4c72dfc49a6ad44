//! The provider catalog at run time: each configured `[providers.<id>]` resolved against its preset into a
//! [`Provider`] — endpoints, scopes, client authentication, where its tokens may go, and its quirks (how it
//! shapes token responses, where the account's identity comes from).

pub mod body;
pub mod discovery;
pub mod id_token;
pub mod identity;
pub mod presets;
pub mod revocation;
pub mod scopes;
pub mod settings;
pub mod token_endpoint;

use std::{collections::BTreeMap, sync::Arc};

use secrecy::SecretString;
use url::Url;

pub use settings::{ClientAuth, ProviderKind};

use crate::config::Settings;
use discovery::{DiscoveryCache, Endpoints};
use id_token::JwksCache;

/// Where a linked account's stable identity comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentitySource {
    /// The verified ID token's `sub` (OIDC providers, Globus).
    IdToken,
    /// GitHub's `GET /user` (`id`, `login`, `name`, `email`): GitHub OAuth apps are not OIDC.
    GithubUser,
    /// Fields of the token response itself (ORCID returns `orcid` and `name` there).
    TokenResponse { subject: &'static str, name: &'static str },
    /// A userinfo endpoint's member (`oauth2` kind).
    Userinfo { subject_claim: String },
}

/// How the token endpoint groups tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenShape {
    /// One token set per resource server: the top level plus `other_tokens`, each naming its `resource_server`.
    Globus,
    /// RFC 6749 §5.1: one token set, for the provider's default resource server.
    Standard,
}

/// One URL prefix a provider's tokens for `resource_server` may be sent under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    pub resource_server: String,
    pub url: Url,
}

pub struct Provider {
    pub id: String,
    pub kind: ProviderKind,
    pub display_name: String,
    pub client_id: String,
    pub client_secret: Option<SecretString>,
    pub client_auth: ClientAuth,
    /// What the platform requires at this provider.
    pub scopes: Vec<String>,
    pub authorize_params: BTreeMap<String, String>,
    /// Tokens are only ever sent to URLs under these prefixes, each token only under its own resource server's
    /// (DESIGN §4).
    pub api_base_urls: Vec<ApiBase>,
    /// The issuer identifier exactly as the provider writes it in `iss` (no trailing slash added).
    pub issuer: Option<String>,
    pub identity: IdentitySource,
    pub token_shape: TokenShape,
    /// Name of the token set when the provider does not name the resource server.
    pub default_resource_server: String,
    /// Overrides `delegation.refresh_skew`.
    pub refresh_skew: Option<std::time::Duration>,
    /// Configured read actions (`[[providers.<id>.actions]]` or the preset's).
    pub actions: Vec<settings::ActionSettings>,
    /// Revoking one token ends the user's whole grant to this client (Google), see `ProviderSettings`.
    pub revocation_ends_grant: bool,
    /// The provider replaces refresh tokens when they are used (`delegation::refresh` never resends one whose
    /// request may have reached it), see `ProviderSettings`.
    pub rotates_refresh_tokens: bool,
    pub(crate) endpoints: DiscoveryCache,
    pub(crate) jwks: JwksCache,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// Whether ID tokens are expected (and so a nonce is sent).
    pub fn uses_id_token(&self) -> bool {
        self.identity == IdentitySource::IdToken
    }

    /// The provider's endpoints, from configuration and presets, completed by discovery where needed.
    pub async fn endpoints(&self, http: &reqwest::Client) -> Result<Arc<Endpoints>, discovery::DiscoveryError> {
        self.endpoints.get(http, self.issuer.as_deref()).await
    }

    /// True if a token for `resource_server` may be sent to `url`: under one of that resource server's API base
    /// URLs (same origin, path prefix ending at a segment).
    pub fn may_receive_token(&self, resource_server: &str, url: &Url) -> bool {
        self.api_base_urls.iter().any(|base| {
            let prefix = base.url.path().trim_end_matches('/');
            base.resource_server == resource_server
                && base.url.origin() == url.origin()
                && (url.path() == prefix || url.path().starts_with(&format!("{prefix}/")))
        })
    }

    /// The first API base URL of `resource_server`: where its actions' paths are relative to.
    pub fn api_base(&self, resource_server: &str) -> Option<&Url> {
        self.api_base_urls
            .iter()
            .find(|base| base.resource_server == resource_server)
            .map(|base| &base.url)
    }
}

/// Every configured provider, in configuration order (ids sorted).
#[derive(Debug, Default)]
pub struct Catalog {
    providers: Vec<Arc<Provider>>,
}

impl Catalog {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            providers: settings
                .providers
                .iter()
                .map(|(id, p)| Arc::new(presets::resolve(id, p)))
                .collect(),
        }
    }

    pub fn push(&mut self, provider: Provider) {
        self.providers.retain(|p| p.id != provider.id);
        self.providers.push(Arc::new(provider));
    }

    pub fn get(&self, id: &str) -> Option<Arc<Provider>> {
        self.providers.iter().find(|p| p.id == id).cloned()
    }

    pub fn all(&self) -> &[Arc<Provider>] {
        &self.providers
    }

    /// What users and admins see a provider called: its display name, or its id once it is no longer configured (its
    /// linked accounts and audit events outlive it).
    pub fn display_name(&self, id: &str) -> String {
        self.get(id)
            .map(|p| p.display_name.clone())
            .unwrap_or_else(|| id.to_owned())
    }

    /// Origins of the providers' authorization endpoints (or issuers, where discovery will name the endpoint), for
    /// the CSP's `form-action`.
    pub fn authorization_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .providers
            .iter()
            .filter_map(|p| {
                let url = p
                    .endpoints
                    .known()
                    .authorization
                    .clone()
                    .or_else(|| p.issuer.as_deref().and_then(|i| Url::parse(i).ok()))?;
                Some(url.origin().ascii_serialization())
            })
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }
}

/// The one outbound HTTP client: timeouts from `[outbound]`, no redirects (a token endpoint that redirects is
/// misconfigured, and following redirects could carry credentials elsewhere).
pub fn http_client(settings: &crate::config::OutboundSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("onbehalf/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client's TLS backend initialises")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_kept_exactly_as_written() {
        let resolve = |json: serde_json::Value| presets::resolve("p", &serde_json::from_value(json).unwrap());
        let auth0 = resolve(serde_json::json!({"kind": "oidc", "client_id": "c", "issuer": "https://t.auth0.com/"}));
        assert_eq!(auth0.issuer.as_deref(), Some("https://t.auth0.com/"));
        let globus = resolve(serde_json::json!({"kind": "globus", "client_id": "c"}));
        assert_eq!(globus.issuer.as_deref(), Some("https://auth.globus.org"));
        let own = resolve(serde_json::json!({"kind": "globus", "client_id": "c", "issuer": "http://127.0.0.1:3100"}));
        assert_eq!(
            own.endpoints.known().token.as_ref().map(Url::as_str),
            Some("http://127.0.0.1:3100/v2/oauth2/token")
        );
    }

    #[test]
    fn tokens_go_only_under_the_configured_api_bases() {
        let settings: settings::ProviderSettings = serde_json::from_value(serde_json::json!({
            "kind": "oauth2", "client_id": "c",
            "authorization_endpoint": "https://p.example/authorize", "token_endpoint": "https://p.example/token",
            "userinfo_endpoint": "https://api.p.example/me", "api_base_urls": ["https://api.p.example/v1/"]
        }))
        .unwrap();
        let p = presets::resolve("p", &settings);
        let ok = |u: &str| p.may_receive_token(&p.default_resource_server, &Url::parse(u).unwrap());
        assert!(ok("https://api.p.example/v1/things"));
        assert!(ok("https://api.p.example/v1"));
        assert!(
            !ok("https://api.p.example/v10/things"),
            "a prefix must end at a path segment"
        );
        assert!(!ok("https://api.p.example/v2/things"));
        assert!(!ok("http://api.p.example/v1/things"), "scheme is part of the origin");
        assert!(!ok("https://api.p.example.evil.example/v1/things"));
        assert!(!ok("https://api.p.example:8443/v1/things"));
        assert!(!p.may_receive_token("another.example", &Url::parse("https://api.p.example/v1/x").unwrap()));
    }

    #[test]
    fn each_globus_token_goes_only_to_its_own_resource_servers_api() {
        use crate::actions::TRANSFER_RESOURCE_SERVER as TRANSFER;
        let resolve = |json: serde_json::Value| presets::resolve("g", &serde_json::from_value(json).unwrap());
        let globus = resolve(serde_json::json!({"kind": "globus", "client_id": "c"}));
        let may = |rs: &str, u: &str| globus.may_receive_token(rs, &Url::parse(u).unwrap());
        let transfer = "https://transfer.api.globus.org/v0.10/endpoint_search";
        let userinfo = "https://auth.globus.org/v2/oauth2/userinfo";
        assert!(may(TRANSFER, transfer));
        assert!(may(presets::GLOBUS_AUTH_RESOURCE_SERVER, userinfo));
        assert!(
            !may(presets::GLOBUS_AUTH_RESOURCE_SERVER, transfer),
            "Auth's token never reaches Transfer"
        );
        assert!(!may(TRANSFER, userinfo));
        // The demo provider: both APIs on one origin, told apart by path.
        let demo = presets::demo("http://127.0.0.1:3100", "c", "s");
        let may = |rs: &str, u: &str| demo.may_receive_token(rs, &Url::parse(u).unwrap());
        assert!(may(TRANSFER, "http://127.0.0.1:3100/v0.10/tasks"));
        assert!(!may(
            presets::GLOBUS_AUTH_RESOURCE_SERVER,
            "http://127.0.0.1:3100/v0.10/tasks"
        ));
        assert!(!may(TRANSFER, "http://127.0.0.1:3100/v2/oauth2/userinfo"));
        assert_eq!(
            demo.api_base(TRANSFER).map(Url::as_str),
            Some("http://127.0.0.1:3100/v0.10/")
        );
    }
}
