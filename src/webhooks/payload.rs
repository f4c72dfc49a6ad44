//! The body of a webhook: the event, the user it concerns and the account as it is after the change — the same
//! shapes the service API answers with (`UserRef`, `LinkedAccountView`), never a token. Read inside the transaction
//! of the change, so the body shows exactly the state that change committed.

use serde::Serialize;
use sqlx::AnyConnection;

use crate::{
    accounts::{LinkedAccountView, repo as accounts_repo, view::view as account_view},
    auth::{self, UserRef},
    providers::Catalog,
};

/// What every delivery of an event sends, byte for byte. In the OpenAPI document as `WebhookEvent`, with one schema
/// per type (`AccountNeedsReconnectEvent`, …) naming the `data` fields that type always carries.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEvent)]
pub struct Event {
    /// Also the `webhook-id` header: the same on every retry and redelivery, for the receiver's de-duplication.
    pub id: String,
    /// The event type (`account.needs_reconnect`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// When the change committed, Unix milliseconds (like every time in the service API).
    pub occurred_at: i64,
    pub data: EventData,
}

/// What the event is about. `user` is always there; `account` for `account.*` events.
#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEventData)]
pub struct EventData {
    /// Absent only in `webhook.test`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<UserRef>,
    /// The account as it is after the change (for `account.disconnected`: as it was just before).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<LinkedAccountView>,
    /// Why, in words: the status reason, the provider's error, the admin's reason for a forced disconnect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `account.needs_consent`: the scopes to request ("Grant access").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// `account.provider_unavailable` and `account.recovered`: the resource server whose token could not be renewed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_server: Option<String>,
    /// `account.disconnected`: `user`, `admin` or `platform`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disconnected_by: Option<String>,
    /// `account.revocation_failed`: the id of the disconnected account (which is gone, so `account` is absent) and
    /// its provider.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// `account.revocation_failed`: how many tokens could not be revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_tokens: Option<u32>,
}

impl EventData {
    pub fn new_for(user: Option<UserRef>, account: Option<LinkedAccountView>) -> Self {
        Self {
            user,
            account,
            ..Self::default()
        }
    }
}

/// The user as the service API names them; `None` when the user is gone.
pub async fn user(conn: &mut AnyConnection, user_id: i64) -> Result<Option<UserRef>, sqlx::Error> {
    Ok(auth::repo::find_by_id(&mut *conn, user_id)
        .await?
        .as_ref()
        .map(UserRef::from))
}

/// The account with its consent status per resource server, as the service API shows it.
pub async fn account(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    account_id: &str,
) -> Result<Option<LinkedAccountView>, sqlx::Error> {
    Ok(accounts_repo::find_with_sets(conn, account_id)
        .await?
        .map(|(row, sets)| account_view(catalog, row, sets)))
}

/// The data of an `account.*` event: the user and the account, read now.
pub async fn about_account(
    conn: &mut AnyConnection,
    catalog: &Catalog,
    user_id: i64,
    account_id: &str,
) -> Result<EventData, sqlx::Error> {
    // One read for the account, its token sets and its owner (these events are written under the change's lock).
    match accounts_repo::find_with_sets_and_owner(conn, account_id).await? {
        Some((row, sets, owner)) if owner.id == user_id => {
            let user = UserRef {
                id: owner.id,
                external_id: owner.external_id,
                email: owner.email,
            };
            Ok(EventData::new_for(Some(user), Some(account_view(catalog, row, sets))))
        }
        Some((row, sets, _)) => Ok(EventData::new_for(
            user(conn, user_id).await?,
            Some(account_view(catalog, row, sets)),
        )),
        // The account is gone (the user may remain): nothing more to read about it.
        None => Ok(EventData::new_for(user(conn, user_id).await?, None)),
    }
}

/// The ordering key of an event: deliveries with one key go out one after another, in the order they were made.
/// An account's events share one; a user's events without an account share another.
pub fn ordering_key(account_id: Option<&str>, user_id: Option<i64>, event_id: &str) -> String {
    match (account_id, user_id) {
        (Some(account), _) => format!("account:{account}"),
        (None, Some(user)) => format!("user:{user}"),
        (None, None) => format!("event:{event_id}"),
    }
}
