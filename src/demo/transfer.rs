//! A subset of the Globus Transfer API v0.10: endpoint search and documents, submission ids, transfer submission
//! (with the `ConsentRequired` dance for GCSv5 collections), the caller's tasks, their events and cancelling one.
//!
//! Every call needs an active access token for `transfer.api.globus.org`. Tasks are ACTIVE for their first
//! [`ACTIVE_FOR`] (or the duration set with `DemoProvider::set_task_duration`) and SUCCEEDED after, so a client can
//! watch one finish without a clock of its own. A cancelled task is FAILED, with the `CANCELED` fatal error.

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::Deserialize;
use serde_json::{Value, json};
use time::{OffsetDateTime, macros::format_description};

use super::{
    Shared,
    data::{self, Endpoint},
    files,
    scope::{self, TRANSFER_ALL, TRANSFER_RS},
    store::{Subject, random_string},
    wire::{Params, bearer, json},
};

/// How long a task stays ACTIVE before it SUCCEEDS.
pub(crate) const ACTIVE_FOR: Duration = Duration::from_secs(3);
/// The service returns at most this many results of one search, over all pages.
const SEARCH_CAP: u64 = 1000;
const SEARCH_DEFAULT_LIMIT: u64 = 25;
const SEARCH_MAX_LIMIT: u64 = 100;
const TASK_LIST_DEFAULT_LIMIT: u64 = 10;
const TASK_LIST_MAX_LIMIT: u64 = 1000;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v0.10/endpoint_search", get(endpoint_search))
        .route("/v0.10/endpoint/{endpoint_id}", get(get_endpoint))
        .route("/v0.10/submission_id", get(submission_id))
        .route("/v0.10/transfer", post(submit_transfer))
        .route("/v0.10/task_list", get(task_list))
        .route("/v0.10/task/{task_id}", get(get_task))
        .route("/v0.10/task/{task_id}/cancel", post(cancel_task))
        .route("/v0.10/task/{task_id}/event_list", get(task_event_list))
        .route("/v0.10/operation/endpoint/{endpoint_id}/ls", get(operation_ls))
}

/// A submitted transfer.
#[derive(Debug)]
pub(crate) struct Task {
    pub task_id: String,
    pub submission_id: String,
    /// The `sub` of the identity (or client) that submitted it.
    pub owner: String,
    pub username: String,
    pub label: Option<String>,
    pub source: &'static Endpoint,
    pub destination: &'static Endpoint,
    pub files: u64,
    pub directories: u64,
    pub requested_at: SystemTime,
    /// How long it stays ACTIVE.
    pub active_for: Duration,
    pub cancelled_at: Option<SystemTime>,
    pub deadline: Option<String>,
    pub sync_level: Option<Value>,
    pub options: TransferOptions,
    pub filter_rules: Option<Value>,
}

/// Who is calling, from their Transfer token.
struct Caller {
    sub: String,
    username: String,
    /// Collections whose `data_access` scope the token's grant includes.
    data_access: Vec<String>,
}

/// A refused Transfer API request; its body has `code`, `message`, `request_id` and `resource`.
#[derive(Debug)]
struct TransferError {
    status: StatusCode,
    code: &'static str,
    message: String,
    resource: String,
}

impl IntoResponse for TransferError {
    fn into_response(self) -> Response {
        tracing::info!(
            status = self.status.as_u16(),
            code = self.code,
            "demo: transfer request refused"
        );
        json(
            self.status,
            &json!({
                "code": self.code,
                "message": self.message,
                "request_id": random_string(9),
                "resource": self.resource,
            }),
        )
    }
}

fn error(status: StatusCode, code: &'static str, message: &str, resource: &str) -> TransferError {
    TransferError {
        status,
        code,
        message: message.to_owned(),
        resource: resource.to_owned(),
    }
}

fn bad_request(message: &str, resource: &str) -> TransferError {
    error(StatusCode::BAD_REQUEST, "ClientError.BadRequest", message, resource)
}

/// Counts the request and identifies the caller by a Transfer bearer token.
fn caller(shared: &Shared, headers: &HeaderMap, resource: &str) -> Result<Caller, TransferError> {
    let mut store = shared.store();
    store.counters.transfer_requests += 1;
    let found = bearer(headers)
        .filter(|_| !store.switches.reject_api_tokens)
        .and_then(|value| store.access_token(value, TRANSFER_RS, SystemTime::now()));
    let Some((token, grant)) = found else {
        drop(store);
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Token is not active",
            resource,
        ));
    };
    let username = match &grant.subject {
        Subject::User(identity) => identity.username.to_owned(),
        Subject::Client(client_id) => format!("{client_id}@clients.auth.globus.org"),
    };
    let data_access = token
        .scopes
        .iter()
        .filter(|scope| scope.base == TRANSFER_ALL)
        .flat_map(|scope| scope.data_access.iter().cloned())
        .collect();
    Ok(Caller {
        sub: grant.subject.sub().to_owned(),
        username,
        data_access,
    })
}

