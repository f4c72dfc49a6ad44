//! `onbehalf keys rotate`: re-seals every access and refresh token under the vault's current key, while the app
//! keeps running. Rows are walked by id in pages; each row is replaced only if its version did not move meanwhile
//! (a concurrent writer already sealed fresh values with the current key). A value that does not open marks its
//! account `error` and the walk goes on — unless it names a key this instance lacks (another instance, given a new
//! key first, sealed it meanwhile): that value is fine, only not ours to open, so it is left as it is and reported.
//!
//! [`bind_owners`] is the same walk with another rewrite: values sealed before they were bound to their account and
//! resource server (`v1`, see `vault`) are sealed anew, under the key they already have, by every start.

use crate::{accounts::status::mark_undecryptable, db::Db, providers::Catalog};

use super::{
    repo::{self, access_slot, refresh_slot},
    vault::{Slot, Vault, VaultError},
};

const PAGE: i64 = 200;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// Token-set rows looked at.
    pub rows: u64,
    /// Rows whose values were re-sealed under the current key.
    pub resealed: u64,
    /// Rows already entirely on the current key.
    pub current: u64,
    /// Rows changed by someone else between read and write in the last pass (walked again up to 5 times).
    pub raced: u64,
    /// Rows still holding a value under another key when the run ended (0 means the old keys can be removed).
    pub left_on_old_keys: u64,
    /// Account ids marked `error` because a value did not open.
    pub undecryptable: Vec<String>,
    /// Keys this instance lacks that rows were sealed with during the walk (by an instance that has them); those
    /// rows are left as they are, and counted in `left_on_old_keys`.
    pub keys_not_configured: std::collections::BTreeSet<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// Some value names a key that is not configured: rotating now would strand it. Nothing was written.
    #[error("token set {row} was sealed with key `{key}`, which is not in vault.keys; add it and run again")]
    UnknownKey { row: String, key: String },
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// Walks are repeated while rows changed under them (a writer still sealing with an old key); bounded.
const MAX_PASSES: usize = 5;

/// `catalog` names the providers in the webhook of an account found undecryptable.
pub async fn rotate(db: &Db, vault: &Vault, catalog: &Catalog) -> Result<RotationReport, RotationError> {
    check_keys_known(db, vault).await?;
    let mut report = walk(db, vault, catalog).await?;
    for _ in 1..MAX_PASSES {
        if report.raced == 0 {
            break;
        }
        let again = walk(db, vault, catalog).await?;
        report.resealed += again.resealed;
        report.raced = again.raced;
        report.undecryptable.extend(again.undecryptable);
        report.keys_not_configured.extend(again.keys_not_configured);
    }
    report.left_on_old_keys = count_on_old_keys(db, vault).await?;
    // Tokens of disconnected accounts still waiting to be revoked are sealed too.
    let (resealed, left) = crate::accounts::disconnect::reseal_pending(db, vault).await?;
    report.resealed += resealed;
    report.left_on_old_keys += left;
    // And the webhook endpoints' signing secrets.
    let (resealed, left) = crate::webhooks::endpoints::reseal(db, vault).await?;
    report.resealed += resealed;
    report.left_on_old_keys += left;
    Ok(report)
}

/// Keyset pagination over `token_sets` by id: the one walk every pass below uses.
struct Pages<'a> {
    db: &'a Db,
    after: String,
}

impl<'a> Pages<'a> {
    fn new(db: &'a Db) -> Self {
        Self {
            db,
            after: String::new(),
        }
    }

    async fn next(&mut self) -> Result<Option<Vec<repo::SealedRow>>, sqlx::Error> {
        let page = repo::sealed_page(&self.db.pool, &self.after, PAGE).await?;
        Ok(page.last().map(|last| last.id.clone()).map(|last| {
            self.after = last;
            page
        }))
    }
}

/// The key ids a row's values name (access, and refresh when there is one); malformed values name none.
fn key_ids(row: &repo::SealedRow) -> impl Iterator<Item = &str> {
    std::iter::once(&row.access_token)
        .chain(row.refresh_token.as_ref())
        .filter_map(|sealed| Vault::key_id_of(sealed).ok())
}

