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
    /// Rows changed by someone else between read and write (their new values use the current key).
    pub raced: u64,
    /// Account ids marked `error` because a value did not open.
    pub undecryptable: Vec<String>,
}

pub async fn rotate(db: &Db, vault: &Vault) -> Result<RotationReport, sqlx::Error> {
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
