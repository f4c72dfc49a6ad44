//! Every integration test, in one binary: the app is linked once rather than once per file (issue 20). Each test
//! has its own app and its own database (SQLite in a temporary directory, or a fresh PostgreSQL database).
//!
//! Apps still run one at a time: with them side by side, a run hung once (an admin test's request sent and never
//! answered, every thread of the process parked; the cause is not found yet), so the turn stays. The tests that
//! observe what is the whole process's (metrics counters, memory) are in `tests/process/`.

/// Each test's apps run alone (`support::TestApp` holds a turn for its lifetime).
const ONE_APP_AT_A_TIME: bool = true;

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