async fn check_keys_known(db: &Db, vault: &Vault) -> Result<(), RotationError> {
    let mut pages = Pages::new(db);
    while let Some(page) = pages.next().await? {
        for row in &page {
            if let Some(key) = key_ids(row).find(|key| !vault.has_key(key)) {
                return Err(RotationError::UnknownKey {
                    row: row.id.clone(),
                    key: key.to_owned(),
                });
            }
        }
    }
    Ok(())
}

async fn count_on_old_keys(db: &Db, vault: &Vault) -> Result<u64, sqlx::Error> {
    let mut pages = Pages::new(db);
    let mut old = 0;
    while let Some(page) = pages.next().await? {
        old += page
            .iter()
            .filter(|row| key_ids(row).any(|k| k != vault.current_key_id()))
            .count() as u64;
    }
    Ok(old)
}

async fn walk(db: &Db, vault: &Vault, catalog: &Catalog) -> Result<RotationReport, sqlx::Error> {
    let mut report = RotationReport::default();
    let mut pages = Pages::new(db);
    while let Some(page) = pages.next().await? {
        for row in page {
            report.rows += 1;
            let (access, refresh) = match plan(&row, |sealed, slot| vault.reseal(sealed, slot)) {
                Plan::Current => {
                    report.current += 1;
                    continue;
                }
                Plan::Reseal { access, refresh } => (access, refresh),
                Plan::KeyNotConfigured(key) => {
                    report.keys_not_configured.insert(key);
                    continue;
                }
                Plan::Undecryptable(err) => {
                    mark_undecryptable(db, catalog, &row.account_id, &err).await?;
                    report.undecryptable.push(row.account_id.clone());
                    continue;
                }
            };
            if repo::replace_sealed(db, &row, &access, refresh.as_deref(), crate::db::now_ms()).await? {
                report.resealed += 1;
            } else {
                report.raced += 1;
            }
        }
    }
    Ok(report)
}

/// What a start found binding token sets to their owners ([`bind_owners`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BindReport {
    /// Rows whose values were sealed anew, bound to their owner.
    pub rebound: u64,
    /// Rows written by someone else meanwhile (with values already bound).
    pub raced: u64,
    /// Account ids marked `error` because a value did not open.
    pub undecryptable: Vec<String>,
    /// Keys this instance lacks that `v1` values were sealed with: an instance that has them binds those rows.
    pub keys_not_configured: std::collections::BTreeSet<String>,
}

impl BindReport {
    /// What a start or `onbehalf migrate` says about it.
    pub fn log(&self) {
        if self.rebound > 0 {
            tracing::info!(
                rows = self.rebound,
                "token sets sealed anew, bound to their account and resource server"
            );
        }
        if !self.keys_not_configured.is_empty() {
            tracing::warn!(
                keys = ?self.keys_not_configured,
                "token sets sealed with keys this instance lacks still wait to be bound to their account; an instance \
                 with those keys binds them when it starts"
            );
        }
        if !self.undecryptable.is_empty() {
            tracing::error!(accounts = ?self.undecryptable, "token sets that do not open: their accounts are marked error");
        }
    }
}

/// Seals every `v1` token value again as `v2`, bound to its account and resource server, under the key it already
/// has (a start must not rotate keys other instances may lack). Run by every start before it serves, and by
/// `onbehalf migrate`: the schema migration of owner binding, which SQL cannot do. Rows are compared by their exact
/// sealed values (`repo::rebind_sealed`), so a refresh under way is not disturbed.
pub async fn bind_owners(db: &Db, vault: &Vault, catalog: &Catalog) -> Result<BindReport, sqlx::Error> {
    let mut report = BindReport::default();
    let mut after = String::new();
    loop {
        let page = repo::unbound_page(&db.pool, &after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(report);
        };
        after = last.id.clone();
        for row in page {
            match plan(&row, |sealed, slot| vault.rebind(sealed, slot)) {
                Plan::Current => {}
                Plan::Reseal { access, refresh } => {
                    match repo::rebind_sealed(&db.pool, &row, &access, refresh.as_deref()).await? {
                        true => report.rebound += 1,
                        false => report.raced += 1,
                    }
                }
                Plan::KeyNotConfigured(key) => {
                    report.keys_not_configured.insert(key);
                }
                Plan::Undecryptable(err) => {
                    mark_undecryptable(db, catalog, &row.account_id, &err).await?;
                    report.undecryptable.push(row.account_id.clone());
                }
            }
        }
    }
}

