//! The token vault: tokens are sealed with XChaCha20-Poly1305 before they reach the database and opened only
//! where a delegated call needs them (DESIGN §4).
//!
//! A sealed value is text: `v2.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>`. Each value carries its own key
//! id, so keys can be rotated row by row while the app runs (`onbehalf keys rotate`). The associated data names the
//! table, row and column (`token_sets/<id>/access_token`) and, for a token, whom it is for (its account and resource
//! server, columns an `UPDATE` could change): a ciphertext copied to another row or column, or a row handed to
//! another account, fails to open instead of giving one account's token to another.
//!
//! `v1` values (before 2026-12) bound only table, row and column. They still open where no owner is bound, and
//! [`Vault::rebind`] re-seals them as `v2` (every start does so for token sets, `tokens::rotation::bind_owners`); a
//! `v1` value in a slot that has an owner is refused ([`VaultError::Unbound`]), or moving a row that the upgrade has
//! not reached would still work. The format cannot be downgraded: a `v2` ciphertext relabelled `v1` is opened with
//! the shorter associated data and fails.
//!
//! Why XChaCha20-Poly1305 rather than AES-256-GCM: nonces are random (no counter to keep across instances), and a
//! 192-bit nonce makes random collisions negligible however many values are sealed; it is also constant-time
//! without AES hardware.

use std::{collections::BTreeMap, fmt, path::Path};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chacha20poly1305::{
    XChaCha20Poly1305, XNonce,
    aead::{Aead, AeadCore, KeyInit, OsRng, Payload},
};
use secrecy::{ExposeSecret, SecretString};

const FORMAT: &str = "v2";
/// Associated data without the owner (see the module docs).
const FORMAT_UNBOUND: &str = "v1";
const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

/// Where a sealed value lives, and whom it is for; bound into its ciphertext as associated data.
#[derive(Debug, Clone, Copy)]
pub struct Slot<'a> {
    pub table: &'static str,
    pub row: &'a str,
    pub column: &'static str,
    /// Whom the value is for, when the row says so in columns of its own (a token set's account and resource server).
    pub owner: Option<Owner<'a>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Owner<'a> {
    pub account_id: &'a str,
    pub resource_server: &'a str,
}

impl Slot<'_> {
    /// What a value sealed now is bound to: `table/row/column`, then the owner as a JSON array (quoted, so that no
    /// account id or resource server can be shifted into the other).
    fn associated_data(&self) -> String {
        let place = self.unbound_associated_data();
        match self.owner {
            None => place,
            Some(owner) => format!(
                "{place} for {}",
                serde_json::json!([owner.account_id, owner.resource_server])
            ),
        }
    }

    /// `table/row/column`: what a `v1` value is bound to.
    fn unbound_associated_data(&self) -> String {
        format!("{}/{}/{}", self.table, self.row, self.column)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    #[error("the value is not in the vault's format")]
    Malformed,
    #[error("the value was sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    /// Wrong key material, a value moved to another row, column or owner, or tampered bytes: AEAD cannot tell which.
    #[error("the value does not open with key `{0}` (wrong key, moved, or altered)")]
    Undecryptable(String),
    /// A `v1` value where an owner must be bound: every start re-seals these, so one found later was written by an
    /// older instance still running, or put back from an old backup.
    #[error("the value was sealed before tokens were bound to their account (v1); it is not opened")]
    Unbound,
}

