//! Typed settings: `onbehalf.toml` (optional) overlaid by `ONBEHALF_*` environment variables.
//!
//! Every key has a default so the app runs with no file at all. `__` in a variable name nests
//! (`ONBEHALF_DATABASE__URL` is `database.url`). A value that does not parse, or parses but makes no sense, stops
//! start-up with a message naming the key. `onbehalf.example.toml` documents every key; keep the two in step.

use std::{collections::BTreeMap, net::SocketAddr, path::Path, time::Duration};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::providers::settings::{self as provider_settings, ProviderSettings};

/// Catalog id of the built-in demo provider.
pub const DEMO_PROVIDER_ID: &str = "demo";

/// Where the configuration file is looked for when neither `--config` nor `ONBEHALF_CONFIG` names one.
pub const DEFAULT_CONFIG_FILE: &str = "onbehalf.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub auth: AuthSettings,
    /// `[providers.<id>]`: where users link accounts (see `providers::settings`).
    pub providers: BTreeMap<String, ProviderSettings>,
    pub vault: VaultSettings,
    pub demo: DemoSettings,
    pub outbound: OutboundSettings,
    pub delegation: DelegationSettings,
    pub metrics: MetricsSettings,
    pub connect: ConnectSettings,
    pub webhooks: WebhookSettings,
}

/// `[connect]`: connect sessions, the links a platform's backend opens for its users (`POST /api/v1/connect_sessions`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectSettings {
    /// How long a connect link may wait to be opened.
    #[serde(with = "humantime_serde")]
    pub link_ttl: Duration,
    /// How long the browser session a link opens lasts at most, however it is used.
    #[serde(with = "humantime_serde")]
    pub session_max: Duration,
}

impl Default for ConnectSettings {
    fn default() -> Self {
        Self {
            link_ttl: Duration::from_secs(10 * 60),
            session_max: Duration::from_secs(3600),
        }
    }
}

/// `[webhooks]`: signed webhooks to the platform (`onbehalf webhook add`), sent from the outbox by every instance.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Whether this instance sends deliveries (every instance does by default; any one suffices).
    pub dispatch: bool,
    /// Allows `http://` and loopback receivers (a receiver on this machine: development, tests). Never private
    /// networks.
    pub allow_http_loopback: bool,
    /// How long a receiver has to answer one delivery.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long a delivery is retried before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub retry_for: Duration,
    /// The first retry waits up to this long; each next one up to twice as long (full jitter), at most
    /// `retry_max_delay`.
    #[serde(with = "humantime_serde")]
    pub retry_base: Duration,
    #[serde(with = "humantime_serde")]
    pub retry_max_delay: Duration,
    /// An endpoint that has failed for this long without a success is disabled (and audited).
    #[serde(with = "humantime_serde")]
    pub disable_after: Duration,
    /// After `webhook rotate-secret`, the previous secret signs too for this long.
    #[serde(with = "humantime_serde")]
    pub rotation_overlap: Duration,
    /// Deliveries in flight at once, per instance.
    pub concurrency: usize,
    /// How often an instance looks for deliveries others enqueued (its own are sent at once).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a claimed delivery is this instance's; another instance retries it after that.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Events whose deliveries are all over are kept this long (for the admin page and replays).
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            dispatch: true,
            allow_http_loopback: false,
            timeout: Duration::from_secs(10),
            retry_for: Duration::from_secs(3 * 24 * 3600),
            retry_base: Duration::from_secs(5),
            retry_max_delay: Duration::from_secs(6 * 3600),
            disable_after: Duration::from_secs(24 * 3600),
            rotation_overlap: Duration::from_secs(24 * 3600),
            concurrency: 64,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(60),
            retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// `[metrics]`: the Prometheus endpoint `/metrics`. Off (404) unless a token is set; scrapers then send it as
/// `Authorization: Bearer <token>` (Prometheus: `authorization: { credentials: … }` in the scrape config).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    pub token: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Address the HTTP server listens on.
    pub bind: SocketAddr,
    /// The URL people use to reach the app; defaults to `http://{bind}`. Origin checks, the session cookie's
    /// `Secure` flag and (later) OAuth redirect URIs derive from it.
    pub public_url: Option<Url>,
    /// Header holding the client address when behind a reverse proxy (e.g. `X-Real-IP`); unset means the socket peer.
    pub client_ip_header: Option<String>,
    /// Directory holding the built site (`pkg/`, static assets); cargo-leptos writes it to `target/site`.
    pub site_root: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 3000)),
            public_url: None,
            client_ip_header: None,
            site_root: "target/site".to_owned(),
        }
    }
}