/// A non-negative integer query parameter.
fn number(params: &Params, name: &str, default: u64, resource: &str) -> Result<u64, TransferError> {
    match params.get(name) {
        Ok(None) => Ok(default),
        Ok(Some(text)) => text
            .parse()
            .map_err(|_| bad_request(&format!("{name} must be a non-negative integer"), resource)),
        Err(_) => Err(bad_request(&format!("{name} was given more than once"), resource)),
    }
}

async fn endpoint_search(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, TransferError> {
    const RESOURCE: &str = "/v0.10/endpoint_search";
    let caller = caller(&shared, &headers, RESOURCE)?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(name) = params.first_duplicate() {
        return Err(bad_request(&format!("{name} was given more than once"), RESOURCE));
    }
    let get = |name: &str| params.get(name).ok().flatten();
    let (limit, offset) = match (
        number(&params, "limit", SEARCH_DEFAULT_LIMIT, RESOURCE),
        number(&params, "offset", 0, RESOURCE),
    ) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(err), _) | (_, Err(err)) => return Err(err),
    };
    if !(1..=SEARCH_MAX_LIMIT).contains(&limit) {
        return Err(bad_request(
            &format!("limit must be between 1 and {SEARCH_MAX_LIMIT}"),
            RESOURCE,
        ));
    }
    if offset + limit > SEARCH_CAP {
        return Err(bad_request(
            &format!("offset + limit must be <= {SEARCH_CAP}"),
            RESOURCE,
        ));
    }
    let scope = get("filter_scope").unwrap_or("all");
    let fulltext = get("filter_fulltext");
    let owner = get("filter_owner_id");
    if scope == "all" && fulltext.is_none() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ClientError.BadRequest.MissingFilterFulltext",
            "filter_fulltext is required when filter_scope is all",
            RESOURCE,
        ));
    }
    if owner.is_some() && matches!(scope, "my-endpoints" | "my-gcp-endpoints" | "shared-by-me") {
        return Err(bad_request(
            &format!("filter_owner_id cannot be combined with filter_scope={scope}"),
            RESOURCE,
        ));
    }
    let who = caller.sub.as_str();
    let in_scope: fn(&Endpoint, &str) -> bool = match scope {
        "all" => Endpoint::visible_to,
        "my-endpoints" => Endpoint::owned_by,
        "my-gcp-endpoints" => |e, who| e.owned_by(who) && e.entity_type == "GCP_mapped_collection",
        "administered-by-me" => Endpoint::administered_by,
        "shared-with-me" => Endpoint::shared_with,
        "shared-by-me" => |e, who| e.owned_by(who) && !e.shared_with.is_empty(),
        "recently-used" => Endpoint::recently_used_by,
        _ => return Err(bad_request(&format!("Unknown filter_scope {scope:?}"), RESOURCE)),
    };
    // Every word of the search text must appear in the name, description or owner, ignoring case.
    let words: Vec<String> = fulltext
        .unwrap_or_default()
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    let matches: Vec<&Endpoint> = data::endpoints()
        .iter()
        .filter(|e| in_scope(e, who))
        .filter(|e| owner.is_none_or(|owner| owner.eq_ignore_ascii_case(e.owner.sub)))
        .filter(|e| {
            let haystack = format!("{}\n{}\n{}", e.display_name, e.description, e.owner.username).to_lowercase();
            words.iter().all(|word| haystack.contains(word.as_str()))
        })
        .collect();
    let total = (matches.len() as u64).min(SEARCH_CAP);
    let page: Vec<Value> = matches
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|e| e.document())
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "DATA_TYPE": "endpoint_list",
            "offset": offset,
            "limit": limit,
            "has_next_page": offset + limit < total,
            "DATA": page,
        }),
    ))
}

async fn get_endpoint(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
) -> Result<Response, TransferError> {
    let resource = format!("/v0.10/endpoint/{endpoint_id}");
    caller(&shared, &headers, &resource)?;
    match data::endpoint(&endpoint_id) {
        Some(endpoint) => Ok(json(StatusCode::OK, &endpoint.document())),
        None => Err(endpoint_not_found(&endpoint_id, &resource)),
    }
}

fn endpoint_not_found(endpoint_id: &str, resource: &str) -> TransferError {
    error(
        StatusCode::NOT_FOUND,
        "EndpointNotFound",
        &format!("No such endpoint with id '{endpoint_id}'"),
        resource,
    )
}

