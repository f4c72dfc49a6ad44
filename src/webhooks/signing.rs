//! Standard Webhooks 1.0 signatures (<https://www.standardwebhooks.com>), which the `standardwebhooks` packages (and
//! Svix's) verify as they are: the secret is `whsec_` + base64 of random bytes; each request carries `webhook-id`,
//! `webhook-timestamp` (Unix seconds) and `webhook-signature`, a space-separated list of `v1,` + base64
//! HMAC-SHA256(secret, `{id}.{timestamp}.{body}`) — one per current secret, so during a rotation both sign.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 32 random bytes (the spec asks for 24 to 64).
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes))
}

/// The key bytes of a `whsec_` secret; `None` when it is not one.
pub fn key_of(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok()
}

/// One `v1,<base64>` signature of a message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-signature` header: one signature per key, space-separated.
pub fn signature_header(keys: &[Vec<u8>], id: &str, timestamp: i64, body: &[u8]) -> String {
    keys.iter()
        .map(|key| sign(key, id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a message does not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is more than {0} seconds away from now")]
    Timestamp(i64),
    #[error("no signature matches")]
    Signature,
}

/// How far a timestamp may be from now, as the reference libraries allow.
pub const TOLERANCE_SECS: i64 = 5 * 60;

/// Verifies a message as a receiver does (used by the tests; the Python client has its own, and the example
/// platform uses the `standardwebhooks` package). Compares in constant time.
pub fn verify(
    key: &[u8],
    id: &str,
    timestamp: i64,
    signatures: &str,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Timestamp(TOLERANCE_SECS));
    }
    let matches = signatures
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| {
            let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
            mac.update(format!("{id}.{timestamp}.").as_bytes());
            mac.update(body);
            // Compares in constant time.
            mac.verify_slice(&given).is_ok()
        });
    if matches { Ok(()) } else { Err(VerifyError::Signature) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries (their shared test vector).
    #[test]
    fn signs_like_the_reference_implementation() {
        let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn verifies_any_of_several_signatures_and_refuses_the_rest() {
        let old = key_of(&generate_secret()).unwrap();
        let new = key_of(&generate_secret()).unwrap();
        let header = signature_header(&[new.clone(), old.clone()], "evt_1", 1000, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert_eq!(verify(&old, "evt_1", 1000, &header, b"{}", 1000), Ok(()));
        assert_eq!(verify(&new, "evt_1", 1000, &header, b"{}", 1100), Ok(()));
        let other = key_of(&generate_secret()).unwrap();
        assert_eq!(
            verify(&other, "evt_1", 1000, &header, b"{}", 1000),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&new, "evt_1", 1000, &header, b"{ }", 1000),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&new, "evt_2", 1000, &header, b"{}", 1000),
            Err(VerifyError::Signature)
        );
        assert_eq!(
            verify(&new, "evt_1", 1000, &header, b"{}", 1000 + 301),
            Err(VerifyError::Timestamp(300))
        );
    }

    #[test]
    fn secrets_are_whsec_and_32_random_bytes() {
        let a = generate_secret();
        assert!(a.starts_with("whsec_"));
        assert_eq!(key_of(&a).unwrap().len(), 32);
        assert_ne!(a, generate_secret());
        assert_eq!(key_of("not-a-secret"), None);
    }
}
