//! `AppError`: the one error type that crosses from server to browser.
//!
//! Module errors (`AuthError`, database errors, ...) become an `AppError` only at the edge (`api.rs`, routes).
//! Every variant has a message written for the person using the page; internal causes never cross: the browser gets
//! a reference id that matches one log line.

use leptos::server_fn::{
    codec::JsonEncoding,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AppError {
    /// One field of a form is not acceptable; `field` is the form field's name.
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// The request itself could not be read (malformed or non-UTF-8 form body, missing field).
    #[error("The form could not be read: {message}")]
    BadRequest { message: String },
    /// Unknown email or wrong password: deliberately one message for both, so accounts cannot be enumerated.
    #[error("That email and password do not match an account.")]
    InvalidCredentials,
    /// Shown only after the right password was given, so it reveals nothing to a guesser.
    #[error("This account is disabled. Ask an administrator to enable it.")]
    AccountDisabled,
    #[error("Too many failed attempts. Try again in {}.", wait_phrase(*retry_after_secs))]
    Throttled { retry_after_secs: u64 },
    /// `auth.throttle.sign_ups_per_client` accounts were made from this network within the window.
    #[error("Too many accounts were created from your network. Try again in {}.", wait_phrase(*retry_after_secs))]
    SignUpsThrottled { retry_after_secs: u64 },
    #[error("An account with this email already exists. Sign in instead.")]
    EmailTaken,
    #[error("Sign-up is turned off on this server. Ask an administrator for an account.")]
    SignUpDisabled,
    #[error("Please sign in first.")]
    NotSignedIn,
    #[error("You are not allowed to do this.")]
    Forbidden,
    /// The thing asked for does not exist, or is not the caller's: one answer for both.
    #[error("That {what} does not exist (any more).")]
    NotFound { what: String },
    /// A state-changing request that did not come from our own origin (CSRF defence, `http::origin`).
    #[error("This form was sent from another site or address and was refused. Open {expected} and try again.")]
    CrossOrigin { expected: String },
    /// The browser could not reach the server, or the server's answer could not be read.
    #[error("The server could not be reached ({message}). Check your connection and try again.")]
    Unavailable { message: String },
    /// The server cannot reach its database right now (a restart, a failover): refused at once, safe to retry
    /// (`http::database_gate`).
    #[error("The service is briefly unavailable: its database is not answering. Try again in a moment.")]
    DatabaseUnavailable,
    /// Anything the user cannot fix. `reference` matches the server log line that holds the cause.
    #[error("Something went wrong on our side (reference {reference}). Please try again.")]
    Internal { reference: String },
}

/// A form field that failed validation: produced by the input rules shared by browser and server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &str, message: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

impl From<FieldError> for AppError {
    fn from(e: FieldError) -> Self {
        AppError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

fn wait_phrase(secs: u64) -> String {
    match secs {
        0 | 1 => "1 second".to_owned(),
        s if s < 120 => format!("{s} seconds"),
        s => format!("{} minutes", s.div_ceil(60)),
    }
}

impl AppError {
    /// HTTP status for this error when a server function or route returns it.
    pub fn status(&self) -> u16 {
        match self {
            AppError::Invalid { .. } | AppError::BadRequest { .. } => 400,
            AppError::InvalidCredentials | AppError::NotSignedIn => 401,
            AppError::AccountDisabled
            | AppError::Forbidden
            | AppError::SignUpDisabled
            | AppError::CrossOrigin { .. } => 403,
            AppError::NotFound { .. } => 404,
            AppError::EmailTaken => 409,
            AppError::Throttled { .. } | AppError::SignUpsThrottled { .. } => 429,
            AppError::Unavailable { .. } | AppError::DatabaseUnavailable => 503,
            AppError::Internal { .. } => 500,
        }
    }

    /// The form field this error belongs to, for `aria-invalid` and focus.
    pub fn field(&self) -> Option<&str> {
        match self {
            AppError::Invalid { field, .. } => Some(field),
            _ => None,
        }
    }

    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        FieldError::new(field, message).into()
    }

    /// Logs `cause` once with a fresh reference id and returns the opaque error the user sees.
    #[cfg(feature = "ssr")]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let reference = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
        tracing::error!(reference = %reference, "internal error: {cause}");
        AppError::Internal { reference }
    }
}

impl FromServerFnError for AppError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            ServerFnErrorErr::Args(message)
            | ServerFnErrorErr::MissingArg(message)
            | ServerFnErrorErr::Deserialization(message) => AppError::BadRequest {
                message: readable(&message),
            },
            ServerFnErrorErr::Request(message) | ServerFnErrorErr::Response(message) => {
                AppError::Unavailable { message }
            }
            other => {
                #[cfg(feature = "ssr")]
                return AppError::internal(other);
                #[cfg(not(feature = "ssr"))]
                AppError::Unavailable {
                    message: other.to_string(),
                }
            }
        }
    }
}

/// Trims decoder messages to something a person can act on ("invalid UTF-8", "missing field `email`").
fn readable(message: &str) -> String {
    let message = message.trim();
    let short: String = message.chars().take(200).collect();
    if short.is_empty() {
        "the request body is malformed".to_owned()
    } else {
        short
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttled_message_names_the_wait() {
        assert_eq!(
            AppError::Throttled { retry_after_secs: 30 }.to_string(),
            "Too many failed attempts. Try again in 30 seconds."
        );
        assert!(
            AppError::Throttled { retry_after_secs: 600 }
                .to_string()
                .contains("10 minutes")
        );
    }

    #[test]
    fn errors_round_trip_through_json() {
        let err = AppError::invalid("email", "Enter an email address.");
        let back: AppError = serde_json::from_str(&serde_json::to_string(&err).unwrap()).unwrap();
        assert_eq!(back, err);
    }
}