async fn submission_id(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Result<Response, TransferError> {
    caller(&shared, &headers, "/v0.10/submission_id")?;
    Ok(json(
        StatusCode::OK,
        &json!({"DATA_TYPE": "submission_id", "value": uuid::Uuid::new_v4().to_string()}),
    ))
}

/// The body of `POST /v0.10/transfer`, as globus-sdk's `TransferData` builds it.
#[derive(Debug, Deserialize)]
struct TransferDocument {
    #[serde(rename = "DATA_TYPE")]
    data_type: Option<String>,
    source_endpoint: String,
    destination_endpoint: String,
    submission_id: Option<String>,
    label: Option<String>,
    #[serde(rename = "DATA", default)]
    items: Vec<TransferItem>,
    sync_level: Option<Value>,
    deadline: Option<String>,
    filter_rules: Option<Value>,
    #[serde(flatten)]
    options: TransferOptions,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TransferOptions {
    #[serde(default)]
    verify_checksum: bool,
    #[serde(default)]
    preserve_timestamp: bool,
    #[serde(default)]
    encrypt_data: bool,
    #[serde(default)]
    skip_source_errors: bool,
    #[serde(default)]
    fail_on_quota_errors: bool,
    #[serde(default)]
    delete_destination_extra: bool,
}

#[derive(Debug, Deserialize)]
struct TransferItem {
    #[serde(rename = "DATA_TYPE")]
    data_type: Option<String>,
    source_path: String,
    destination_path: String,
    #[serde(default)]
    recursive: bool,
}

async fn submit_transfer(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, TransferError> {
    const RESOURCE: &str = "/v0.10/transfer";
    let caller = caller(&shared, &headers, RESOURCE)?;
    let document: TransferDocument = match serde_json::from_slice(&body) {
        Ok(document) => document,
        Err(err) => return Err(bad_request(&format!("Invalid transfer document: {err}"), RESOURCE)),
    };
    if document.data_type.as_deref().is_some_and(|t| t != "transfer") {
        return Err(bad_request("DATA_TYPE must be \"transfer\"", RESOURCE));
    }
    let submission_id = match document.submission_id.as_deref().map(uuid::Uuid::parse_str) {
        Some(Ok(id)) => id.to_string(),
        Some(Err(_)) => {
            return Err(bad_request(
                "submission_id must be a UUID from GET /submission_id",
                RESOURCE,
            ));
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    // Globus recognises a resubmission by its submission id and answers with the task it already created.
    let duplicate = shared
        .store()
        .tasks
        .iter()
        .find(|task| task.owner == caller.sub && task.submission_id == submission_id)
        .map(|task| task.task_id.clone());
    if let Some(task_id) = duplicate {
        tracing::info!("demo: duplicate transfer submission");
        let message = format!("A transfer with submission id '{submission_id}' was already accepted");
        return Ok(transfer_result(
            StatusCode::OK,
            "Duplicate",
            &message,
            &submission_id,
            &task_id,
        ));
    }
    if document.items.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "ClientError.BadRequest.NoTransferItems",
            "A transfer requires at least one item",
            RESOURCE,
        ));
    }
    if document.items.iter().any(|item| {
        item.data_type.as_deref().is_some_and(|t| t != "transfer_item")
            || item.source_path.is_empty()
            || item.destination_path.is_empty()
    }) {
        return Err(bad_request(
            "Each item needs DATA_TYPE \"transfer_item\", source_path and destination_path",
            RESOURCE,
        ));
    }
    let Some(source) = data::endpoint(&document.source_endpoint) else {
        return Err(endpoint_not_found(&document.source_endpoint, RESOURCE));
    };
    let Some(destination) = data::endpoint(&document.destination_endpoint) else {
        return Err(endpoint_not_found(&document.destination_endpoint, RESOURCE));
    };
    let mut store = shared.store();
    let mut missing: Vec<String> = Vec::new();
    for collection in [&source.id, &destination.id] {
        let required = store.switches.consent_required.contains(collection.as_str());
        if required && !caller.data_access.contains(collection) && !missing.contains(collection) {
            missing.push(collection.clone());
        }
    }
    if !missing.is_empty() {
        store.counters.consent_required += 1;
        drop(store);
        return Ok(consent_required(&missing, RESOURCE));
    }
    let files = document.items.iter().filter(|item| !item.recursive).count() as u64;
    let durations = &store.switches.task_durations;
    let active_for = durations
        .get(&Some(caller.sub.clone()))
        .or_else(|| durations.get(&None))
        .copied()
        .unwrap_or(ACTIVE_FOR);
    let task = Task {
        task_id: uuid::Uuid::new_v4().to_string(),
        submission_id: submission_id.clone(),
        owner: caller.sub,
        username: caller.username,
        label: document.label,
        source,
        destination,
        files,
        directories: document.items.len() as u64 - files,
        requested_at: SystemTime::now(),
        active_for,
        cancelled_at: None,
        deadline: document.deadline,
        sync_level: document.sync_level,
        options: document.options,
        filter_rules: document.filter_rules,
    };
    let task_id = task.task_id.clone();
    store.tasks.push(task);
    drop(store);
    tracing::info!(source = %source.id, destination = %destination.id, "demo: transfer accepted");
    Ok(transfer_result(
        StatusCode::ACCEPTED,
        "Accepted",
        "The transfer has been accepted and a task has been created and queued for execution",
        &submission_id,
        &task_id,
    ))
}

/// The `transfer_result` of `transfer.submit_transfer.json`.
fn transfer_result(status: StatusCode, code: &str, message: &str, submission_id: &str, task_id: &str) -> Response {
    json(
        status,
        &json!({
            "DATA_TYPE": "transfer_result",
            "code": code,
            "message": message,
            "request_id": random_string(9),
            "resource": "/v0.10/transfer",
            "submission_id": submission_id,
            "task_id": task_id,
            "task_link": {
                "DATA_TYPE": "link",
                "href": format!("/v0.10/task/{task_id}?format=json"),
                "rel": "related",
                "resource": "task",
                "title": "related task",
            },
        }),
    )
}

/// The most entries one `ls` answers (Transfer's own limit).
const LS_MAX_LIMIT: u64 = 100_000;

/// `GET operation/endpoint/{id}/ls`: a folder of the demo tree ([`files`]), with Transfer's `orderby` (`name`,
/// `size`, `last_modified`, `type`, each `ASC` or `DESC`, comma-separated), `filter` (`name:~glob`, `name:=exact`,
/// `type:dir,file`, joined by `/`), `offset` and `limit`. The collection's `data_access` consent is required as for
/// a transfer; a disconnected personal collection, a missing path, a file and the denied folder are refused with
/// Transfer's codes.
async fn operation_ls(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(endpoint_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, TransferError> {
    let resource = format!("/v0.10/operation/endpoint/{endpoint_id}/ls");
    let caller = caller(&shared, &headers, &resource)?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    if let Some(name) = params.first_duplicate() {
        return Err(bad_request(&format!("{name} was given more than once"), &resource));
    }
    let get = |name: &str| params.get(name).ok().flatten();
    let limit = number(&params, "limit", LS_MAX_LIMIT, &resource)?.min(LS_MAX_LIMIT);
    let offset = number(&params, "offset", 0, &resource)?;
    let Some(endpoint) = data::endpoint(&endpoint_id) else {
        return Err(endpoint_not_found(&endpoint_id, &resource));
    };
    {
        let mut store = shared.store();
        if store.switches.consent_required.contains(endpoint.id.as_str()) && !caller.data_access.contains(&endpoint.id)
        {
            store.counters.consent_required += 1;
            drop(store);
            return Ok(consent_required(std::slice::from_ref(&endpoint.id), &resource));
        }
    }
    if !endpoint.connected {
        return Err(error(
            StatusCode::BAD_GATEWAY,
            "ExternalError.DirListingFailed.GCDisconnected",
            &format!(
                "The Globus Connect Personal endpoint '{}' ({}) is not currently connected to Globus",
                endpoint.display_name, endpoint.id
            ),
            &resource,
        ));
    }
    let path = get("path").unwrap_or("/~/");
    let folder = files::normalize(path);
    let mut entries = match files::list(&endpoint.id, path) {
        Ok(entries) => entries,
        Err(files::Refused::NotFound) => {
            return Err(error(
                StatusCode::NOT_FOUND,
                "ClientError.NotFound",
                &format!("Directory '{folder}' not found on endpoint {}", endpoint.id),
                &resource,
            ));
        }
        Err(files::Refused::NotDirectory) => {
            return Err(error(
                StatusCode::BAD_GATEWAY,
                "ExternalError.DirListingFailed.NotDirectory",
                &format!("Path '{folder}' is not a directory"),
                &resource,
            ));
        }
        Err(files::Refused::PermissionDenied) => {
            return Err(error(
                StatusCode::FORBIDDEN,
                "PermissionDenied",
                &format!("Permission denied listing '{folder}'"),
                &resource,
            ));
        }
    };
    if let Some(filter) = get("filter") {
        let rules = parse_ls_filter(filter).map_err(|message| bad_request(&message, &resource))?;
        entries.retain(|entry| rules.iter().all(|rule| rule.keeps(entry)));
    }
    let order =
        parse_ls_orderby(get("orderby").unwrap_or("name ASC")).map_err(|message| bad_request(&message, &resource))?;
    entries.sort_by(|a, b| {
        order
            .iter()
            .map(|(key, descending)| {
                let ordering = match *key {
                    "name" => a.name.cmp(&b.name),
                    "size" => a.size.cmp(&b.size),
                    "last_modified" => a.modified.cmp(&b.modified),
                    _ => a.kind.as_str().cmp(b.kind.as_str()),
                };
                if *descending { ordering.reverse() } else { ordering }
            })
            .find(|ordering| ordering.is_ne())
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let total = entries.len();
    let page: Vec<Value> = entries
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|entry| {
            json!({
                "DATA_TYPE": "file",
                "name": entry.name,
                "type": entry.kind.as_str(),
                "size": entry.size,
                "last_modified": ls_time(entry.modified),
                "permissions": if entry.kind == files::Kind::Dir { "0755" } else { "0644" },
                "user": caller.username.split('@').next().unwrap_or_default(),
                "group": "demo",
                "link_target": entry.link_target,
                "link_group": null,
                "link_last_modified": null,
                "link_size": null,
                "link_user": null,
            })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "DATA_TYPE": "file_list",
            "DATA": page,
            "path": folder,
            "absolute_path": folder,
            "endpoint": endpoint.id,
            "length": page.len(),
            "total": total,
            "rename_supported": true,
            "symlink_supported": false,
        }),
    ))
}

/// One rule of an `ls` filter.
enum LsFilter<'a> {
    /// `name:~glob`: `*` and `?` wildcards, ignoring case.
    NameGlob(String),
    NameIs(&'a str),
    Types(Vec<&'a str>),
}

impl LsFilter<'_> {
    fn keeps(&self, entry: &files::Entry) -> bool {
        match self {
            LsFilter::NameGlob(glob) => glob_match(glob.as_bytes(), entry.name.to_lowercase().as_bytes()),
            LsFilter::NameIs(name) => entry.name == *name,
            LsFilter::Types(types) => types.contains(&entry.kind.as_str()),
        }
    }
}

fn parse_ls_filter(filter: &str) -> Result<Vec<LsFilter<'_>>, String> {
    filter
        .split('/')
        .filter(|rule| !rule.is_empty())
        .map(|rule| {
            if let Some(glob) = rule.strip_prefix("name:~") {
                Ok(LsFilter::NameGlob(glob.to_lowercase()))
            } else if let Some(name) = rule.strip_prefix("name:=") {
                Ok(LsFilter::NameIs(name))
            } else if let Some(types) = rule.strip_prefix("type:") {
                let types: Vec<&str> = types.split(',').collect();
                match types.iter().find(|t| !matches!(**t, "dir" | "file" | "link")) {
                    Some(other) => Err(format!("Unknown type {other:?} in filter")),
                    None => Ok(LsFilter::Types(types)),
                }
            } else {
                Err(format!("Unsupported filter {rule:?}"))
            }
        })
        .collect()
}

fn parse_ls_orderby(orderby: &str) -> Result<Vec<(&str, bool)>, String> {
    orderby
        .split(',')
        .map(|part| {
            let mut words = part.split_whitespace();
            let key = words.next().unwrap_or_default();
            if !matches!(key, "name" | "size" | "last_modified" | "type") {
                return Err(format!("Cannot order by {key:?}"));
            }
            let descending = match words.next().map(str::to_ascii_uppercase).as_deref() {
                None | Some("ASC") => false,
                Some("DESC") => true,
                Some(other) => return Err(format!("Unknown order {other:?}")),
            };
            Ok((key, descending))
        })
        .collect()
}

/// A shell glob with `*` and `?`, in linear time (the last `*` backtracks; earlier ones never need to).
fn glob_match(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                star = Some((g, t));
                g += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((star_g, star_t)) => {
                    g = star_g + 1;
                    t = star_t + 1;
                    star = Some((star_g, star_t + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

/// `ls` times: `2023-05-20 04:37:33+00:00`.
fn ls_time(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]+00:00"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// 403 `ConsentRequired`: the client must send the user through authorize again with the scopes named here.
fn consent_required(collections: &[String], resource: &str) -> Response {
    let required = vec![scope::transfer_scope_with(collections)];
    tracing::info!(collections = collections.len(), "demo: data_access consent required");
    json(
        StatusCode::FORBIDDEN,
        &json!({
            "code": "ConsentRequired",
            "message": "Missing required data_access consent",
            "request_id": random_string(9),
            "resource": resource,
            "required_scopes": required,
            "authorization_parameters": {
                "session_message": "The collection you are trying to access requires consent to access its data.",
                "session_required_identities": [],
                "required_scopes": required,
            },
        }),
    )
}

/// ISO 8601 in UTC, as Transfer writes times (`2021-09-02T18:04:47+00:00`).
fn timestamp(time: SystemTime) -> String {
    OffsetDateTime::from(time)
        .format(format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]+00:00"
        ))
        .unwrap_or_default()
}

impl Task {
    /// When it ended (succeeded or was cancelled), if it has by `now`.
    fn ended_at(&self, now: SystemTime) -> Option<SystemTime> {
        let done = self.requested_at + self.active_for;
        match self.cancelled_at {
            Some(cancelled) if cancelled < done => Some(cancelled),
            _ => (now >= done).then_some(done),
        }
    }

    fn status(&self, now: SystemTime) -> &'static str {
        match (self.ended_at(now), self.cancelled_at) {
            (None, _) => "ACTIVE",
            (Some(ended), Some(cancelled)) if ended == cancelled => "FAILED",
            (Some(_), _) => "SUCCEEDED",
        }
    }

    /// The task document of `transfer.task_list.json`.
    fn document(&self, now: SystemTime) -> Value {
        let status = self.status(now);
        let done = status == "SUCCEEDED";
        let cancelled = status == "FAILED";
        let items = self.files + self.directories;
        // Deterministic sizes: 4 MiB a file, 64 MiB a directory; half of it is moved while ACTIVE.
        let total_bytes = self.files * 4 * 1024 * 1024 + self.directories * 64 * 1024 * 1024;
        let bytes_transferred = if done { total_bytes } else { total_bytes / 2 };
        // Two halves: one `json!` of this size exceeds the macro recursion limit.
        let mut document = json!({
            "DATA_TYPE": "task",
            "bytes_checksummed": if self.options.verify_checksum { bytes_transferred } else { 0 },
            "bytes_transferred": bytes_transferred,
            "canceled_by_admin": null,
            "canceled_by_admin_message": null,
            "command": "API 0.10",
            "completion_time": self.ended_at(now).map_or(Value::Null, |at| json!(timestamp(at))),
            "deadline": self.deadline.clone().unwrap_or_else(|| timestamp(self.requested_at + Duration::from_secs(86_400))),
            "delete_destination_extra": self.options.delete_destination_extra,
            "destination_endpoint": self.destination.id,
            "destination_endpoint_display_name": self.destination.display_name,
            "destination_endpoint_id": self.destination.id,
            "directories": self.directories,
            "effective_bytes_per_second": total_bytes / self.active_for.as_secs().max(1),
            "encrypt_data": self.options.encrypt_data,
            "fail_on_quota_errors": self.options.fail_on_quota_errors,
            "fatal_error": if cancelled { json!({"code": "CANCELED", "description": "canceled"}) } else { Value::Null },
            "faults": 0,
            "files": self.files,
            "files_skipped": 0,
            "files_transferred": if done { self.files } else { 0 },
            "filter_rules": self.filter_rules,
        });
        let rest = json!({
            "history_deleted": false,
            "is_ok": if done || cancelled { Value::Null } else { json!(true) },
            "is_paused": false,
            "label": self.label,
            "nice_status": if done || cancelled { Value::Null } else { json!("OK") },
            "nice_status_details": null,
            "nice_status_expires_in": null,
            "nice_status_short_description": if done || cancelled { Value::Null } else { json!("OK") },
            "owner_id": self.owner,
            "preserve_timestamp": self.options.preserve_timestamp,
            "recursive_symlinks": "ignore",
            "request_time": timestamp(self.requested_at),
            "skip_source_errors": self.options.skip_source_errors,
            "source_endpoint": self.source.id,
            "source_endpoint_display_name": self.source.display_name,
            "source_endpoint_id": self.source.id,
            "status": status,
            "subtasks_canceled": if cancelled { items } else { 0 },
            "subtasks_expired": 0,
            "subtasks_failed": 0,
            "subtasks_pending": if done || cancelled { 0 } else { items },
            "subtasks_retrying": 0,
            "subtasks_skipped_errors": 0,
            "subtasks_succeeded": if done { items } else { 0 },
            "subtasks_total": items,
            "symlinks": 0,
            "sync_level": self.sync_level,
            "task_id": self.task_id,
            "type": "TRANSFER",
            "username": self.username,
            "verify_checksum": self.options.verify_checksum,
        });
        if let (Some(document), Value::Object(rest)) = (document.as_object_mut(), rest) {
            document.extend(rest);
        }
        document
    }
}

/// `status:ACTIVE,SUCCEEDED/type:TRANSFER/task_id:<a>,<b>` → (key, values) pairs.
fn parse_task_filter(filter: &str) -> Result<Vec<(&str, Vec<&str>)>, String> {
    filter
        .split('/')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (key, values) = part
                .split_once(':')
                .ok_or_else(|| format!("Malformed filter {part:?}: expected key:value"))?;
            let values: Vec<&str> = values.split(',').filter(|v| !v.is_empty()).collect();
            match key {
                "status" => {
                    if let Some(bad) = values
                        .iter()
                        .find(|v| !matches!(**v, "ACTIVE" | "INACTIVE" | "SUCCEEDED" | "FAILED"))
                    {
                        return Err(format!("Unknown task status {bad:?}"));
                    }
                }
                "type" | "task_id" => {}
                _ => return Err(format!("Unsupported filter key {key:?}")),
            }
            Ok((key, values))
        })
        .collect()
}

async fn task_list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, TransferError> {
    const RESOURCE: &str = "/v0.10/task_list";
    let caller = caller(&shared, &headers, RESOURCE)?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let (limit, offset) = match (
        number(&params, "limit", TASK_LIST_DEFAULT_LIMIT, RESOURCE),
        number(&params, "offset", 0, RESOURCE),
    ) {
        (Ok(limit), Ok(offset)) => (limit, offset),
        (Err(err), _) | (_, Err(err)) => return Err(err),
    };
    if !(1..=TASK_LIST_MAX_LIMIT).contains(&limit) {
        return Err(bad_request(
            &format!("limit must be between 1 and {TASK_LIST_MAX_LIMIT}"),
            RESOURCE,
        ));
    }
    let filters = match params.get("filter").map(|f| f.map(parse_task_filter).transpose()) {
        Ok(Ok(filters)) => filters.unwrap_or_default(),
        Ok(Err(message)) => return Err(bad_request(&message, RESOURCE)),
        Err(_) => return Err(bad_request("filter was given more than once", RESOURCE)),
    };
    let newest_first = match params.get("orderby") {
        Ok(None) => true,
        Ok(Some(order)) => match order.to_ascii_lowercase().split_whitespace().collect::<Vec<_>>()[..] {
            ["request_time"] | ["request_time", "desc"] => true,
            ["request_time", "asc"] => false,
            _ => return Err(bad_request("orderby supports request_time ASC|DESC", RESOURCE)),
        },
        Err(_) => return Err(bad_request("Only one orderby is supported", RESOURCE)),
    };
    let now = SystemTime::now();
    let store = shared.store();
    let mut tasks: Vec<&Task> = store
        .tasks
        .iter()
        .filter(|task| task.owner == caller.sub)
        .filter(|task| {
            filters.iter().all(|(key, values)| match *key {
                "status" => values.contains(&task.status(now)),
                "type" => values.contains(&"TRANSFER"),
                _ => values.iter().any(|id| id.eq_ignore_ascii_case(&task.task_id)),
            })
        })
        .collect();
    if newest_first {
        tasks.reverse();
    }
    let total = tasks.len();
    let page: Vec<Value> = tasks
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|task| task.document(now))
        .collect();
    drop(store);
    Ok(json(
        StatusCode::OK,
        &json!({
            "DATA": page,
            "DATA_TYPE": "task_list",
            "length": page.len(),
            "limit": limit,
            "offset": offset,
            "total": total,
        }),
    ))
}

