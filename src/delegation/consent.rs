//! Reading "you need more consent" out of an API's error response.
//!
//! Globus services say it in the four shapes globus-sdk's `gare` module recognises, at the top level or inside an
//! `errors` list: a Globus Auth Requirements Error (`code` + `authorization_parameters.required_scopes`), Transfer's
//! legacy `ConsentRequired` with `required_scopes`, the legacy action providers' `ConsentRequired` with one
//! `required_scope`, and a bare `authorization_parameters` object (code `AuthorizationRequired`). Other APIs say it
//! with RFC 6750's `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`.

use serde_json::Value;

/// What the provider asks for before the call can succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Scopes to request ("Grant access"); empty when the provider asks for a new session, not a scope.
    pub scopes: Vec<String>,
    /// The provider's own explanation (`session_message`, `message`), for logs; never shown as HTML.
    pub message: Option<String>,
}

/// The requirement in a 401/403 response, if it states one.
pub fn requirement(status: u16, www_authenticate: Option<&str>, body: &[u8]) -> Option<Requirement> {
    if !matches!(status, 401 | 403) {
        return None;
    }
    if let Some(found) = www_authenticate.and_then(insufficient_scope) {
        return Some(found);
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    let mut found = from_document(&value);
    if found.is_none()
        && let Some(errors) = value.get("errors").and_then(Value::as_array)
    {
        found = errors.iter().find_map(from_document);
    }
    found
}

fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => s.split_whitespace().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

fn text(doc: &Value, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn from_document(doc: &Value) -> Option<Requirement> {
    let code = doc.get("code").and_then(Value::as_str);
    // Shapes 1 and 4: authorization_parameters (with or without a code).
    if let Some(params) = doc.get("authorization_parameters").filter(|p| p.is_object()) {
        return Some(Requirement {
            scopes: strings(params.get("required_scopes")),
            message: text(params, "session_message").or_else(|| text(doc, "message")),
        });
    }
    if code != Some("ConsentRequired") {
        return None;
    }
    // Shape 2: Transfer's required_scopes; shape 3: the action providers' single required_scope.
    let mut scopes = strings(doc.get("required_scopes"));
    if scopes.is_empty() {
        scopes = doc
            .get("required_scope")
            .and_then(Value::as_str)
            .map(|s| vec![s.to_owned()])
            .unwrap_or_default();
    }
    Some(Requirement {
        scopes,
        message: text(doc, "message").or_else(|| text(doc, "description")),
    })
}

/// RFC 6750 §3.1: `Bearer realm="x", error="insufficient_scope", scope="a b"`.
fn insufficient_scope(header: &str) -> Option<Requirement> {
    // The scheme is case-insensitive (RFC 9110 §11.1); a header with several challenges is read from the Bearer one.
    let at = header.to_ascii_lowercase().find("bearer")?;
    let rest = &header[at + "bearer".len()..];
    let mut error = None;
    let mut scope = None;
    for part in split_params(rest) {
        let (key, value) = part.split_once('=')?;
        let value = value.trim().trim_matches('"').to_owned();
        match key.trim() {
            "error" => error = Some(value),
            "scope" => scope = Some(value),
            _ => {}
        }
    }
    (error.as_deref() == Some("insufficient_scope")).then(|| Requirement {
        scopes: scope
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        message: None,
    })
}

/// Splits `a="x, y", b=z` on the commas outside quotes.
fn split_params(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts.into_iter().map(str::trim).filter(|p| !p.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read(status: u16, body: Value) -> Option<Requirement> {
        requirement(status, None, body.to_string().as_bytes())
    }

    const SCOPE: &str =
        "urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/c/data_access]";

    #[test]
    fn globus_auth_requirements_error() {
        let found = read(
            403,
            json!({"code": "ConsentRequired", "authorization_parameters": {
                "session_message": "needs consent", "required_scopes": [SCOPE]}}),
        )
        .unwrap();
        assert_eq!(found.scopes, vec![SCOPE]);
        assert_eq!(found.message.as_deref(), Some("needs consent"));
    }

    #[test]
    fn transfer_legacy_consent_required() {
        let found = read(
            403,
            json!({"code": "ConsentRequired", "message": "Missing", "required_scopes": [SCOPE]}),
        );
        assert_eq!(found.unwrap().scopes, vec![SCOPE]);
    }

    #[test]
    fn action_provider_legacy_single_scope() {
        let found = read(
            403,
            json!({"code": "ConsentRequired", "description": "d", "required_scope": SCOPE}),
        )
        .unwrap();
        assert_eq!(found.scopes, vec![SCOPE]);
        assert_eq!(found.message.as_deref(), Some("d"));
    }

    #[test]
    fn legacy_authorization_parameters_without_code_ask_for_a_session() {
        let found = read(
            401,
            json!({"authorization_parameters": {"session_required_identities": ["x"], "session_message": "log in"}}),
        )
        .unwrap();
        assert!(found.scopes.is_empty());
    }

    #[test]
    fn nested_in_errors_list() {
        let found = read(
            403,
            json!({"code": "Error", "errors": [{"code": "Other"}, {"code": "ConsentRequired", "required_scopes": [SCOPE]}]}),
        );
        assert_eq!(found.unwrap().scopes, vec![SCOPE]);
    }

    #[test]
    fn the_demo_providers_403_is_understood() {
        // What src/demo/transfer.rs sends (shaped like Globus Transfer's).
        let found = read(
            403,
            json!({"code": "ConsentRequired", "message": "Missing required data_access consent",
                   "required_scopes": [SCOPE],
                   "authorization_parameters": {"session_message": "m", "session_required_identities": [],
                                                "required_scopes": [SCOPE]}}),
        );
        assert_eq!(found.unwrap().scopes, vec![SCOPE]);
    }

    #[test]
    fn rfc_6750_insufficient_scope() {
        let found = requirement(
            403,
            Some(r#"Bearer realm="api", error="insufficient_scope", scope="repo read:org""#),
            b"",
        );
        assert_eq!(found.unwrap().scopes, vec!["repo", "read:org"]);
        assert!(requirement(401, Some(r#"Bearer error="invalid_token""#), b"").is_none());
    }

    #[test]
    fn other_errors_are_not_consent() {
        assert!(read(403, json!({"code": "PermissionDenied", "message": "no"})).is_none());
        assert!(read(404, json!({"code": "ConsentRequired", "required_scopes": [SCOPE]})).is_none());
        assert!(requirement(403, None, b"<html>").is_none());
    }
}
