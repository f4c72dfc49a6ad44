//! Every integration test, in one binary: the app is linked once rather than once per file (issue 20). Each test
//! has its own app and its own database (SQLite in a temporary directory, or a fresh PostgreSQL database), and the
//! apps of tests running at once serve side by side on one runtime. Each stops with its test
//! (`Application::run_until`: background work, pool, demo provider), and what an app limits is its own (the audit
//! export's permits), so one test cannot take another's turn; what the process shares by design (one password hash
//! per core, the metrics registry) only delays. A request no app answers fails its test after 60 s with its URL
//! (`support::TestApp`), rather than hanging the run.
//!
//! The tests that observe what is the whole process's (metrics counters, memory) are in `tests/process/`, which
//! runs one app at a time.

/// Apps of different tests run side by side (`support::TestApp` takes a turn only where this is true).
const ONE_APP_AT_A_TIME: bool = false;

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod actions;
mod activity;
mod admin;
mod audit;
mod auth;
mod cli;
mod connect;
mod delegation;
mod demo_provider;
mod disconnect;
mod file_manager;
mod http;
mod layering;
mod linking;
mod provider_presets;
mod service_api;
mod status_owner;
mod webhooks;
mod webhooks_crash;