async fn get_task(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Result<Response, TransferError> {
    let resource = format!("/v0.10/task/{task_id}");
    let caller = caller(&shared, &headers, &resource)?;
    let document = shared
        .store()
        .tasks
        .iter()
        .find(|task| task.owner == caller.sub && task.task_id.eq_ignore_ascii_case(&task_id))
        .map(|task| task.document(SystemTime::now()));
    match document {
        Some(document) => Ok(json(StatusCode::OK, &document)),
        None => Err(error(
            StatusCode::NOT_FOUND,
            "TaskNotFound",
            &format!("Task '{task_id}' not found"),
            &resource,
        )),
    }
}

/// `GET /task/{id}/event_list`: the task's events, newest first (it started; then it succeeded, or was cancelled).
async fn task_event_list(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, TransferError> {
    let resource = format!("/v0.10/task/{task_id}/event_list");
    let caller = caller(&shared, &headers, &resource)?;
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    let limit = number(&params, "limit", TASK_LIST_DEFAULT_LIMIT, &resource)?;
    let offset = number(&params, "offset", 0, &resource)?;
    if !(1..=TASK_LIST_MAX_LIMIT).contains(&limit) {
        return Err(bad_request(
            &format!("limit must be between 1 and {TASK_LIST_MAX_LIMIT}"),
            &resource,
        ));
    }
    let now = SystemTime::now();
    let store = shared.store();
    let Some(task) = store
        .tasks
        .iter()
        .find(|task| task.owner == caller.sub && task.task_id.eq_ignore_ascii_case(&task_id))
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "TaskNotFound",
            &format!("Task '{task_id}' not found"),
            &resource,
        ));
    };
    let event = |code: &str, description: &str, details: String, is_error: bool, at: SystemTime| {
        json!({"DATA_TYPE": "event", "code": code, "description": description, "details": details,
               "is_error": is_error, "time": timestamp(at)})
    };
    let mut events = vec![event(
        "STARTED",
        "started",
        format!("Transferring {} files and {} folders", task.files, task.directories),
        false,
        task.requested_at,
    )];
    match (task.status(now), task.ended_at(now)) {
        ("SUCCEEDED", Some(at)) => events.push(event("SUCCEEDED", "succeeded", "Task succeeded".into(), false, at)),
        ("FAILED", Some(at)) => events.push(event(
            "CANCELED",
            "canceled",
            "Canceled by the task owner".into(),
            true,
            at,
        )),
        _ => {}
    }
    drop(store);
    events.reverse();
    let total = events.len();
    let page: Vec<Value> = events.into_iter().skip(offset as usize).take(limit as usize).collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "DATA": page,
            "DATA_TYPE": "event_list",
            "length": page.len(),
            "limit": limit,
            "offset": offset,
            "total": total,
        }),
    ))
}