/// Named 256-bit keys; new values are sealed with `current`, any configured key opens.
#[derive(Clone)]
pub struct Vault {
    current: String,
    keys: BTreeMap<String, XChaCha20Poly1305>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("current", &self.current)
            .field("keys", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Vault {
    /// `keys` maps key id to raw key bytes; `current` must be one of them.
    pub fn new(current: &str, keys: BTreeMap<String, [u8; KEY_LEN]>) -> Result<Self, String> {
        if !keys.contains_key(current) {
            return Err(format!("the current key `{current}` is not among the configured keys"));
        }
        Ok(Self {
            current: current.to_owned(),
            keys: keys
                .into_iter()
                .map(|(id, key)| (id, XChaCha20Poly1305::new(&key.into())))
                .collect(),
        })
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    pub fn has_key(&self, id: &str) -> bool {
        self.keys.contains_key(id)
    }

    pub fn seal(&self, plaintext: &str, slot: Slot<'_>) -> String {
        self.seal_with(&self.current, plaintext, slot)
    }

    /// Seals under `key_id`, which must be configured.
    fn seal_with(&self, key_id: &str, plaintext: &str, slot: Slot<'_>) -> String {
        let cipher = &self.keys[key_id];
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = slot.associated_data();
        let ciphertext = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encryption of an in-memory buffer cannot fail");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&ciphertext);
        format!("{FORMAT}.{key_id}.{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn open(&self, sealed: &str, slot: Slot<'_>) -> Result<SecretString, VaultError> {
        let (format, key_id, _) = parse(sealed)?;
        // A key this instance lacks says so first: not broken, only not ours (and not ours to re-seal either).
        if format == FORMAT_UNBOUND && slot.owner.is_some() && self.has_key(key_id) {
            return Err(VaultError::Unbound);
        }
        self.open_for(sealed, &Self::associated_data_of(sealed, slot))
    }

    /// The associated data `sealed` was bound to in `slot`: what a copy moved elsewhere, still sealed, must be
    /// opened with ([`Vault::open_for`]).
    pub fn associated_data_of(sealed: &str, slot: Slot<'_>) -> String {
        match parse(sealed) {
            Ok((FORMAT_UNBOUND, ..)) => slot.unbound_associated_data(),
            _ => slot.associated_data(),
        }
    }

    /// Opens a value moved, still sealed, from a slot whose [`Vault::associated_data_of`] was `associated_data`.
    pub fn open_for(&self, sealed: &str, associated_data: &str) -> Result<SecretString, VaultError> {
        let (_, key_id, bytes) = parse(sealed)?;
        let cipher = self
            .keys
            .get(key_id)
            .ok_or_else(|| VaultError::UnknownKey(key_id.to_owned()))?;
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let aad = associated_data;
        let plaintext = cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Undecryptable(key_id.to_owned()))?;
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| VaultError::Undecryptable(key_id.to_owned()))
    }

    /// The key id a sealed value names, without opening it (key rotation skips values already on the current key).
    pub fn key_id_of(sealed: &str) -> Result<&str, VaultError> {
        parse(sealed).map(|(_, key_id, _)| key_id)
    }

    /// Re-seals under the current key (and as `v2`); `Ok(None)` when the value is already both.
    pub fn reseal(&self, sealed: &str, slot: Slot<'_>) -> Result<Option<String>, VaultError> {
        let (format, key_id, _) = parse(sealed)?;
        if format == FORMAT && key_id == self.current {
            return Ok(None);
        }
        self.rewrite(sealed, slot, &self.current).map(Some)
    }

    /// Re-seals a `v1` value as `v2` under the key it names (binding its owner without rotating keys, which other
    /// instances may not have yet); `Ok(None)` when it is `v2` already.
    pub fn rebind(&self, sealed: &str, slot: Slot<'_>) -> Result<Option<String>, VaultError> {
        let (format, key_id, _) = parse(sealed)?;
        if format == FORMAT {
            return Ok(None);
        }
        self.rewrite(sealed, slot, key_id).map(Some)
    }

    fn rewrite(&self, sealed: &str, slot: Slot<'_>, key_id: &str) -> Result<String, VaultError> {
        let plaintext = self.open_for(sealed, &Self::associated_data_of(sealed, slot))?;
        Ok(self.seal_with(key_id, plaintext.expose_secret(), slot))
    }
}

/// `(format, key id, nonce ‖ ciphertext ‖ tag)`.
fn parse(sealed: &str) -> Result<(&'static str, &str, Vec<u8>), VaultError> {
    let mut parts = sealed.splitn(3, '.');
    let (Some(format), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(VaultError::Malformed);
    };
    let format = match format {
        FORMAT => FORMAT,
        FORMAT_UNBOUND => FORMAT_UNBOUND,
        _ => return Err(VaultError::Malformed),
    };
    let bytes = URL_SAFE_NO_PAD.decode(body).map_err(|_| VaultError::Malformed)?;
    // Nonce plus at least the 16-byte tag.
    if bytes.len() < NONCE_LEN + 16 {
        return Err(VaultError::Malformed);
    }
    Ok((format, key_id, bytes))
}

/// A new random key, as configuration takes it (base64url, no padding).
pub fn generate_key() -> String {
    URL_SAFE_NO_PAD.encode(XChaCha20Poly1305::generate_key(&mut OsRng))
}

/// Decodes a configured key: base64 (standard or URL-safe, padded or not) of exactly 32 bytes.
pub fn decode_key(encoded: &SecretString) -> Result<[u8; KEY_LEN], String> {
    let text = encoded.expose_secret().trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(text))
        .map_err(|_| "is not base64 (generate one with `onbehalf keys generate`)".to_owned())?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("decodes to {} bytes; a key is exactly {KEY_LEN}", b.len()))
}

