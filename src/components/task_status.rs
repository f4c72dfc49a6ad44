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
    {
        use crate::actions::api::globus_task;
        let busy = StoredValue::new(false);
        let handle = set_interval_with_handle(
            move || {
                if is_final(&status.get_untracked()) || busy.get_value() {
                    return;
                }
                busy.set_value(true);
                let (account, task_id) = (account.clone(), task_id.clone());
                leptos::task::spawn_local(async move {
                    if let Ok(Ok(task)) = globus_task(account, task_id).await {
                        set_status.set(task.status);
                    }
                    busy.set_value(false);
                });
            },
            std::time::Duration::from_secs(2),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = (set_status, account, task_id);
    view! { <span class="task-status" aria-live="polite">{move || status.get()}</span> }
}
