//! Globus scope strings: which scopes exist, which resource server each belongs to, and dependent scopes.
//!
//! A Transfer scope may carry dependent `data_access` scopes for GCSv5 collections in brackets, e.g.
//! `urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/<collection>/data_access]`.
//! Brackets may hold several space-separated entries, so a scope list is not simply split on spaces.

use std::fmt;

use uuid::Uuid;

pub(crate) const AUTH_RS: &str = "auth.globus.org";
pub(crate) const TRANSFER_RS: &str = "transfer.api.globus.org";
pub(crate) const OPENID: &str = "openid";
pub(crate) const TRANSFER_ALL: &str = "urn:globus:auth:scope:transfer.api.globus.org:all";
const VIEW_IDENTITY_SET: &str = "urn:globus:auth:scope:auth.globus.org:view_identity_set";

/// Known scopes: (scope string, resource server, what the consent page says it allows).
const KNOWN: &[(&str, &str, &str)] = &[
    (OPENID, AUTH_RS, "Know who you are: your Demo Globus identity id"),
    ("profile", AUTH_RS, "See your name, username and organization"),
    ("email", AUTH_RS, "See your email address"),
    (
        VIEW_IDENTITY_SET,
        AUTH_RS,
        "See the identities linked to your Demo Globus account",
    ),
    (
        TRANSFER_ALL,
        TRANSFER_RS,
        "Use Globus Transfer for you: search collections, start transfers and follow them",
    ),
];

/// One granted or requested scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scope {
    /// The scope string without its dependent scopes.
    pub base: &'static str,
    pub resource_server: &'static str,
    pub description: &'static str,
    /// Collection ids (lower-case UUIDs) of the dependent `data_access` scopes.
    pub data_access: Vec<String>,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base)?;
        if !self.data_access.is_empty() {
            let deps: Vec<String> = self
                .data_access
                .iter()
                .map(|c| format!("*{}", data_access_scope(c)))
                .collect();
            write!(f, "[{}]", deps.join(" "))?;
        }
        Ok(())
    }
}

/// The scope a GCSv5 collection's data is reached with.
pub(crate) fn data_access_scope(collection: &str) -> String {
    format!("https://auth.globus.org/scopes/{collection}/data_access")
}

/// The Transfer scope with dependent `data_access` scopes for `collections`, as `ConsentRequired` asks for it.
pub(crate) fn transfer_scope_with(collections: &[String]) -> String {
    Scope {
        base: TRANSFER_ALL,
        resource_server: TRANSFER_RS,
        description: "",
        data_access: collections.to_vec(),
    }
    .to_string()
}

/// Parses a space-separated scope list; duplicates merge. The error is an `error_description` (scope strings are not
/// secret, so it may quote them).
pub(crate) fn parse(list: &str) -> Result<Vec<Scope>, String> {
    let mut scopes: Vec<Scope> = Vec::new();
    for item in split(list)? {
        let (base, deps) = match item.split_once('[') {
            Some((base, rest)) => {
                let inner = rest
                    .strip_suffix(']')
                    .ok_or_else(|| format!("Malformed dependent scopes in {item:?}"))?;
                (base, Some(inner))
            }
            None => (item, None),
        };
        let &(base, resource_server, description) = KNOWN
            .iter()
            .find(|(known, _, _)| *known == base)
            .ok_or_else(|| format!("Unknown scope {base:?}"))?;
        let mut data_access = Vec::new();
        if let Some(inner) = deps {
            if base != TRANSFER_ALL {
                return Err(format!("Scope {base:?} has no dependent scopes"));
            }
            for dep in inner.split_whitespace() {
                data_access.push(parse_data_access(dep)?);
            }
        }
        match scopes.iter_mut().find(|scope| scope.base == base) {
            Some(existing) => {
                for collection in data_access {
                    if !existing.data_access.contains(&collection) {
                        existing.data_access.push(collection);
                    }
                }
            }
            None => scopes.push(Scope {
                base,
                resource_server,
                description,
                data_access,
            }),
        }
    }
    if scopes.is_empty() {
        return Err("No scope was requested".to_owned());
    }
    Ok(scopes)
}

