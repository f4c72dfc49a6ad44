#!/usr/bin/env bash
# Issue 18: the outbox adds at most 10 % to the link callback's and the refresh storm's time. Builds the commit
# before webhooks (BASE, default d0f9c0a) in a worktree and runs its link_callbacks and delegated_calls benches side by
# side with this checkout's, alternating, ROUNDS times each, and prints every run's figures. This checkout runs three
# ways: with no webhook endpoint; BENCH_WEBHOOK=outbox (an endpoint for every event, so every change also writes its
# event and delivery, but no dispatcher); BENCH_WEBHOOK=1 (the same, and the dispatcher sends each one to a receiver
# in the same process, on the same two cores). Compare the columns of the same run, and medians of many rounds: these
# machines drift ±15 % between runs.
#   bash benches/outbox_overhead.sh [ROUNDS]
#   PG=1 bash benches/outbox_overhead.sh [ROUNDS]   PostgreSQL (127.0.0.1:5432, trust auth): one callback at a time
#                                                   only, a fresh database per run (with 32 in flight the base fails
#                                                   on PostgreSQL: concurrent first links of one identity)
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=${BASE:-d0f9c0a}
ROUNDS=${1:-2}
base_dir=${BASE_DIR:-/tmp/onbehalf-base-$BASE}
if [ ! -d "$base_dir" ]; then
  git worktree add --detach "$base_dir" "$BASE" >/dev/null
fi
# The base's callback bench learns BENCH_IN_FLIGHT exactly as this checkout's has it (the same two lines).
sed -i 's|^const IN_FLIGHT: usize = 32;$|static IN_FLIGHT: std::sync::LazyLock<usize> = std::sync::LazyLock::new(\|\| std::env::var("BENCH_IN_FLIGHT").ok().and_then(\|v\| v.parse().ok()).unwrap_or(32));|; s|0\.\.IN_FLIGHT {|0..*IN_FLIGHT {|' \
  "$base_dir/benches/link_callbacks.rs"
export CARGO_TARGET_DIR_BASE=${CARGO_TARGET_DIR_BASE:-/tmp/onbehalf-base-target}
build() { (cd "$1" && CARGO_TARGET_DIR="$2" cargo bench --features ssr --no-run --bench link_callbacks --bench delegated_calls >/dev/null 2>&1); }
echo "building $BASE in $base_dir (its own target dir) and this checkout…"
build "$base_dir" "$CARGO_TARGET_DIR_BASE"
build . "${CARGO_TARGET_DIR:-target}"
fresh_db=0
run() { # label dir target [env]
  local label=$1 dir=$2 target=$3; shift 3
  if [ "${PG:-0}" = 1 ]; then
    fresh_db=$((fresh_db + 1))
    local db="outbox_overhead_$$_$fresh_db"
    psql -q -h 127.0.0.1 -U postgres -c "CREATE DATABASE $db" postgres
    (cd "$dir" && env "$@" BENCH_IN_FLIGHT=1 BENCH_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" \
      CARGO_TARGET_DIR="$target" cargo bench --features ssr --bench link_callbacks 2>/dev/null) |
      grep -E "links/s" | sed "s/^/$label one at a time, PostgreSQL: /" || true
    psql -q -h 127.0.0.1 -U postgres -c "DROP DATABASE $db" postgres
    return
  fi
  for bench in link_callbacks delegated_calls; do
    (cd "$dir" && env "$@" CARGO_TARGET_DIR="$target" cargo bench --features ssr --bench "$bench" 2>/dev/null) |
      grep -E "links/s|storm|calls/s" | sed "s/^/$label $bench: /" || true
  done
  # One callback at a time: its own time, nothing queueing behind SQLite's one writer.
  (cd "$dir" && env "$@" BENCH_IN_FLIGHT=1 CARGO_TARGET_DIR="$target" cargo bench --features ssr --bench link_callbacks \
    2>/dev/null) | grep -E "links/s" | sed "s/^/$label one at a time: /" || true
}
for round in $(seq "$ROUNDS"); do
  echo "== round $round"
  run "base ($BASE)" "$base_dir" "$CARGO_TARGET_DIR_BASE"
  run "HEAD, no endpoint" . "${CARGO_TARGET_DIR:-target}"
  run "HEAD, outbox only" . "${CARGO_TARGET_DIR:-target}" BENCH_WEBHOOK=outbox
  run "HEAD, delivered" . "${CARGO_TARGET_DIR:-target}" BENCH_WEBHOOK=1
done
