//! A user's own history, for the activity page: their audit events, filtered by kind and provider, keyset-paged
//! newest first, each turned into a sentence. Only events whose subject is the user are ever read.

use sqlx::Row;

use super::{ActivityEntry, ActivityKind, ActivityList, ActivityQuery};
use crate::{
    accounts::{LinkError, label},
    audit::Outcome,
    datetime::format_time,
    db::{Db, now_ms},
    providers::Catalog,
};

pub const PAGE_SIZE: i64 = 25;

/// The SQL condition of a kind (static text: never built from the request).
fn condition(kind: ActivityKind) -> &'static str {
    match kind {
        ActivityKind::All => "TRUE",
        ActivityKind::Links => {
            "e.action IN ('account_linked', 'account_relinked', 'link_rejected', 'connect_session_created', \
                                 'connect_session_opened')"
        }
        ActivityKind::Refreshes => "e.action IN ('token_refreshed', 'provider_recovered')",
        ActivityKind::Problems => "e.outcome <> 'success'",
        ActivityKind::Actions => {
            "e.action IN ('delegated_call', 'service_accounts_listed', 'service_token_issued', \
                                 'service_action_run', 'service_events_read')"
        }
        ActivityKind::Disconnects => "e.action IN ('account_disconnected', 'tokens_revoked')",
    }
}

/// A page of the user's history; `allowed`, when set, are the only providers whose events it may show (a connect
/// session's key's).
pub async fn page(
    db: &Db,
    catalog: &Catalog,
    user_id: i64,
    query: &ActivityQuery,
    allowed: Option<&[String]>,
) -> Result<ActivityList, sqlx::Error> {
    let kind = query.kind.as_deref().and_then(ActivityKind::parse).unwrap_or_default();
    let provider = query
        .provider
        .as_deref()
        .filter(|p| catalog.get(p).is_some())
        .filter(|p| allowed.is_none_or(|list| list.iter().any(|a| a == p)))
        .map(str::to_owned);
    let providers = match &provider {
        Some(p) => Some(vec![p.clone()]),
        None => allowed.map(<[String]>::to_vec),
    };
    let (entries, older) = history(
        db,
        catalog,
        user_id,
        kind,
        providers.as_deref(),
        query.before,
        PAGE_SIZE,
    )
    .await?;
    let providers = crate::accounts::view::provider_views(catalog)
        .into_iter()
        .filter(|p| allowed.is_none_or(|list| list.contains(&p.id)))
        .collect();
    Ok(ActivityList {
        kind,
        provider,
        older,
        paged: query.before.is_some(),
        entries,
        providers,
        now: now_ms(),
    })
}

/// Up to `limit` of the user's events of `kind` below the id `before`, newest first, at `providers` (`None`: any;
/// events at no provider, such as a user being disabled, are always included), and the cursor of the next page.
/// The page and the service API (`GET /api/v1/users/{external_id}/events`) both read the history here.
pub async fn history(
    db: &Db,
    catalog: &Catalog,
    user_id: i64,
    kind: ActivityKind,
    providers: Option<&[String]>,
    before: Option<i64>,
    limit: i64,
) -> Result<(Vec<ActivityEntry>, Option<i64>), sqlx::Error> {
    // One placeholder per provider (from the catalog or an API key, never the request's text as SQL).
    let provider_condition = match providers {
        None => "TRUE".to_owned(),
        Some(list) => {
            let placeholders: Vec<String> = (0..list.len()).map(|i| format!("${}", i + 4)).collect();
            let list = if placeholders.is_empty() {
                "NULL".to_owned()
            } else {
                placeholders.join(", ")
            };
            format!("(e.provider IS NULL OR e.provider IN ({list}))")
        }
    };
    let sql = format!(
        "SELECT e.id, e.at, e.action, e.outcome, e.provider, e.account_id, e.resource_server, e.details, \
         a.username, a.email, a.display_name, a.subject, gone.details AS gone_details \
         FROM audit_events e LEFT JOIN linked_accounts a ON a.id = e.account_id AND a.user_id = e.subject_user_id \
         LEFT JOIN audit_events gone ON gone.account_id = e.account_id AND gone.action = 'account_disconnected' \
         AND gone.outcome = 'success' AND gone.subject_user_id = e.subject_user_id \
         WHERE e.subject_user_id = $1 AND (CAST($2 AS BIGINT) IS NULL OR e.id < $2) AND {} AND {provider_condition} \
         ORDER BY e.id DESC LIMIT $3",
        condition(kind)
    );
    let mut query = sqlx::query(&sql).bind(user_id).bind(before).bind(limit + 1);
    for provider in providers.unwrap_or_default() {
        query = query.bind(provider);
    }
    let rows = query.fetch_all(&db.pool).await?;
    let more = rows.len() as i64 > limit;
    let mut entries = Vec::with_capacity(rows.len());
    for row in rows.iter().take(limit as usize) {
        entries.push(entry(catalog, row)?);
    }
    let older = if more { entries.last().map(|e| e.id) } else { None };
    Ok((entries, older))
}

