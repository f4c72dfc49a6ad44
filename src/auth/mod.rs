//! Our own sign-in: local accounts, passwords, sessions, throttling.
//!
//! This file holds what both the server and the browser need: the wire types and the input rules. The rules live
//! here once so the server enforces exactly what the forms announce.

pub mod api;

#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod session_store;
#[cfg(feature = "ssr")]
pub mod throttle;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;

pub const EMAIL_MAX_LEN: usize = 254;
/// A platform user's id at their platform (`external_id`): 1 to this many bytes.
pub const EXTERNAL_ID_MAX_BYTES: usize = 255;
pub const DISPLAY_NAME_MAX_LEN: usize = 100;
/// NIST SP 800-63B: at least 8 characters; long passphrases must be allowed, but not unbounded ones (hash cost).
pub const PASSWORD_MIN_LEN: usize = 8;
pub const PASSWORD_MAX_LEN: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

/// The signed-in user as the browser sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserDto {
    pub email: String,
    pub display_name: String,
    pub role: Role,
    /// Date the account was created, `YYYY-MM-DD` (UTC).
    pub member_since: String,
    /// Set in a session opened from a platform's connect link: the pages then offer "Back to <platform>".
    pub connect: Option<crate::connect::ConnectView>,
}

/// A user as the platform names them: in the service API's answers and in webhook bodies.
#[cfg(feature = "ssr")]
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct UserRef {
    pub id: i64,
    /// The platform's id of a platform user; `null` for local accounts.
    pub external_id: Option<String>,
    /// `null` for a platform user whose platform gave none.
    pub email: Option<String>,
}

#[cfg(feature = "ssr")]
impl From<&repo::UserRow> for UserRef {
    fn from(row: &repo::UserRow) -> Self {
        UserRef {
            id: row.id,
            external_id: row.external_id.clone(),
            email: row.email.clone(),
        }
    }
}

/// Trims and lower-cases an email address and checks that it looks like one. We do not try to be an RFC 5322
/// parser: one `@`, something on each side, a dot in the domain, no spaces or control characters.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    if email.is_empty() {
        return Err(FieldError::new("email", "Enter your email address."));
    }
    if email.chars().count() > EMAIL_MAX_LEN {
        return Err(FieldError::new(
            "email",
            format!("An email address has at most {EMAIL_MAX_LEN} characters."),
        ));
    }
    let valid = match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.contains('@')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        }
        None => false,
    };
    if !valid {
        return Err(FieldError::new(
            "email",
            "Enter an email address like name@example.org.",
        ));
    }
    Ok(email)
}

/// Checks a platform's id of its user: 1 to 255 bytes, kept exactly as given (it is the platform's key, compared
/// byte for byte), without control characters (they would corrupt logs and exports).
pub fn validate_external_id(raw: &str) -> Result<&str, FieldError> {
    const FIELD: &str = "user.external_id";
    if raw.is_empty() {
        return Err(FieldError::new(FIELD, "Give the platform's id of the user."));
    }
    if raw.len() > EXTERNAL_ID_MAX_BYTES {
        return Err(FieldError::new(
            FIELD,
            format!("An external id has at most {EXTERNAL_ID_MAX_BYTES} bytes."),
        ));
    }
    // Control characters corrupt logs and exports; bidirectional overrides make one id display as another.
    let bidi = |c: &char| matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if raw.chars().any(|c| c.is_control() || bidi(&c)) {
        return Err(FieldError::new(
            FIELD,
            "An external id cannot contain control or text-direction characters.",
        ));
    }
    Ok(raw)
}

/// Trims a display name; empty falls back to the part of the email before `@`.
pub fn normalize_display_name(raw: &str, email: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    if name.chars().any(char::is_control) {
        return Err(FieldError::new(
            "display_name",
            "A name cannot contain control characters.",
        ));
    }
    if name.chars().count() > DISPLAY_NAME_MAX_LEN {
        return Err(FieldError::new(
            "display_name",
            format!("A name has at most {DISPLAY_NAME_MAX_LEN} characters."),
        ));
    }
    if name.is_empty() {
        return Ok(email.split('@').next().unwrap_or(email).to_owned());
    }
    Ok(name.to_owned())
}

/// Checks a new password (and its confirmation). Any characters are allowed except control characters, which no
/// keyboard types and which usually mean a broken client.
pub fn validate_new_password(field: &str, password: &str, confirmation: &str) -> Result<(), FieldError> {
    let len = password.chars().count();
    if len < PASSWORD_MIN_LEN {
        return Err(FieldError::new(
            field,
            format!("Choose a password of at least {PASSWORD_MIN_LEN} characters."),
        ));
    }
    if len > PASSWORD_MAX_LEN {
        return Err(FieldError::new(
            field,
            format!("A password has at most {PASSWORD_MAX_LEN} characters."),
        ));
    }
    if password.chars().any(char::is_control) {
        return Err(FieldError::new(field, "A password cannot contain control characters."));
    }
    if password != confirmation {
        return Err(FieldError::new(
            &format!("{field}_confirm"),
            "The two passwords do not match.",
        ));
    }
    Ok(())
}

/// Keeps a post-sign-in destination only when it is a path on this site; anything else (`//evil`, `https://…`,
/// `/\evil`, control characters) becomes `fallback`. Prevents open redirects.
pub fn local_path_or<'a>(next: Option<&'a str>, fallback: &'a str) -> &'a str {
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.chars().any(|c| c.is_control() || c == '\\')
                && p.len() <= 2048 =>
        {
            p
        }
        _ => fallback,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(normalize_email("  Ada@Example.ORG ").unwrap(), "ada@example.org");
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@example",
            "a da@example.org",
            "ada@x.org\u{7}",
            "a@b@c.org",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad:?} accepted");
        }
        assert!(normalize_email(&format!("{}@example.org", "a".repeat(10_000))).is_err());
    }

    #[test]
    fn passwords_have_bounds_and_must_match() {
        assert!(validate_new_password("password", "short", "short").is_err());
        assert!(validate_new_password("password", &"x".repeat(10_000), &"x".repeat(10_000)).is_err());
        assert!(validate_new_password("password", "good password\n", "good password\n").is_err());
        let err = validate_new_password("password", "good password", "other password").unwrap_err();
        assert_eq!(err.field, "password_confirm");
        assert!(validate_new_password("password", "correct horse ☃", "correct horse ☃").is_ok());
    }

    #[test]
    fn only_local_paths_survive_as_redirect_targets() {
        assert_eq!(local_path_or(Some("/account?x=1"), "/"), "/account?x=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil.example",
            "javascript:alert(1)",
            "",
            "/a\nb",
        ] {
            assert_eq!(local_path_or(Some(bad), "/"), "/", "{bad:?}");
        }
        assert_eq!(local_path_or(None, "/account"), "/account");
    }

    #[test]
    fn display_name_defaults_to_the_email_local_part() {
        assert_eq!(normalize_display_name("  ", "ada@example.org").unwrap(), "ada");
        assert!(normalize_display_name("a\u{0}b", "ada@example.org").is_err());
    }
}
