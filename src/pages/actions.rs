use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_query_map};

use crate::{
    accounts::Reader,
    actions::{
        ActionProblem, ActionResult, ActionView, EndpointPage, EndpointScope, SEARCH_CAP, Submission, SyncLevel, Task,
        api::{ActionAccount, ActionsOverview, ActionsQuery, SubmitTransfer, actions_page},
    },
    components::{
        link_form::LinkForm,
        task_status::{TaskStatus, is_final},
    },
    datetime::format_time,
    error::AppError,
    notice::Notice,
};

/// "Actions" (first version): what onbehalf can do with the user's linked accounts — Globus endpoints (search,
/// scope filter, paging in the URL), transfers and their tasks, and the providers' configured read actions. Every
/// control is a plain form or link: it works without JavaScript.
#[component]
pub fn ActionsPage() -> impl IntoView {
    let query = use_query_map();
    let request = move || {
        let q = query.read();
        ActionsQuery {
            account: q.get("account"),
            scope: q.get("scope"),
            q: q.get("q"),
            offset: q.get("offset").and_then(|o| o.parse().ok()),
            transfer: q.get("transfer"),
            run: q.get("run"),
            params: q
                .clone()
                .into_iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("p_")?.to_owned(), v)))
                .collect::<BTreeMap<_, _>>(),
        }
    };
    let data = Resource::new_blocking(request, actions_page);
    view! {
        <Title text="Actions · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <ActionsView page=page /> }.into_any(),
                    Err(AppError::NotSignedIn) => view! { <Redirect path="/sign-in?next=/actions" /> }.into_any(),
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ActionsView(page: ActionsOverview) -> impl IntoView {
    let ActionsOverview {
        accounts,
        account,
        endpoints,
        tasks,
        submission,
        actions,
        result,
        not_run,
    } = page;
    let Some(account) = account else {
        return view! {
            <div class="page-wide">
                <h1>"Actions"</h1>
                <p class="lead">"Link a Globus, GitHub or ORCID account first: actions run with your linked accounts."</p>
                <p><a class="button button-primary" href="/linked-accounts">"Go to linked accounts"</a></p>
            </div>
        }
        .into_any();
    };
    let picker =
        (accounts.len() > 1).then(|| view! { <AccountPicker accounts=accounts.clone() current=account.id.clone() /> });
    let globus = account.is_globus.then(|| {
        view! {
            <EndpointsSection account=account.clone() endpoints=endpoints />
            <TransferSection account=account.clone() submission=submission />
            <TasksSection account=account.clone() tasks=tasks />
        }
    });
    let configured = (!actions.is_empty())
        .then(|| view! { <ConfiguredSection account=account.clone() actions=actions result=result not_run=not_run /> });
    view! {
        <div class="page-wide">
            <h1>"Actions"</h1>
            <p class="lead">
                "What this site does at your linked accounts, on your behalf. Every call is recorded with its result."
            </p>
            {picker}
            <p>
                "Acting as "<strong>{account.label.clone()}</strong>" at "{account.provider_name.clone()}" "
                <span class=account.status.badge_class()>{account.status.label()}</span>
            </p>
            {globus}
            {configured}
        </div>
    }
    .into_any()
}

#[component]
fn AccountPicker(accounts: Vec<ActionAccount>, current: String) -> impl IntoView {
    view! {
        <form method="get" action="/actions" class="inline-form">
            <label for="account-picker">"Account"</label>
            <select id="account-picker" name="account">
                {accounts
                    .into_iter()
                    .map(|a| {
                        let selected = a.id == current;
                        view! { <option value=a.id selected=selected>{format!("{} · {}", a.provider_name, a.label)}</option> }
                    })
                    .collect_view()}
            </select>
            <button type="submit" class="button button-ghost">"Switch"</button>
        </form>
    }
}

/// A problem as the action that fixes it.
#[component]
fn Problem(
    problem: ActionProblem,
    /// The provider's id.
    provider: String,
    /// The account's id.
    account: String,
    #[prop(optional)] return_to: Option<String>,
) -> impl IntoView {
    let back = return_to.unwrap_or_else(|| format!("/actions?account={account}"));
    let form = |intent: &'static str, label: &'static str| {
        let (provider, id, back) = (provider.clone(), account.clone(), back.clone());
        view! { <LinkForm provider=provider account=id intent=intent label=label return_to=back /> }.into_any()
    };
    let fix = match &problem {
        ActionProblem::NeedsReconnect { .. } => Some(form("reconnect", "Reconnect")),
        ActionProblem::NeedsConsent { .. } => Some(form("grant", "Grant access")),
        ActionProblem::ProviderUnavailable { retry_at, .. } => {
            Some(view! { <p>{format!("Retry after {}.", format_time(*retry_at))}</p> }.into_any())
        }
        _ => None,
    };
    view! {
        <div class="alert alert-error" role="alert">
            <p>{problem.message()}</p>
            {fix}
        </div>
    }
    .into_any()
}

#[component]
fn EndpointsSection(account: ActionAccount, endpoints: Option<Result<EndpointPage, ActionProblem>>) -> impl IntoView {
    let query = use_query_map().read_untracked();
    let scope = query
        .get("scope")
        .and_then(|s| EndpointScope::parse(&s))
        .unwrap_or_default();
    let text = query.get("q").unwrap_or_default();
    let link = {
        let (account, text) = (account.id.clone(), text.clone());
        move |offset: u32| {
            use crate::query::encode;
            format!(
                "/actions?account={}&scope={}&q={}&offset={offset}",
                encode(&account),
                scope.as_str(),
                encode(&text)
            )
        }
    };
    let body = match endpoints {
        None => None,
        Some(Err(problem)) => Some(view! { <Problem problem=problem provider=account.provider.clone() account=account.id.clone() /> }.into_any()),
        Some(Ok(page)) if page.endpoints.is_empty() => Some(
            view! { <p class="muted">{if page.offset == 0 { "No endpoints match." } else { "No more endpoints." }}</p> }
                .into_any(),
        ),
        Some(Ok(page)) => {
            let previous = (page.offset > 0).then(|| {
                let href = link(page.offset.saturating_sub(page.limit));
                view! { <a href=href rel="prev">"Previous"</a> }
            });
            let next = page.has_next_page.then(|| {
                let href = link(page.offset + page.limit);
                view! { <a href=href rel="next">"Next"</a> }
            });
            let cap = page.at_cap.then(|| {
                view! {
                    <p class="muted">
                        {format!("Globus shows at most {SEARCH_CAP} results for one search: refine the search text to see others.")}
                    </p>
                }
            });
            let first = page.offset + 1;
            let last = page.offset + page.endpoints.len() as u32;
            Some(
                view! {
                    <table class="data-table">
                        <caption>{format!("Endpoints {first}–{last}")}</caption>
                        <thead>
                            <tr>
                                <th scope="col">"Name"</th>
                                <th scope="col">"Owner"</th>
                                <th scope="col">"Type"</th>
                                <th scope="col">"ID"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {page
                                .endpoints
                                .into_iter()
                                .map(|e| {
                                    view! {
                                        <tr>
                                            <th scope="row">{e.display_name}</th>
                                            <td>{e.owner.unwrap_or_default()}</td>
                                            <td>{e.entity_type.unwrap_or_default()}</td>
                                            <td><code>{e.id}</code></td>
                                        </tr>
                                    }
                                })
                                .collect_view()}
                        </tbody>
                    </table>
                    <nav class="pager" aria-label="Endpoint pages">{previous}" "{next}</nav>
                    {cap}
                }
                .into_any(),
            )
        }
    };
    view! {
        <section class="panel" aria-labelledby="endpoints-heading">
            <h2 id="endpoints-heading">"Endpoints"</h2>
            <form method="get" action="/actions" class="inline-form" role="search">
                <input type="hidden" name="account" value=account.id.clone() />
                <label for="endpoint-scope">"Show"</label>
                <select id="endpoint-scope" name="scope">
                    {EndpointScope::ALL
                        .into_iter()
                        .map(|s| view! { <option value=s.as_str() selected=s == scope>{s.label()}</option> })
                        .collect_view()}
                </select>
                <label for="endpoint-search">"Search"</label>
                <input id="endpoint-search" name="q" type="search" value=text maxlength="200" />
                <button type="submit" class="button button-primary">"Search endpoints"</button>
            </form>
            {body}
        </section>
    }
    .into_any()
}

#[component]
fn TransferSection(
    account: ActionAccount,
    submission: Option<(Submission, Option<Result<Task, ActionProblem>>)>,
) -> impl IntoView {
    let notice = page_notice(|n| matches!(n, Notice::TransferInvalid { .. } | Notice::TransferNotSubmitted));
    let status =
        submission.map(|(s, task)| view! { <SubmissionStatus submission=s task=task account=account.clone() /> });
    view! {
        <section class="panel" aria-labelledby="transfer-heading" id="transfer">
            <h2 id="transfer-heading">"Transfer"</h2>
            <p>
                <a href=format!("/transfer?account={}", crate::query::encode(&account.id))>"Open the file manager"</a>
                " to pick collections by name and browse their folders; the form below takes ids and paths."
            </p>
            {status}
            {notice}
            <SubmitTransferForm account=account.id.clone() label="Submit transfer">
                <input type="hidden" name="account" value=account.id.clone() />
                <div class="field-row">
                    <TextField name="source_endpoint" label="Source endpoint ID" value="" />
                    <TextField name="source_path" label="Source path" value="/~/" />
                </div>
                <div class="field-row">
                    <TextField name="destination_endpoint" label="Destination endpoint ID" value="" />
                    <TextField name="destination_path" label="Destination path" value="/~/" />
                </div>
                <div class="field-row">
                    <div class="field">
                        <label for="label">"Label"</label>
                        <input id="label" name="label" maxlength="128" />
                    </div>
                    <div class="field">
                        <label for="sync_level">"Sync level"</label>
                        <select id="sync_level" name="sync_level">
                            <option value="">"Copy everything"</option>
                            {SyncLevel::ALL
                                .into_iter()
                                .map(|l| view! { <option value=l.as_str()>{format!("Skip files whose {} match", l.as_str())}</option> })
                                .collect_view()}
                        </select>
                    </div>
                </div>
                <div class="field check">
                    <input id="recursive" name="recursive" type="checkbox" />
                    <label for="recursive">"The source is a folder (copy recursively)"</label>
                </div>
            </SubmitTransferForm>
        </section>
    }
    .into_any()
}

/// A form posting to `globus_submit_transfer`: the transfer form, and "Retry submission" of a pending one. Without
/// JavaScript a plain form (the server redirects back with the outcome in the query); with it, submitted in place
/// with a pending state: the task appears above the form with its live status, or what is wrong, as the action
/// that fixes it. The fields are server-rendered children; `label` is the button's.
#[island]
fn SubmitTransferForm(
    /// The account's id.
    account: String,
    #[prop(into)] label: String,
    children: Children,
) -> impl IntoView {
    let action = ServerAction::<SubmitTransfer>::new();
    let pending = action.pending();
    // The fields are read by name from the form: the children are server-rendered, and a typed `ActionForm` would
    // add a form-data decoder for this one struct to the WASM bundle.
    let submit = move |ev: leptos::ev::SubmitEvent| {
        #[cfg(feature = "hydrate")]
        {
            use leptos::wasm_bindgen::JsCast;
            let Some(data) = ev
                .target()
                .and_then(|t| t.dyn_into::<leptos::web_sys::HtmlFormElement>().ok())
                .and_then(|form| leptos::web_sys::FormData::new_with_form(&form).ok())
            else {
                return; // the browser posts the plain form
            };
            ev.prevent_default();
            let optional = |name: &str| data.get(name).as_string();
            let field = |name: &str| optional(name).unwrap_or_default();
            action.dispatch(SubmitTransfer {
                account: field("account"),
                source_endpoint: field("source_endpoint"),
                source_path: field("source_path"),
                destination_endpoint: field("destination_endpoint"),
                destination_path: field("destination_path"),
                label: field("label"),
                sync_level: field("sync_level"),
                recursive: optional("recursive"),
                resume: optional("resume"),
            });
        }
        #[cfg(not(feature = "hydrate"))]
        let _ = ev;
    };
    let outcome = move || {
        action.value().get().map(|result| match result {
            Ok(Ok(submission)) => {
                let task_id = submission.task_id.unwrap_or_default();
                view! {
                    <div class="alert alert-success" role="status">
                        <p>
                            "Transfer submitted: task "<code>{task_id.clone()}</code>", status "
                            <TaskStatus account=account.clone() task_id=task_id status=submission.status />"."
                        </p>
                    </div>
                }
                .into_any()
            }
            Ok(Err(ActionProblem::Invalid { message, .. })) => {
                view! { <div class="alert alert-error" role="alert">{message}</div> }.into_any()
            }
            Ok(Err(problem)) if problem.pending_transfer().is_some() || problem.needs_the_user() => {
                // A recorded submission (retry it with its own submission_id, never a new one), or a fix that is a
                // trip to the provider anyway (Grant access, Reconnect): load the page that offers it, as a
                // plain-form post does.
                let back = crate::notice::transfer_page(&problem, &account);
                #[cfg(feature = "hydrate")]
                let _ = leptos::prelude::window().location().assign(&back);
                #[cfg(not(feature = "hydrate"))]
                let _ = back;
                view! { <p class="alert alert-error" role="alert">{problem.message()}</p> }.into_any()
            }
            Ok(Err(problem)) => {
                let retry = match problem {
                    ActionProblem::ProviderUnavailable { retry_at, .. } => {
                        format!(" Retry after {}.", format_time(retry_at))
                    }
                    _ => String::new(),
                };
                view! { <p class="alert alert-error" role="alert">{problem.message()}{retry}</p> }.into_any()
            }
            Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
        })
    };
    view! {
        {outcome}
        <form method="post" action="/api/globus_submit_transfer" class="stack-form" on:submit=submit>
            {children()}
            <button type="submit" class="button button-primary" disabled=move || pending.get()>
                {move || if pending.get() { "Submitting…".to_owned() } else { label.clone() }}
            </button>
        </form>
    }
}

/// A required text input with its label; `name` is also its id.
#[component]
fn TextField(name: &'static str, label: &'static str, value: &'static str) -> impl IntoView {
    view! {
        <div class="field">
            <label for=name>{label}</label>
            <input id=name name=name value=value required />
        </div>
    }
}

#[component]
fn SubmissionStatus(
    submission: Submission,
    task: Option<Result<Task, ActionProblem>>,
    account: ActionAccount,
) -> impl IntoView {
    if let Some(task_id) = submission.task_id.clone() {
        let state = match task {
            Some(Ok(task)) => view! {
                "status "
                <TaskStatus account=account.id.clone() task_id=task.task_id status=task.status />
            }
            .into_any(),
            Some(Err(problem)) => format!("status unknown: {}", problem.message()).into_any(),
            None => "status unknown".into_any(),
        };
        return view! {
            <div class="alert alert-success" role="status">
                <p>"Transfer submitted: task "<code>{task_id}</code>", "{state}"."</p>
            </div>
        }
        .into_any();
    }
    // Pending: the last attempt failed. Fix it (reconnect / grant), then retry with the same submission id.
    let back = format!("/actions?account={}&transfer={}#transfer", account.id, submission.id);
    let fix = match account.status {
        crate::accounts::AccountStatus::NeedsConsent => Some(
            view! { <Problem problem=ActionProblem::NeedsConsent { scopes: vec![], transfer: Some(submission.id.clone()) } provider=account.provider.clone() account=account.id.clone() return_to=back.clone() /> }
                .into_any(),
        ),
        crate::accounts::AccountStatus::NeedsReconnect | crate::accounts::AccountStatus::Error => Some(
            view! { <Problem problem=ActionProblem::NeedsReconnect { reason: "Reconnect the account, then retry.".into(), transfer: None } provider=account.provider.clone() account=account.id.clone() return_to=back.clone() /> }
                .into_any(),
        ),
        _ => None,
    };
    let error = submission
        .last_error
        .clone()
        .map(|e| view! { <p class="muted">{format!("Last attempt: {e}")}</p> });
    view! {
        <div class="card">
            <p>
                {format!(
                    "Transfer from {} to {} not submitted yet.",
                    submission.form.source_path, submission.form.destination_path
                )}
            </p>
            {error}
            {fix}
            <SubmitTransferForm account=account.id.clone() label="Retry submission">
                <input type="hidden" name="account" value=account.id.clone() />
                <input type="hidden" name="resume" value=submission.id.clone() />
            </SubmitTransferForm>
        </div>
    }
    .into_any()
}

#[component]
fn TasksSection(account: ActionAccount, tasks: Option<Result<Vec<Task>, ActionProblem>>) -> impl IntoView {
    let body = match tasks {
        None => None,
        Some(Err(problem)) => Some(view! { <Problem problem=problem provider=account.provider.clone() account=account.id.clone() /> }.into_any()),
        Some(Ok(tasks)) if tasks.is_empty() => Some(view! { <p class="muted">"No transfers yet."</p> }.into_any()),
        Some(Ok(tasks)) => Some(
            view! {
                <table class="data-table">
                    <caption class="visually-hidden">"Recent transfers"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Label"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"From"</th>
                            <th scope="col">"To"</th>
                            <th scope="col">"Requested"</th>
                            <th scope="col">"Files"</th>
                            <th scope="col"><span class="visually-hidden">"Cancel"</span></th>
                        </tr>
                    </thead>
                    <tbody>
                        {tasks
                            .into_iter()
                            .map(|t| {
                                let name = t.label.unwrap_or_else(|| t.task_id.clone());
                                let cancel = (!is_final(&t.status)).then(|| {
                                    view! { <CancelTaskForm account=account.id.clone() task_id=t.task_id.clone() name=name.clone() /> }
                                });
                                view! {
                                    <tr>
                                        <th scope="row">
                                            <a href=format!(
                                                "/transfer/tasks/{}?account={}",
                                                crate::query::encode(&t.task_id),
                                                crate::query::encode(&account.id)
                                            )>{name.clone()}</a>
                                        </th>
                                        <td><TaskStatus account=account.id.clone() task_id=t.task_id.clone() status=t.status /></td>
                                        <td>{t.source}</td>
                                        <td>{t.destination}</td>
                                        <td>{t.request_time}</td>
                                        <td>{format!("{}/{}", t.files_transferred, t.files)}</td>
                                        <td>{cancel}</td>
                                    </tr>
                                }
                            })
                            .collect_view()}
                    </tbody>
                </table>
            }
            .into_any(),
        ),
    };
    view! {
        <section class="panel" aria-labelledby="tasks-heading" id="tasks">
            <h2 id="tasks-heading">"Recent transfers"</h2>
            {page_notice(|n| matches!(n, Notice::Cancel(_)))}
            {body}
        </section>
    }
    .into_any()
}

/// Cancels a task that has not finished: a plain form, which comes back with what happened (`?cancel=`).
#[component]
fn CancelTaskForm(account: String, task_id: String, name: String) -> impl IntoView {
    view! {
        <form method="post" action="/api/globus_cancel_task" class="inline-form">
            <input type="hidden" name="account" value=account />
            <input type="hidden" name="task_id" value=task_id />
            <button type="submit" class="button button-ghost" aria-label=format!("Cancel transfer {name}")>"Cancel"</button>
        </form>
    }
}

/// The notice this page's URL carries, where `here` says it belongs (the transfer form's, the task list's).
fn page_notice(here: impl Fn(&Notice) -> bool) -> Option<impl IntoView> {
    let notice = Notice::from_query(|name| use_query_map().read_untracked().get(name)).filter(here)?;
    let (ok, message) = notice.message(Reader::Owner, str::to_owned);
    Some(view! {
        <div class=if ok { "alert alert-success" } else { "alert alert-error" } role=if ok { "status" } else { "alert" }>
            {message}
        </div>
    })
}

#[component]
fn ConfiguredSection(
    account: ActionAccount,
    actions: Vec<ActionView>,
    result: Option<(String, Result<ActionResult, ActionProblem>)>,
    not_run: Option<(String, BTreeMap<String, String>)>,
) -> impl IntoView {
    // A run of an action this account does not have (an old link, a typo in the URL).
    let unknown = result
        .as_ref()
        .filter(|(name, _)| !actions.iter().any(|a| &a.name == name))
        .and_then(|(_, r)| r.clone().err())
        .map(|problem| view! { <Problem problem=problem provider=account.provider.clone() account=account.id.clone() /> });
    let forms = actions
        .into_iter()
        .map(|action| {
            let shown = result.as_ref().filter(|(name, _)| *name == action.name).map(|(_, r)| r.clone());
            let asked = not_run.as_ref().filter(|(name, _)| *name == action.name).map(|(_, params)| params);
            let output = match shown {
                None if asked.is_some() => Some(
                    view! {
                        <p class="alert" role="status">
                            "This page was opened from a link, so the action was not run. Check its parameters and \
                             press Run."
                        </p>
                    }
                    .into_any(),
                ),
                None => None,
                Some(Ok(result)) => Some(
                    view! {
                        <p class="muted">{format!("HTTP {}", result.status)}</p>
                        <pre class="result" tabindex="0" aria-label=format!("{} result", action.title)>{result.body}</pre>
                    }
                    .into_any(),
                ),
                Some(Err(problem)) => Some(view! { <Problem problem=problem provider=account.provider.clone() account=account.id.clone() /> }.into_any()),
            };
            let params = action
                .params
                .iter()
                .map(|p| {
                    let id = format!("p-{}-{}", action.name, p.name);
                    // What the link asked for, else the default.
                    let value = asked
                        .and_then(|params| params.get(&p.name).cloned())
                        .or_else(|| p.default.clone())
                        .unwrap_or_default();
                    view! {
                        <div class="field">
                            <label for=id.clone()>{p.title.clone()}</label>
                            <input id=id name=format!("p_{}", p.name) value=value required=p.required />
                        </div>
                    }
                })
                .collect_view();
            view! {
                <article class="card">
                    <h3>{action.title.clone()}</h3>
                    <form method="get" action="/actions" class="inline-form">
                        <input type="hidden" name="account" value=account.id.clone() />
                        <input type="hidden" name="run" value=action.name.clone() />
                        {params}
                        <button type="submit" class="button button-primary">{format!("Run “{}”", action.title)}</button>
                    </form>
                    {output}
                </article>
            }
        })
        .collect_view();
    view! {
        <section class="panel" aria-labelledby="configured-heading">
            <h2 id="configured-heading">"Provider actions"</h2>
            {unknown}
            {forms}
        </section>
    }
    .into_any()
}
