//! "Your transfers" (`/transfer/tasks`) and one transfer's page (`/transfer/tasks/{id}`): status (followed live with
//! JavaScript on; without it, the page reloads itself every 10 seconds while the task runs), progress in files,
//! bytes and rate, its events in words, and Cancel behind a confirmation.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{components::Redirect, hooks::use_params_map};

use super::{PageUrl, format};
use crate::{
    accounts::Reader,
    actions::{
        ActionProblem, TaskDetail, TaskEvent,
        api::ActionAccount,
        file_manager::{TaskView, TasksView, transfer_task_page, transfer_tasks_page},
    },
    components::{
        link_form::LinkForm,
        task_status::{TaskStatus, is_final},
    },
    error::AppError,
    notice::Notice,
    query::encode,
};

fn task_href(account: &str, task_id: &str) -> String {
    format!("/transfer/tasks/{}?account={}", encode(task_id), encode(account))
}

/// "3 of 12 files · 4.2 GB · 12 MB/s"
fn progress(detail: &TaskDetail) -> String {
    let task = &detail.task;
    let mut parts = vec![format!("{} of {} files", task.files_transferred, task.files)];
    parts.push(format::bytes(task.bytes_transferred));
    if detail.bytes_per_second > 0 {
        parts.push(format::rate(detail.bytes_per_second));
    }
    parts.join(" · ")
}

