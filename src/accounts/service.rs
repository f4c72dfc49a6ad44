//! Linked-account operations other than the OAuth legs (those are in `link`): listing for the page. Tokens are
//! handed out only by `delegation`.

use super::{
    LinkedAccounts, repo,
    view::{provider_views, view},
};
use crate::{
    db::{Db, now_ms},
    providers::Catalog,
};

/// Everything the linked-accounts page shows for one user.
pub async fn linked_accounts(db: &Db, catalog: &Catalog, user_id: i64) -> Result<LinkedAccounts, sqlx::Error> {
    let page = repo::accounts_page(&db.pool, user_id).await?;
    let pending_revocations = if page.has_pending_revocations {
        super::disconnect::pending_for_user(db, catalog, user_id).await?
    } else {
        Vec::new()
    };
    let accounts = page
        .accounts
        .into_iter()
        .map(|(row, sets)| view(catalog, row, sets))
        .collect();
    let providers = provider_views(catalog);
    Ok(LinkedAccounts {
        now: now_ms(),
        providers,
        accounts,
        pending_revocations,
    })
}
