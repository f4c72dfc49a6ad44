//! Tokens at rest and in hand. Plaintext tokens exist only as [`secrecy::SecretString`] inside this module's
//! types, which neither `Debug`-print nor serialize them; rows hold vault-sealed text (see [`vault`]).

pub mod repo;
pub mod rotation;
pub mod vault;

use std::{collections::BTreeMap, path::PathBuf};

use secrecy::{ExposeSecret, SecretString};

use crate::config::Settings;
use vault::Vault;

/// A token set as a provider issued it, for one resource server, before it is sealed.
pub struct IssuedTokenSet {
    pub resource_server: String,
    pub scopes: Vec<String>,
    pub token_type: String,
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    /// Seconds from `issued_at`; `None` when the provider did not say.
    pub expires_in: Option<i64>,
}

impl std::fmt::Debug for IssuedTokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokenSet")
            .field("resource_server", &self.resource_server)
            .field("scopes", &self.scopes)
            .field("token_type", &self.token_type)
            .field("refresh_token", &self.refresh_token.as_ref().map(|_| "[redacted]"))
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

impl IssuedTokenSet {
    pub fn access_token(&self) -> &str {
        self.access_token.expose_secret()
    }
}

/// Builds the vault from `[vault]`, or from the development key file beside the SQLite database when no key is
/// configured (validation already refused that combination for PostgreSQL).
pub fn vault_from_settings(settings: &Settings) -> Result<Vault, String> {
    let config = &settings.vault;
    if config.keys.is_empty() {
        let path = dev_key_path(settings);
        let key = vault::load_or_create_dev_key(&path).map_err(|e| {
            format!(
                "cannot read or create the development vault key {}: {e}",
                path.display()
            )
        })?;
        tracing::warn!(
            "TOKENS ARE ENCRYPTED WITH A DEVELOPMENT KEY ({}), generated because vault.keys is empty. Anyone who can \
             read that file can read every stored token. Configure vault.keys (`onbehalf keys generate`) before real \
             use.",
            path.display()
        );
        return Vault::new("dev", BTreeMap::from([("dev".to_owned(), key)]));
    }
    let keys = config
        .keys
        .iter()
        .map(|(id, key)| vault::decode_key(key).map(|k| (id.clone(), k)))
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    let current = match &config.current_key {
        Some(current) => current.clone(),
        None => keys.keys().next().cloned().unwrap_or_default(),
    };
    Vault::new(&current, keys)
}

/// `data/onbehalf.db` → `data/onbehalf.db.vault-dev-key`.
fn dev_key_path(settings: &Settings) -> PathBuf {
    let (file, _) = crate::db::sqlite_path(settings.database.url.expose_secret());
    if file.is_empty() || file.contains(":memory:") {
        PathBuf::from("data/vault-dev-key")
    } else {
        PathBuf::from(format!("{file}.vault-dev-key"))
    }
}
