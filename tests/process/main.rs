//! The integration tests that observe what belongs to the whole process rather than to one app: the metrics
//! counters (`/metrics` counts since the process started) and the process's memory (RSS). They run one app at a
//! time, in a binary of their own, so no other test's app moves what they measure; everything else is in
//! `tests/it/`.

/// Each test's apps run alone (`support::TestApp` holds a turn for its lifetime).
const ONE_APP_AT_A_TIME: bool = true;

// Shared with tests/it/, which uses all of it (and checks that nothing in it is dead); this binary uses a part.
#[allow(dead_code)]
#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod hostile_provider;
mod metrics;
