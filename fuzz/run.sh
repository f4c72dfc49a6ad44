#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 30; CI runs this) from a seed corpus made of the test fixtures and
# the shapes below, and prints how many inputs each ran. libFuzzer needs nightly compiler flags, which stable rustc
# accepts under RUSTC_BOOTSTRAP=1 (no other toolchain can be fetched here). A crash stops the run with a non-zero
# status; its input is kept in fuzz/artifacts/<target>/ (replay: cargo fuzz run <target> <file>).
#
# usage: bash fuzz/run.sh [SECONDS] [--release]
# The targets are built unoptimised (`cargo fuzz --dev`) unless --release is given: for CI's 30-second runs the
# build is most of the cost, and cargo-fuzz's release build (one codegen unit for every crate of the app's tree)
# takes several times as long as the runs it serves (BENCHMARKS.md, "CI and the first run"). For long runs, where
# inputs per second matter more than the build, pass --release.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
mode=--dev
[ "${2:-}" = "--release" ] && mode=--release
export RUSTC_BOOTSTRAP=1 PATH="$HOME/.cargo/bin:$PATH"
if [ "$(cargo fuzz --version 2>/dev/null | awk '{print $2}')" != "0.13.2" ]; then
  CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_LTO=false cargo install cargo-fuzz --locked --version 0.13.2
fi
fixtures=../tests/fixtures/globus

# seed TARGET NAME PREFIX [FILE]: PREFIX (printf format) then FILE's bytes (or stdin) as corpus/TARGET/NAME.
seed() {
  mkdir -p "corpus/$1"
  { printf "$3"; if [ $# -ge 4 ]; then cat "$4"; else cat; fi; } >"corpus/$1/seed-$2"
}
for f in "$fixtures"/auth.*.json; do
  name=$(basename "$f" .json)
  seed token_response "globus-$name" '\000\000' "$f"   # Globus, 200, JSON
  seed token_response "oidc-$name" '\002\000' "$f"     # a standard provider
  seed token_response "github-400-$name" '\001\003' "$f"
  seed consent_error "$name" '\000' "$f"
done
seed token_response github-error-under-200 '\001\000' <<<'{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}'
seed token_response html-502 '\200\010' <<<'<!DOCTYPE html><html><body>Bad gateway</body></html>'
seed consent_error gare '\000' <<<'{"code":"ConsentRequired","authorization_parameters":{"session_message":"more","required_scopes":["urn:globus:auth:scope:transfer.api.globus.org:all[*https://auth.globus.org/scopes/x/data_access]"]}}'
seed consent_error transfer-legacy '\001' <<<'{"code":"ConsentRequired","message":"Missing required data_access consent","required_scopes":["urn:globus:auth:scope:transfer.api.globus.org:all"]}'
seed consent_error action-provider '\001' <<<'{"code":"ConsentRequired","required_scope":"https://auth.globus.org/scopes/abc/action_all"}'
seed consent_error in-errors-list '\000' <<<'{"errors":[{"code":"AuthorizationRequired","authorization_parameters":{"session_required_identities":["id"]}}]}'
printf '\000Bearer realm="api", error="insufficient_scope", scope="repo read:org"\000{}' >corpus/consent_error/seed-www-authenticate
mkdir -p corpus/callback_query corpus/discovery_document corpus/config_file
printf 'code=0123456789abcdef01&state=fedcba9876543210fe&iss=https%%3A%%2F%%2Fauth.globus.org' >corpus/callback_query/seed-code
printf 'error=access_denied&error_description=The+user+said+no&state=abc' >corpus/callback_query/seed-denied
printf 'state=a&state=b&code=&error=%%3Cscript%%3E' >corpus/callback_query/seed-odd
for issuer in https://issuer.example http://127.0.0.1:8080; do
  name=$(printf '%s' "$issuer" | tr -c 'a-z0-9' '-')
  printf '{"issuer":"%s","authorization_endpoint":"%s/auth","token_endpoint":"%s/token","userinfo_endpoint":"%s/me","jwks_uri":"%s/jwks","revocation_endpoint":"%s/token/revocation","introspection_endpoint":"%s/token/introspection","authorization_response_iss_parameter_supported":true,"id_token_signing_alg_values_supported":["RS256","ES256"]}' \
    "$issuer" "$issuer" "$issuer" "$issuer" "$issuer" "$issuer" "$issuer" >"corpus/discovery_document/seed-$name"
done
cp ../onbehalf.example.toml corpus/config_file/seed-example.toml
printf '[server]\nbind = "127.0.0.1:3000"\npublic_url = "https://example.org"\n[providers.g]\nkind = "globus"\nclient_id = "c"\nclient_secret = "s"\n' >corpus/config_file/seed-small.toml

cargo fuzz build "$mode"
for target in token_response consent_error callback_query discovery_document config_file; do
  log=$(mktemp)
  if ! cargo fuzz run "$mode" "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
    -print_final_stats=1 >"$log" 2>&1; then
    tail -n 40 "$log"
    echo "fuzz target $target crashed; the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  runs=$(awk '/stat::number_of_executed_units/ {print $2}' "$log")
  echo "$target: $runs inputs in ${seconds} s, no crash (corpus: $(ls "corpus/$target" | wc -l) files)"
  rm -f "$log"
done
