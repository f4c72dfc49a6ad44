//! A Globus task's status that follows the task while the page is open: the server renders the status it read;
//! with JavaScript on, the island asks again every two seconds (`globus_task`) until the task is done. Without
//! JavaScript, reloading the page shows the news. The text is a polite live region, so a screen reader hears
//! "SUCCEEDED" when it happens.

use leptos::prelude::*;

/// Statuses after which a task does not change any more.
pub fn is_final(status: &str) -> bool {
    matches!(status, "SUCCEEDED" | "FAILED")
}

#[island]
pub fn TaskStatus(account: String, task_id: String, status: String) -> impl IntoView {
    let (status, set_status) = signal(status);
    #[cfg(feature = "hydrate")]
    poll(account, task_id, status, set_status, 0);
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_status, account, task_id);
    view! { <span class="task-status" aria-live="polite">{move || status.get()}</span> }
}

/// Asks again after 2 s, doubling up to 30 s (every ask is a call made for the user, and audited); stops when the
/// task is done or an ask fails; skips asks while the tab is hidden.
#[cfg(feature = "hydrate")]
fn poll(account: String, task_id: String, status: ReadSignal<String>, set_status: WriteSignal<String>, round: u32) {
    // The island may be gone (an in-place outcome replaced by the next one): its signals with it.
    match status.try_get_untracked() {
        Some(now) if !is_final(&now) => {}
        _ => return,
    }
    let delay = std::time::Duration::from_secs((2u64 << round.min(4)).min(30));
    set_timeout(
        move || {
            let hidden = leptos::prelude::document().hidden();
            leptos::task::spawn_local(async move {
                if !hidden {
                    match crate::actions::api::globus_task(account.clone(), task_id.clone()).await {
                        Ok(Ok(task)) => {
                            if set_status.try_set(task.status).is_some() {
                                return; // disposed meanwhile
                            }
                        }
                        _ => return,
                    }
                }
                poll(account, task_id, status, set_status, round + 1);
            });
        },
        delay,
    );
}