fn entry(catalog: &Catalog, row: &sqlx::any::AnyRow) -> Result<ActivityEntry, sqlx::Error> {
    let details: String = row.try_get("details")?;
    let details: serde_json::Value = serde_json::from_str(&details).unwrap_or_default();
    let provider_id: Option<String> = row.try_get("provider")?;
    let provider_name = provider_id.as_deref().map(|id| catalog.display_name(id));
    let subject: Option<String> = row.try_get("subject")?;
    // The account as it is now, else as it was named when it was disconnected.
    let account_label = match subject {
        Some(subject) => Some(
            label(
                &row.try_get("username")?,
                &row.try_get("email")?,
                &row.try_get("display_name")?,
                &subject,
            )
            .to_owned(),
        ),
        None => {
            let gone: Option<String> = row.try_get("gone_details")?;
            let gone: serde_json::Value = gone.and_then(|d| serde_json::from_str(&d).ok()).unwrap_or_default();
            gone["label"].as_str().map(str::to_owned)
        }
    };
    let action: String = row.try_get("action")?;
    let outcome: String = row.try_get("outcome")?;
    let resource_server: Option<String> = row.try_get("resource_server")?;
    let summary = summary(
        &action,
        &details,
        provider_name.as_deref().unwrap_or("the provider"),
        account_label.as_deref().unwrap_or("a disconnected account"),
        resource_server.as_deref().unwrap_or("its service"),
    );
    Ok(ActivityEntry {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        account_id: row.try_get("account_id")?,
        provider_id,
        outcome: Outcome::parse(&outcome).unwrap_or(Outcome::Failure),
        provider_name,
        account_label,
        summary,
        action,
    })
}

