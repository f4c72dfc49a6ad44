//! Password hashing with argon2id (RustCrypto `argon2`, OWASP's default parameters: 19 MiB, 2 passes).
//!
//! Hashing is deliberately slow CPU work, so it always runs on tokio's blocking pool and never stalls the async
//! workers that serve other requests.

use std::sync::LazyLock;

use argon2::{
    Argon2, PasswordHash, PasswordHasher, PasswordVerifier,
    password_hash::{SaltString, rand_core::OsRng},
};
use rand::{Rng, distributions::Alphanumeric};
use tokio::sync::Semaphore;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// A hash of a random password that nobody knows. Verifying against it when the email is unknown makes a wrong
/// email cost as much time as a wrong password, so response times do not reveal which accounts exist.
static DUMMY_HASH: LazyLock<String> =
    LazyLock::new(|| hash_blocking(&generate()).expect("hashing a random password cannot fail"));

fn hash_blocking(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// At most one hash per core at a time. Each takes 19 MiB and a core for tens of milliseconds; unbounded, a burst
/// of sign-up or sign-in requests would fill tokio's 512 blocking threads and gigabytes of memory. Requests beyond
/// this wait their turn instead.
static HASHING: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2)));

async fn on_blocking_pool<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Result<T, PasswordError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    Ok(tokio::task::spawn_blocking(work).await?)
}

/// Hashes `password` into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$…`).
pub async fn hash(password: String) -> Result<String, PasswordError> {
    on_blocking_pool(move || hash_blocking(&password)).await?
}

/// Checks `password` against `stored`; with no stored hash (unknown account) it burns the same time and says no.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, PasswordError> {
    on_blocking_pool(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let parsed = PasswordHash::new(&stored).map_err(|e| PasswordError::Hash(e.to_string()))?;
        Ok(Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok() && known)
    })
    .await?
}

/// A random password for `onbehalf user add` when none is given: 20 alphanumerics, about 119 bits.
pub fn generate() -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_wrong_passwords_do_not() {
        let hash = hash("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify("correct horse".into(), Some(hash.clone())).await.unwrap());
        assert!(!verify("wrong horse".into(), Some(hash)).await.unwrap());
        assert!(!verify("anything".into(), None).await.unwrap());
    }
}
