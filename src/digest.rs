//! SHA-256 of the secrets the server looks up but never needs back — session ids, OAuth `state` values, connect
//! links, API keys: only the digest is stored, so a database or backup that leaks hands out nothing that works.
//! These are 128 bits or more of randomness, so a plain hash (no salt, no stretching) is enough: there is nothing to
//! guess.

use sha2::{Digest, Sha256};

/// Lower-case hex of SHA-256(`value`).
pub fn sha256_hex(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