impl ServerSettings {
    /// The public URL with the defaulting rule applied.
    pub fn public_url(&self) -> Url {
        self.public_url.clone().unwrap_or_else(|| {
            Url::parse(&format!("http://{}", self.bind)).expect("a socket address always forms a URL")
        })
    }

    /// `scheme://host[:port]` of the public URL, as browsers send it in the `Origin` header.
    pub fn public_origin(&self) -> String {
        self.public_url().origin().ascii_serialization()
    }

    pub fn is_https(&self) -> bool {
        self.public_url().scheme() == "https"
    }

    /// A warning for a public URL that is plain http anywhere but loopback: sign-in passwords, session cookies
    /// (without `Secure`), authorization codes and API keys would cross the network in clear.
    pub fn plain_http_warning(&self) -> Option<String> {
        let url = self.public_url();
        (url.scheme() == "http" && !crate::http::is_loopback_url(&url)).then(|| {
            format!(
                "server.public_url is {url}: plain HTTP on a non-loopback address, so passwords, session cookies, \
                 authorization codes and API keys cross the network unencrypted. Serve it behind TLS and set an \
                 https:// public_url."
            )
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/to/file.db` (created on first run) or `postgres://user:password@host/db`, with
    /// `?sslmode=require|verify-ca|verify-full&sslrootcert=/path/ca.pem` for TLS. Secret: it may hold a password.
    pub url: SecretString,
    /// Upper bound of the connection pool.
    pub max_connections: u32,
    /// Whether `serve` applies pending migrations when it starts. Off when the server's database role may not change
    /// the schema (so that it cannot drop the audit log's triggers either): `onbehalf migrate` runs them as the
    /// schema's owner, and `serve` refuses to start while any is pending.
    pub migrate_on_start: bool,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: SecretString::from("sqlite://data/onbehalf.db"),
            max_connections: 8,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Whether anyone may create an account from the sign-up page (admins can always use `onbehalf user add`).
    pub allow_sign_up: bool,
    /// A session not used for this long ends.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// A session ends this long after sign-in, however active.
    #[serde(with = "humantime_serde")]
    pub session_absolute_timeout: Duration,
    pub throttle: ThrottleSettings,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            allow_sign_up: true,
            session_idle_timeout: Duration::from_secs(24 * 3600),
            session_absolute_timeout: Duration::from_secs(7 * 24 * 3600),
            throttle: ThrottleSettings::default(),
        }
    }
}

/// Sign-in throttling (see `auth::throttle` for the policy these numbers drive).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ThrottleSettings {
    /// Failures older than this are forgotten.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Attempts on one account (from anywhere) that go through at once; the last starts the first wait.
    pub account_free_failures: u32,
    /// The first wait; it doubles with every further attempt up to `account_max_delay`.
    #[serde(with = "humantime_serde")]
    pub account_base_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub account_max_delay: Duration,
    /// Attempts on one account from one client before that client is refused for `lockout`.
    pub client_account_lockout_failures: u32,
    /// Attempts from one client, on any accounts, before it is refused for `lockout`.
    pub client_lockout_failures: u32,
    /// Sign-ups from one client within `window` (against mass account creation and probing emails through
    /// "already exists"); the last one allowed starts a wait of one `window`.
    pub sign_ups_per_client: u32,
    #[serde(with = "humantime_serde")]
    pub lockout: Duration,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(15 * 60),
            account_free_failures: 5,
            account_base_delay: Duration::from_secs(1),
            account_max_delay: Duration::from_secs(60),
            client_account_lockout_failures: 10,
            client_lockout_failures: 50,
            sign_ups_per_client: 20,
            lockout: Duration::from_secs(15 * 60),
        }
    }
}

/// Token encryption keys (see `tokens::vault`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaultSettings {
    /// Key id → base64 of 32 random bytes (`onbehalf keys generate`). Ids are lower case (environment variable
    /// names are folded): `ONBEHALF_VAULT__KEYS__K2026=...`. Empty with SQLite: a development key is generated
    /// next to the database file, with a warning. Empty with PostgreSQL: start-up refuses.
    pub keys: BTreeMap<String, SecretString>,
    /// The key new values are sealed with; may be left out when there is exactly one key.
    pub current_key: Option<String>,
}

