//! onbehalf: a Leptos full-stack application that links users' accounts at OAuth 2.0 providers and acts for them.
//!
//! The crate builds twice: with `ssr` it is the server (axum, sqlx, sessions), with `hydrate` it is the WASM that
//! makes the server-rendered pages interactive. Server-only modules are gated so they never reach the browser.

pub mod accounts;
pub mod actions;
pub mod activity;
pub mod admin;
pub mod app;
pub mod audit;
pub mod auth;
pub mod components;
pub mod connect;
pub mod datetime;
pub mod error;
pub mod notice;
pub mod pages;
pub mod query;
pub mod webhooks;

/// The server's allocator. Rendering a page allocates per element, attribute and formatted string; with glibc's
/// malloc that was about 30 % of a page's CPU time (BENCHMARKS.md, "Linked-accounts page"). Declared here, not in
/// `main.rs`, so the benches and tests measure and run what production runs. Its arenas are committed as they are
/// used, not up front (`.cargo/config.toml`): eager commit kept the idle server at 35 MB instead of ~20 MB.
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod delegation;
#[cfg(feature = "ssr")]
pub mod demo;
#[cfg(feature = "ssr")]
pub mod digest;
#[cfg(feature = "ssr")]
pub mod http;
#[cfg(feature = "ssr")]
pub mod metrics;
#[cfg(feature = "ssr")]
pub mod providers;
#[cfg(feature = "ssr")]
pub mod seed;
#[cfg(feature = "ssr")]
pub mod service_api;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod tokens;

/// Entry point of the WASM bundle: makes the islands (`#[island]` components: the forms and buttons) of the
/// server-rendered page interactive. Everything else is HTML from the server and never ships as WASM.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // Marks the document as interactive: end-to-end tests wait for it before they click, so that a page which
    // failed to hydrate cannot pass by falling back to plain form posts. Leptos' loader hydrates the islands right
    // after this function returns, in one chain of microtasks (island_script.js); a zero timeout runs after that
    // chain, when every island is live.
    leptos::prelude::set_timeout(
        || {
            if let Some(root) = leptos::prelude::document().document_element() {
                let _ = root.set_attribute("data-hydrated", "");
            }
        },
        std::time::Duration::ZERO,
    );
}
