//! Service API keys: created, listed and revoked from the command line (`onbehalf apikey …`), presented by platform
//! backends as `Authorization: Bearer obk_…`. A key is 32 random bytes, shown once; the database keeps its SHA-256.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sqlx::AnyPool;
use url::Url;

use crate::{db::now_ms, digest::sha256_hex};

/// Every key starts with this, so secret scanners and people recognise one.
pub const PREFIX: &str = "obk_";

/// A stored key (never the key itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKey {
    pub id: i64,
    pub name: String,
    /// Space-separated provider ids; `None`: every provider.
    pub providers: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// Newline-separated URL prefixes a connect session's `return_to` must start with; `None`: no connect sessions.
    pub return_urls: Option<String>,
    /// What browser pages call the platform; `None`: the key's name.
    pub platform_name: Option<String>,
}

impl ApiKey {
    /// Whether this key may act with accounts of `provider`.
    pub fn allows(&self, provider: &str) -> bool {
        self.providers
            .as_deref()
            .is_none_or(|list| list.split_whitespace().any(|p| p == provider))
    }

    /// The providers this key may use; `None`: every provider.
    pub fn provider_list(&self) -> Option<Vec<String>> {
        self.providers
            .as_deref()
            .map(|list| list.split_whitespace().map(str::to_owned).collect())
    }

    pub fn platform_name(&self) -> &str {
        self.platform_name.as_deref().unwrap_or(&self.name)
    }

    pub fn return_prefixes(&self) -> impl Iterator<Item = &str> {
        self.return_urls
            .as_deref()
            .unwrap_or("")
            .lines()
            .filter(|l| !l.is_empty())
    }

    /// `candidate`, normalised, when it is an absolute http(s) URL under one of the key's return prefixes: same
    /// scheme, host and port, and a path below the prefix's path (`https://p.example/app/` takes `/app/x`, not
    /// `/application`). Compared on parsed URLs, so `https://p.example.evil.example/` or `https://p.example@evil/`
    /// never match `https://p.example/`.
    pub fn allowed_return(&self, candidate: &str) -> Option<Url> {
        let url = Url::parse(candidate).ok()?;
        if !matches!(url.scheme(), "http" | "https") || !url.username().is_empty() || url.password().is_some() {
            return None;
        }
        // An encoded dot, slash or backslash could climb out of the prefix's path once a proxy decodes it.
        if crate::http::has_encoded_separator(url.path()) {
            return None;
        }
        self.return_prefixes()
            .filter_map(|p| Url::parse(p).ok())
            .find_map(|prefix| {
                let under = url.origin() == prefix.origin() && path_under(url.path(), prefix.path());
                under.then(|| url.clone())
            })
    }
}

/// Whether `path` is `prefix` or below it: `/app` and `/app/` both take `/app/x`; neither takes `/apple`.
fn path_under(path: &str, prefix: &str) -> bool {
    let base = prefix.trim_end_matches('/');
    path == prefix || path == base || path.strip_prefix(base).is_some_and(|rest| rest.starts_with('/'))
}

