//! ID tokens: the Ed25519 signing key, its JWKS, and the claims Globus puts in an ID token.
//!
//! Signing is openidconnect's (`IdToken::new`); nothing here builds or parses a JWT by hand, except that the
//! `BadSignature` fault flips bytes of a finished token's signature.

use std::time::{Duration, SystemTime};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::pkcs8::{EncodePrivateKey, spki::der::pem::LineEnding};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, ClientId, EndUserEmail, EndUserName, EndUserUsername, IdToken,
    IdTokenClaims, IssuerUrl, JsonWebKeyId, LocalizedClaim, Nonce, PrivateSigningKey, StandardClaims,
    SubjectIdentifier,
    core::{
        CoreEdDsaPrivateSigningKey, CoreGenderClaim, CoreJsonWebKeySet, CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    },
};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::{
    IdTokenFault, Identity,
    data::{IDENTITY_PROVIDER, IDENTITY_PROVIDER_DISPLAY_NAME},
    store::{random_string, unix},
};

/// How long an ID token is valid after it is issued.
const ID_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// The issuer the `WrongIssuer` fault (and the callback `iss` fault) claims to be.
pub(crate) const EVIL_ISSUER: &str = "https://evil.example";

/// One entry of Globus's `identity_set` claim: an identity linked to the account.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySetEntry {
    pub sub: String,
    pub username: String,
    pub name: String,
    pub email: String,
    pub organization: String,
    pub identity_provider: String,
    pub identity_provider_display_name: String,
    pub last_authentication: i64,
}

impl IdentitySetEntry {
    pub(crate) fn new(identity: &Identity, last_authentication: SystemTime) -> Self {
        Self {
            sub: identity.sub.to_owned(),
            username: identity.username.to_owned(),
            name: identity.name.to_owned(),
            email: identity.email.to_owned(),
            organization: identity.organization.to_owned(),
            identity_provider: IDENTITY_PROVIDER.to_owned(),
            identity_provider_display_name: IDENTITY_PROVIDER_DISPLAY_NAME.to_owned(),
            last_authentication: unix(last_authentication),
        }
    }
}

/// The claims Globus adds to the standard ones.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobusClaims {
    pub organization: String,
    pub identity_provider: String,
    pub identity_provider_display_name: String,
    pub last_authentication: i64,
    pub identity_set: Vec<IdentitySetEntry>,
}

impl AdditionalClaims for GlobusClaims {}

/// An ID token of the demo provider, with its Globus claims.
pub type DemoIdToken =
    IdToken<GlobusClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;

/// The current Ed25519 signing key and its key id.
pub(crate) struct SigningKey {
    pub kid: String,
    key: CoreEdDsaPrivateSigningKey,
}

impl SigningKey {
    /// A fresh key from 32 random bytes, through PKCS#8 PEM because that is what openidconnect takes.
    pub fn generate() -> Result<Self, String> {
        let seed: [u8; 32] = rand::thread_rng().r#gen();
        let pem = ed25519_dalek::SigningKey::from_bytes(&seed)
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|err| format!("cannot encode the signing key: {err}"))?;
        let kid = random_string(16);
        let key = CoreEdDsaPrivateSigningKey::from_ed25519_pem(&pem, Some(JsonWebKeyId::new(kid.clone())))?;
        Ok(Self { kid, key })
    }

    /// The JWKS: only the current key, so tokens signed before a rotation no longer verify.
    pub fn jwks(&self) -> CoreJsonWebKeySet {
        CoreJsonWebKeySet::new(vec![self.key.as_verification_key()])
    }
}

/// What an ID token says, before faults are applied.
pub(crate) struct IdTokenRequest<'a> {
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub identity: &'a Identity,
    pub nonce: Option<&'a str>,
    /// The access token issued with it, for `at_hash`.
    pub access_token: &'a str,
    pub authenticated_at: SystemTime,
    pub fault: Option<IdTokenFault>,
}

/// Signs an ID token (EdDSA) for `request`, defective as `request.fault` says.
pub(crate) fn sign(key: &SigningKey, request: &IdTokenRequest<'_>) -> Result<String, String> {
    let fault = request.fault;
    let now = SystemTime::now();
    let (issued_at, expires_at) = match fault {
        Some(IdTokenFault::Expired) => (now - 2 * ID_TOKEN_LIFETIME, now - ID_TOKEN_LIFETIME),
        Some(IdTokenFault::IssuedInTheFuture) => (now + ID_TOKEN_LIFETIME, now + 2 * ID_TOKEN_LIFETIME),
        Some(IdTokenFault::IssuedLongAgo) => (now - 2 * ID_TOKEN_LIFETIME, now + ID_TOKEN_LIFETIME),
        _ => (now, now + ID_TOKEN_LIFETIME),
    };
    let issuer = if fault == Some(IdTokenFault::WrongIssuer) {
        EVIL_ISSUER
    } else {
        request.issuer
    };
    let audience = if fault == Some(IdTokenFault::WrongAudience) {
        "someone-else"
    } else {
        request.client_id
    };
    let nonce = if fault == Some(IdTokenFault::WrongNonce) {
        Some(format!("not-{}", request.nonce.unwrap_or("the-nonce")))
    } else {
        request.nonce.map(str::to_owned)
    };
    let identity = request.identity;
    let entry = IdentitySetEntry::new(identity, request.authenticated_at);
    let standard = StandardClaims::new(SubjectIdentifier::new(identity.sub.to_owned()))
        .set_name(Some(LocalizedClaim::from(EndUserName::new(identity.name.to_owned()))))
        .set_email(Some(EndUserEmail::new(identity.email.to_owned())))
        .set_preferred_username(Some(EndUserUsername::new(identity.username.to_owned())));
    let globus = GlobusClaims {
        organization: identity.organization.to_owned(),
        identity_provider: entry.identity_provider.clone(),
        identity_provider_display_name: entry.identity_provider_display_name.clone(),
        last_authentication: entry.last_authentication,
        identity_set: vec![entry],
    };
    let issuer = IssuerUrl::new(issuer.to_owned()).map_err(|err| format!("bad issuer: {err}"))?;
    let claims = IdTokenClaims::new(
        issuer,
        vec![Audience::new(audience.to_owned())],
        expires_at.into(),
        issued_at.into(),
        standard,
        globus,
    )
    .set_nonce(nonce.map(Nonce::new))
    .set_authorized_party(
        (fault == Some(IdTokenFault::WrongAuthorizedParty)).then(|| ClientId::new("someone-else".to_owned())),
    );
    let access_token = AccessToken::new(request.access_token.to_owned());
    let token = DemoIdToken::new(
        claims,
        &key.key,
        CoreJwsSigningAlgorithm::EdDsa,
        Some(&access_token),
        None,
    )
    .map_err(|err| format!("cannot sign the ID token: {err}"))?
    .to_string();
    Ok(if fault == Some(IdTokenFault::BadSignature) {
        corrupt_signature(&token)
    } else {
        token
    })
}

/// Flips the bits of the first signature byte: the token still parses, but no key verifies it.
fn corrupt_signature(token: &str) -> String {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    if let Some(first) = bytes.first_mut() {
        *first ^= 0xff;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}