/// The event in one sentence. Provider-chosen text (reasons, errors) is shown as text, never as markup.
pub(crate) fn summary(
    action: &str,
    d: &serde_json::Value,
    provider: &str,
    account: &str,
    resource_server: &str,
) -> String {
    let text = |key: &str| d[key].as_str().unwrap_or("").to_owned();
    let number = |key: &str| d[key].as_u64().unwrap_or(0);
    match action {
        "account_linked" => format!("Linked {provider} account {account}."),
        "account_relinked" => match d["intent"].as_str() {
            Some("grant") => format!("Granted more access to {provider} account {account}."),
            Some("reconnect") => format!("Reconnected {provider} account {account}."),
            _ => format!("Renewed the link to {provider} account {account}."),
        },
        "link_rejected" => {
            let error = LinkError::from_code(&text("error")).unwrap_or(LinkError::Internal);
            format!("A link at {provider} did not happen: {}", error.message(provider))
        }
        "token_refreshed" => format!("Renewed the {resource_server} token of {account}."),
        "provider_recovered" => format!("{provider} answered again after failures; {account}'s token was renewed."),
        "provider_unavailable" => format!(
            "{provider} could not renew {account}'s {resource_server} token ({}); retried from {}.",
            text("error"),
            d["retry_at"].as_i64().map(format_time).unwrap_or_default()
        ),
        "account_status_changed" => format!("{account} now needs attention: {}", text("reason")),
        "token_undecryptable" => format!("A stored token of {account} could not be decrypted; reconnect it."),
        "delegated_call" => {
            let failed = match (d["status"].as_u64(), d["error"].as_str()) {
                (Some(200..=399), None) => None,
                (Some(status), _) => Some(format!("HTTP {status}")),
                (None, error) => Some(error.unwrap_or("no answer").replace('_', " ")),
            };
            // In words where the caller said what the call was about; the raw call stays in the details.
            if let Some(title) = d["about"]["action"].as_str() {
                return match failed {
                    None => format!("Ran “{title}” at {provider}."),
                    Some(why) => format!("Could not run “{title}” at {provider}: {why}."),
                };
            }
            if let Some(words) = crate::actions::globus::call_words(
                &text("method"),
                &text("path"),
                &d["about"],
                provider,
                failed.as_deref(),
            ) {
                return words;
            }
            let call = format!("{} {}{}", text("method"), text("host"), text("path"));
            match d["status"].as_u64() {
                Some(status) => format!(
                    "Called {call} for {account}: HTTP {status} in {} ms.",
                    d["latency_ms"].as_f64().unwrap_or(0.0).round()
                ),
                None => format!("Could not call {call} for {account}: {}.", text("error")),
            }
        }
        "account_disconnected" if d["forced"].as_bool() == Some(true) => format!(
            "An administrator disconnected {provider} account {account}: {}",
            text("reason")
        ),
        "account_disconnected" if d["error"].is_string() => format!(
            "The platform's backend (key {}) was refused disconnecting {provider} account {account}: {}.",
            text("key"),
            text("error").replace('_', " ")
        ),
        "account_disconnected" if d["key"].is_string() => format!(
            "The platform's backend (key {}) disconnected {provider} account {account}.",
            text("key")
        ),
        "account_disconnected" => format!("Disconnected {provider} account {account}."),
        "service_events_read" => format!(
            "The platform's backend (key {}) read your recent activity.",
            text("key")
        ),
        "connect_session_created" => format!(
            "The platform's backend (key {}) made a link to {} your linked accounts.",
            text("key"),
            if text("mode") == "manage" {
                "manage"
            } else {
                "connect one of"
            }
        ),
        "connect_session_opened" if d["error"].is_null() => format!(
            "You opened a link from the platform (key {}) to {} your linked accounts.",
            text("key"),
            if text("mode") == "manage" {
                "manage"
            } else {
                "connect one of"
            }
        ),
        "connect_session_opened" => format!(
            "A link from the platform (key {}) was refused: it was {}.",
            text("key"),
            text("error").replace('_', " ")
        ),
        "user_disabled" => format!(
            "The account {} was disabled: it cannot sign in, nothing is done for it.",
            text("email")
        ),
        "user_enabled" => format!("The account {} was enabled again.", text("email")),
        "tokens_revoked" if number("failed") > 0 => format!(
            "{provider} did not confirm revoking {} token(s) of {account}: {}",
            number("failed"),
            text("error")
        ),
        "tokens_revoked" if d["not_offered"].as_bool() == Some(true) => {
            format!("{provider} offers no revocation; remove this site's access there.")
        }
        "tokens_revoked" => format!("{provider} revoked {} token(s) of {account}.", number("revoked")),
        "service_accounts_listed" => format!(
            "The platform's backend (key {}) read your linked accounts.",
            text("key")
        ),
        "service_token_issued" if d["error"].is_null() => format!(
            "The platform's backend (key {}) obtained {account}'s {resource_server} access.",
            text("key")
        ),
        "service_action_run" if d["error"].is_null() => format!(
            "The platform's backend (key {}) ran {} with {account}.",
            text("key"),
            text("action")
        ),
        "service_action_run" => format!(
            "The platform's backend (key {}) tried {} with {account}: {}.",
            text("key"),
            text("action"),
            text("error").replace('_', " ")
        ),
        "service_token_issued" => format!(
            "The platform's backend (key {}) asked for {account}'s {resource_server} access: {}.",
            text("key"),
            text("error").replace('_', " ")
        ),
        other => other.replace('_', " "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_sentences() {
        let call = serde_json::json!({"method": "GET", "host": "api.example.org", "path": "/v1/things",
                                      "status": 200, "latency_ms": 41.6});
        assert_eq!(
            summary("delegated_call", &call, "Example", "ada", "api"),
            "Called GET api.example.org/v1/things for ada: HTTP 200 in 42 ms."
        );
        let search = serde_json::json!({"method": "GET", "host": "127.0.0.1", "path": "/endpoint_search",
                                        "status": 200});
        assert_eq!(
            summary("delegated_call", &search, "Demo Globus", "ada", "transfer"),
            "Listed your collections at Demo Globus."
        );
        let started = serde_json::json!({"method": "POST", "path": "/transfer", "status": 202,
            "about": {"label": "newcomer copy", "task_id": "8f2c1d4e-0000-4000-8000-000000000000"}});
        assert_eq!(
            summary("delegated_call", &started, "Demo Globus", "ada", "transfer"),
            "Started transfer “newcomer copy” (task 8f2c1d4e) at Demo Globus."
        );
        let checked = serde_json::json!({"method": "GET", "path": "/task/{task_id}", "status": 200,
            "about": {"label": "newcomer copy", "task_id": "8f2c1d4e-0000"}});
        assert_eq!(
            summary("delegated_call", &checked, "Demo Globus", "ada", "transfer"),
            "Checked transfer “newcomer copy” at Demo Globus."
        );
        let refused = serde_json::json!({"method": "GET", "path": "/operation/endpoint/{endpoint_id}/ls",
                                         "status": 403});
        assert_eq!(
            summary("delegated_call", &refused, "Demo Globus", "ada", "transfer"),
            "Could not list a folder at Demo Globus: HTTP 403."
        );
        let configured = serde_json::json!({"method": "GET", "path": "/user/repos", "status": 200,
                                            "about": {"action": "My repositories"}});
        assert_eq!(
            summary("delegated_call", &configured, "GitHub", "ada", "api.github.com"),
            "Ran “My repositories” at GitHub."
        );
        let revoked = serde_json::json!({"revoked": 4, "failed": 0, "not_offered": false});
        assert_eq!(
            summary("tokens_revoked", &revoked, "Globus", "ada", "x"),
            "Globus revoked 4 token(s) of ada."
        );
        let grant = serde_json::json!({"intent": "grant"});
        assert_eq!(
            summary("account_relinked", &grant, "Globus", "ada", "x"),
            "Granted more access to Globus account ada."
        );
        assert_eq!(summary("something_new", &grant, "G", "a", "x"), "something new");
    }

    #[test]
    fn every_kind_round_trips() {
        for kind in ActivityKind::ALL {
            assert_eq!(ActivityKind::parse(kind.as_str()), Some(kind));
            assert!(!condition(kind).is_empty());
        }
    }
}
