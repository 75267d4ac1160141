#!/usr/bin/env bash
# Quick start: builds ringgate, puts it in front of a demo upstream that echoes what it
# received, sends a few requests through it with curl, shows what the upstream saw, and
# stops everything it started.
#
# Env: DEMO_PORT (8000)            where ringgate listens, on 127.0.0.1
#      DEMO_ADMIN_PORT (8001)      its Admin API, on 127.0.0.1
#      DEMO_UPSTREAM_PORT (18090)  where the demo upstream listens, on 127.0.0.1
#      RINGGATE_BIN                a ringgate binary to use instead of building one
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=common.sh
. scripts/common.sh

DEMO_PORT=${DEMO_PORT:-8000}
DEMO_ADMIN_PORT=${DEMO_ADMIN_PORT:-8001}
DEMO_UPSTREAM_PORT=${DEMO_UPSTREAM_PORT:-18090}

ensure_commands curl:curl python3:python3

if [ -z "${RINGGATE_BIN:-}" ]; then
    say "building ringgate (cargo build --release; the first build takes a few minutes)"
    cargo build --release --quiet
    RINGGATE_BIN=target/release/ringgate
fi

work=$(mktemp -d)
started=()
idp_started=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ "${#started[@]}" -gt 0 ] && stop_pids "${started[@]}"
    [ -n "${idp_started:-}" ] && IDP_ENV_FILE="$work/idp.env" scripts/idp.sh stop >/dev/null 2>&1
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for port in "$DEMO_PORT" "$DEMO_UPSTREAM_PORT"; do
    port_in_use "$port" && die "port $port is in use (set DEMO_PORT / DEMO_UPSTREAM_PORT)"
done

# 1. The upstream.
python3 scripts/demo_upstream.py --port "$DEMO_UPSTREAM_PORT" 2>"$work/upstream.log" &
started+=("$!")
wait_http "http://127.0.0.1:$DEMO_UPSTREAM_PORT/" "$!" 10 ||
    die "the demo upstream did not start: $(cat "$work/upstream.log")"

# 2. The identity provider: the bundled test OpenID Provider (tests/idp/, oidc-provider),
#    on a free port; its client `post-client` stands for a caller's app.
IDP_ENV_FILE="$work/idp.env" scripts/idp.sh start >"$work/idp-start.log" 2>&1 ||
    die "the test IdP did not start: $(tail -n 20 "$work/idp-start.log")"
idp_started=1
# shellcheck disable=SC1091
. "$work/idp.env"
export DECK_ISSUER=$RINGGATE_TEST_IDP DECK_CLIENT_ID=demo-gateway DECK_CLIENT_SECRET=unused-by-this-flow

# 3. The config: a plain decK file, as `deck gateway dump` would write it. The /demo route
#    is open; /api carries Kong's openid-connect plugin, exactly as Kong's docs show it.
cat >"$work/kong.yaml" <<'EOF'
_format_version: "3.0"
services:
- name: demo
  url: http://127.0.0.1:UPSTREAM_PORT
  routes:
  - name: demo
    hosts: [demo.local]
    paths: [/demo]
  - name: api
    hosts: [demo.local]
    paths: [/api]
    plugins:
EOF
# The plugin is config/kong-oidc.yaml's, as Kong's documentation writes it, under /api.
sed -n '/^- name: openid-connect/,$p' config/kong-oidc.yaml | sed 's/^/    /' >>"$work/kong.yaml"
sed -i "s/UPSTREAM_PORT/$DEMO_UPSTREAM_PORT/" "$work/kong.yaml"
printf '\n==> the config (%s, with DECK_ISSUER=%s)\n' "kong.yaml" "$DECK_ISSUER"
cat "$work/kong.yaml"

printf '\n==> ringgate check --config kong.yaml\n'
"$RINGGATE_BIN" check --config "$work/kong.yaml"

# 4. ringgate.
"$RINGGATE_BIN" run --config "$work/kong.yaml" --listen "127.0.0.1:$DEMO_PORT" \
    --admin-listen "127.0.0.1:$DEMO_ADMIN_PORT" >"$work/ringgate.log" 2>&1 &
started+=("$!")
wait_http "http://127.0.0.1:$DEMO_PORT/" "$!" 15 ||
    die "ringgate did not start: $(tail -n 20 "$work/ringgate.log")"

# 5. Requests through it.
show() { # description curl-args...
    local a line="curl"
    for a in "${@:2}"; do
        case $a in *[!A-Za-z0-9_./:=@-]*) line+=" '$a'" ;; *) line+=" $a" ;; esac
    done
    printf '\n==> %s\n$ %s\n' "$1" "$line"
    curl -sS --max-time 10 "${@:2}"
    echo
}
base="http://127.0.0.1:$DEMO_PORT"
show "a GET through the route (strip_path: /demo is removed on the way upstream)" \
    -H 'Host: demo.local' "$base/demo/hello?lang=en"
show "a POST with a JSON body" \
    -H 'Host: demo.local' -H 'Content-Type: application/json' \
    --data '{"hello":"world"}' "$base/demo/orders"
show "a host no route matches: ringgate answers 404 itself" \
    -i -H 'Host: other.local' "$base/demo/hello"
show "client credentials in Basic: ringgate gets a token from the IdP and forwards it as Bearer" \
    -u post-client:post-client-secret-0123456789abcdef -H 'Host: demo.local' "$base/api/orders"
show "the same credentials again: served from the token cache, no IdP call" \
    -o /dev/null -w '%{http_code} in %{time_total}s\n' \
    -u post-client:post-client-secret-0123456789abcdef -H 'Host: demo.local' "$base/api/orders"
show "a wrong secret: 401, nothing reaches the upstream" \
    -i -u post-client:wrong -H 'Host: demo.local' "$base/api/orders"
printf '\n==> token requests the IdP counted (one per credential; the wrong one too)\n'
curl -sS --max-time 5 "$RINGGATE_TEST_IDP_CONTROL/counters"
echo
admin="http://127.0.0.1:$DEMO_ADMIN_PORT"
printf '\n==> the Admin API: the plugin as Kong shows it (a few of its fields), the secret redacted\n$ curl %s/plugins\n' "$admin"
curl -sS --max-time 5 "$admin/plugins" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["data"]:
    c = p["config"]
    short = {k: c[k] for k in ("issuer", "auth_methods", "client_id", "client_secret", "client_auth")}
    print(json.dumps({"id": p["id"], "name": p["name"], "route": p["route"], "config": short}, indent=2))'
printf '\n==> the token cache and refusals, from the Admin API'"'"'s /metrics\n'
curl -sS --max-time 5 "$admin/metrics" | grep -E '^ringgate_(token_cache_(hits|misses)|auth_failures)_total' |
    grep -v ' 0$' || true

printf '\n==> ringgate log\n'
cat "$work/ringgate.log"
