//! A live countdown to an instant ("in 47 min 12 s", then "expired"). The server renders it with its own clock;
//! the island then ticks once a second with the browser's. The first paint and the hydrated text agree, so nothing
//! moves when hydration finishes; the width is fixed by tabular digits (style/main.css `.countdown`).

use leptos::prelude::*;

use crate::datetime::{format_time, iso_time, until};

#[island]
pub fn Countdown(
    /// Unix ms.
    at: i64,
    /// The server's clock when it rendered the page (Unix ms).
    now: i64,
) -> impl IntoView {
    let (now, set_now) = signal(now);
    #[cfg(feature = "hydrate")]
    {
        let handle = set_interval_with_handle(
            move || set_now.set(js_sys::Date::now() as i64),
            std::time::Duration::from_secs(1),
        );
        if let Ok(handle) = handle {
            on_cleanup(move || handle.clear());
        }
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = set_now;
    view! {
        <time class="countdown" datetime=iso_time(at) title=format_time(at)>
            {move || until(at - now.get())}
        </time>
    }
}