/// What a walk does with one row.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// Nothing to rewrite.
    Current,
    /// The row's values rewritten (a value that needed nothing is carried over as it is).
    Reseal { access: String, refresh: Option<String> },
    /// A value names a key this instance does not have: not broken, and not ours to re-seal.
    KeyNotConfigured(String),
    /// A value does not open with the key it names (or is not a vault value): the account is marked `error`.
    Undecryptable(VaultError),
}

/// `rewrite` answers a value rewritten, or `None` when it needs nothing ([`Vault::reseal`], [`Vault::rebind`]).
fn plan(row: &repo::SealedRow, rewrite: impl Fn(&str, Slot<'_>) -> Result<Option<String>, VaultError>) -> Plan {
    let access = rewrite(&row.access_token, access_slot(row.key()));
    let refresh = row
        .refresh_token
        .as_deref()
        .map(|sealed| rewrite(sealed, refresh_slot(row.key())))
        .transpose();
    match (access, refresh) {
        (Err(VaultError::UnknownKey(key)), _) | (_, Err(VaultError::UnknownKey(key))) => Plan::KeyNotConfigured(key),
        (Err(err), _) | (_, Err(err)) => Plan::Undecryptable(err),
        (Ok(None), Ok(None | Some(None))) => Plan::Current,
        (Ok(access), Ok(refresh)) => Plan::Reseal {
            access: access.unwrap_or_else(|| row.access_token.clone()),
            refresh: refresh.flatten().or_else(|| row.refresh_token.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vault(current: &str, keys: &[(&str, u8)]) -> Vault {
        Vault::new(
            current,
            keys.iter()
                .map(|(id, b)| ((*id).to_owned(), [*b; 32]))
                .collect::<BTreeMap<_, _>>(),
        )
        .unwrap()
    }

    fn row(vault: &Vault, refresh: bool) -> repo::SealedRow {
        let mut row = repo::SealedRow {
            id: "ts1".into(),
            account_id: "a1".into(),
            resource_server: "rs".into(),
            access_token: String::new(),
            refresh_token: None,
            version: 1,
        };
        row.access_token = vault.seal("at", access_slot(row.key()));
        row.refresh_token = refresh.then(|| vault.seal("rt", refresh_slot(row.key())));
        row
    }

    fn reseal(vault: &Vault, row: &repo::SealedRow) -> Plan {
        plan(row, |sealed, slot| vault.reseal(sealed, slot))
    }

    #[test]
    fn a_value_under_a_key_this_instance_lacks_is_left_alone_not_marked_undecryptable() {
        let ours = vault("new", &[("old", 1), ("new", 2)]);
        // Sealed by an instance that already has `newer`, which this one was not given yet.
        let theirs = vault("newer", &[("newer", 3)]);
        assert_eq!(
            reseal(&ours, &row(&theirs, true)),
            Plan::KeyNotConfigured("newer".into())
        );
        // Wrong key material under a known key id is a real defect.
        let forged = vault("old", &[("old", 9)]);
        assert!(matches!(
            reseal(&ours, &row(&forged, false)),
            Plan::Undecryptable(VaultError::Undecryptable(_))
        ));
        assert_eq!(reseal(&ours, &row(&ours, true)), Plan::Current);
        let old = vault("old", &[("old", 1)]);
        let Plan::Reseal { access, refresh } = reseal(&ours, &row(&old, true)) else {
            panic!("an old-key row is re-sealed");
        };
        assert!(access.starts_with("v2.new.") && refresh.is_some_and(|r| r.starts_with("v2.new.")));
    }
}