/// The built-in demo provider (a Globus-compatible server on loopback) and its `demo` catalog entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// On by default so a fresh checkout links an account with no credentials; turn off in production.
    pub enabled: bool,
    pub bind: SocketAddr,
}

impl Default for DemoSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 3100)),
        }
    }
}

/// Calls to providers (token endpoints, discovery, APIs): one shared client, no redirects followed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundSettings {
    /// Whole-request limit for one call to a provider.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// Acting for users: when tokens are refreshed, how failures are retried and cooled down, and the background
/// refresher (see `delegation`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DelegationSettings {
    /// Refresh an access token this long before it expires (globus-sdk's default skew); a provider's
    /// `refresh_skew` overrides it.
    #[serde(with = "humantime_serde")]
    pub refresh_skew: Duration,
    /// Attempts at the token endpoint for one refresh when it fails transiently (network, 5xx, 429).
    pub refresh_attempts: u32,
    /// First backoff between those attempts; doubled each time, with full jitter; `Retry-After` wins when longer.
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    /// After the attempts are spent, calls fail fast for this long ("provider unavailable, retry after …"); doubled
    /// for each further failed refresh, up to `cooldown_max`.
    #[serde(with = "humantime_serde")]
    pub cooldown: Duration,
    #[serde(with = "humantime_serde")]
    pub cooldown_max: Duration,
    /// How long a refresh that got new tokens keeps trying to store them (a write connection, SQLite's busy wait,
    /// a PostgreSQL restart) before it gives them back to the provider. The refresh lease covers it, so no other
    /// instance can take the lease over meanwhile.
    #[serde(with = "humantime_serde")]
    pub refresh_write_budget: Duration,
    pub background: BackgroundRefreshSettings,
}

impl Default for DelegationSettings {
    fn default() -> Self {
        Self {
            refresh_skew: Duration::from_secs(60),
            refresh_attempts: 3,
            retry_backoff: Duration::from_millis(250),
            cooldown: Duration::from_secs(30),
            cooldown_max: Duration::from_secs(15 * 60),
            // The pool's acquire timeout (10 s) plus SQLite's busy timeout (5 s).
            refresh_write_budget: Duration::from_secs(15),
            background: BackgroundRefreshSettings::default(),
        }
    }
}

/// `[delegation.background]`: keeps idle links alive by refreshing tokens that expire within `window`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackgroundRefreshSettings {
    pub enabled: bool,
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// Refreshes in flight at once per instance.
    pub concurrency: usize,
}

impl Default for BackgroundRefreshSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval: Duration::from_secs(60),
            window: Duration::from_secs(10 * 60),
            concurrency: 4,
        }
    }
}

