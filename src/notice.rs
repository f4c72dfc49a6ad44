//! What a page says after a plain-form post brought the browser back to it (compiled for both targets).
//!
//! The server function writes a [`Notice`] into the redirect's query ([`Notice::to_query`]); the page reads it back
//! ([`Notice::from_query`]) and shows [`Notice::message`]. Only provider ids, field names, outcome codes and counts
//! travel in the URL, never text: a crafted link can make a page say one of these sentences and nothing else.
//! With JavaScript, the same server functions answer in place, and the islands word their answers with the same
//! functions (`DisconnectOutcome::message`, `actions::field_rule`).

use crate::{
    accounts::{DisconnectOutcome, Reader, retry_message},
    actions::{ActionProblem, field_rule},
    query::encode,
};

/// An outcome carried back to a page in its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An account was disconnected: its provider's id and how the revocation of its tokens went.
    Disconnected {
        provider: String,
        revoked: u32,
        failed: u32,
        not_offered: bool,
    },
    /// The user retried the revocations that had failed.
    RevocationsRetried { revoked: u32, failed: u32 },
    /// A transfer form's `field` broke its rule; nothing was submitted.
    TransferInvalid { field: String },
    /// A transfer could not be submitted, and nothing was recorded to retry.
    TransferNotSubmitted,
    /// What cancelling a task did.
    Cancel(CancelOutcome),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    /// The task had ended before the cancel reached it.
    AlreadyEnded,
    NotFound,
    /// The account needs reconnecting or a consent first (the page shows which, with its button).
    NeedsAccess,
    Failed,
}

impl CancelOutcome {
    const ALL: [CancelOutcome; 5] = [
        CancelOutcome::Cancelled,
        CancelOutcome::AlreadyEnded,
        CancelOutcome::NotFound,
        CancelOutcome::NeedsAccess,
        CancelOutcome::Failed,
    ];

    fn code(self) -> &'static str {
        match self {
            CancelOutcome::Cancelled => "cancelled",
            CancelOutcome::AlreadyEnded => "finished",
            CancelOutcome::NotFound => "not_found",
            CancelOutcome::NeedsAccess => "needs_access",
            CancelOutcome::Failed => "failed",
        }
    }
}

impl Notice {
    /// The query (without `?`) that carries this notice.
    pub fn to_query(&self) -> String {
        match self {
            Notice::Disconnected {
                provider,
                revoked,
                failed,
                not_offered,
            } => format!(
                "disconnected={}&revoked={revoked}&failed={failed}{}",
                encode(provider),
                if *not_offered { "&not_offered=1" } else { "" }
            ),
            Notice::RevocationsRetried { revoked, failed } => format!("retried=1&revoked={revoked}&failed={failed}"),
            Notice::TransferInvalid { field } => format!("invalid={}", encode(field)),
            Notice::TransferNotSubmitted => "not_submitted=1".to_owned(),
            Notice::Cancel(outcome) => format!("cancel={}", outcome.code()),
        }
    }

    /// The notice a query carries, read through `get` (a page's query map). Values that are not one of ours (a field
    /// no form has, an outcome code we never write) carry none.
    pub fn from_query(get: impl Fn(&str) -> Option<String>) -> Option<Notice> {
        let count = |name: &str| get(name).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
        if let Some(provider) = get("disconnected") {
            return Some(Notice::Disconnected {
                provider,
                revoked: count("revoked"),
                failed: count("failed"),
                not_offered: get("not_offered").is_some(),
            });
        }
        if get("retried").is_some() {
            return Some(Notice::RevocationsRetried {
                revoked: count("revoked"),
                failed: count("failed"),
            });
        }
        if let Some(field) = get("invalid").filter(|f| field_rule(f).is_some()) {
            return Some(Notice::TransferInvalid { field });
        }
        if get("not_submitted").is_some() {
            return Some(Notice::TransferNotSubmitted);
        }
        let cancel = get("cancel")?;
        CancelOutcome::ALL
            .into_iter()
            .find(|o| o.code() == cancel)
            .map(Notice::Cancel)
    }

