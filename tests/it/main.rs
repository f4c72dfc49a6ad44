//! Every integration test, in one binary: the app is linked once rather than once per file (issue 20), and the
//! tests run side by side, each with its own app and its own database (SQLite in a temporary directory, or a fresh
//! PostgreSQL database).
//!
//! Apps in one process share what is the process's own: its metrics counters and its memory. The tests that observe
//! those are in `tests/process/`, which runs one app at a time.

/// Apps run side by side here.
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
mod http;
mod layering;
mod linking;
mod provider_presets;
mod service_api;
mod status_owner;
mod webhooks;
mod webhooks_crash;
