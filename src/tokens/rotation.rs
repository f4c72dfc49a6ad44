//! `onbehalf keys rotate`: re-seals every access and refresh token under the vault's current key, while the app
//! keeps running. Rows are walked by id in pages; each row is replaced only if its version did not move meanwhile
//! (a concurrent writer already sealed fresh values with the current key). A value that does not open marks its
//! account `error` and the walk goes on.

use crate::{accounts::service::mark_undecryptable, db::Db};

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

pub async fn rotate(db: &Db, vault: &Vault) -> Result<RotationReport, RotationError> {
    check_keys_known(db, vault).await?;
    let mut report = walk(db, vault).await?;
    for _ in 1..MAX_PASSES {
        if report.raced == 0 {
            break;
        }
        let again = walk(db, vault).await?;
        report.resealed += again.resealed;
        report.raced = again.raced;
        report.undecryptable.extend(again.undecryptable);
    }
    report.left_on_old_keys = count_on_old_keys(db, vault).await?;
    Ok(report)
}

async fn check_keys_known(db: &Db, vault: &Vault) -> Result<(), RotationError> {
    let mut after = String::new();
    loop {
        let page = repo::sealed_page(&db.pool, &after, PAGE).await?;
        let Some(last) = page.last() else { return Ok(()) };
        after = last.id.clone();
        for row in &page {
            for sealed in std::iter::once(&row.access_token).chain(row.refresh_token.as_ref()) {
                if let Ok(key) = Vault::key_id_of(sealed)
                    && !vault.has_key(key)
                {
                    return Err(RotationError::UnknownKey {
                        row: row.id.clone(),
                        key: key.to_owned(),
                    });
                }
            }
        }
    }
}

async fn count_on_old_keys(db: &Db, vault: &Vault) -> Result<u64, sqlx::Error> {
    let mut after = String::new();
    let mut old = 0;
    loop {
        let page = repo::sealed_page(&db.pool, &after, PAGE).await?;
        let Some(last) = page.last() else { return Ok(old) };
        after = last.id.clone();
        old += page
            .iter()
            .filter(|row| {
                std::iter::once(&row.access_token)
                    .chain(row.refresh_token.as_ref())
                    .any(|sealed| Vault::key_id_of(sealed).is_ok_and(|k| k != vault.current_key_id()))
            })
            .count() as u64;
    }
}

async fn walk(db: &Db, vault: &Vault) -> Result<RotationReport, sqlx::Error> {
    let mut report = RotationReport::default();
    let mut after = String::new();
    loop {
        let page = repo::sealed_page(&db.pool, &after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id.clone();
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
                    mark_undecryptable(db, &row.account_id, &err).await?;
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