/// A configuration problem, phrased for the operator: which key, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {message}")]
    File { path: String, message: String },
    #[error("configuration: {0}")]
    Parse(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl Settings {
    /// Loads settings from `path` (or `onbehalf.toml` when it exists) and the environment, then validates them.
    /// An explicitly named file must exist; the default one may be absent.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        match path {
            Some(path) if !path.exists() => {
                return Err(ConfigError::File {
                    path: path.display().to_string(),
                    message: "no such file".to_owned(),
                });
            }
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE))
            }
            None => {}
        }
        // ONBEHALF_URL, ONBEHALF_API_KEY and ONBEHALF_WEBHOOK_SECRET are a platform's settings for talking to
        // onbehalf (the Python client and the example platform read them), not the server's: a shell that has them
        // must still start the server.
        let figment = figment.merge(
            Env::prefixed("ONBEHALF_")
                .ignore(&["config", "url", "api_key", "webhook_secret"])
                .split("__"),
        );
        Self::from_figment(figment)
    }

    pub fn from_figment(figment: Figment) -> Result<Self, ConfigError> {
        let settings: Settings = figment.extract().map_err(|err| ConfigError::Parse(describe(err)))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.server.public_url {
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(invalid(
                    "server.public_url",
                    format!("`{url}` must be an http:// or https:// URL"),
                ));
            }
            if url.path() != "/" || url.query().is_some() {
                return Err(invalid(
                    "server.public_url",
                    "must be an origin with no path or query (the app serves at /)",
                ));
            }
        }
        if let Some(header) = &self.server.client_ip_header
            && axum::http::HeaderName::try_from(header.as_str()).is_err()
        {
            return Err(invalid(
                "server.client_ip_header",
                format!("`{header}` is not a valid header name"),
            ));
        }
        if let Some(token) = &self.metrics.token
            && token.expose_secret().trim().len() < 16
        {
            return Err(invalid(
                "metrics.token",
                "must be at least 16 characters (a long random string: it is all that guards /metrics)",
            ));
        }
        if self.connect.link_ttl < Duration::from_secs(10) || self.connect.link_ttl > Duration::from_secs(24 * 3600) {
            return Err(invalid("connect.link_ttl", "must be between 10s and 24h"));
        }
        if self.connect.session_max < Duration::from_secs(60)
            || self.connect.session_max > Duration::from_secs(24 * 3600)
        {
            return Err(invalid("connect.session_max", "must be between 1m and 24h"));
        }
        let w = &self.webhooks;
        if w.timeout < Duration::from_millis(100) || w.timeout > Duration::from_secs(60) {
            return Err(invalid("webhooks.timeout", "must be between 100ms and 60s"));
        }
        if w.lease < w.timeout.saturating_mul(2) {
            return Err(invalid(
                "webhooks.lease",
                "must be at least twice webhooks.timeout (a delivery must finish inside its lease)",
            ));
        }
        if w.retry_base.is_zero() || w.retry_max_delay < w.retry_base {
            return Err(invalid(
                "webhooks.retry_base",
                "must be above zero and at most webhooks.retry_max_delay",
            ));
        }
        if w.concurrency == 0 || w.concurrency > 1024 {
            return Err(invalid("webhooks.concurrency", "must be between 1 and 1024"));
        }
        if w.poll_interval < Duration::from_millis(10) {
            return Err(invalid("webhooks.poll_interval", "must be at least 10ms"));
        }
        let d = &self.delegation;
        if d.refresh_attempts == 0 || d.refresh_attempts > 10 {
            return Err(invalid("delegation.refresh_attempts", "must be between 1 and 10"));
        }
        if d.retry_backoff > Duration::from_secs(10) {
            return Err(invalid(
                "delegation.retry_backoff",
                "must be at most 10s (longer waits belong to the cooldown)",
            ));
        }
        if d.cooldown.is_zero() || d.cooldown_max < d.cooldown {
            return Err(invalid(
                "delegation.cooldown",
                "must be positive and not above delegation.cooldown_max",
            ));
        }
        if d.background.concurrency == 0 || d.background.interval.is_zero() {
            return Err(invalid(
                "delegation.background",
                "concurrency and interval must be positive",
            ));
        }
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:") || db.starts_with("postgres://") || db.starts_with("postgresql://")) {
            return Err(invalid(
                "database.url",
                "must start with sqlite: or postgres:// (the value is not shown: it may hold a password)",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        let auth = &self.auth;
        if auth.session_idle_timeout < Duration::from_secs(1) {
            return Err(invalid("auth.session_idle_timeout", "must be at least 1 second"));
        }
        if auth.session_absolute_timeout < auth.session_idle_timeout {
            return Err(invalid(
                "auth.session_absolute_timeout",
                "must not be shorter than auth.session_idle_timeout",
            ));
        }
        let t = &auth.throttle;
        if t.account_max_delay < t.account_base_delay {
            return Err(invalid(
                "auth.throttle.account_max_delay",
                "must not be shorter than account_base_delay",
            ));
        }
        if t.client_account_lockout_failures == 0 || t.client_lockout_failures == 0 {
            return Err(invalid("auth.throttle", "lockout thresholds must be at least 1"));
        }
        for (id, provider) in &self.providers {
            provider_settings::validate(id, provider).map_err(|(key, message)| invalid(key, message))?;
        }
        if self.demo.enabled && self.providers.contains_key(DEMO_PROVIDER_ID) {
            return Err(invalid(
                format!("providers.{DEMO_PROVIDER_ID}"),
                "the id `demo` belongs to the built-in demo provider; rename this entry or set demo.enabled = false",
            ));
        }
        let vault = &self.vault;
        for (id, key) in &vault.keys {
            if !provider_settings::is_identifier(id) {
                return Err(invalid(
                    format!("vault.keys.{id}"),
                    "a key id is 1-32 characters of a-z, 0-9, '-' and '_' (it is written into every sealed value)",
                ));
            }
            crate::tokens::vault::decode_key(key).map_err(|message| invalid(format!("vault.keys.{id}"), message))?;
        }
        match (&vault.current_key, vault.keys.len()) {
            (Some(current), _) if !vault.keys.contains_key(current) => {
                return Err(invalid(
                    "vault.current_key",
                    format!("`{current}` is not a key in vault.keys"),
                ));
            }
            (None, n) if n > 1 => {
                return Err(invalid(
                    "vault.current_key",
                    "must name the key new tokens are sealed with",
                ));
            }
            _ => {}
        }
        if vault.keys.is_empty() && !db.starts_with("sqlite:") {
            return Err(invalid(
                "vault.keys",
                "is required with PostgreSQL (the generated development key only exists for the embedded SQLite \
                 default); generate one with `onbehalf keys generate`",
            ));
        }
        if self.outbound.timeout.is_zero() || self.outbound.connect_timeout.is_zero() {
            return Err(invalid("outbound", "timeouts must be longer than zero"));
        }
        Ok(())
    }
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        message: message.into(),
    }
}