/// `POST /task/{id}/cancel`: the `result` of globus-sdk's `transfer.cancel_task` test data, `Canceled`; a task that
/// had already ended answers `TaskComplete` (still 200), as Transfer does.
async fn cancel_task(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(task_id): Path<String>,
) -> Result<Response, TransferError> {
    let resource = format!("/v0.10/task/{task_id}/cancel");
    let caller = caller(&shared, &headers, &resource)?;
    let now = SystemTime::now();
    let mut store = shared.store();
    let Some(task) = store
        .tasks
        .iter_mut()
        .find(|task| task.owner == caller.sub && task.task_id.eq_ignore_ascii_case(&task_id))
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "TaskNotFound",
            &format!("Task '{task_id}' not found"),
            &resource,
        ));
    };
    let (code, message) = if task.ended_at(now).is_some() {
        (
            "TaskComplete",
            "The task completed before the cancel request was processed.",
        )
    } else {
        task.cancelled_at = Some(now);
        ("Canceled", "The task has been cancelled successfully.")
    };
    drop(store);
    tracing::info!(code, "demo: task cancel");
    Ok(json(
        StatusCode::OK,
        &json!({
            "DATA_TYPE": "result",
            "code": code,
            "message": message,
            "request_id": random_string(9),
            "resource": format!("/task/{task_id}/cancel"),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ls_globs_orders_and_filters() {
        assert!(glob_match(b"*sample-00*", b"sample-0012.dat"));
        assert!(glob_match(b"run-??1.h5", b"run-001.h5"));
        assert!(!glob_match(b"*.fits", b"calibration.json"));
        assert!(glob_match(b"*", b""));
        let many_stars = [b'*', b'a'].repeat(40);
        assert!(glob_match(&many_stars, &[b'a'; 60]));
        assert!(
            !glob_match(&[many_stars.as_slice(), b"b"].concat(), &[b'a'; 60]),
            "and fast"
        );
        assert_eq!(
            parse_ls_orderby("type ASC,size desc").unwrap(),
            vec![("type", false), ("size", true)]
        );
        assert!(parse_ls_orderby("owner").is_err());
        assert!(parse_ls_filter("type:dir,file/name:~*a*").is_ok());
        assert!(parse_ls_filter("size:>3").is_err());
        assert_eq!(ls_time(1_684_557_453), "2023-05-20 04:37:33+00:00");
    }

    #[test]
    fn task_filters_parse_and_reject_unknown_keys() {
        let filters = parse_task_filter("status:ACTIVE,SUCCEEDED/type:TRANSFER").unwrap();
        assert_eq!(filters[0], ("status", vec!["ACTIVE", "SUCCEEDED"]));
        assert!(parse_task_filter("status:DONE").is_err());
        assert!(parse_task_filter("owner:me").is_err());
        assert!(parse_task_filter("status").is_err());
    }

    #[test]
    fn timestamps_look_like_transfer_ones() {
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_630_605_887);
        assert_eq!(timestamp(time), "2021-09-02T18:04:47+00:00");
    }
}