/// Checks a return-URL prefix for `apikey create --return-url`: an absolute http(s) URL, no credentials, query or
/// fragment. Returns it normalised.
pub fn parse_return_prefix(raw: &str) -> Result<String, KeyError> {
    let bad = || KeyError::BadReturnUrl(raw.to_owned());
    let url = Url::parse(raw).map_err(|_| bad())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.query().is_none()
        && url.fragment().is_none();
    if !plain {
        return Err(bad());
    }
    Ok(url.to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("a key name is 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName,
    #[error("a key named {0:?} exists (revoked keys keep their names: the audit log refers to them)")]
    NameTaken(String),
    #[error("no key is named {0:?}")]
    NotFound(String),
    #[error("key {0:?} is already revoked")]
    AlreadyRevoked(String),
    #[error("{0:?} is not a return URL prefix: give an absolute http(s) URL with no query, fragment or credentials")]
    BadReturnUrl(String),
    #[error("a platform name is 1 to 100 characters, without control characters")]
    BadPlatformName,
    #[error("unknown provider {0:?} (configured: {1})")]
    UnknownProvider(String, String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

const COLUMNS: &str = "id, name, providers, created_at, revoked_at, last_used_at, return_urls, platform_name";

/// What `apikey create` is asked for.
#[derive(Debug, Default)]
pub struct NewKey<'a> {
    pub name: &'a str,
    /// Empty: every provider.
    pub providers: &'a [String],
    /// URL prefixes connect sessions may return to; empty: no connect sessions.
    pub return_urls: &'a [String],
    pub platform_name: Option<&'a str>,
}

/// Creates a key; returns it with the secret to show once. `known` are the configured provider ids, to refuse a typo
/// rather than create a key that can do nothing.
pub async fn create(pool: &AnyPool, new: NewKey<'_>, known: &[String]) -> Result<(ApiKey, String), KeyError> {
    let NewKey {
        name,
        providers,
        return_urls,
        platform_name,
    } = new;
    let valid_name =
        !name.is_empty() && name.len() <= 64 && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !valid_name {
        return Err(KeyError::BadName);
    }
    if let Some(unknown) = providers.iter().find(|p| !known.contains(p)) {
        return Err(KeyError::UnknownProvider(unknown.clone(), known.join(", ")));
    }
    let return_urls = return_urls
        .iter()
        .map(|raw| parse_return_prefix(raw))
        .collect::<Result<Vec<_>, _>>()?;
    let platform_name = platform_name.map(str::trim);
    if platform_name.is_some_and(|n| n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control)) {
        return Err(KeyError::BadPlatformName);
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let providers = (!providers.is_empty()).then(|| providers.join(" "));
    let return_urls = (!return_urls.is_empty()).then(|| return_urls.join("\n"));
    let inserted = sqlx::query_as::<_, ApiKey>(&format!(
        "INSERT INTO api_keys (name, key_hash, providers, created_at, return_urls, platform_name) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(name)
    .bind(sha256_hex(&secret))
    .bind(&providers)
    .bind(now_ms())
    .bind(&return_urls)
    .bind(platform_name)
    .fetch_optional(pool)
    .await?;
    let key = inserted.ok_or_else(|| KeyError::NameTaken(name.to_owned()))?;
    Ok((key, secret))
}

pub async fn list(pool: &AnyPool) -> Result<Vec<ApiKey>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys ORDER BY name"))
        .fetch_all(pool)
        .await
}

pub async fn revoke(pool: &AnyPool, name: &str) -> Result<(), KeyError> {
    let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
        .bind(now_ms())
        .bind(name)
        .execute(pool)
        .await?;
    if done.rows_affected() == 1 {
        return Ok(());
    }
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM api_keys WHERE name = $1")
        .bind(name)
        .fetch_optional(pool)
        .await?;
    Err(match exists {
        Some(_) => KeyError::AlreadyRevoked(name.to_owned()),
        None => KeyError::NotFound(name.to_owned()),
    })
}

/// `last_used_at` moves at most this often: a write per request would make every API call a database commit.
const LAST_USED_GRANULARITY_MS: i64 = 60_000;

/// The live key whose secret was presented (and marks it used). `None` for an unknown or revoked key.
pub async fn authenticate(pool: &AnyPool, presented: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    if !presented.starts_with(PREFIX) {
        return Ok(None);
    }
    // Looked up by the hash: the comparison happens on a digest of the presented value, so its timing says nothing
    // about any stored key.
    let key: Option<ApiKey> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"
    ))
    .bind(sha256_hex(presented))
    .fetch_optional(pool)
    .await?;
    let now = now_ms();
    if let Some(key) = &key
        && key.last_used_at.is_none_or(|at| now - at >= LAST_USED_GRANULARITY_MS)
    {
        // Bookkeeping only: a failure (a busy database) must not refuse a valid key.
        if let Err(e) = sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(key.id)
            .execute(pool)
            .await
        {
            tracing::warn!(key = key.name, "could not record the key's last use: {e}");
        }
    }
    Ok(key)
}

/// The key a connect session was made with, revoked or not (the session may outlive neither).
pub async fn find(pool: &AnyPool, id: i64) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM api_keys WHERE id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(prefixes: &[&str]) -> ApiKey {
        ApiKey {
            id: 1,
            name: "invenio".into(),
            providers: None,
            created_at: 0,
            revoked_at: None,
            last_used_at: None,
            return_urls: Some(prefixes.join("\n")),
            platform_name: None,
        }
    }

    #[test]
    fn return_urls_must_be_under_a_prefix_of_the_key() {
        let k = key(&["https://p.example/app/", "http://127.0.0.1:5000/"]);
        for ok in [
            "https://p.example/app/",
            "https://p.example/app/transfer?x=1",
            "http://127.0.0.1:5000/transfer",
        ] {
            assert!(k.allowed_return(ok).is_some(), "{ok}");
        }
        for bad in [
            "https://p.example/application",
            "https://p.example/app/..%2fadmin",
            "https://p.example/app/%2E%2E/admin",
            "https://p.example/",
            "http://p.example/app/",
            "https://p.example.evil.example/app/",
            "https://p.example@evil.example/app/",
            "https://user@p.example/app/",
            "https://p.example:444/app/",
            "http://127.0.0.1:50000/",
            "javascript:alert(1)",
            "/app/",
            "",
        ] {
            assert!(k.allowed_return(bad).is_none(), "{bad}");
        }
        assert!(key(&[]).allowed_return("https://p.example/app/").is_none());
        // A prefix without its trailing slash still does not take a longer name.
        let k = key(&["https://p.example/app"]);
        assert!(k.allowed_return("https://p.example/app/x").is_some());
        assert!(k.allowed_return("https://p.example/apple").is_none());
    }

    #[test]
    fn return_prefixes_are_plain_absolute_urls() {
        assert_eq!(
            parse_return_prefix("http://127.0.0.1:5000").unwrap(),
            "http://127.0.0.1:5000/"
        );
        for bad in [
            "/relative",
            "ftp://x.example/",
            "https://x.example/?q=1",
            "https://u:p@x.example/",
            "x",
        ] {
            assert!(parse_return_prefix(bad).is_err(), "{bad}");
        }
    }
}