/// Figment's errors name the key (`database.max_connections`) and the source (file or variable); keep every one.
fn describe(err: figment::Error) -> String {
    err.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = match e.metadata.as_ref().map(|m| m.name.to_string()) {
                // Name the exact variable, not figment's "`ONBEHALF_` environment variable(s)".
                Some(name) if name.contains("environment") => {
                    format!("ONBEHALF_{}", key.replace('.', "__").to_uppercase())
                }
                Some(name) => name,
                None => String::new(),
            };
            let what = e.kind.to_string();
            match (key.is_empty(), source.is_empty()) {
                (true, _) => what,
                (false, true) => format!("key `{key}`: {what}"),
                (false, false) => format!("key `{key}` (from {source}): {what}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        for (key, value) in pairs {
            figment = figment.merge(Serialized::default(key, value));
        }
        Settings::from_figment(figment)
    }

    #[test]
    fn runs_with_no_configuration_at_all() {
        let s = with(&[]).unwrap();
        assert_eq!(s.server.public_origin(), "http://127.0.0.1:3000");
        assert_eq!(s.database.url.expose_secret(), "sqlite://data/onbehalf.db");
        assert!(s.auth.allow_sign_up);
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = with(&[("database.max_connections", "many")]).unwrap_err().to_string();
        assert!(err.contains("database.max_connections"), "{err}");
        let err = with(&[("server.public_url", "ftp://example.org")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.public_url"), "{err}");
        let err = with(&[("auth.session_idle_timeout", "soon")]).unwrap_err().to_string();
        assert!(err.contains("auth.session_idle_timeout"), "{err}");
    }

    #[test]
    fn plain_http_outside_loopback_is_warned_about() {
        let warning = |url: &str| with(&[("server.public_url", url)]).unwrap().server.plain_http_warning();
        assert_eq!(warning("http://127.0.0.1:3000"), None);
        assert_eq!(warning("http://localhost:3000"), None);
        assert_eq!(warning("https://onbehalf.example.org"), None);
        assert!(warning("http://onbehalf.example.org").is_some_and(|w| w.contains("unencrypted")));
        let bound = with(&[("server.bind", "0.0.0.0:3000")]).unwrap();
        assert!(
            bound.server.plain_http_warning().is_some(),
            "the default public URL of a public bind"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = with(&[("server.bnd", "127.0.0.1:1")]).unwrap_err().to_string();
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn database_url_never_shows_in_debug() {
        let key = crate::tokens::vault::generate_key();
        let s = with(&[("database.url", "postgres://u:hunter2@db/x"), ("vault.keys.k1", &key)]).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2") && !shown.contains(&key));
    }

    #[test]
    fn a_bad_provider_entry_names_the_provider_and_key() {
        let err = with(&[("providers.gh.kind", "github")]).unwrap_err().to_string();
        assert!(err.contains("providers.gh") && err.contains("client_id"), "{err}");
        let err = with(&[("providers.gh.kind", "gitlab"), ("providers.gh.client_id", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("providers.gh.kind") && err.contains("gitlab"), "{err}");
        let err = with(&[("providers.sso.kind", "oidc"), ("providers.sso.client_id", "x")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.sso.issuer") && err.contains("required for kind `oidc`"),
            "{err}"
        );
        let err = with(&[
            ("providers.sso.kind", "oidc"),
            ("providers.sso.client_id", "x"),
            ("providers.sso.issuer", "ftp://sso.example"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("providers.sso.issuer") && err.contains("http"), "{err}");
        let err = with(&[("providers.Bad Id.kind", "github"), ("providers.Bad Id.client_id", "x")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("a-z, 0-9"), "{err}");
        let err = with(&[
            ("providers.gh.kind", "github"),
            ("providers.gh.client_id", "x"),
            ("providers.gh.colour", "y"),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("colour"), "{err}");
        let ok = with(&[("providers.gh.kind", "github"), ("providers.gh.client_id", "x")]).unwrap();
        assert_eq!(ok.providers["gh"].client_id, "x");
    }

    #[test]
    fn api_base_urls_are_a_table_by_resource_server_for_globus_and_a_list_otherwise() {
        let toml = |entry: &str| {
            Settings::from_figment(Figment::new().merge(figment::providers::Toml::string(&format!(
                "[providers.p]\nclient_id = \"x\"\n{entry}"
            ))))
        };
        let err = toml("kind = \"globus\"\napi_base_urls = [\"https://transfer.api.globus.org/v0.10/\"]")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.p.api_base_urls") && err.contains("one token per resource server"),
            "{err}"
        );
        let err = toml("kind = \"github\"\napi_base_urls = { \"api.github.com\" = [\"https://api.github.com/\"] }")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers.p.api_base_urls") && err.contains("as a list"),
            "{err}"
        );
        let ok =
            toml("kind = \"globus\"\napi_base_urls = { \"transfer.api.globus.org\" = [\"https://t.example/v0.10/\"] }")
                .unwrap();
        let provider = crate::providers::presets::resolve("p", &ok.providers["p"]);
        assert_eq!(
            provider
                .api_base(crate::actions::TRANSFER_RESOURCE_SERVER)
                .map(url::Url::as_str),
            Some("https://t.example/v0.10/")
        );
        assert_eq!(provider.api_base("auth.globus.org"), None, "only what the table names");
    }

    #[test]
    fn a_configured_action_may_not_take_a_built_in_globus_actions_name() {
        let toml = |kind: &str| {
            Settings::from_figment(Figment::new().merge(figment::providers::Toml::string(&format!(
                "[providers.p]\nkind = \"{kind}\"\nclient_id = \"x\"\n[[providers.p.actions]]\nname = \"cancel\"\n\
                 title = \"Cancel\"\npath = \"cancel\"\n"
            ))))
        };
        let err = toml("globus").unwrap_err().to_string();
        assert!(
            err.contains("providers.p.actions") && err.contains("`cancel` is taken by the built-in Globus action"),
            "{err}"
        );
        let github = toml("github").expect("other kinds have no built-in actions");
        assert_eq!(github.providers["p"].actions.as_ref().unwrap()[0].name, "cancel");
    }

    #[test]
    fn postgres_needs_a_vault_key_and_keys_must_be_32_bytes() {
        let err = with(&[("database.url", "postgres://db/x")]).unwrap_err().to_string();
        assert!(err.contains("vault.keys") && err.contains("keys generate"), "{err}");
        let err = with(&[("vault.keys.k1", "c2hvcnQ")]).unwrap_err().to_string();
        assert!(err.contains("vault.keys.k1") && err.contains("5 bytes"), "{err}");
        let (a, b) = (
            crate::tokens::vault::generate_key(),
            crate::tokens::vault::generate_key(),
        );
        let err = with(&[("vault.keys.a", &a), ("vault.keys.b", &b)])
            .unwrap_err()
            .to_string();
        assert!(err.contains("vault.current_key"), "{err}");
        assert!(with(&[("vault.keys.a", &a), ("vault.keys.b", &b), ("vault.current_key", "b")]).is_ok());
        let err = with(&[("vault.keys.K1", &a)]).unwrap_err().to_string();
        assert!(err.contains("vault.keys.K1") && err.contains("a-z"), "{err}");
        let err = with(&[("vault.keys.a", &a), ("vault.current_key", "z")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("`z` is not a key"), "{err}");
    }

    #[test]
    fn https_public_url_makes_cookies_secure() {
        let s = with(&[("server.public_url", "https://onbehalf.example.org")]).unwrap();
        assert!(s.server.is_https());
        assert_eq!(s.server.public_origin(), "https://onbehalf.example.org");
    }
}