    /// What `reader` reads, and whether it is good news. `provider_name` turns a provider's id into its name.
    pub fn message(&self, reader: Reader, provider_name: impl Fn(&str) -> String) -> (bool, String) {
        match self {
            Notice::Disconnected {
                provider,
                revoked,
                failed,
                not_offered,
            } => DisconnectOutcome {
                provider_id: provider.clone(),
                provider_name: provider_name(provider),
                // The URL names no account: the sentence says "Disconnected." rather than which one.
                account_label: String::new(),
                revoked: *revoked,
                failed: *failed,
                not_offered: *not_offered,
                error: None,
            }
            .message(reader),
            Notice::RevocationsRetried { revoked, failed } => retry_message(*revoked, *failed),
            Notice::TransferInvalid { field } => (false, field_rule(field).unwrap_or_default().to_owned()),
            Notice::TransferNotSubmitted => (false, "The transfer could not be submitted. Try again.".to_owned()),
            Notice::Cancel(outcome) => match outcome {
                CancelOutcome::Cancelled => (true, "Transfer cancelled.".to_owned()),
                CancelOutcome::AlreadyEnded => (
                    true,
                    "That transfer had already finished, so there was nothing to cancel.".to_owned(),
                ),
                CancelOutcome::NotFound => (false, "No such transfer: it may belong to another account.".to_owned()),
                CancelOutcome::NeedsAccess => (
                    false,
                    "The transfer was not cancelled: Globus needs you to reconnect this account or grant access \
                     first (see below), then cancel again."
                        .to_owned(),
                ),
                CancelOutcome::Failed => (false, "The transfer could not be cancelled. Try again.".to_owned()),
            },
        }
    }
}

impl From<&DisconnectOutcome> for Notice {
    /// A disconnect's outcome, in ids and counts only.
    fn from(outcome: &DisconnectOutcome) -> Self {
        Notice::Disconnected {
            provider: outcome.provider_id.clone(),
            revoked: outcome.revoked,
            failed: outcome.failed,
            not_offered: outcome.not_offered,
        }
    }
}

/// The Actions page a transfer form comes back to with `problem`: the recorded submission (with Retry and the fix),
/// else the form with what was wrong. The plain-form redirect and the island agree on it.
pub fn transfer_page(problem: &ActionProblem, account: &str) -> String {
    let account = encode(account);
    match (problem.pending_transfer(), problem) {
        (Some(row), _) => format!("/actions?account={account}&transfer={}#transfer", encode(row)),
        // Nothing was recorded: the field's name, never its text, goes back in the URL.
        (None, ActionProblem::Invalid { field, .. }) => {
            let notice = Notice::TransferInvalid { field: field.clone() };
            format!("/actions?account={account}&{}#transfer", notice.to_query())
        }
        (None, _) => format!(
            "/actions?account={account}&{}#transfer",
            Notice::TransferNotSubmitted.to_query()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(query: &str) -> Option<Notice> {
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        Notice::from_query(|name| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    #[test]
    fn every_notice_comes_back_from_its_query() {
        let notices = [
            Notice::Disconnected {
                provider: "demo".into(),
                revoked: 4,
                failed: 0,
                not_offered: false,
            },
            Notice::Disconnected {
                provider: "orcid-sandbox".into(),
                revoked: 0,
                failed: 2,
                not_offered: true,
            },
            Notice::RevocationsRetried { revoked: 1, failed: 3 },
            Notice::TransferInvalid {
                field: "source_path".into(),
            },
            Notice::TransferNotSubmitted,
            Notice::Cancel(CancelOutcome::Cancelled),
            Notice::Cancel(CancelOutcome::AlreadyEnded),
            Notice::Cancel(CancelOutcome::NotFound),
            Notice::Cancel(CancelOutcome::NeedsAccess),
            Notice::Cancel(CancelOutcome::Failed),
        ];
        for notice in notices {
            assert_eq!(
                parsed(&notice.to_query()),
                Some(notice.clone()),
                "{}",
                notice.to_query()
            );
            let (_, message) = notice.message(Reader::Owner, |id| format!("Provider {id}"));
            assert!(message.ends_with('.'), "{message}");
        }
    }

    #[test]
    fn a_query_we_never_write_says_nothing() {
        for query in ["", "invalid=password", "cancel=exploded", "cancel=", "linked=x"] {
            assert_eq!(parsed(query), None, "{query}");
        }
        // Counts that are not numbers count as none; text in the URL never reaches the message.
        let notice = parsed("disconnected=demo&revoked=lots&failed=<b>").unwrap();
        let (ok, message) = notice.message(Reader::Owner, |_| "Demo".into());
        assert!(ok && message.contains("revoked 0 tokens"), "{message}");
    }

    #[test]
    fn admins_read_about_the_users_account() {
        let notice = parsed("disconnected=demo&revoked=0&failed=0&not_offered=1").unwrap();
        let (_, owner) = notice.message(Reader::Owner, |_| "Demo".into());
        let (_, admin) = notice.message(Reader::Admin, |_| "Demo".into());
        assert!(owner.contains("your Demo account settings"), "{owner}");
        assert!(admin.contains("the user's Demo account settings"), "{admin}");
    }
}