#[component]
pub fn TransferTasksPage() -> impl IntoView {
    let url = PageUrl::current("/transfer/tasks");
    let account = url.get("account");
    let data = Resource::new_blocking(move || account.clone(), transfer_tasks_page);
    view! {
        <Title text="Your transfers · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Ok(page) => view! { <TaskList page=page /> }.into_any(),
                    Err(AppError::NotSignedIn) => view! { <Redirect path="/sign-in?next=/transfer/tasks" /> }.into_any(),
                    Err(err) => view! { <div class="alert alert-error" role="alert">{err.to_string()}</div> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn TaskList(page: TasksView) -> impl IntoView {
    let Some(account) = page.account else {
        return view! {
            <div class="page-wide">
                <h1>"Your transfers"</h1>
                <p class="lead">"Link a Globus account first: transfers run with your linked Globus account."</p>
            </div>
        }
        .into_any();
    };
    let body = match page.tasks {
        None => None,
        Some(Err(problem)) => Some(view! { <TaskProblem problem=problem account=account.clone() /> }.into_any()),
        Some(Ok(tasks)) if tasks.is_empty() => Some(
            view! { <p class="muted">"No transfers yet. "<a href="/transfer">"Start one"</a></p> }.into_any(),
        ),
        Some(Ok(tasks)) => Some(
            view! {
                <table class="data-table">
                    <caption class="visually-hidden">"Your recent transfers, newest first"</caption>
                    <thead>
                        <tr>
                            <th scope="col">"Transfer"</th>
                            <th scope="col">"Status"</th>
                            <th scope="col">"From → To"</th>
                            <th scope="col">"Progress"</th>
                            <th scope="col">"Requested"</th>
                        </tr>
                    </thead>
                    <tbody>
                        {tasks
                            .into_iter()
                            .map(|detail| {
                                let task = &detail.task;
                                let name = task.label.clone().unwrap_or_else(|| task.task_id.clone());
                                view! {
                                    <tr>
                                        <th scope="row"><a href=task_href(&account.id, &task.task_id)>{name}</a></th>
                                        <td><TaskStatus account=account.id.clone() task_id=task.task_id.clone() status=task.status.clone() /></td>
                                        <td>{format!("{} → {}", task.source, task.destination)}</td>
                                        <td>{progress(&detail)}</td>
                                        <td>{task.request_time.clone()}</td>
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
        <div class="page-wide">
            <h1>"Your transfers"</h1>
            <p class="lead">
                {format!("Transfers of {} at {}. ", account.label, account.provider_name)}
                <a href=format!("/transfer?account={}", encode(&account.id))>"Start a transfer"</a>
            </p>
            <section class="panel">{body}</section>
        </div>
    }
    .into_any()
}

#[component]
pub fn TransferTaskPage() -> impl IntoView {
    let url = PageUrl::current("/transfer/tasks");
    let task_id = use_params_map().read_untracked().get("id").unwrap_or_default();
    let account = url.get("account").unwrap_or_default();
    let data = Resource::new_blocking(
        move || (account.clone(), task_id.clone()),
        |(account, task_id)| transfer_task_page(account, task_id),
    );
    view! {
        <Title text="Transfer · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let url = url.clone();
                Suspend::new(async move {
                    match data.await {
                        Ok(page) => view! { <TaskPage page=page url=url /> }.into_any(),
                        Err(AppError::NotSignedIn) => view! { <Redirect path="/sign-in?next=/transfer/tasks" /> }.into_any(),
                        Err(err) => view! { <div class="page-wide"><h1>"Transfer"</h1><div class="alert alert-error" role="alert">{err.to_string()}</div></div> }.into_any(),
                    }
                })
            }}
        </Suspense>
    }
}

#[component]
fn TaskPage(page: TaskView, url: PageUrl) -> impl IntoView {
    let TaskView { account, task, events } = page;
    let detail = match task {
        Ok(detail) => detail,
        Err(problem) => {
            return view! {
                <div class="page-wide">
                    <h1>"Transfer"</h1>
                    <TaskProblem problem=problem account=account.clone() />
                    <p><a href=format!("/transfer/tasks?account={}", encode(&account.id))>"Your transfers"</a></p>
                </div>
            }
            .into_any();
        }
    };
    let task = detail.task.clone();
    let name = task.label.clone().unwrap_or_else(|| task.task_id.clone());
    let here = task_href(&account.id, &task.task_id);
    let running = !is_final(&task.status);
    // Without JavaScript the page refreshes itself while the task runs; with it, the status island follows it.
    let refresh = running.then(|| view! { <noscript><meta http-equiv="refresh" content="10" /></noscript> });
    let started = url
        .get("started")
        .map(|_| view! { <div class="alert alert-success" role="status">"Transfer started. Globus copies it now; this page follows it."</div> });
    let notice = Notice::from_query(|name| url.get(name))
        .filter(|n| matches!(n, Notice::Cancel(_)))
        .map(|notice| {
            let (ok, message) = notice.message(Reader::Owner, str::to_owned);
            view! { <div class=if ok { "alert alert-success" } else { "alert alert-error" } role=if ok { "status" } else { "alert" }>{message}</div> }
        });
    let cancel = running.then(|| {
        if url.get("confirm").as_deref() == Some("cancel") {
            view! {
                <div class="card confirm" role="group" aria-labelledby="cancel-question">
                    <p id="cancel-question"><strong>{format!("Cancel “{name}”?")}</strong></p>
                    <p>"Files already copied stay where they are; the rest are not copied."</p>
                    <form method="post" action="/api/globus_cancel_task" class="inline-form">
                        <input type="hidden" name="account" value=account.id.clone() />
                        <input type="hidden" name="task_id" value=task.task_id.clone() />
                        <input type="hidden" name="back" value=here.clone() />
                        <button type="submit" class="button button-danger">"Yes, cancel the transfer"</button>
                    </form>
                    <a href=here.clone()>"No, keep it running"</a>
                </div>
            }
            .into_any()
        } else {
            view! { <p><a class="button button-ghost" href=format!("{here}&confirm=cancel")>"Cancel transfer…"</a></p> }
                .into_any()
        }
    });
    let failure = detail
        .fatal_error
        .clone()
        .map(|why| view! { <p class="alert alert-error" role="alert">{format!("It stopped: {why}")}</p> });
    let skipped = (detail.files_skipped > 0 || detail.faults > 0).then(|| {
        view! {
            <p class="muted">
                {format!(
                    "{} file(s) skipped (already there, by the sync level); {} fault(s) retried by Globus.",
                    detail.files_skipped, detail.faults
                )}
            </p>
        }
    });
    let events = events.map(|events| match events {
        Ok(events) if events.is_empty() => view! { <p class="muted">"No events yet."</p> }.into_any(),
        Ok(events) => view! { <EventList events=events /> }.into_any(),
        Err(problem) => view! { <p class="alert alert-error" role="alert">{problem.message()}</p> }.into_any(),
    });
    view! {
        {refresh}
        <div class="page-wide">
            <p><a href=format!("/transfer/tasks?account={}", encode(&account.id))>"← Your transfers"</a></p>
            <h1>{format!("Transfer “{name}”")}</h1>
            {started}
            {notice}
            <section class="panel" aria-labelledby="task-heading">
                <h2 id="task-heading" class="visually-hidden">"Status"</h2>
                <dl class="facts">
                    <dt>"Status"</dt>
                    <dd><TaskStatus account=account.id.clone() task_id=task.task_id.clone() status=task.status.clone() /></dd>
                    <dt>"From"</dt>
                    <dd>{task.source.clone()}</dd>
                    <dt>"To"</dt>
                    <dd>{task.destination.clone()}</dd>
                    <dt>"Progress"</dt>
                    <dd>{progress(&detail)}</dd>
                    <dt>"Requested"</dt>
                    <dd>{task.request_time.clone()}</dd>
                    <dt>"Finished"</dt>
                    <dd>{task.completion_time.clone().unwrap_or_else(|| "not yet".into())}</dd>
                    <dt>"Task id"</dt>
                    <dd><code>{task.task_id.clone()}</code></dd>
                </dl>
                {failure}
                {skipped}
                {cancel}
            </section>
            <section class="panel" aria-labelledby="events-heading">
                <h2 id="events-heading">"What happened"</h2>
                {events}
            </section>
        </div>
    }
    .into_any()
}

/// A task event in words: Globus' codes as sentences, its description and details as it wrote them.
fn event_words(event: &TaskEvent) -> String {
    let said = match event.code.as_str() {
        "STARTED" => "Globus started the transfer.",
        "SUCCEEDED" => "Every file was copied.",
        "CANCELED" => "The transfer was cancelled.",
        "FILE_NOT_FOUND" => "A file was not found at the source, so it was not copied.",
        "PERMISSION_DENIED" => "Globus was not allowed to read or write a file.",
        "CHECKSUM_MISMATCH" => "A copied file's checksum did not match; Globus copies it again.",
        "CONNECT_FAILED" | "CONNECTION_RESET" => "Globus lost the connection to a collection and retries.",
        "QUOTA_EXCEEDED" => "The destination is full (its quota is reached).",
        "PAUSED" => "The transfer was paused.",
        "SKIPPED" => "A file was skipped.",
        _ => "",
    };
    if said.is_empty() {
        event.description.clone()
    } else {
        said.to_owned()
    }
}

#[component]
fn EventList(events: Vec<TaskEvent>) -> impl IntoView {
    view! {
        <ol class="events" reversed>
            {events
                .into_iter()
                .map(|e| {
                    let words = event_words(&e);
                    let details = (!e.details.is_empty() && e.details != words).then(|| view! { <span class="muted">{format!(" {}", e.details)}</span> });
                    view! {
                        <li class=if e.is_error { "event event-error" } else { "event" }>
                            <time>{e.time.clone()}</time>" "
                            {if e.is_error { "⚠ " } else { "" }}
                            {words}
                            {details}
                        </li>
                    }
                })
                .collect_view()}
        </ol>
    }
}

#[component]
fn TaskProblem(problem: ActionProblem, account: ActionAccount) -> impl IntoView {
    let fix = match &problem {
        ActionProblem::NeedsReconnect { .. } => Some(
            view! { <LinkForm provider=account.provider.clone() account=account.id.clone() intent="reconnect" label="Reconnect" /> }
                .into_any(),
        ),
        ActionProblem::NeedsConsent { .. } => Some(
            view! { <LinkForm provider=account.provider.clone() account=account.id.clone() intent="grant" label="Grant access" /> }
                .into_any(),
        ),
        _ => None,
    };
    let message = match &problem {
        ActionProblem::NotFound { what, .. } if what == "task" => {
            "No such transfer for this account: it may belong to another of your accounts.".to_owned()
        }
        other => other.message(),
    };
    view! {
        <div class="alert alert-error" role="alert">
            <p>{message}</p>
            {fix}
        </div>
    }
}