/// Splits on whitespace outside brackets.
fn split(list: &str) -> Result<Vec<&str>, String> {
    let mut items = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (at, c) in list.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth = depth.checked_sub(1).ok_or("Unbalanced ']' in scope")?,
            c if c.is_whitespace() && depth == 0 => {
                if let Some(from) = start.take() {
                    items.push(&list[from..at]);
                }
                continue;
            }
            _ => {}
        }
        start.get_or_insert(at);
    }
    if depth != 0 {
        return Err("Unbalanced '[' in scope".to_owned());
    }
    if let Some(from) = start {
        items.push(&list[from..]);
    }
    Ok(items)
}

/// `*https://auth.globus.org/scopes/<collection>/data_access` (the `*` marks it optional) → the collection id.
fn parse_data_access(dep: &str) -> Result<String, String> {
    let url = dep.strip_prefix('*').unwrap_or(dep);
    url.strip_prefix("https://auth.globus.org/scopes/")
        .and_then(|rest| rest.strip_suffix("/data_access"))
        .and_then(|id| Uuid::parse_str(id).ok())
        .map(|id| id.to_string())
        .ok_or_else(|| format!("Unknown dependent scope {dep:?}"))
}

/// The scopes grouped by resource server, in the order each server first appears.
pub(crate) fn by_resource_server(scopes: &[Scope]) -> Vec<(&'static str, Vec<Scope>)> {
    let mut groups: Vec<(&'static str, Vec<Scope>)> = Vec::new();
    for scope in scopes {
        match groups.iter_mut().find(|(rs, _)| *rs == scope.resource_server) {
            Some((_, group)) => group.push(scope.clone()),
            None => groups.push((scope.resource_server, vec![scope.clone()])),
        }
    }
    groups
}

/// The space-separated form of a scope list, as token responses carry it.
pub(crate) fn join(scopes: &[Scope]) -> String {
    scopes.iter().map(Scope::to_string).collect::<Vec<_>>().join(" ")
}

pub(crate) fn contains(scopes: &[Scope], base: &str) -> bool {
    scopes.iter().any(|scope| scope.base == base)
}

/// Whether `requested` asks for nothing beyond `granted` (RFC 6749 §6: a refresh may only narrow the scope).
pub(crate) fn is_subset(requested: &[Scope], granted: &[Scope]) -> bool {
    requested.iter().all(|want| {
        granted
            .iter()
            .any(|have| have.base == want.base && want.data_access.iter().all(|c| have.data_access.contains(c)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "0b2f5b1e-8c44-4f7e-9a2d-6e1f3c5a7b90";
    const B: &str = "1c3e6d2f-9d55-4a8f-8b3e-7f2a4d6b8ca1";

    #[test]
    fn dependent_scopes_with_spaces_stay_one_scope() {
        let list = format!(
            "openid profile {TRANSFER_ALL}[*https://auth.globus.org/scopes/{A}/data_access \
             https://auth.globus.org/scopes/{B}/data_access] email"
        );
        let scopes = parse(&list).unwrap();
        assert_eq!(scopes.len(), 4);
        assert_eq!(scopes[2].data_access, vec![A.to_owned(), B.to_owned()]);
        let groups = by_resource_server(&scopes);
        assert_eq!(groups[0].0, AUTH_RS);
        assert_eq!(join(&groups[0].1), "openid profile email");
        assert_eq!(groups[1].0, TRANSFER_RS);
        assert_eq!(
            join(&groups[1].1),
            format!("{TRANSFER_ALL}[*{} *{}]", data_access_scope(A), data_access_scope(B))
        );
    }

    #[test]
    fn unknown_and_malformed_scopes_are_rejected() {
        assert!(parse("openid admin").is_err());
        assert!(
            parse(&format!(
                "{TRANSFER_ALL}[*https://auth.globus.org/scopes/{A}/data_access"
            ))
            .is_err()
        );
        assert!(parse("openid[x]").is_err());
        assert!(parse(&format!("{TRANSFER_ALL}[*https://evil.example/scopes/{A}/data_access]")).is_err());
        assert!(parse("   ").is_err());
    }

    #[test]
    fn narrowing_is_a_subset_widening_is_not() {
        let granted = parse(&format!("openid {}", transfer_scope_with(&[A.to_owned()]))).unwrap();
        assert!(is_subset(&parse("openid").unwrap(), &granted));
        assert!(!is_subset(&parse("email").unwrap(), &granted));
        assert!(!is_subset(
            &parse(&transfer_scope_with(&[B.to_owned()])).unwrap(),
            &granted
        ));
    }
}
