//! `/admin/webhooks` (the endpoints and their health) and `/admin/webhooks/{id}` (one endpoint's deliveries, one
//! delivery's request and answers, and the buttons). Plain forms, no island: the pages work with JavaScript off and
//! add nothing to the bundle.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::{use_params_map, use_query_map};

use super::{AdminNav, gate, time_cell};
use crate::{
    admin::{
        DeliveryDetail, WebhookDetail, WebhookList,
        api::{admin_webhook, admin_webhooks},
    },
    query::encode,
    webhooks::{DeliveryView, EndpointView},
};

/// The endpoint's health as a badge and a sentence.
fn health(e: &EndpointView) -> AnyView {
    match (&e.disabled_reason, e.enabled, e.consecutive_failures) {
        (_, true, 0) => view! { <span class="badge badge-ok">"Healthy"</span> }.into_any(),
        (_, true, n) => view! { <span class="badge badge-warn">{format!("Failing: {n} in a row")}</span> }.into_any(),
        (reason, false, _) => view! {
            <span class="badge badge-error">"Disabled"</span>
            {reason.clone().map(|r| view! { <div class="small muted">{r}</div> })}
        }
        .into_any(),
    }
}

fn events(e: &EndpointView) -> String {
    if e.events.is_empty() {
        "Every event".to_owned()
    } else {
        e.events.join(", ")
    }
}

#[component]
pub fn AdminWebhooksPage() -> impl IntoView {
    let data = Resource::new_blocking(|| (), |_| admin_webhooks());
    view! {
        <Title text="Webhooks · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                gate(data.await, "/admin/webhooks", |list| view! { <WebhooksView list=list /> }.into_any())
            })}
        </Suspense>
    }
}

#[component]
fn WebhooksView(list: WebhookList) -> impl IntoView {
    let WebhookList { endpoints, now } = list;
    let table = if endpoints.is_empty() {
        view! {
            <p class="muted empty-state">
                "No webhook endpoints. Add one with " <code>"onbehalf webhook add --url https://…"</code>
                " (its signing secret is printed once)."
            </p>
        }
        .into_any()
    } else {
        let rows = endpoints
            .into_iter()
            .map(|e| {
                let href = format!("/admin/webhooks/{}", encode(&e.id));
                view! {
                    <tr>
                        <td>
                            <a href=href>{e.url.clone()}</a>
                            {e.description.clone().map(|d| view! { <div class="small muted">{d}</div> })}
                        </td>
                        <td class="small">{events(&e)}</td>
                        <td>{health(&e)}</td>
                        <td>{time_cell(e.last_success_at, now, "never")}</td>
                        <td>{time_cell(e.failing_since, now, "—")}</td>
                    </tr>
                }
            })
            .collect_view();
        view! {
            <table class="data-table">
                <thead><tr>
                    <th scope="col">"Endpoint"</th><th scope="col">"Events"</th><th scope="col">"Health"</th>
                    <th scope="col">"Last success"</th><th scope="col">"Failing since"</th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>"Webhooks"</h1>
            <p class="muted">
                "Signed POSTs (Standard Webhooks) telling the platform when a link changes. Retried for three days; "
                "an endpoint that fails for a day, or answers 410 Gone, is disabled."
            </p>
            {table}
        </div>
    }
}

#[component]
pub fn AdminWebhookPage() -> impl IntoView {
    let params = use_params_map();
    let query = use_query_map();
    let request = move || {
        (
            params.read().get("id").unwrap_or_default(),
            query.read().get("delivery").and_then(|d| d.parse::<i64>().ok()),
        )
    };
    let data = Resource::new_blocking(request, |(id, delivery)| admin_webhook(id, delivery));
    let notice = move || {
        let q = query.read_untracked();
        let (class, role, text) = match (q.get("error").as_deref(), q.get("done").as_deref()) {
            (Some("since"), _) => (
                "alert alert-error",
                "alert",
                "Give a date and time (UTC) to replay from.".to_owned(),
            ),
            (Some("event"), _) => ("alert alert-error", "alert", "That event is no longer kept.".to_owned()),
            (Some(_), _) => (
                "alert alert-error",
                "alert",
                "That did not work. Try again; the server log has the cause.".to_owned(),
            ),
            (None, Some("test")) => ("alert alert-success", "status", "Test event queued.".to_owned()),
            (None, Some("test-waits")) => (
                "alert alert-success",
                "status",
                "Test event queued; the endpoint is disabled, so it goes out once enabled.".to_owned(),
            ),
            (None, Some("disabled")) => (
                "alert alert-success",
                "status",
                "Disabled: nothing is sent to it.".to_owned(),
            ),
            (None, Some("enabled")) => (
                "alert alert-success",
                "status",
                "Enabled: deliveries go out again.".to_owned(),
            ),
            (None, Some(done)) => match done.strip_prefix("queued-") {
                Some("1") => ("alert alert-success", "status", "1 delivery queued.".to_owned()),
                Some(n) => ("alert alert-success", "status", format!("{n} deliveries queued.")),
                None => return None,
            },
            (None, None) => return None,
        };
        Some(view! { <div class=class role=role>{text}</div> })
    };
    view! {
        <Title text="Webhook endpoint · Admin · onbehalf" />
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || Suspend::new(async move {
                let here = format!("/admin/webhooks/{}", encode(&params.read_untracked().get("id").unwrap_or_default()));
                gate(data.await, &here, |detail| view! { {notice()} <WebhookView detail=detail /> }.into_any())
            })}
        </Suspense>
    }
}

