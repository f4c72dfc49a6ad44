#!/usr/bin/env bash
# Measures the numbers BENCHMARKS.md reports, on the release build (`cargo leptos build --release` first).
#   bash benches/run.sh           bundle size, idle RSS, and SSR throughput with wrk (apt package `wrk`)
#   bash benches/run.sh --check   bundle size and idle RSS only, failing when over budget (run by .ci/test)
# Link-callback throughput (issue 3) is a Rust bench: cargo bench --features ssr --bench link_callbacks
# Budgets (issue 2): WASM+JS+CSS gzipped <= 250 KB; idle RSS <= 40 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_JS_BUDGET_KB=250
RSS_BUDGET_MB=40
PORT=${BENCH_PORT:-3290}
mode=${1:-all}
fail=0

pkg=target/site/pkg
[ -f "$pkg/onbehalf.wasm" ] || { echo "error: no release build in $pkg; run: cargo leptos build --release" >&2; exit 1; }
gz() { gzip -9 -c "$1" | wc -c; }
wasm=$(gz "$pkg/onbehalf.wasm"); css=$(gz "$pkg/onbehalf.css")
# The app's JavaScript: Leptos's loader, and the file manager's own script (public/, served at the site's root).
js=$(( $(gz "$pkg/onbehalf.js") + $(gz target/site/file-manager.js) ))
total_kb=$(( (wasm + js + css + 1023) / 1024 ))
printf 'bundle (gzip -9): wasm %d B, js %d B, css %d B, total %d KB (budget %d KB)\n' "$wasm" "$js" "$css" "$total_kb" "$WASM_JS_BUDGET_KB"
[ "$total_kb" -le "$WASM_JS_BUDGET_KB" ] || { echo "FAIL: bundle over budget"; fail=1; }

work=$(mktemp -d)
ONBEHALF_SERVER__BIND=127.0.0.1:$PORT ONBEHALF_DEMO__BIND=127.0.0.1:$((PORT + 1)) \
  ONBEHALF_DATABASE__URL="sqlite://$work/bench.db" RUST_LOG=warn \
  ./target/release/onbehalf serve &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
sleep 1
start_kb=$(rss_kb)
# Idle after real work: 200 page renders, then a pause.
for _ in $(seq 200); do curl -fs "http://127.0.0.1:$PORT/sign-in" >/dev/null; done
sleep 2
idle_kb=$(rss_kb)
printf 'RSS: %.1f MB after start, %.1f MB idle after 200 page renders (budget %d MB)\n' \
  "$(echo "$start_kb/1024" | bc -l)" "$(echo "$idle_kb/1024" | bc -l)" "$RSS_BUDGET_MB"
[ "$idle_kb" -le $((RSS_BUDGET_MB * 1024)) ] || { echo "FAIL: idle RSS over budget"; fail=1; }

if [ "$mode" != "--check" ]; then
  command -v wrk >/dev/null || { echo "error: wrk is missing (apt-get install wrk)" >&2; exit 1; }
  for path in /healthz /favicon.svg /sign-in; do
    wrk -t2 -c32 -d10s "http://127.0.0.1:$PORT$path" >/dev/null 2>&1 # warm-up
    printf '%-14s ' "$path"
    wrk -t2 -c32 -d15s --latency "http://127.0.0.1:$PORT$path" |
      awk '/Requests\/sec/ {rps=$2} /^ +50%/ {p50=$2} /^ +99%/ {p99=$2} /Non-2xx/ {err=$NF}
           END {printf "%s req/s, p50 %s, p99 %s%s\n", rps, p50, p99, (err ? ", non-2xx " err : "")}'
  done
  printf 'RSS after load: %.1f MB\n' "$(echo "$(rss_kb)/1024" | bc -l)"
fi
exit $fail
