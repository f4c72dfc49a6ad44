//! The background refresher: keeps idle links alive by refreshing token sets that expire within
//! `delegation.background.window`, before anyone needs them. Every instance runs one; they share the work through
//! the same leases as request-time refreshes (a set whose lease is taken is skipped, not waited for), so each due
//! token is refreshed once per expiry. A token living less than the window is refreshed at half its lifetime. Failures back off through the same cooldown, which the selection respects.

use std::sync::Arc;

use tokio::{sync::Semaphore, task::JoinSet};

use super::{Delegator, refresh, repo};
use crate::db::now_ms;

/// Rows looked at per pass; a pass that fills it runs again at once.
const BATCH: i64 = 200;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub due: usize,
    pub refreshed: usize,
    /// Another instance held the lease (or the row moved on): theirs to do.
    pub skipped: usize,
    pub failed: usize,
}

/// Runs passes forever, `interval` apart.
pub async fn run(delegator: Arc<Delegator>) {
    let interval = delegator.settings.background.interval;
    loop {
        // A full batch that made progress may have more behind it; anything else waits for the next interval (a
        // batch of rows that keep failing must not turn into a busy loop).
        loop {
            let pass = delegator.refresh_due().await;
            if pass.due < BATCH as usize || pass.refreshed == 0 {
                break;
            }
        }
        tokio::time::sleep(interval).await;
    }
}

impl Delegator {
    /// One pass: refreshes what is due now, at most `background.concurrency` at once.
    pub async fn refresh_due(self: &Arc<Self>) -> Pass {
        let now = now_ms();
        let window = self.settings.background.window.as_millis() as i64;
        let providers: Vec<String> = self.catalog.all().iter().map(|p| p.id.clone()).collect();
        let due = match repo::due(&self.db.pool, &providers, window, now, BATCH).await {
            Ok(due) => due,
            Err(e) => {
                tracing::error!("background refresh: cannot list due token sets: {e}");
                return Pass::default();
            }
        };
        let mut pass = Pass {
            due: due.len(),
            ..Pass::default()
        };
        let permits = Arc::new(Semaphore::new(self.settings.background.concurrency));
        let mut tasks = JoinSet::new();
        for row in due {
            let Some(provider) = self.catalog.get(&row.provider) else {
                continue;
            };
            let delegator = self.clone();
            let permits = permits.clone();
            tasks.spawn(async move {
                let _permit = permits.acquire_owned().await;
                refresh::shared(&delegator, row, provider, refresh::Wait::No).await
            });
        }
        while let Some(done) = tasks.join_next().await {
            match done {
                Ok(Ok(_)) => pass.refreshed += 1,
                Ok(Err(super::Unavailable::Busy)) => pass.skipped += 1,
                _ => pass.failed += 1,
            }
        }
        if pass.due > 0 {
            tracing::info!(?pass, "background refresh pass");
        }
        pass
    }
}