/// One button of an endpoint: a plain form posting to `admin_webhook_action`.
fn button(endpoint: String, action: &'static str, label: &'static str, class: &'static str) -> impl IntoView {
    view! {
        <form method="post" action="/api/admin_webhook_action">
            <input type="hidden" name="endpoint" value=endpoint />
            <input type="hidden" name="action" value=action />
            <button type="submit" class=class>{label}</button>
        </form>
    }
}

fn state_badge(d: &DeliveryView) -> AnyView {
    let (class, text) = match d.state.as_str() {
        "delivered" => ("badge badge-ok", "Delivered"),
        "failed" => ("badge badge-error", "Failed"),
        _ if d.attempts > 0 => ("badge badge-warn", "Retrying"),
        _ if d.waiting => ("badge", "Waiting"),
        _ => ("badge badge-warn", "Pending"),
    };
    view! { <span class=class>{text}</span> }.into_any()
}

#[component]
fn WebhookView(detail: WebhookDetail) -> impl IntoView {
    let WebhookDetail {
        endpoint: e,
        deliveries,
        delivery,
        now,
    } = detail;
    let id = e.id.clone();
    let toggle = if e.enabled {
        button(id.clone(), "disable", "Disable", "button button-danger-ghost").into_any()
    } else {
        button(id.clone(), "enable", "Enable", "button button-ghost").into_any()
    };
    let rotation = e.previous_secret_until.filter(|until| *until > now).map(|until| {
        view! { <div><dt>"Secret rotation"</dt><dd>"The previous secret also signs until "{time_cell(Some(until), now, "")}</dd></div> }
    });
    let rows = deliveries
        .iter()
        .map(|d| {
            let href = format!("/admin/webhooks/{}?delivery={}#delivery", encode(&id), d.id);
            let status = d
                .last_status
                .map(|s| s.to_string())
                .or_else(|| d.last_error.clone())
                .unwrap_or_else(|| "—".into());
            let latency = d.last_latency_ms.map(|ms| format!("{ms} ms")).unwrap_or_else(|| "—".into());
            let label = format!("Redeliver {}", d.event_id);
            view! {
                <tr>
                    <td>{time_cell(Some(d.occurred_at), now, "")}</td>
                    <td><a href=href><code>{d.event_type.clone()}</code></a><div class="small muted">{d.event_id.clone()}</div></td>
                    <td>{state_badge(d)}</td>
                    <td class="number">{d.attempts}</td>
                    <td class="small">{status}</td>
                    <td class="number">{latency}</td>
                    <td>{time_cell(d.next_attempt_at, now, if d.waiting { "after the one before" } else { "—" })}</td>
                    <td>
                        <form method="post" action="/api/admin_webhook_action">
                            <input type="hidden" name="endpoint" value=id.clone() />
                            <input type="hidden" name="action" value="redeliver" />
                            <input type="hidden" name="event" value=d.event_id.clone() />
                            <button type="submit" class="button button-ghost" aria-label=label>"Redeliver"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let list = if deliveries.is_empty() {
        view! { <p class="muted empty-state">"Nothing delivered yet."</p> }.into_any()
    } else {
        view! {
            <table class="data-table">
                <caption>"Recent deliveries"</caption>
                <thead><tr>
                    <th scope="col">"Event at"</th><th scope="col">"Event"</th><th scope="col">"State"</th>
                    <th scope="col">"Attempts"</th><th scope="col">"Last answer"</th><th scope="col">"Latency"</th>
                    <th scope="col">"Next attempt"</th><th scope="col"><span class="visually-hidden">"Actions"</span></th>
                </tr></thead>
                <tbody>{rows}</tbody>
            </table>
        }
        .into_any()
    };
    view! {
        <div class="page-wide">
            <AdminNav />
            <h1>{e.url.clone()}</h1>
            <dl class="facts">
                <div><dt>"Id"</dt><dd><code>{e.id.clone()}</code></dd></div>
                <div><dt>"Description"</dt><dd>{e.description.clone().unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Events"</dt><dd>{events(&e)}</dd></div>
                <div><dt>"Health"</dt><dd>{health(&e)}</dd></div>
                <div><dt>"Last success"</dt><dd>{time_cell(e.last_success_at, now, "never")}</dd></div>
                <div><dt>"Failing since"</dt><dd>{time_cell(e.failing_since, now, "—")}</dd></div>
                {rotation}
            </dl>
            <div class="inline-form">
                {button(id.clone(), "test", "Send test event", "button button-ghost")}
                {toggle}
            </div>
            <form method="post" action="/api/admin_webhook_action" class="inline-form">
                <input type="hidden" name="endpoint" value=id.clone() />
                <input type="hidden" name="action" value="replay" />
                <div class="field">
                    <label for="since">"Redeliver every event since (UTC)"</label>
                    <input id="since" name="since" type="datetime-local" required />
                </div>
                <button type="submit" class="button button-ghost">"Redeliver"</button>
            </form>
            {list}
            {delivery.map(|d| view! { <Delivery detail=d now=now /> })}
        </div>
    }
}

#[component]
fn Delivery(detail: DeliveryDetail, now: i64) -> impl IntoView {
    let DeliveryDetail {
        delivery,
        url,
        request_headers,
        body,
        attempts,
    } = detail;
    let headers = |list: Vec<(String, String)>| {
        list.into_iter()
            .map(|(name, value)| format!("{name}: {value}"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let attempts = attempts
        .into_iter()
        .map(|a| {
            let outcome = a
                .status
                .map(|s| format!("HTTP {s}"))
                .or(a.error.clone())
                .unwrap_or_default();
            let sent = headers(a.request_headers);
            let response = headers(a.response_headers);
            view! {
                <section class="panel" aria-label=format!("Attempt {}", a.attempt)>
                    <h3>{format!("Attempt {}: {outcome}, {} ms", a.attempt, a.latency_ms)}" "{time_cell(Some(a.sent_at), now, "")}</h3>
                    <pre class="code-block">{sent}</pre>
                    <h4>"Response headers"</h4>
                    <pre class="code-block">{response}</pre>
                    <h4>"Response body (first 4 KB)"</h4>
                    <pre class="code-block">{a.response_body.unwrap_or_default()}</pre>
                </section>
            }
        })
        .collect_view();
    view! {
        <section id="delivery" aria-labelledby="delivery-title">
            <h2 id="delivery-title">{format!("Delivery of {} ({})", delivery.event_id, delivery.event_type)}</h2>
            <h3>"Request"</h3>
            <pre class="code-block">{format!("POST {url}\n{}\n\n{body}", headers(request_headers))}</pre>
            {attempts}
        </section>
    }
}
