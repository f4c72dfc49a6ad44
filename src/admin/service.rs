//! The admin area's rules: what an admin may ask for and how each answer is made. Every filter is checked before
//! it reaches SQL (`repo.rs`), and a filter that names nothing real is an error on its field, never an empty list
//! that looks like "nothing happened". Each function takes only what it uses (the database, the provider catalog, a
//! [`Revoker`]); `api.rs` and the export route hold the `AppState` and check that the caller is an admin.

use super::{
    AccountDetail, AccountList, AccountQuery, AccountSort, AccountSummary, AuditEntry, AuditList, AuditQuery,
    Dashboard, DeliveryDetail, LinkCount, PAGE_SIZE, REASON_MAX_LEN, TokenSetDetail, UserList, UserQuery, UserSummary,
    WebhookDetail, WebhookList,
    repo::{self, AccountFilter, AccountSummaryRow, EventFilter, EventRow, ExportRow},
};
use crate::{
    accounts::{
        AccountStatus, DisconnectOutcome,
        disconnect::{self, DisconnectError, DisconnectedBy, Revoker},
        label,
    },
    activity::service::summary as event_summary,
    audit::{AuditAction, Outcome},
    auth::{
        Role,
        repo::{UserRefError, find_by_external_id, find_by_id_or_email},
        service::{self as auth_service, AuthError, ChangedBy, User},
    },
    datetime::parse_time,
    db::{Db, now_ms},
    error::{AppError, FieldError},
    providers::Catalog,
    webhooks::{
        endpoints::{self, EndpointError, Replay, ReplayError},
        repo as webhooks_repo,
    },
};

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// A filter, cursor, reason or button the admin sent is not acceptable; the field says which.
    #[error(transparent)]
    Invalid(#[from] FieldError),
    /// What was asked for ("linked account", "user", "webhook endpoint") does not exist (any more).
    #[error("no such {0}")]
    NotFound(&'static str),
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

impl From<AdminError> for AppError {
    fn from(err: AdminError) -> Self {
        match err {
            AdminError::Invalid(field) => field.into(),
            AdminError::NotFound(what) => AppError::NotFound { what: what.into() },
            AdminError::Auth(err) => err.into(),
            other @ AdminError::Database(_) => AppError::internal(other),
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    FieldError::new(field, message).into()
}

/// A filter's value if it has one: blank form fields arrive as empty strings and mean "not filtered".
fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

// --- the dashboard ---------------------------------------------------------------------------------------------

/// How many links needing attention the dashboard lists (the accounts list has them all).
const ATTENTION_SHOWN: i64 = 10;
const DAY_MS: i64 = 86_400_000;

/// Links by provider and status, the last day's refreshes and calls, links needing attention.
pub async fn dashboard(db: &Db, catalog: &Catalog) -> Result<Dashboard, AdminError> {
    let pool = &db.pool;
    let now = now_ms();
    let counts = crate::accounts::repo::count_by_provider_and_status(pool).await?;
    let mut links: Vec<LinkCount> = counts
        .into_iter()
        .map(|(provider, status, count)| LinkCount {
            provider_name: catalog.display_name(&provider),
            provider_id: provider,
            status: AccountStatus::parse(&status).unwrap_or(AccountStatus::Error),
            count,
        })
        .collect();
    links.sort_by(|a, b| (&a.provider_name, a.status.as_str()).cmp(&(&b.provider_name, b.status.as_str())));

    let (users, disabled_users) = repo::count_users(pool).await?;

    let (mut refreshes, mut refresh_failures, mut calls, mut call_failures) = (0, 0, 0, 0);
    for (action, outcome, n) in repo::count_recent_events(pool, now - DAY_MS).await? {
        match action.as_str() {
            "token_refreshed" => refreshes += n,
            "provider_unavailable" | "account_status_changed" => refresh_failures += n,
            _ if outcome == "success" => calls += n,
            _ => {
                calls += n;
                call_failures += n;
            }
        }
    }

    let attention_total = links
        .iter()
        .filter(|l| l.status != AccountStatus::Active)
        .map(|l| l.count)
        .sum();
    let attention = repo::accounts_needing_attention(pool, ATTENTION_SHOWN)
        .await?
        .into_iter()
        .map(|row| summary(catalog, row))
        .collect();
    Ok(Dashboard {
        links,
        users,
        disabled_users,
        refreshes,
        refresh_failures,
        calls,
        call_failures,
        attention,
        attention_total,
        now,
    })
}

// --- linked accounts -------------------------------------------------------------------------------------------

/// A cursor of the accounts list: the last row's sort key and id. Opaque to the browser, checked when it comes back.
fn account_cursor(key: i64, id: &str) -> String {
    format!("{key}.{id}")
}

fn parse_account_cursor(value: &str) -> Result<(i64, String), AdminError> {
    value
        .split_once('.')
        .and_then(|(key, id)| Some((key.parse().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| invalid("after", "This page link is not valid. Start again from the first page."))
}

/// Every linked account across users: filtered, sorted and keyset-paged as `query` says.
pub async fn list_accounts(db: &Db, catalog: &Catalog, query: AccountQuery) -> Result<AccountList, AdminError> {
    let sort = match non_empty(&query.sort) {
        None => AccountSort::default(),
        Some(s) => AccountSort::parse(s).ok_or_else(|| invalid("sort", "Choose an order from the list."))?,
    };
    let status = non_empty(&query.status)
        .map(|s| AccountStatus::parse(s).ok_or_else(|| invalid("status", "Choose a status from the list.")))
        .transpose()?;
    let user_id = match non_empty(&query.user) {
        Some(user) => Some(resolve_user(db, "user", user).await?),
        None => None,
    };
    let after = non_empty(&query.after).map(parse_account_cursor).transpose()?;
    let filter = AccountFilter {
        provider: non_empty(&query.provider),
        status,
        user_id,
        identity: non_empty(&query.identity),
        sort,
        after,
    };
    let mut rows = repo::accounts(&db.pool, &filter, PAGE_SIZE as i64 + 1).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let last_key = rows.last().map(|row| row.sort_key);
    let summaries: Vec<AccountSummary> = rows.into_iter().map(|row| summary(catalog, row.account)).collect();
    let next = match (more, last_key, summaries.last()) {
        (true, Some(key), Some(last)) => Some(account_cursor(key, &last.id)),
        _ => None,
    };
    Ok(AccountList {
        query,
        sort,
        rows: summaries,
        next,
        providers: crate::accounts::view::provider_views(catalog),
        now: now_ms(),
    })
}

fn summary(catalog: &Catalog, row: AccountSummaryRow) -> AccountSummary {
    let label = label(&row.username, &row.email, &row.display_name, &row.subject).to_owned();
    AccountSummary {
        id: row.id,
        user_id: row.user_id,
        user_email: row.user_email,
        user_external_id: row.user_external_id,
        provider_name: catalog.display_name(&row.provider),
        provider_id: row.provider,
        label,
        subject: row.subject,
        status: AccountStatus::parse(&row.status).unwrap_or(AccountStatus::Error),
        status_reason: row.status_reason,
        created_at: row.created_at,
        last_used_at: row.last_used_at,
        expires_at: row.token_expires_at,
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// One account with its user, its token sets' metadata and its latest history.
pub async fn account_detail(db: &Db, catalog: &Catalog, account_id: &str) -> Result<AccountDetail, AdminError> {
    let row = repo::account(&db.pool, account_id)
        .await?
        .ok_or(AdminError::NotFound("linked account"))?;
    let token_sets = repo::token_sets(&db.pool, account_id)
        .await?
        .into_iter()
        .map(|s| TokenSetDetail {
            resource_server: s.resource_server,
            scopes: words(&s.scopes),
            token_type: s.token_type,
            issued_at: s.issued_at,
            expires_at: s.expires_at,
            has_refresh_token: s.has_refresh_token,
            version: s.version,
            failures: s.failures,
            cooldown_until: s.cooldown_until,
            last_error: s.last_error,
            updated_at: s.updated_at,
        })
        .collect();
    let history = repo::account_events(&db.pool, account_id, PAGE_SIZE as i64)
        .await?
        .into_iter()
        .map(|e| entry(catalog, e))
        .collect();
    let (username, email, display_name) = (
        row.account.username.clone(),
        row.account.email.clone(),
        row.account.display_name.clone(),
    );
    Ok(AccountDetail {
        account: summary(catalog, row.account),
        user_display_name: row.user_display_name,
        user_disabled: row.user_disabled_at.is_some(),
        username,
        email,
        display_name,
        last_refreshed_at: row.last_refreshed_at,
        consent_scopes: words(&row.consent_scopes.unwrap_or_default()),
        token_sets,
        history,
        now: now_ms(),
    })
}

/// Checks an admin's reason for a forced disconnect: required, one paragraph of plain text.
pub fn validate_reason(raw: &str) -> Result<String, FieldError> {
    let reason = raw.trim();
    if reason.is_empty() {
        return Err(FieldError::new(
            "reason",
            "Give a reason: the user reads it in their activity.",
        ));
    }
    if reason.chars().count() > REASON_MAX_LEN {
        return Err(FieldError::new(
            "reason",
            format!("A reason has at most {REASON_MAX_LEN} characters."),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(FieldError::new("reason", "Write the reason on one line."));
    }
    Ok(reason.to_owned())
}

/// Disconnects any user's account for admin `admin_id`: the same path as the user's own disconnect (tokens
/// revoked at the provider, queued when it fails), audited with the admin as actor and their reason. Returns the
/// account's owner with the outcome.
pub async fn force_disconnect(
    revoker: Revoker<'_>,
    admin_id: i64,
    account_id: &str,
    reason: &str,
    request_id: Option<&str>,
) -> Result<(i64, DisconnectOutcome), AdminError> {
    let reason = validate_reason(reason)?;
    let account = crate::accounts::repo::find(&revoker.db.pool, account_id)
        .await?
        .ok_or(AdminError::NotFound("linked account"))?;
    let by = DisconnectedBy::Admin {
        user_id: admin_id,
        reason: &reason,
    };
    match disconnect::disconnect(revoker, account.user_id, account_id, by, request_id).await {
        Ok(outcome) => Ok((account.user_id, outcome)),
        Err(DisconnectError::NotFound) => Err(AdminError::NotFound("linked account")),
        Err(DisconnectError::Database(e)) => Err(e.into()),
    }
}

// --- users -----------------------------------------------------------------------------------------------------

/// The user a filter names (`field` says which filter): a numeric id, an email, or a platform user's external id
/// (tried last, exactly as typed). One that names nobody is an error that says so, rather than an empty list that
/// looks like "no events".
pub async fn resolve_user(db: &Db, field: &str, value: &str) -> Result<i64, AdminError> {
    let value = value.trim();
    let found = match find_by_id_or_email(&db.pool, value).await {
        Ok(found) => found,
        Err(UserRefError::NotARef) => None,
        Err(UserRefError::Db(e)) => return Err(e.into()),
    };
    let found = match found {
        Some(user) => Some(user),
        None => find_by_external_id(&db.pool, value).await?,
    };
    found.map(|user| user.id).ok_or_else(|| {
        invalid(
            field,
            format!("No user is “{value}” (an id, an email or an external id)."),
        )
    })
}

/// One page of users by id, optionally those whose email or name starts with `q` (admin `me` is told which row is
/// theirs).
pub async fn list_users(db: &Db, me: i64, query: UserQuery) -> Result<UserList, AdminError> {
    let mut rows = repo::users(&db.pool, non_empty(&query.q), query.after, PAGE_SIZE as i64 + 1).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let users: Vec<UserSummary> = rows
        .into_iter()
        .map(|row| UserSummary {
            id: row.id,
            email: row.email,
            external_id: row.external_id,
            display_name: row.display_name,
            role: Role::parse(&row.role).unwrap_or(Role::User),
            disabled: row.disabled_at.is_some(),
            created_at: row.created_at,
            accounts: row.accounts,
        })
        .collect();
    let next = more.then(|| users.last().map(|u| u.id)).flatten();
    Ok(UserList {
        query,
        users,
        next,
        me,
        now: now_ms(),
    })
}

/// Disables or enables `user_id` for admin `me`; an admin cannot disable themselves (nobody could enable them
/// again from here).
pub async fn set_user_disabled(
    db: &Db,
    me: i64,
    user_id: i64,
    disabled: bool,
    request_id: Option<&str>,
) -> Result<User, AdminError> {
    if disabled && user_id == me {
        return Err(invalid(
            "user",
            "You cannot disable your own account: another admin (or `onbehalf user disable`) can.",
        ));
    }
    let by = ChangedBy {
        actor_user_id: Some(me),
        request_id,
    };
    match auth_service::set_disabled(db, user_id, disabled, by).await {
        Err(AuthError::UnknownUser(_)) => Err(AdminError::NotFound("user")),
        other => Ok(other?),
    }
}

// --- the audit log ---------------------------------------------------------------------------------------------
//
// The whole log for admins: filtered by actor, subject, action, provider, outcome and time, newest first (by time,
// then id), keyset-paged; and the same filtered set, in the same order, for the export.

/// A query's filters (not its cursor), checked, in the order the page's fields are read.
pub async fn audit_filter(db: &Db, query: &AuditQuery) -> Result<EventFilter, AdminError> {
    let mut filter = EventFilter::default();
    if let Some(actor) = non_empty(&query.actor) {
        filter.actor_user_id = Some(resolve_user(db, "actor", actor).await?);
    }
    if let Some(subject) = non_empty(&query.subject) {
        filter.subject_user_id = Some(resolve_user(db, "subject", subject).await?);
    }
    if let Some(action) = non_empty(&query.action) {
        let action = AuditAction::parse(action).ok_or_else(|| invalid("action", "Choose an action from the list."))?;
        filter.action = Some(action);
    }
    filter.provider = non_empty(&query.provider).map(str::to_owned);
    if let Some(outcome) = non_empty(&query.outcome) {
        let outcome = Outcome::parse(outcome).ok_or_else(|| invalid("outcome", "Choose a result from the list."))?;
        filter.outcome = Some(outcome);
    }
    let time = |field: &str, value: &str| {
        parse_time(value).ok_or_else(|| {
            invalid(
                field,
                format!("“{value}” is not a time: write 2026-11-22 or 2026-11-22T14:05 (UTC)."),
            )
        })
    };
    let from = non_empty(&query.from).map(|v| time("from", v)).transpose()?;
    let to = non_empty(&query.to).map(|v| time("to", v)).transpose()?;
    if let (Some((from, _)), Some((to, span))) = (from, to)
        && from >= to + span
    {
        return Err(invalid("to", "The end of the time range is before its start."));
    }
    filter.from = from.map(|(from, _)| from);
    // Inclusive of the day or minute written.
    filter.until = to.map(|(to, span)| to + span);
    Ok(filter)
}

fn audit_cursor(at: i64, id: i64) -> String {
    format!("{at}.{id}")
}

fn parse_audit_cursor(value: &str) -> Result<(i64, i64), AdminError> {
    value
        .split_once('.')
        .and_then(|(at, id)| Some((at.parse().ok()?, id.parse().ok()?)))
        .ok_or_else(|| {
            invalid(
                "before",
                "This page link is not valid. Start again from the newest events.",
            )
        })
}

/// One page of the audit log, as `query` filters it, older than its cursor.
pub async fn list_audit_events(db: &Db, catalog: &Catalog, query: AuditQuery) -> Result<AuditList, AdminError> {
    let before = non_empty(&query.before).map(parse_audit_cursor).transpose()?;
    let filter = audit_filter(db, &query).await?;
    let mut rows = repo::events(&db.pool, &filter, before, PAGE_SIZE as i64 + 1).await?;
    let more = rows.len() > PAGE_SIZE;
    rows.truncate(PAGE_SIZE);
    let entries: Vec<AuditEntry> = rows.into_iter().map(|row| entry(catalog, row)).collect();
    let older = more.then(|| entries.last().map(|e| audit_cursor(e.at, e.id))).flatten();
    Ok(AuditList {
        query,
        entries,
        older,
        providers: crate::accounts::view::provider_views(catalog),
        now: now_ms(),
    })
}

fn entry(catalog: &Catalog, row: EventRow) -> AuditEntry {
    let EventRow {
        event,
        username,
        email,
        display_name,
        subject,
    } = row;
    let details: serde_json::Value = serde_json::from_str(&event.details).unwrap_or_default();
    // The account as it is now; once disconnected, as its events named it; else its id.
    let account = match &subject {
        Some(subject) => label(&username, &email, &display_name, subject).to_owned(),
        None => details["label"]
            .as_str()
            .map(str::to_owned)
            .or_else(|| event.account_id.clone())
            .unwrap_or_else(|| "an account".to_owned()),
    };
    let provider_name = event.provider.as_deref().map(|p| catalog.display_name(p));
    let call = (event.action == "delegated_call").then(|| {
        let text = |k: &str| details[k].as_str().unwrap_or_default();
        let answer = match details["status"].as_u64() {
            Some(status) => format!("HTTP {status}"),
            None => format!("no answer ({})", text("error")),
        };
        format!(
            "{} {}{} · {answer} · {} ms",
            text("method"),
            text("host"),
            text("path"),
            details["latency_ms"].as_f64().unwrap_or(0.0).round()
        )
    });
    AuditEntry {
        call,
        id: event.id,
        at: event.at,
        summary: event_summary(
            &event.action,
            &details,
            provider_name.as_deref().unwrap_or("the provider"),
            &account,
            event.resource_server.as_deref().unwrap_or("its service"),
        ),
        action: event.action,
        outcome: Outcome::parse(&event.outcome).unwrap_or(Outcome::Failure),
        actor_user_id: event.actor_user_id,
        actor: event.actor_email,
        subject_user_id: event.subject_user_id,
        subject: event.subject_email,
        provider: event.provider,
        account_id: event.account_id,
        resource_server: event.resource_server,
        request_id: event.request_id,
    }
}

/// Events per batch of an export.
const EXPORT_BATCH: i64 = 1000;

/// An export of the audit log under way: exactly the filtered set as of the moment it began (the same rows, in the
/// same order, as paging through the audit log page; `tests/it/admin.rs`), read in batches in the list's order,
/// each batch one short keyset query, so memory stays flat however many events match. How the moment is kept on
/// each database: [`repo::Reader`].
pub struct Export {
    reader: repo::Reader,
    filter: EventFilter,
    /// The last event read (at, id).
    after: Option<(i64, i64)>,
    done: bool,
}

impl Export {
    /// Starts an export of the events `filter` (from [`audit_filter`]) matches now.
    pub async fn begin(db: &Db, mut filter: EventFilter) -> Result<Self, AdminError> {
        let mut reader = repo::Reader::open(db).await?;
        let newest = reader.newest_event_id().await?;
        filter.max_id = Some(newest.unwrap_or(0));
        Ok(Self {
            reader,
            filter,
            after: None,
            done: newest.is_none(),
        })
    }

    /// The next batch; `None` when the export is complete.
    pub async fn next_batch(&mut self) -> Result<Option<Vec<ExportRow>>, AdminError> {
        if self.done {
            return Ok(None);
        }
        let rows = self.reader.events(&self.filter, self.after, EXPORT_BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = Some((last.at, last.id));
        self.done = (rows.len() as i64) < EXPORT_BATCH;
        Ok(Some(rows))
    }
}

// --- webhooks --------------------------------------------------------------------------------------------------
//
// Endpoints and their health, recent deliveries, one delivery's request and answers, and the buttons (send a test
// event, redeliver, replay since, disable / enable). The rules are `webhooks::endpoints`'; here the admin pages'
// reads and the mapping of its errors.

/// How many deliveries the endpoint page lists.
const RECENT_DELIVERIES: i64 = 50;

fn no_endpoint() -> AdminError {
    AdminError::NotFound("webhook endpoint")
}

impl From<EndpointError> for AdminError {
    fn from(err: EndpointError) -> Self {
        match err {
            EndpointError::NotFound(_) => no_endpoint(),
            EndpointError::Database(e) => e.into(),
            other => invalid("endpoint", other.to_string()),
        }
    }
}

pub async fn list_webhooks(db: &Db) -> Result<WebhookList, AdminError> {
    Ok(WebhookList {
        endpoints: endpoints::list(db).await?,
        now: now_ms(),
    })
}

/// One endpoint with its recent deliveries, and delivery `delivery` in full when it is one of this endpoint's.
pub async fn webhook_detail(db: &Db, endpoint_id: &str, delivery: Option<i64>) -> Result<WebhookDetail, AdminError> {
    let pool = &db.pool;
    let endpoint = webhooks_repo::endpoint(pool, endpoint_id)
        .await?
        .ok_or_else(no_endpoint)?;
    let deliveries = webhooks_repo::recent_deliveries(pool, endpoint_id, RECENT_DELIVERIES).await?;
    let delivery = match delivery {
        None => None,
        Some(id) => match webhooks_repo::delivery(pool, id).await? {
            // Only a delivery of this endpoint is shown on its page.
            Some((delivery, body)) if delivery.endpoint_id == endpoint.id => {
                let attempts = webhooks_repo::attempts(pool, id).await?;
                Some(DeliveryDetail {
                    request_headers: vec![
                        ("content-type".into(), "application/json".into()),
                        ("webhook-id".into(), delivery.event_id.clone()),
                        ("webhook-timestamp".into(), "(per attempt, below)".into()),
                        ("webhook-signature".into(), "v1,… (redacted)".into()),
                    ],
                    url: endpoint.url.clone(),
                    delivery,
                    body,
                    attempts,
                })
            }
            _ => None,
        },
    };
    Ok(WebhookDetail {
        endpoint: endpoint.view(),
        deliveries,
        delivery,
        now: now_ms(),
    })
}

/// What the buttons of the webhook pages do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookAction<'a> {
    Test,
    Disable,
    Enable,
    Redeliver {
        event: &'a str,
    },
    /// `since`: an HTML `datetime-local` value (taken as UTC) or Unix milliseconds.
    ReplaySince {
        since: &'a str,
    },
}

/// Runs one button for admin `admin_id`; returns the notice for the page (`test`, `test-waits`, `disabled`,
/// `enabled`, `queued-<n>`).
pub async fn run_webhook_action(
    db: &Db,
    admin_id: i64,
    endpoint_id: &str,
    action: WebhookAction<'_>,
    request_id: Option<&str>,
) -> Result<String, AdminError> {
    let by = endpoints::ChangedBy {
        actor_user_id: Some(admin_id),
        key: None,
        request_id,
    };
    let replayed = |result: Result<u64, ReplayError>| match result {
        Ok(n) => Ok(format!("queued-{n}")),
        Err(ReplayError::Endpoint(e)) => Err(e.into()),
        Err(e @ ReplayError::NoSuchEvent(_)) => Err(invalid("event", e.to_string())),
    };
    match action {
        WebhookAction::Test => {
            let (_, enabled) = endpoints::send_test(db, endpoint_id).await?;
            Ok(if enabled { "test" } else { "test-waits" }.into())
        }
        WebhookAction::Disable => {
            endpoints::set_disabled(db, endpoint_id, Some("disabled by an admin"), by).await?;
            Ok("disabled".into())
        }
        WebhookAction::Enable => {
            endpoints::set_disabled(db, endpoint_id, None, by).await?;
            Ok("enabled".into())
        }
        WebhookAction::Redeliver { event } => {
            replayed(endpoints::replay(db, endpoint_id, Replay::Event(event), by).await)
        }
        WebhookAction::ReplaySince { since } => {
            let since = parse_since(since)?;
            replayed(endpoints::replay(db, endpoint_id, Replay::Since(since), by).await)
        }
    }
}

/// `2026-12-01T09:30` (a `datetime-local` field, UTC), with optional seconds, or Unix milliseconds.
fn parse_since(text: &str) -> Result<i64, AdminError> {
    use time::{PrimitiveDateTime, macros::format_description};
    let text = text.trim();
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(text, minutes)
        .or_else(|_| PrimitiveDateTime::parse(text, seconds))
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| invalid("since", "Give a date and time (UTC), e.g. 2026-12-01T09:30."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_form_time_in_utc_or_milliseconds() {
        assert_eq!(parse_since("2026-12-01T09:30").unwrap(), 1_796_117_400_000);
        assert_eq!(parse_since("2026-12-01T09:30:15").unwrap(), 1_796_117_415_000);
        assert_eq!(parse_since(" 1796117400000 ").unwrap(), 1_796_117_400_000);
        assert!(parse_since("yesterday").is_err());
    }

    #[test]
    fn a_reason_is_required_bounded_and_on_one_line() {
        assert_eq!(validate_reason("  compromised laptop ").unwrap(), "compromised laptop");
        for bad in ["", "   ", "two\nlines"] {
            assert_eq!(validate_reason(bad).unwrap_err().field, "reason", "{bad:?}");
        }
        assert!(validate_reason(&"x".repeat(REASON_MAX_LEN)).is_ok());
        assert!(validate_reason(&"x".repeat(REASON_MAX_LEN + 1)).is_err());
    }

    #[test]
    fn cursors_read_back_what_they_wrote_and_refuse_the_rest() {
        assert_eq!(
            parse_account_cursor(&account_cursor(-3, "a.b")).unwrap(),
            (-3, "a.b".to_owned())
        );
        assert_eq!(parse_audit_cursor(&audit_cursor(17, 4)).unwrap(), (17, 4));
        for bad in ["", "12", "x.abc", "12."] {
            assert!(parse_account_cursor(bad).is_err(), "{bad:?}");
        }
        for bad in ["", "12", "12.x", "x.12"] {
            assert!(parse_audit_cursor(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn admin_errors_keep_their_http_status() {
        let status = |err: AdminError| AppError::from(err).status();
        assert_eq!(status(invalid("sort", "Choose an order from the list.")), 400);
        assert_eq!(status(AdminError::NotFound("user")), 404);
        assert_eq!(status(AdminError::Database(sqlx::Error::RowNotFound)), 500);
        assert_eq!(status(AdminError::Auth(AuthError::Disabled)), 403);
        assert_eq!(
            AppError::from(AdminError::NotFound("linked account")).to_string(),
            "That linked account does not exist (any more)."
        );
    }
}
