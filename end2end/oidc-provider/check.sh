#!/usr/bin/env bash
# Proves that server.mjs behaves as README.md says: starts it in each mode on a
# free loopback port, drives the OAuth/OIDC flows with curl (node only for
# PKCE, JSON and JWT helpers) and asserts every outcome.
# Exit status: 0 when every check passed, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")"

[ -d node_modules/oidc-provider ] || npm ci --no-audit --no-fund >&2 || exit 1

REDIRECT=http://127.0.0.1:9/callback # nothing listens there: we only read Location headers
BASIC=(-u onbehalf:conformance-secret)
TMP=$(mktemp -d)
PID=
PASS=0
FAIL=0

cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null
  # On failure the provider's own reasons (error_detail) help; they go to stderr.
  [ "$FAIL" -eq 0 ] || tail -n 40 "$TMP"/server-*.log >&2
  rm -rf "$TMP"
}
trap cleanup EXIT

check() { # description actual expected
  if [ "$2" == "$3" ]; then
    PASS=$((PASS + 1)); echo "ok   $1 [$2]"
  else
    FAIL=$((FAIL + 1)); echo "FAIL $1: got [$2], want [$3]"
  fi
}

# --- node one-liners -------------------------------------------------------
js() { node -e "$1" -- "${@:2}"; }
# JSON field of a file, empty when absent: json FILE 'd.scope'
json() { js 'const d=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));const v=eval(process.argv[2]);console.log(v===undefined?"":typeof v==="object"?JSON.stringify(v):v)' "$1" "$2"; }
qparam() { js 'console.log(new URL(process.argv[1]).searchParams.get(process.argv[2]) ?? "")' "$1" "$2"; }
new_verifier() { js 'console.log(require("crypto").randomBytes(32).toString("base64url"))'; }
challenge() { js 'console.log(require("crypto").createHash("sha256").update(process.argv[1]).digest("base64url"))' "$1"; }
# Verifies the ID token's RS256 signature against the served JWKS and prints
# its payload as JSON (or "bad signature").
id_token_payload() {
  curl -s "$ISS/jwks" >"$TMP/jwks.json"
  js 'const c=require("crypto"),fs=require("fs");const [h,p,s]=process.argv[1].split(".");
      const hdr=JSON.parse(Buffer.from(h,"base64url"));
      const jwk=JSON.parse(fs.readFileSync(process.argv[2])).keys.find(k=>k.kid===hdr.kid);
      const ok=hdr.alg==="RS256"&&c.verify("sha256",Buffer.from(h+"."+p),c.createPublicKey({key:jwk,format:"jwk"}),Buffer.from(s,"base64url"));
      console.log(ok?Buffer.from(p,"base64url").toString():"bad signature")' "$1" "$TMP/jwks.json"
}

