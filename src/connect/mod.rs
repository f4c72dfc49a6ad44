//! Connect sessions: how a platform's users link accounts without a password of ours.
//!
//! The platform's backend, which knows who its user is, asks the service API for a single-use link
//! (`POST /api/v1/connect_sessions`, `service`); the user's browser opens it (`routes`) and gets a session of that
//! user that can reach only their linked-accounts pages, for the key's providers, for at most an hour (`gate`), and
//! that ends when the browser goes back to the platform (`return_to`, which must start with one of the key's URL
//! prefixes: no open redirect). In `connect` mode the browser goes straight to the provider's consent and back to the
//! platform with the result in the query ([`ConnectResult`]); in `manage` mode it shows the linked-accounts page.
//!
//! This file holds what both the server and the browser need.

pub mod api;

#[cfg(feature = "ssr")]
pub mod gate;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod routes;
#[cfg(feature = "ssr")]
pub mod service;

use serde::{Deserialize, Serialize};

use crate::accounts::ProviderView;

/// What a connect link opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConnectMode {
    /// Link an account (or reconnect one) and go back to the platform with the result.
    Connect,
    /// The user's linked-accounts page, with a way back to the platform.
    Manage,
}

impl ConnectMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectMode::Connect => "connect",
            ConnectMode::Manage => "manage",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [ConnectMode::Connect, ConnectMode::Manage]
            .into_iter()
            .find(|m| m.as_str() == value)
    }
}

/// What a browser session opened from a connect link may do; kept in the session (server side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectGrant {
    pub mode: ConnectMode,
    /// What the pages call the platform ("Back to …").
    pub platform_name: String,
    /// The platform's URL the session ends at (checked against the key's prefixes when the link was made).
    pub return_to: String,
    pub api_key_id: i64,
    /// The providers the key may use; `None`: every provider.
    pub providers: Option<Vec<String>>,
    /// Unix ms at which the session ends, however it is used.
    pub ends_at: i64,
}

impl ConnectGrant {
    pub fn allows(&self, provider: &str) -> bool {
        self.providers
            .as_ref()
            .is_none_or(|list| list.iter().any(|p| p == provider))
    }

    pub fn view(&self) -> ConnectView {
        ConnectView {
            platform_name: self.platform_name.clone(),
            mode: self.mode,
        }
    }
}

/// What the pages show of a connect session: whose platform it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectView {
    pub platform_name: String,
    pub mode: ConnectMode,
}

/// The chooser of a `connect` link that names no provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectChoices {
    pub platform_name: String,
    pub providers: Vec<ProviderView>,
}

/// How a `connect` session ended, told to the platform in `return_to`'s query: `result=linked&account=<id>`,
/// `result=denied&reason=access_denied`, or `result=failed&reason=<code>` where the code is one of the closed set of
/// [`crate::accounts::LinkError`] codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectResult {
    Linked { account_id: String },
    Denied,
    Failed { reason: &'static str },
}

impl ConnectResult {
    /// `return_to` with the result added to its query.
    pub fn apply(&self, return_to: &str) -> String {
        let separator = if return_to.contains('?') { '&' } else { '?' };
        let query = match self {
            ConnectResult::Linked { account_id } => format!("result=linked&account={account_id}"),
            ConnectResult::Denied => "result=denied&reason=access_denied".to_owned(),
            ConnectResult::Failed { reason } => format!("result=failed&reason={reason}"),
        };
        // A fragment stays last, where it belongs.
        match return_to.split_once('#') {
            Some((base, fragment)) => {
                let separator = if base.contains('?') { '&' } else { '?' };
                format!("{base}{separator}{query}#{fragment}")
            }
            None => format!("{return_to}{separator}{query}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_go_into_the_query_before_any_fragment() {
        let linked = ConnectResult::Linked {
            account_id: "a1".into(),
        };
        assert_eq!(
            linked.apply("https://p.example/t"),
            "https://p.example/t?result=linked&account=a1"
        );
        assert_eq!(
            ConnectResult::Denied.apply("https://p.example/t?x=1"),
            "https://p.example/t?x=1&result=denied&reason=access_denied"
        );
        assert_eq!(
            ConnectResult::Failed {
                reason: "state_expired"
            }
            .apply("https://p.example/t#top"),
            "https://p.example/t?result=failed&reason=state_expired#top"
        );
    }
}
