//! Probes for load balancers and orchestrators: `/healthz` says the process serves HTTP, `/readyz` that it can
//! also reach its database.

use axum::{extract::State, http::StatusCode};

use crate::db::Db;

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(db): State<Db>) -> (StatusCode, &'static str) {
    // Not asking while the watch knows it is away: the question would wait out the pool's acquire timeout.
    if db.is_reachable() && db.is_ready().await {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "database unavailable")
    }
}