# --- server ------------------------------------------------------------------
start_server() { # mode [extra args]
  stop_server
  node server.mjs --port 0 --mode "$1" --redirect-uri "$REDIRECT" --redirect-uri http://localhost:9/other "${@:2}" \
    >"$TMP/stdout" 2>"$TMP/server-$1.log" &
  PID=$!
  for _ in $(seq 100); do
    grep -q '^listening ' "$TMP/stdout" && break
    sleep 0.1
  done
  ISS=$(sed -n 's/^listening //p' "$TMP/stdout")
  [ -n "$ISS" ] || { echo "server did not start:"; cat "$TMP/server-$1.log"; exit 1; }
  echo "--- $1 mode: $ISS (node server.mjs --mode $1 ${*:2})"
}
stop_server() { [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; PID=; }

# --- HTTP helpers --------------------------------------------------------------
# get_location: curl args... -> sets STATUS and LOC (Location header)
get_location() {
  local out
  out=$(curl -s -o /dev/null -w '%{http_code} %header{location}' "$@")
  STATUS=${out%% *}
  LOC=${out#* }
}
# post: curl args... -> sets STATUS, body in $TMP/body
post() { STATUS=$(curl -s -o "$TMP/body" -w '%{http_code}' "$@"); }

# authorize SCOPE DECISION [extra query] -> the whole browser dance with a fresh
# cookie jar; sets VERIFIER, STATE, NONCE and LOC (the final redirect to the client).
authorize() {
  local jar="$TMP/jar" uid steps
  rm -f "$jar"
  VERIFIER=$(new_verifier)
  STATE=st-$RANDOM NONCE=n-$RANDOM
  get_location -c "$jar" -b "$jar" -G "$ISS/auth" --data-urlencode client_id=onbehalf --data-urlencode response_type=code \
    --data-urlencode "scope=$1" --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "state=$STATE" \
    --data-urlencode "nonce=$NONCE" --data-urlencode "code_challenge=$(challenge "$VERIFIER")" \
    --data-urlencode code_challenge_method=S256 ${3:+--data "$3"}
  steps="$STATUS"
  uid=${LOC#/interaction/}
  [[ $LOC == /interaction/* ]] || { steps+=" (no interaction: $LOC)"; check "interaction sequence" "$steps" "303 200 303 303"; return; }
  steps+=" $(curl -s -o "$TMP/form.html" -w '%{http_code}' -c "$jar" -b "$jar" "$ISS/interaction/$uid")"
  get_location -c "$jar" -b "$jar" --data-urlencode login=ada --data-urlencode "decision=$2" "$ISS/interaction/$uid"
  steps+=" $STATUS"
  [ "$LOC" == "$ISS/auth/$uid" ] || steps+=" (resume at $LOC)"
  get_location -c "$jar" -b "$jar" "$LOC"
  steps+=" $STATUS"
  check "  interaction sequence authorize/GET form/POST form/resume" "$steps" "303 200 303 303"
}

# code_exchange [extra curl args] -> token request for the code in $LOC
code_exchange() {
  post "$ISS/token" --data-urlencode grant_type=authorization_code --data-urlencode "code=$(qparam "$LOC" code)" \
    --data-urlencode "redirect_uri=$REDIRECT" "$@"
}
refresh() { post "$ISS/token" "${BASIC[@]}" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$1"; }
introspect_active() {
  curl -s "${BASIC[@]}" --data-urlencode "token=$1" "$ISS/token/introspection" >"$TMP/intro"
  json "$TMP/intro" 'd.active'
}
has_word() { [[ " $1 " == *" $2 "* ]] && echo yes || echo no; }

# =============================================================================
start_server strict --access-ttl 120

curl -s "$ISS/.well-known/openid-configuration" >"$TMP/disco"
check "discovery lists all endpoints" \
  "$(json "$TMP/disco" '["authorization","token","userinfo","revocation","introspection"].map(e=>!!d[e+"_endpoint"]).concat(!!d.jwks_uri).join(",")')" \
  "true,true,true,true,true,true"
check "discovery: token auth methods" "$(json "$TMP/disco" 'd.token_endpoint_auth_methods_supported.join(" ")')" "client_secret_basic"

echo "a. strict, openid offline_access email, prompt=consent"
authorize "openid offline_access email" allow "prompt=consent"
check "  redirect carries state" "$(qparam "$LOC" state)" "$STATE"
check "  redirect carries iss" "$(qparam "$LOC" iss)" "$ISS"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
cp "$TMP/body" "$TMP/a.json"
check "  token status" "$STATUS" 200
check "  refresh_token present" "$(json "$TMP/a.json" '!!d.refresh_token')" true
check "  scope" "$(json "$TMP/a.json" 'd.scope')" "openid offline_access email"
check "  expires_in follows --access-ttl" "$(json "$TMP/a.json" 'd.expires_in')" 120
AT=$(json "$TMP/a.json" d.access_token)
STATUS=$(curl -s -o "$TMP/me" -w '%{http_code}' -H "Authorization: Bearer $AT" "$ISS/me")
check "  userinfo status" "$STATUS" 200
check "  userinfo claims" "$(json "$TMP/me" '[d.sub,d.email,d.email_verified,d.name].join(",")')" "ada,ada@example.org,true,"
id_token_payload "$(json "$TMP/a.json" d.id_token)" >"$TMP/idt"
check "  id_token iss,aud,sub,nonce (RS256 verified)" "$(json "$TMP/idt" '[d.iss,d.aud,d.sub,d.nonce].join(",")')" "$ISS,onbehalf,ada,$NONCE"
check "  id_token has no azp (single audience)" "$(json "$TMP/idt" 'd.azp')" ""

echo "b. strict, same scope without prompt=consent"
authorize "openid offline_access email" allow
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  token status" "$STATUS" 200
check "  no refresh_token" "$(json "$TMP/body" '!!d.refresh_token')" false
check "  scope lacks offline_access" "$(json "$TMP/body" 'd.scope')" "openid email"

echo "d. refresh rotation and reuse detection (RT1 from a.)"
RT1=$(json "$TMP/a.json" d.refresh_token)
refresh "$RT1"
check "  RT1 -> 200" "$STATUS" 200
RT2=$(json "$TMP/body" d.refresh_token)
AT2=$(json "$TMP/body" d.access_token)
check "  rotated (RT2 != RT1)" "$([ -n "$RT2" ] && [ "$RT2" != "$RT1" ] && echo yes)" yes
check "  refreshed scope" "$(json "$TMP/body" 'd.scope')" "openid offline_access email"
check "  refresh response has a new id_token" "$(json "$TMP/body" '!!d.id_token')" true
refresh "$RT1"
check "  RT1 reused -> 400 invalid_grant" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
refresh "$RT2"
check "  RT2 after reuse -> 400 invalid_grant (grant revoked)" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
check "  AT2 after reuse: introspection active" "$(introspect_active "$AT2")" false
check "  AT1 after reuse: introspection active" "$(introspect_active "$AT")" false

echo "e. client authentication is client_secret_basic only"
authorize "openid email" allow
code_exchange --data-urlencode client_id=onbehalf --data-urlencode client_secret=conformance-secret --data-urlencode "code_verifier=$VERIFIER"
check "  client_secret_post -> 401 invalid_client" "$STATUS $(json "$TMP/body" d.error)" "401 invalid_client"
code_exchange -u onbehalf:wrong-secret --data-urlencode "code_verifier=$VERIFIER"
check "  basic, wrong secret -> 401 invalid_client" "$STATUS $(json "$TMP/body" d.error)" "401 invalid_client"
code_exchange --data-urlencode client_id=onbehalf --data-urlencode "code_verifier=$VERIFIER"
check "  no secret at all -> 401 invalid_client" "$STATUS $(json "$TMP/body" d.error)" "401 invalid_client"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  same code, right basic auth -> 200 (refusals did not burn it)" "$STATUS" 200

echo "f. revocation (RFC 7009)"
authorize "openid offline_access email" allow "prompt=consent"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
RT=$(json "$TMP/body" d.refresh_token) AT=$(json "$TMP/body" d.access_token)
check "  AT active before" "$(introspect_active "$AT")" true
post "$ISS/token/revocation" --data-urlencode "token=$RT" --data-urlencode token_type_hint=refresh_token \
  --data-urlencode client_id=onbehalf --data-urlencode client_secret=conformance-secret
check "  revoke with client_secret_post -> 401 invalid_client" "$STATUS $(json "$TMP/body" d.error)" "401 invalid_client"
post "$ISS/token/revocation" "${BASIC[@]}" --data-urlencode "token=$RT" --data-urlencode token_type_hint=refresh_token
check "  revoke RT (basic) -> 200, empty body" "$STATUS [$(cat "$TMP/body")]" "200 []"
refresh "$RT"
check "  revoked RT -> 400 invalid_grant" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
check "  AT of the same grant after RT revocation: active" "$(introspect_active "$AT")" false
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AT" "$ISS/me")
check "  userinfo with that AT" "$STATUS" 401
post "$ISS/token/revocation" "${BASIC[@]}" --data-urlencode "token=$RT"
check "  revoking it again -> 200 (RFC 7009: unknown token is fine)" "$STATUS" 200
echo "f2. revoking only the access token"
authorize "openid offline_access email" allow "prompt=consent"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
RT=$(json "$TMP/body" d.refresh_token) AT=$(json "$TMP/body" d.access_token)
post "$ISS/token/revocation" "${BASIC[@]}" --data-urlencode "token=$AT" --data-urlencode token_type_hint=access_token
check "  revoke AT -> 200" "$STATUS" 200
check "  AT active" "$(introspect_active "$AT")" false
refresh "$RT"
# oidc-provider's revoke() drops every token of the grant whichever kind was
# revoked; revokeGrantPolicy only spares the Grant record itself.
check "  RT of the same grant -> 400 invalid_grant (AT revocation kills the RT too)" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"

echo "g. consent denied"
authorize "openid offline_access email" deny "prompt=consent"
check "  redirect goes to redirect_uri" "${LOC%%\?*}" "$REDIRECT"
check "  error" "$(qparam "$LOC" error)" access_denied
check "  error_description" "$(qparam "$LOC" error_description)" "The user denied access"
check "  state" "$(qparam "$LOC" state)" "$STATE"
check "  iss" "$(qparam "$LOC" iss)" "$ISS"
check "  no code" "$(qparam "$LOC" code)" ""

echo "h. PKCE S256 is required"
authorize "openid email" allow
code_exchange "${BASIC[@]}"
check "  no code_verifier -> 400 invalid_grant" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$(new_verifier)"
check "  wrong code_verifier -> 400 invalid_grant" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  right code_verifier afterwards -> 200 (failed attempts did not burn the code)" "$STATUS" 200
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  code replay -> 400 invalid_grant" "$STATUS $(json "$TMP/body" d.error)" "400 invalid_grant"
get_location -G "$ISS/auth" --data-urlencode client_id=onbehalf --data-urlencode response_type=code \
  --data-urlencode scope=openid --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode state=nopkce
check "  authorize without code_challenge -> 303 error=invalid_request" "$STATUS $(qparam "$LOC" error) $(qparam "$LOC" state)" "303 invalid_request nopkce"
get_location -G "$ISS/auth" --data-urlencode client_id=onbehalf --data-urlencode response_type=code \
  --data-urlencode scope=openid --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode state=plain \
  --data-urlencode code_challenge=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --data-urlencode code_challenge_method=plain
check "  code_challenge_method=plain -> error=invalid_request" "$(qparam "$LOC" error)" invalid_request

# =============================================================================
start_server lenient

echo "c. lenient, openid offline_access email, no prompt=consent"
authorize "openid offline_access email" allow
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  token status" "$STATUS" 200
check "  refresh_token present" "$(json "$TMP/body" '!!d.refresh_token')" true
check "  scope lacks offline_access" "$(json "$TMP/body" 'd.scope')" "openid email"
check "  expires_in default 300" "$(json "$TMP/body" 'd.expires_in')" 300
refresh "$(json "$TMP/body" d.refresh_token)"
check "  that refresh token works and rotates -> 200" "$STATUS $(json "$TMP/body" '!!d.refresh_token')" "200 true"
echo "c2. lenient, no offline_access requested at all"
authorize "openid email" allow
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  refresh_token present" "$(json "$TMP/body" '!!d.refresh_token')" true
echo "c3. lenient with prompt=consent"
authorize "openid offline_access email" allow "prompt=consent"
code_exchange "${BASIC[@]}" --data-urlencode "code_verifier=$VERIFIER"
check "  scope keeps offline_access" "$(json "$TMP/body" 'd.scope')" "openid offline_access email"

stop_server
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
