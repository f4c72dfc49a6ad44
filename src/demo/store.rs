//! In-memory state: pending authorizations, codes, grants, tokens, transfer tasks, switches and counters.
//!
//! Token values are random and opaque (as Globus's are); the store maps them to records. A grant is one user's (or
//! the client's own) authorization; every token belongs to one grant, so revoking a grant kills all its tokens.

use std::{
    collections::{BTreeSet, HashMap},
    time::{Duration, SystemTime},
};

use rand::{Rng, distributions::Alphanumeric};

use super::{Counters, IdTokenFault, Identity, TokenFault, id_token::SigningKey, scope::Scope, transfer::Task};

/// How long the consent page may stay open before its decision is refused.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(600);
/// How long an authorization code is valid (RFC 6749 §4.1.2 recommends at most 10 minutes; Globus is shorter).
pub(crate) const CODE_TTL: Duration = Duration::from_secs(60);
/// How long a used code is remembered after it expired, so a replay still revokes what it produced.
const USED_CODE_MEMORY: Duration = Duration::from_secs(600);

/// A random opaque value: tokens, codes, request ids. `thread_rng` is a CSPRNG.
pub(crate) fn random_string(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// Seconds since the Unix epoch.
pub(crate) fn unix(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// What the user is asked to approve; a code carries it to the token endpoint.
#[derive(Clone, Debug)]
pub(crate) struct Authorization {
    pub client_id: String,
    pub redirect_uri: String,
    pub scopes: Vec<Scope>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// `access_type=offline`: issue refresh tokens.
    pub offline: bool,
}

/// An authorize request waiting for the user's decision on the consent page.
#[derive(Debug)]
pub(crate) struct Pending {
    pub authorization: Authorization,
    pub expires_at: SystemTime,
}

#[derive(Debug)]
pub(crate) struct Code {
    pub authorization: Authorization,
    pub identity: &'static Identity,
    pub expires_at: SystemTime,
    /// Presented at the token endpoint once already.
    pub used: bool,
    /// Set once exchanged: the grant whose tokens a replay revokes (RFC 6749 §4.1.2).
    pub exchanged_for: Option<u64>,
}

/// On whose behalf a grant's tokens act.
#[derive(Clone, Debug)]
pub(crate) enum Subject {
    User(&'static Identity),
    /// `client_credentials`: the client itself.
    Client(String),
}

impl Subject {
    pub fn sub(&self) -> &str {
        match self {
            Subject::User(identity) => identity.sub,
            Subject::Client(client_id) => client_id,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Grant {
    pub client_id: String,
    pub subject: Subject,
    /// When the user approved it: the ID token's `last_authentication`.
    pub authenticated_at: SystemTime,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TokenKind {
    Access,
    Refresh,
}

/// Which resource server accepts a token. Plain OIDC issues one token good for every scope it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Audience {
    ResourceServer(&'static str),
    Any,
}

#[derive(Debug)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub grant: u64,
    pub audience: Audience,
    pub scopes: Vec<Scope>,
    pub issued_at: SystemTime,
    /// `None` for refresh tokens, which live until used or revoked.
    pub expires_at: Option<SystemTime>,
    pub revoked: bool,
    /// A refresh token that was exchanged; presenting it again is reuse.
    pub consumed: bool,
}

impl Token {
    pub fn is_active(&self, now: SystemTime) -> bool {
        !self.revoked && !self.consumed && self.expires_at.is_none_or(|at| at > now)
    }

    pub fn serves(&self, resource_server: &str) -> bool {
        match self.audience {
            Audience::ResourceServer(rs) => rs == resource_server,
            Audience::Any => self.scopes.iter().any(|scope| scope.resource_server == resource_server),
        }
    }

    pub fn resource_server(&self) -> &'static str {
        match self.audience {
            Audience::ResourceServer(rs) => rs,
            Audience::Any => self.scopes.first().map_or(super::scope::AUTH_RS, |s| s.resource_server),
        }
    }
}

/// The misbehaviour switches.
#[derive(Debug, Default)]
pub(crate) struct Switches {
    /// The fault and how many more requests get it (`None`: until cleared).
    pub token_fault: Option<(TokenFault, Option<u32>)>,
    pub token_delay: Duration,
    pub id_token_fault: Option<IdTokenFault>,
    pub callback_iss_fault: bool,
    /// Collections (lower-case ids) whose data needs a `data_access` consent.
    pub consent_required: BTreeSet<String>,
    /// Refresh without rotation: the refresh token stays valid and responses carry no new one.
    pub keep_refresh_tokens: bool,
    /// The Transfer API refuses every token with 401 (a provider that has stopped honouring the grant).
    pub reject_api_tokens: bool,
    /// Whose tokens the revocation endpoint refuses (503, revoking nothing).
    pub revocation_fault: RevocationFault,
    /// How long tasks submitted from now on stay ACTIVE: for one identity (`sub`), or for everyone (`None`).
    pub task_durations: std::collections::BTreeMap<Option<String>, Duration>,
}

/// Revocation faults: for everyone, or for the tokens of some identities only (browser tests run in parallel, each
/// with its own identity, and must not break each other's revocations).
#[derive(Debug, Default)]
pub struct RevocationFault {
    pub everyone: bool,
    /// `sub`s of identities whose tokens are refused.
    pub identities: BTreeSet<String>,
}

impl RevocationFault {
    pub fn applies_to(&self, sub: Option<&str>) -> bool {
        self.everyone || sub.is_some_and(|sub| self.identities.contains(sub))
    }
}

pub(crate) struct Store {
    pub pending: HashMap<String, Pending>,
    pub codes: HashMap<String, Code>,
    pub grants: HashMap<u64, Grant>,
    pub tokens: HashMap<String, Token>,
    /// Every token and code value ever issued, for leak scans.
    pub issued: Vec<String>,
    pub counters: Counters,
    pub switches: Switches,
    pub signing_key: SigningKey,
    pub tasks: Vec<Task>,
    next_grant: u64,
}

impl Store {
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            pending: HashMap::new(),
            codes: HashMap::new(),
            grants: HashMap::new(),
            tokens: HashMap::new(),
            issued: Vec::new(),
            counters: Counters::default(),
            switches: Switches::default(),
            signing_key: SigningKey::generate()?,
            tasks: Vec::new(),
            next_grant: 1,
        })
    }

    /// Forgets consent requests and codes nobody can use any more.
    pub fn purge(&mut self, now: SystemTime) {
        self.pending.retain(|_, pending| pending.expires_at > now);
        self.codes.retain(|_, code| code.expires_at + USED_CODE_MEMORY > now);
    }

    /// Stores a new consent request and returns its id.
    pub fn add_pending(&mut self, authorization: Authorization, now: SystemTime) -> String {
        self.purge(now);
        let id = random_string(32);
        self.pending.insert(
            id.clone(),
            Pending {
                authorization,
                expires_at: now + PENDING_TTL,
            },
        );
        id
    }

    pub fn add_code(&mut self, authorization: Authorization, identity: &'static Identity, now: SystemTime) -> String {
        let code = random_string(40);
        self.codes.insert(
            code.clone(),
            Code {
                authorization,
                identity,
                expires_at: now + CODE_TTL,
                used: false,
                exchanged_for: None,
            },
        );
        self.issued.push(code.clone());
        code
    }

    pub fn add_grant(&mut self, grant: Grant) -> u64 {
        let id = self.next_grant;
        self.next_grant += 1;
        self.grants.insert(id, grant);
        id
    }

    /// Issues a token of `grant`; access tokens expire after `lifetime`.
    pub fn issue(
        &mut self,
        kind: TokenKind,
        grant: u64,
        audience: Audience,
        scopes: Vec<Scope>,
        lifetime: Duration,
        now: SystemTime,
    ) -> String {
        let value = random_string(48);
        self.tokens.insert(
            value.clone(),
            Token {
                kind,
                grant,
                audience,
                scopes,
                issued_at: now,
                expires_at: (kind == TokenKind::Access).then(|| now + lifetime),
                revoked: false,
                consumed: false,
            },
        );
        self.issued.push(value.clone());
        value
    }

    /// The active access token `value` accepted by `resource_server`, with its grant.
    pub fn access_token(&self, value: &str, resource_server: &str, now: SystemTime) -> Option<(&Token, &Grant)> {
        let token = self.tokens.get(value)?;
        if token.kind != TokenKind::Access || !token.is_active(now) || !token.serves(resource_server) {
            return None;
        }
        Some((token, self.grants.get(&token.grant)?))
    }

    /// Revokes the tokens of `grant` matching `filter`; returns how many were live.
    pub fn revoke_tokens(&mut self, grant: u64, filter: impl Fn(&Token) -> bool) -> usize {
        let mut revoked = 0;
        for token in self.tokens.values_mut() {
            if token.grant == grant && !token.revoked && filter(token) {
                token.revoked = true;
                revoked += 1;
            }
        }
        revoked
    }

    /// Revokes every token of every grant of `identity` (a `sub`), or of everyone.
    pub fn revoke_grants(&mut self, identity: Option<&str>) {
        let grants: Vec<u64> = self
            .grants
            .iter()
            .filter(|(_, grant)| identity.is_none_or(|sub| grant.subject.sub() == sub))
            .map(|(id, _)| *id)
            .collect();
        let mut revoked = 0;
        for grant in grants {
            revoked += self.revoke_tokens(grant, |_| true);
        }
        tracing::info!(
            identity = identity.unwrap_or("*"),
            revoked,
            "demo: grants revoked by switch"
        );
    }

    /// Makes the access tokens of `identity`, or everyone's, expired now.
    pub fn expire_access_tokens(&mut self, identity: Option<&str>) {
        let past = SystemTime::now() - Duration::from_secs(1);
        let grants = &self.grants;
        let mut expired = 0;
        for token in self.tokens.values_mut() {
            let matches = identity.is_none_or(|sub| grants.get(&token.grant).is_some_and(|g| g.subject.sub() == sub));
            if token.kind == TokenKind::Access && matches && token.expires_at.is_some_and(|at| at > past) {
                token.expires_at = Some(past);
                expired += 1;
            }
        }
        tracing::info!(
            identity = identity.unwrap_or("*"),
            expired,
            "demo: access tokens expired by switch"
        );
    }

    pub fn rotate_signing_key(&mut self) {
        match SigningKey::generate() {
            Ok(key) => {
                self.signing_key = key;
                tracing::info!(kid = %self.signing_key.kid, "demo: signing key rotated");
            }
            Err(err) => tracing::error!("demo: signing key not rotated: {err}"),
        }
    }

    /// The fault this token request gets, if any; counts it and uses up one of its `times`.
    pub fn take_token_fault(&mut self) -> Option<TokenFault> {
        let (fault, times) = self.switches.token_fault.as_mut()?;
        let fault = *fault;
        match times {
            Some(0) => {
                self.switches.token_fault = None;
                return None;
            }
            Some(left) => {
                *left -= 1;
                if *left == 0 {
                    self.switches.token_fault = None;
                }
            }
            None => {}
        }
        self.counters.faults_injected += 1;
        Some(fault)
    }

    pub fn count_grant(&mut self, grant_type: &str) {
        *self.counters.grants.entry(grant_type.to_owned()).or_default() += 1;
    }
}
