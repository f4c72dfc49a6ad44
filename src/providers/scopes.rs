//! What scopes mean, for people: the resource server each scope is for (Globus issues one token set per resource
//! server) and a sentence saying what it lets this site do. Unknown scopes are shown as they are.

use super::{Provider, ProviderKind, TokenShape};

/// The resource server whose token set carries `scope`.
pub fn resource_server_of(provider: &Provider, scope: &str) -> String {
    if provider.token_shape == TokenShape::Globus {
        // `urn:globus:auth:scope:<resource server>:<name>[<dependent scopes>]`
        if let Some(rest) = scope.strip_prefix("urn:globus:auth:scope:") {
            let base = rest.split('[').next().unwrap_or(rest);
            if let Some((server, _name)) = base.rsplit_once(':') {
                return server.to_owned();
            }
        }
        // `https://auth.globus.org/scopes/<client id>/<name>`: the resource server is the client id.
        if let Some(rest) = scope.split('[').next().and_then(|s| s.split("/scopes/").nth(1))
            && let Some((client, _)) = rest.split_once('/')
        {
            return client.to_owned();
        }
    }
    provider.default_resource_server.clone()
}

/// One sentence on what `scope` lets this site do with the account.
pub fn describe(provider: &Provider, scope: &str) -> String {
    let known = match (provider.kind, scope) {
        (_, "openid") => Some("Confirm who you are"),
        (_, "profile") => Some("See your name and organisation"),
        (_, "email") => Some("See your email address"),
        (_, "offline_access") => Some("Keep access while you are away (a refresh token)"),
        (ProviderKind::Globus, s) if s.starts_with("urn:globus:auth:scope:transfer.api.globus.org:all[") => {
            return format!(
                "Use Globus Transfer, including the data on collection {}",
                dependent_collection(s).unwrap_or("(unnamed)")
            );
        }
        (ProviderKind::Globus, "urn:globus:auth:scope:transfer.api.globus.org:all") => {
            Some("Use Globus Transfer: list your collections, start transfers and follow their progress")
        }
        (ProviderKind::Globus, "urn:globus:auth:scope:auth.globus.org:view_identities") => {
            Some("See your linked Globus identities")
        }
        (ProviderKind::Github, "read:user") => Some("Read your GitHub profile"),
        (ProviderKind::Github, "user:email") => Some("See your GitHub email addresses"),
        (ProviderKind::Github, "public_repo") => Some("Read and write your public repositories"),
        (ProviderKind::Github, "repo") => Some("Read and write all your repositories, private ones included"),
        (ProviderKind::Orcid, "/authenticate") => Some("Read your ORCID iD and name"),
        (ProviderKind::Orcid, "/read-limited") => Some("Read the limited-access parts of your ORCID record"),
        (ProviderKind::Orcid, "/activities/update") => Some("Add and update works on your ORCID record"),
        _ => None,
    };
    known.map(str::to_owned).unwrap_or_else(|| scope.to_owned())
}

/// The collection a Globus `data_access` dependent scope names:
/// `…:all[*https://auth.globus.org/scopes/<collection>/data_access]`.
fn dependent_collection(scope: &str) -> Option<&str> {
    let inner = scope.split_once('[')?.1;
    let rest = inner.split("/scopes/").nth(1)?;
    rest.split_once('/').map(|(collection, _)| collection)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::presets;

    #[test]
    fn globus_scopes_name_their_resource_server_and_purpose() {
        let demo = presets::demo("https://auth.example", "client", "secret");
        let transfer = "urn:globus:auth:scope:transfer.api.globus.org:all";
        let dependent = format!("{transfer}[*https://auth.globus.org/scopes/c0ffee/data_access]");
        assert_eq!(resource_server_of(&demo, transfer), "transfer.api.globus.org");
        assert_eq!(resource_server_of(&demo, &dependent), "transfer.api.globus.org");
        assert_eq!(resource_server_of(&demo, "openid"), "auth.globus.org");
        assert_eq!(
            resource_server_of(&demo, "https://auth.globus.org/scopes/abc-123/https"),
            "abc-123"
        );
        assert!(describe(&demo, transfer).starts_with("Use Globus Transfer"));
        assert!(describe(&demo, &dependent).contains("collection c0ffee"));
        assert_eq!(describe(&demo, "urn:x:unknown"), "urn:x:unknown");
    }
}
