//! Configured read actions (`[[providers.<id>.actions]]`, presets: GitHub "my repositories", ORCID "my record"):
//! a GET under the provider's first API base URL with the user's token, its JSON shown as text.

use std::collections::BTreeMap;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::{ActionParamView, ActionProblem, ActionResult, ActionView, globus};
use crate::{
    accounts::repo as accounts,
    delegation::{ApiRequest, ApiResponse},
    providers::{Catalog, settings::ActionSettings},
    state::AppState,
};

/// Pretty-printed results are cut here: the page is not a data export.
const MAX_SHOWN: usize = 64 * 1024;

/// Every configured action of every provider.
pub fn views(catalog: &Catalog) -> Vec<ActionView> {
    catalog
        .all()
        .iter()
        .flat_map(|p| {
            p.actions.iter().map(|a| ActionView {
                provider: p.id.clone(),
                name: a.name.clone(),
                title: a.title.clone(),
                params: a
                    .params
                    .iter()
                    .map(|param| ActionParamView {
                        name: param.name.clone(),
                        title: param.title.clone(),
                        required: param.required,
                        default: param.default.clone(),
                    })
                    .collect(),
            })
        })
        .collect()
}

/// The action's URL path and query for `subject` and `params`, relative to the API base.
pub fn target(
    action: &ActionSettings,
    subject: &str,
    params: &BTreeMap<String, String>,
) -> Result<String, ActionProblem> {
    let encode = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    if is_dot_segment(subject) {
        return Err(ActionProblem::failed(
            "The account's identifier at the provider cannot be used in a URL path.",
        ));
    }
    let mut path = action.path.replace("{subject}", &encode(subject));
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for param in &action.params {
        let value = params
            .get(&param.name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .or_else(|| param.default.clone());
        let Some(value) = value else {
            if param.required {
                return Err(ActionProblem::invalid(
                    &param.name,
                    format!("{} is required.", param.title),
                ));
            }
            continue;
        };
        if value.chars().count() > 200 {
            return Err(ActionProblem::invalid(
                &param.name,
                format!("{} is limited to 200 characters.", param.title),
            ));
        }
        let placeholder = format!("{{{}}}", param.name);
        if path.contains(&placeholder) {
            if is_dot_segment(&value) {
                return Err(ActionProblem::invalid(
                    &param.name,
                    format!("{} cannot be “.” or “..”.", param.title),
                ));
            }
            path = path.replace(&placeholder, &encode(&value));
        } else {
            query.append_pair(&param.name, &value);
        }
    }
    let query = query.finish();
    Ok(if query.is_empty() {
        path
    } else {
        format!("{path}?{query}")
    })
}

/// `.` and `..`: percent-encoded (`%2E%2E`) they are still dot segments to a URL parser (WHATWG URL, RFC 3986
/// §6.2.2.2), so as a path segment they would move the request out of the action's path to another API route.
fn is_dot_segment(value: &str) -> bool {
    value == "." || value == ".."
}

/// A configured action's answer, readable on a page: its JSON pretty-printed (or its text), cut at `MAX_SHOWN`.
pub fn readable(response: ApiResponse) -> ActionResult {
    let mut body = match serde_json::from_slice::<serde_json::Value>(&response.body) {
        Ok(json) => serde_json::to_string_pretty(&json).unwrap_or_default(),
        Err(_) => String::from_utf8_lossy(&response.body).into_owned(),
    };
    if body.len() > MAX_SHOWN {
        let mut cut = MAX_SHOWN;
        while !body.is_char_boundary(cut) {
            cut -= 1;
        }
        body.truncate(cut);
        body.push_str("\n… (cut)");
    }
    ActionResult {
        status: response.status,
        body,
    }
}

/// Calls `provider`'s action `name` as the user's account `account_id`: the provider's successful answer as it is.
pub async fn fetch(
    state: &AppState,
    user_id: i64,
    account_id: &str,
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<ApiResponse, ActionProblem> {
    let not_found = ActionProblem::not_found;
    let mut conn = state.db.pool.acquire().await.map_err(globus::internal)?;
    let account = accounts::find_for_user(&mut conn, account_id, user_id)
        .await
        .map_err(globus::internal)?
        .ok_or_else(|| not_found("linked account"))?;
    drop(conn);
    let provider = state
        .catalog
        .get(&account.provider)
        .ok_or_else(|| not_found("provider"))?;
    let action = provider
        .actions
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| not_found("action"))?;
    let base = provider
        .api_base(&provider.default_resource_server)
        .ok_or_else(|| not_found("API base URL"))?;
    let url = base
        .join(&target(action, &account.subject, params)?)
        .map_err(globus::internal)?;
    let template = format!("/{}", action.path);
    let response = state
        .delegation
        .call(ApiRequest {
            user_id,
            account_id: &account.id,
            resource_server: &provider.default_resource_server,
            method: reqwest::Method::GET,
            url,
            path_template: &template,
            json: None,
            request_id: None,
            about: vec![("action", action.title.clone())],
            keep: &[],
        })
        .await
        .map_err(globus::problem)?;
    if !response.is_success() {
        return Err(globus::ok_json(&response)
            .err()
            .unwrap_or_else(|| ActionProblem::failed(format!("HTTP {}", response.status))));
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::settings::ActionParam;

    fn action(path: &str, params: Vec<ActionParam>) -> ActionSettings {
        ActionSettings {
            name: "a".into(),
            title: "A".into(),
            path: path.into(),
            params,
        }
    }

    fn param(name: &str, required: bool, default: Option<&str>) -> ActionParam {
        ActionParam {
            name: name.into(),
            title: name.to_uppercase(),
            required,
            default: default.map(str::to_owned),
        }
    }

    #[test]
    fn subject_and_params_are_encoded_into_path_and_query() {
        let a = action(
            "{subject}/works/{kind}",
            vec![param("kind", true, None), param("sort", false, Some("new"))],
        );
        let params = BTreeMap::from([("kind".to_owned(), "a/b".to_owned())]);
        assert_eq!(
            target(&a, "0000-0002/../x", &params).unwrap(),
            "0000%2D0002%2F%2E%2E%2Fx/works/a%2Fb?sort=new"
        );
    }

    #[test]
    fn dot_segments_cannot_leave_the_actions_path() {
        let a = action("users/{name}/repos", vec![param("name", true, None)]);
        let base = url::Url::parse("https://api.example/v1/").unwrap();
        for dots in [".", "..", " .. "] {
            let params = BTreeMap::from([("name".to_owned(), dots.to_owned())]);
            let err = target(&a, "s", &params).unwrap_err();
            assert_eq!(
                err,
                ActionProblem::invalid("name", "NAME cannot be “.” or “..”."),
                "{dots:?}"
            );
        }
        // What the refusal prevents: the encoded form is still a dot segment to the URL parser.
        assert_eq!(base.join("users/%2E%2E/repos").unwrap().path(), "/v1/repos");
        // Dots inside a value are data, and stay encoded.
        let params = BTreeMap::from([("name".to_owned(), "...".to_owned())]);
        let path = target(&a, "s", &params).unwrap();
        assert_eq!(base.join(&path).unwrap().path(), "/v1/users/%2E%2E%2E/repos");
        let subject = action("{subject}/record", vec![]);
        assert!(matches!(
            target(&subject, "..", &BTreeMap::new()),
            Err(ActionProblem::Failed { .. })
        ));
    }

    #[test]
    fn a_missing_required_parameter_names_the_field() {
        let a = action("x", vec![param("q", true, None)]);
        let err = target(&a, "s", &BTreeMap::new()).unwrap_err();
        assert_eq!(err, ActionProblem::invalid("q", "Q is required."));
    }
}