/// The development key for the embedded default: read from `path`, or created there (mode 0600) on first run.
pub fn load_or_create_dev_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    if let Ok(text) = std::fs::read_to_string(path) {
        return decode_key(&SecretString::from(text))
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{}: {e}", path.display())));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let key = generate_key();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, key.as_bytes())?;
    decode_key(&SecretString::from(key)).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vault(current: &str, ids: &[&str]) -> Vault {
        let keys = ids
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    decode_key(&SecretString::from(generate_key())).unwrap(),
                )
            })
            .collect();
        Vault::new(current, keys).unwrap()
    }

    const SLOT: Slot<'static> = Slot {
        table: "token_sets",
        row: "row-1",
        column: "access_token",
        owner: Some(Owner {
            account_id: "account-1",
            resource_server: "rs",
        }),
    };

    /// What sealing was before owners were bound: `v1`, table/row/column only.
    fn seal_v1(v: &Vault, plaintext: &str, slot: Slot<'_>) -> String {
        let v2 = v.seal_with(&v.current, plaintext, Slot { owner: None, ..slot });
        v2.replacen("v2.", "v1.", 1)
    }

    #[test]
    fn sealed_values_open_and_never_repeat() {
        let v = vault("a", &["a"]);
        let one = v.seal("secret-token", SLOT);
        let two = v.seal("secret-token", SLOT);
        assert!(!one.contains("secret-token"));
        assert_ne!(one, two, "random nonces make two seals of one token differ");
        assert_eq!(v.open(&one, SLOT).unwrap().expose_secret(), "secret-token");
        assert_eq!(Vault::key_id_of(&one).unwrap(), "a");
    }

    #[test]
    fn a_value_moved_to_another_row_or_column_does_not_open() {
        let v = vault("a", &["a"]);
        let sealed = v.seal("secret-token", SLOT);
        let other_row = Slot { row: "row-2", ..SLOT };
        let other_column = Slot {
            column: "refresh_token",
            ..SLOT
        };
        assert_eq!(
            v.open(&sealed, other_row).err(),
            Some(VaultError::Undecryptable("a".into()))
        );
        assert_eq!(
            v.open(&sealed, other_column).err(),
            Some(VaultError::Undecryptable("a".into()))
        );
    }

    #[test]
    fn a_value_handed_to_another_account_or_resource_server_does_not_open() {
        let v = vault("a", &["a"]);
        let sealed = v.seal("secret-token", SLOT);
        let owner = SLOT.owner.unwrap();
        for other in [
            Owner {
                account_id: "account-2",
                ..owner
            },
            Owner {
                resource_server: "other-rs",
                ..owner
            },
            // The two parts cannot be shifted into each other.
            Owner {
                account_id: "account-1\", \"rs",
                resource_server: "",
            },
        ] {
            let moved = Slot {
                owner: Some(other),
                ..SLOT
            };
            assert_eq!(
                v.open(&sealed, moved).err(),
                Some(VaultError::Undecryptable("a".into()))
            );
        }
        let unowned = Slot { owner: None, ..SLOT };
        assert_eq!(
            v.open(&sealed, unowned).err(),
            Some(VaultError::Undecryptable("a".into()))
        );
    }

    #[test]
    fn v1_values_open_only_where_no_owner_is_bound_until_rebound() {
        let v = vault("a", &["a", "b"]);
        let legacy = seal_v1(&v, "secret-token", SLOT);
        // Where an owner is bound a v1 value is refused: a row moved before the upgrade reached it would open.
        assert_eq!(v.open(&legacy, SLOT).err(), Some(VaultError::Unbound));
        let unowned = Slot { owner: None, ..SLOT };
        assert_eq!(v.open(&legacy, unowned).unwrap().expose_secret(), "secret-token");
        // A bound value relabelled v1 (to be opened with the shorter associated data, after a move) does not open:
        // refused where an owner is bound, and undecryptable to `rebind`, which reads v1 without the owner.
        let relabelled = v.seal("secret-token", SLOT).replacen("v2.", "v1.", 1);
        assert_eq!(v.open(&relabelled, SLOT).err(), Some(VaultError::Unbound));
        assert_eq!(
            v.rebind(&relabelled, SLOT).err(),
            Some(VaultError::Undecryptable("a".into()))
        );
        // `rebind` makes it v2 under the key it had (not the current one: another instance may lack that).
        let on_b = seal_v1(&vault_sharing(&v, "b"), "secret-token", SLOT);
        let rebound = v.rebind(&on_b, SLOT).unwrap().expect("re-sealed");
        assert!(rebound.starts_with("v2.b."), "{rebound}");
        assert_eq!(v.open(&rebound, SLOT).unwrap().expose_secret(), "secret-token");
        assert_eq!(v.rebind(&rebound, SLOT).unwrap(), None);
        // A v1 value under a key this instance lacks is reported as such, not as broken.
        let elsewhere = vault("z", &["z"]);
        let unknown = seal_v1(&elsewhere, "secret-token", SLOT);
        assert_eq!(v.open(&unknown, SLOT).err(), Some(VaultError::UnknownKey("z".into())));
        assert_eq!(v.rebind(&unknown, SLOT).err(), Some(VaultError::UnknownKey("z".into())));
        // `reseal` (key rotation) makes v1 values v2 too, even under the current key.
        let legacy_current = seal_v1(&v, "secret-token", SLOT);
        let resealed = v.reseal(&legacy_current, SLOT).unwrap().expect("re-sealed");
        assert_eq!(v.open(&resealed, SLOT).unwrap().expose_secret(), "secret-token");
    }

    /// The same keys, with another current one.
    fn vault_sharing(v: &Vault, current: &str) -> Vault {
        Vault {
            current: current.into(),
            keys: v.keys.clone(),
        }
    }

    #[test]
    fn tampered_unknown_key_and_garbage_are_errors_not_panics() {
        let v = vault("a", &["a"]);
        let sealed = v.seal("secret-token", SLOT);
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert!(matches!(v.open(&tampered, SLOT), Err(VaultError::Undecryptable(_))));
        assert_eq!(
            v.open(&sealed.replacen(".a.", ".zz.", 1), SLOT).err(),
            Some(VaultError::UnknownKey("zz".into()))
        );
        for garbage in [
            "",
            "v1",
            "v1.a",
            "v1.a.!!",
            "v2.a.AAAA",
            "v1.a.AAAA",
            "v3.a.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(v.open(garbage, SLOT).err(), Some(VaultError::Malformed), "{garbage:?}");
        }
    }

    #[test]
    fn reseal_moves_old_values_to_the_current_key() {
        let old = vault("old", &["old"]);
        let sealed = old.seal("secret-token", SLOT);
        let mut keys = old.keys.clone();
        let new_key = decode_key(&SecretString::from(generate_key())).unwrap();
        keys.insert("new".into(), XChaCha20Poly1305::new(&new_key.into()));
        let both = Vault {
            current: "new".into(),
            keys,
        };
        let resealed = both.reseal(&sealed, SLOT).unwrap().expect("re-sealed");
        assert_eq!(Vault::key_id_of(&resealed).unwrap(), "new");
        assert_eq!(both.open(&resealed, SLOT).unwrap().expose_secret(), "secret-token");
        assert_eq!(both.reseal(&resealed, SLOT).unwrap(), None);
    }

    #[test]
    fn keys_decode_from_either_base64_alphabet_and_must_be_32_bytes() {
        let key = [7u8; KEY_LEN];
        let std = base64::engine::general_purpose::STANDARD.encode(key);
        assert_eq!(decode_key(&SecretString::from(std)).unwrap(), key);
        assert_eq!(
            decode_key(&SecretString::from(URL_SAFE_NO_PAD.encode(key))).unwrap(),
            key
        );
        assert!(
            decode_key(&SecretString::from("c2hvcnQ"))
                .unwrap_err()
                .contains("5 bytes")
        );
        assert!(decode_key(&SecretString::from("not base64!")).is_err());
    }

    #[test]
    fn debug_shows_key_ids_only() {
        let v = vault("a", &["a", "b"]);
        let shown = format!("{v:?}");
        assert!(shown.contains("\"a\"") && shown.contains("\"b\"") && !shown.contains("cipher"));
    }
}
