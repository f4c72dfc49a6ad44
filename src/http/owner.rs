//! Every request starts with no Leptos owner on its thread.
//!
//! leptos_integration_utils (`build_response`, under every page leptos_axum renders) makes each page's root owner
//! with `Owner::new_root`, which makes it the worker thread's current owner and never puts the previous one back.
//! While that page is still rendering (its resources are awaited), whatever runs next on the thread sees that page's
//! contexts through `use_context`: a plain axum route (the OAuth legs, the connect routes) would read the other
//! request's [`crate::state::RequestUser`] and act for its user, and a server function's `Owner::new()` would hang
//! under the other page's owner. CI caught it as an OAuth callback of a signed-in browser that found "no user"
//! (`state_other_session`) while another test's page rendered.
//!
//! [`isolate`] clears the thread's current owner before each poll of the request's future. Leptos's own futures set
//! the owner they need at every poll (`ScopedFuture`), so nothing of theirs relies on what a previous poll left.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use axum::{extract::Request, middleware::Next, response::Response};
use leptos::prelude::Owner;

/// Middleware: runs the rest of the stack for this request with no inherited owner (see the module docs).
pub async fn isolate(req: Request, next: Next) -> Response {
    Unowned(Box::pin(next.run(req))).await
}

/// Polls its future with no current owner on the thread.
pub struct Unowned<F>(pub Pin<Box<F>>);

impl<F: Future> Future for Unowned<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        if let Some(leaked) = Owner::current() {
            leaked.unset();
        }
        self.0.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Future, pin::Pin, task::Poll};

    use leptos::prelude::{Owner, provide_context, use_context};

    use super::Unowned;

    #[derive(Clone, Debug, PartialEq)]
    struct OtherRequest(&'static str);

    /// What leptos_integration_utils does for a page: the page's root owner stays current after it returns.
    fn leak_a_page_owner() -> Owner {
        let page = Owner::new_root(None);
        page.with(|| provide_context(OtherRequest("a page being rendered")));
        page
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_page_owner_left_on_the_thread_is_not_seen_by_the_next_request() {
        let page = leak_a_page_owner();
        // The hazard is real: without the wrapper, the next future on the thread reads the page's context.
        assert_eq!(
            async { use_context::<OtherRequest>() }.await,
            Some(OtherRequest("a page being rendered"))
        );
        assert_eq!(Unowned(Box::pin(async { use_context::<OtherRequest>() })).await, None);

        // Cleared before every poll, not only the first: another page may leak its owner while this request waits.
        let mut waiting = Unowned(Box::pin(async {
            tokio::task::yield_now().await;
            use_context::<OtherRequest>()
        }));
        let first = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut waiting).poll(cx))).await;
        assert!(first.is_pending());
        let _another = leak_a_page_owner();
        assert_eq!(waiting.await, None);
        drop(page);
    }
}
