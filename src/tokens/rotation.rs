//! `onbehalf keys rotate`: re-seals every access and refresh token under the vault's current key, while the app
//! keeps running. Rows are walked by id in pages; each row is replaced only if its version did not move meanwhile
//! (a concurrent writer already sealed fresh values with the current key). A value that does not open marks its
//! account `error` and the walk goes on.

use crate::{accounts::service::mark_undecryptable, db::Db, providers::Catalog};

use super::{
    repo::{self, access_slot, refresh_slot},
    vault::Vault,
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
            let access = vault.reseal(&row.access_token, access_slot(&row.id));
            let refresh = row
                .refresh_token
                .as_deref()
                .map(|sealed| vault.reseal(sealed, refresh_slot(&row.id)))
                .transpose();
            let (access, refresh) = match (access, refresh) {
                (Ok(a), Ok(r)) => (a, r.flatten()),
                (Err(err), _) | (_, Err(err)) => {
                    mark_undecryptable(db, catalog, &row.account_id, &err).await?;
                    report.undecryptable.push(row.account_id.clone());
                    continue;
                }
            };
            if access.is_none() && refresh.is_none() {
                report.current += 1;
                continue;
            }
            let access = access.unwrap_or_else(|| row.access_token.clone());
            let refresh = refresh.or_else(|| row.refresh_token.clone());
            if repo::replace_sealed(&db.pool, &row, &access, refresh.as_deref(), crate::db::now_ms()).await? {
                report.resealed += 1;
            } else {
                report.raced += 1;
            }
        }
    }
    Ok(report)
}
