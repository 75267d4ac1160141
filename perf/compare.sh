#!/usr/bin/env bash
# Whole-proxy comparison in one run: origin direct, nginx proxy_pass, ringgate, and the
# auth cases (nginx + Lua, ringgate + openid-connect), measured with wrk in interleaved
# rounds on this machine, written up as perf/results/DATE-COMMIT.md.
# See perf/README.md for what each number means.
#
# Usage: perf/compare.sh [--skip-ringgate] [--ringgate-bin PATH] [--no-build]
#                        [--baseline-bin PATH] [--cases a,b,c] [--out FILE]
# Env:   ROUNDS (5) DURATION (10 s) WARMUP (5 s) CONNECTIONS (50) THREADS (1)
#        ORIGIN_PORT (18080) NGINX_PROXY_PORT (18081) RINGGATE_PORT (18082)
#        NGINX_LUA_AUTH_PORT (18083) RINGGATE_OIDC_PORT (18084)
#        RINGGATE_OIDC_100K_PORT (18085) NGINX_TLS_PORT (18086) RINGGATE_TLS_PORT (18087)
#        FLOOR_PORT (18088) RINGGATE_OIDC_BASE_PORT (18089)
#        OIDC_CREDENTIALS (100000) FILL_TIMEOUT (900 s)
#        PIN (0; 1: each measured proxy alone on the last CPU, wrk/origin/IdP on the rest)
#        RINGGATE_BIN (target/release/ringgate) WORK_DIR (perf/work)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
# shellcheck source=../scripts/common.sh
. "$root/scripts/common.sh"
# Debian installs nginx in /usr/sbin, which is not on a normal user's PATH.
PATH="$PATH:/usr/sbin"

# The command line as it would be typed here, for the report: the env settings the caller
# gave, then the arguments (paths replaced by placeholders, so no machine path is kept).
cmdline=
for v in ROUNDS DURATION WARMUP CONNECTIONS THREADS OIDC_CREDENTIALS PIN; do
    if [ -n "${!v:-}" ]; then cmdline+="$v=${!v} "; fi
done
cmdline+="perf/compare.sh"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-5}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
ORIGIN_PORT=${ORIGIN_PORT:-18080}
NGINX_PROXY_PORT=${NGINX_PROXY_PORT:-18081}
RINGGATE_PORT=${RINGGATE_PORT:-18082}
NGINX_LUA_AUTH_PORT=${NGINX_LUA_AUTH_PORT:-18083}
RINGGATE_OIDC_PORT=${RINGGATE_OIDC_PORT:-18084}
RINGGATE_OIDC_100K_PORT=${RINGGATE_OIDC_100K_PORT:-18085}
NGINX_TLS_PORT=${NGINX_TLS_PORT:-18086}
RINGGATE_TLS_PORT=${RINGGATE_TLS_PORT:-18087}
FLOOR_PORT=${FLOOR_PORT:-18088}
RINGGATE_OIDC_BASE_PORT=${RINGGATE_OIDC_BASE_PORT:-18089}
OIDC_CREDENTIALS=${OIDC_CREDENTIALS:-100000}
PIN=${PIN:-0}
FILL_TIMEOUT=${FILL_TIMEOUT:-900}
RINGGATE_BIN=${RINGGATE_BIN:-}
# --baseline-bin: another ringgate build, run as `ringgate_oidc_base` in the same rounds.
BASELINE_BIN=
WORK_DIR=${WORK_DIR:-$root/perf/work}

skip_ringgate=0
build=1
only_cases=
out=

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }

while [ $# -gt 0 ]; do
    case $1 in
    --ringgate-bin | --baseline-bin | --out) cmdline+=" $1 <${1#--}>" ;;
    --cases) cmdline+=" $1 ${2:-}" ;;
    *) cmdline+=" $1" ;;
    esac
    case $1 in
    --skip-ringgate) skip_ringgate=1 ;;
    --ringgate-bin) RINGGATE_BIN=${2:?--ringgate-bin needs a path}; shift ;;
    --no-build) build=0 ;;
    --baseline-bin) BASELINE_BIN=$(realpath -m -- "${2:?--baseline-bin needs a path}"); shift ;;
    --cases) only_cases=${2:?--cases needs a list}; shift ;;
    --out) out=$(realpath -m -- "${2:?--out needs a file}"); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

for v in ROUNDS DURATION WARMUP CONNECTIONS THREADS OIDC_CREDENTIALS FILL_TIMEOUT; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then die "$v must be a positive integer, not '${!v}'"; fi
done
case $PIN in 0 | 1) ;; *) die "PIN must be 0 or 1, not '$PIN'" ;; esac

# ---------------------------------------------------------------------------------------
# Cases. Each case is a name with: a start function (which starts what it needs and sets
# CASE_PID[name] to the process whose CPU is measured — that process and its children),
# a port, a description, and what it needs (`ringgate`: the binary; `idp`: the test IdP).
# Optional per case: CASE_PATH (request path, default /), CASE_SCHEME (http or https),
# CASE_HEADERS (extra wrk request headers, one per line) and CASE_AUTH ("ID SECRET [COUNT]": every request carries
# `Authorization: Basic`, from wrk/basic-auth.lua; such a case is pre-flighted and its
# caches filled before the warm-up). To add a case: write start_<name>, then add_case.
# Ratios between cases are declared with add_ratio, with the targets they are held to.
# ---------------------------------------------------------------------------------------
declare -a CASES=() RATIOS=()
declare -A CASE_START=() CASE_PORT=() CASE_DESC=() CASE_NEEDS=() CASE_PID=()
declare -A CASE_PATH=() CASE_SCHEME=() CASE_HEADERS=() CASE_MEASURED=() CASE_AUTH=()

add_case() { # name start_fn port needs description
    CASES+=("$1")
    CASE_START[$1]=$2
    CASE_PORT[$1]=$3
    CASE_NEEDS[$1]=$4
    CASE_DESC[$1]=$5
}

# add_ratio CASE REFERENCE TARGETS — report CASE ÷ REFERENCE when both ran. TARGETS:
# comma-separated `metric<=x` / `metric>=x` (metric: cpu or rps), or "" for none.
add_ratio() { RATIOS+=("$1"$'\t'"$2"$'\t'"$3"); }

# The client the 1-credential auth cases send (tests/idp/clients.json), and the prefixes
# of the IdP's load clients (load-<i> / load-secret-<i>).
OIDC_CLIENT_ID=post-client
OIDC_CLIENT_SECRET=post-client-secret-0123456789abcdef

add_case origin start_origin "$ORIGIN_PORT" "" \
    "origin direct: nginx \`return 200\`, 1 worker, no proxy in between"
add_case nginx_proxy start_nginx_proxy "$NGINX_PROXY_PORT" "" \
    "nginx \`proxy_pass\` to the origin, upstream keepalive pool, 1 worker"
add_case nginx_tls start_nginx_tls "$NGINX_TLS_PORT" "" \
    "nginx_proxy terminating TLS (ECDSA P-256 certificate, TLS 1.3 as wrk negotiates it), keep-alive requests"
CASE_SCHEME[nginx_tls]=https
add_case nginx_tls_handshake start_nginx_tls_handshake "$NGINX_TLS_PORT" "" \
    "nginx_tls, every request on a new connection (\`Connection: close\`): one full handshake per request"
CASE_SCHEME[nginx_tls_handshake]=https
CASE_HEADERS[nginx_tls_handshake]="Connection: close"
add_case nginx_lua_auth start_nginx_lua_auth "$NGINX_LUA_AUTH_PORT" "" \
    "nginx_proxy plus \`access_by_lua\`: Basic decode, \`resty.lrucache\` hit, \`Authorization: Bearer\` upstream (OpenResty's stack, Debian's lua-nginx-module), 1 credential"
CASE_AUTH[nginx_lua_auth]="$OIDC_CLIENT_ID $OIDC_CLIENT_SECRET"
add_case floor start_floor "$FLOOR_PORT" floor \
    "perf/floor.rs: a relay on one io_uring thread set up as a ringgate worker's, doing only the socket work (no parsing, routing, rewriting or timers)"
if [ "$skip_ringgate" -eq 0 ]; then
    add_case ringgate start_ringgate "$RINGGATE_PORT" ringgate \
        "ringgate \`run --workers 1\`, one route to the origin"
    add_case ringgate_oidc start_ringgate_oidc "$RINGGATE_OIDC_PORT" "ringgate idp" \
        "ringgate \`run --workers 1\`, the route with openid-connect (client_credentials, header), every request a token-cache hit, 1 credential"
    CASE_AUTH[ringgate_oidc]="$OIDC_CLIENT_ID $OIDC_CLIENT_SECRET"
    add_case ringgate_oidc_100k start_ringgate_oidc_100k "$RINGGATE_OIDC_100K_PORT" "ringgate idp" \
        "as ringgate_oidc with $OIDC_CREDENTIALS distinct credentials in rotation, all cached"
    CASE_AUTH[ringgate_oidc_100k]="load- load-secret- $OIDC_CREDENTIALS"
    add_case ringgate_tls start_ringgate_tls "$RINGGATE_TLS_PORT" ringgate \
        "ringgate \`run --workers 1 --tls-listen\`, the same certificate as nginx_tls, keep-alive requests"
    CASE_SCHEME[ringgate_tls]=https
    add_case ringgate_tls_handshake start_ringgate_tls_handshake "$RINGGATE_TLS_PORT" ringgate \
        "ringgate_tls, every request on a new connection: one full handshake per request"
    CASE_SCHEME[ringgate_tls_handshake]=https
    CASE_HEADERS[ringgate_tls_handshake]="Connection: close"
    if [ -n "$BASELINE_BIN" ]; then
        add_case ringgate_oidc_base start_ringgate_oidc_base "$RINGGATE_OIDC_BASE_PORT" "ringgate idp" \
            "ringgate_oidc run by the --baseline-bin build: an A/B of two builds in the same interleaved rounds"
        CASE_AUTH[ringgate_oidc_base]="$OIDC_CLIENT_ID $OIDC_CLIENT_SECRET"
    fi
fi

# The issue's targets. ringgate ÷ nginx_proxy is the proxy's own goal (README).
add_ratio ringgate nginx_proxy "cpu<=0.8,rps>=1"
add_ratio nginx_lua_auth nginx_proxy ""
add_ratio ringgate_oidc nginx_proxy "cpu<=0.85"
add_ratio ringgate_oidc nginx_lua_auth "cpu<=0.7"
# Context for the line above: the proxy without the plugin against the same peer (how
# much of the 0.7 the plain proxy path already takes).
add_ratio ringgate nginx_lua_auth ""
add_ratio ringgate_oidc ringgate ""
add_ratio ringgate_oidc_100k ringgate_oidc "rps>=0.9"
add_ratio ringgate_oidc ringgate_oidc_base ""
add_ratio ringgate_tls nginx_tls "cpu<=0.85"
add_ratio ringgate_tls_handshake nginx_tls_handshake "rps>=1"
# What the kernel and io_uring cost with no proxy work at all: the part of each case's CPU
# that no user-space change can remove.
add_ratio nginx_proxy floor ""
add_ratio ringgate floor ""
add_ratio ringgate_oidc floor ""

if [ -n "$only_cases" ]; then
    selected=()
    IFS=, read -r -a wanted <<<"$only_cases"
    for c in "${wanted[@]}"; do
        [ -n "${CASE_START[$c]:-}" ] || die "unknown case '$c' (known: ${CASES[*]})"
        selected+=("$c")
    done
    CASES=("${selected[@]}")
fi

# selected CASE — true when CASE runs.
selected() { [[ " ${CASES[*]} " == *" $1 "* ]]; }

# needs WHAT — true when a selected case needs WHAT (ringgate, idp).
needs() {
    local c
    for c in "${CASES[@]}"; do
        [[ " ${CASE_NEEDS[$c]} " == *" $1 "* ]] && return 0
    done
    return 1
}

# ---------------------------------------------------------------------------------------
# Processes: every PID started here is stopped on exit, Ctrl-C included.
# ---------------------------------------------------------------------------------------
STARTED=()
WRK_PID=
# PIN=1 sets this to the taskset prefix that keeps wrk off the measured proxies' CPU.
LOAD_ON=()
IDP_PID=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "$WRK_PID" ] && stop_pids "$WRK_PID"
    [ "${#STARTED[@]}" -gt 0 ] && stop_pids "${STARTED[@]}"
    stop_idp
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# render TEMPLATE OUT KEY=VALUE... — replaces each @KEY@ in TEMPLATE.
render() {
    local template=$1 dest=$2 kv args=()
    shift 2
    for kv in "$@"; do args+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
    sed "${args[@]}" "$template" >"$dest"
}

# start_server NAME PORT CMD... — starts CMD in the background with its output in
# WORK_DIR/NAME.log and waits until PORT answers HTTP (https when START_SCHEME=https).
# Sets LAST_PID.
start_server() {
    local name=$1 port=$2
    shift 2
    port_in_use "$port" && die "port $port (for $name) is already in use; set another in the env"
    "$@" >"$WORK_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
    if ! wait_http "${START_SCHEME:-http}://127.0.0.1:$port/" "$LAST_PID" 15; then
        tail -n 20 "$WORK_DIR/$name.log" >&2 || true
        die "$name did not come up on 127.0.0.1:$port (log: $WORK_DIR/$name.log)"
    fi
}

start_nginx() { # name template port [KEY=VALUE...]
    local name=$1 template=$2 port=$3
    shift 3
    local prefix="$WORK_DIR/$name"
    mkdir -p "$prefix"
    render "$here/nginx/$template" "$prefix/nginx.conf" "PREFIX=$prefix" "PORT=$port" "$@"
    start_server "$name" "$port" nginx -p "$prefix" -c "$prefix/nginx.conf" -e stderr
}

ORIGIN_PID=
start_origin_server() {
    [ -n "$ORIGIN_PID" ] && return 0
    start_nginx origin origin.conf "$ORIGIN_PORT"
    ORIGIN_PID=$LAST_PID
}

start_origin() {
    start_origin_server
    CASE_PID[origin]=$ORIGIN_PID
    CASE_MEASURED[origin]="origin nginx, master + worker"
}

start_nginx_proxy() {
    start_origin_server
    start_nginx nginx_proxy proxy.conf "$NGINX_PROXY_PORT" "ORIGIN_PORT=$ORIGIN_PORT"
    CASE_PID[nginx_proxy]=$LAST_PID
    CASE_MEASURED[nginx_proxy]="nginx proxy, master + worker"
}

start_nginx_lua_auth() {
    start_origin_server
    # Where this nginx keeps its dynamic modules (Debian: /usr/lib/nginx/modules).
    local modules
    modules=$(nginx -V 2>&1 | tr ' ' '\n' | sed -n 's/^--modules-path=//p')
    modules=${modules:-/usr/lib/nginx/modules}
    [ -f "$modules/ngx_http_lua_module.so" ] ||
        die "no ngx_http_lua_module.so in $modules (Debian: apt-get install libnginx-mod-http-lua)"
    start_nginx nginx_lua_auth lua-auth.conf "$NGINX_LUA_AUTH_PORT" "ORIGIN_PORT=$ORIGIN_PORT" \
        "MODULES=$modules" "LUA_DIR=$here/nginx"
    CASE_PID[nginx_lua_auth]=$LAST_PID
    CASE_MEASURED[nginx_lua_auth]="nginx proxy with Lua, master + worker"
}

FLOOR_BIN=$root/target/release/examples/floor
start_floor() {
    start_origin_server
    start_server floor "$FLOOR_PORT" "$FLOOR_BIN" "127.0.0.1:$FLOOR_PORT" "127.0.0.1:$ORIGIN_PORT"
    CASE_PID[floor]=$LAST_PID
    CASE_MEASURED[floor]="the floor relay"
}

# start_ringgate_case NAME PORT CONFIG [ARGS...] — ringgate with one worker on PORT. The
# admin listener gets PORT + 1000, so that several ringgate cases can run side by side.
# The binary a ringgate case runs: the build under test, or --baseline-bin's for the
# baseline case.
CASE_BIN=
start_ringgate_case() {
    local name=$1 port=$2 config=$3 bin=${CASE_BIN:-$RINGGATE_BIN}
    shift 3
    "$bin" check --config "$config" >"$WORK_DIR/$name-check.log" 2>&1 || {
        cat "$WORK_DIR/$name-check.log" >&2
        die "$name: ringgate refuses its configuration (above)"
    }
    start_server "$name" "$port" "$bin" run --config "$config" \
        --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$((port + 1000))" --workers 1 "$@"
    CASE_PID[$name]=$LAST_PID
    CASE_MEASURED[$name]="ringgate, all threads"
}

# The TLS cases' certificate: ECDSA P-256, self-signed for 127.0.0.1, made once per run
# with openssl; nginx and ringgate serve the same file.
TLS_CERT=
make_tls_cert() {
    [ -n "$TLS_CERT" ] && return 0
    TLS_CERT="$WORK_DIR/tls-cert.pem"
    TLS_KEY="$WORK_DIR/tls-key.pem"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$TLS_KEY" -out "$TLS_CERT" >"$WORK_DIR/tls-cert.log" 2>&1 ||
        die "openssl could not make the TLS cases' certificate (see $WORK_DIR/tls-cert.log)"
}

# One nginx and one ringgate serve both TLS cases of each (keep-alive and handshakes).
NGINX_TLS_PID=
start_nginx_tls_server() {
    [ -n "$NGINX_TLS_PID" ] && return 0
    start_origin_server
    make_tls_cert
    START_SCHEME=https start_nginx nginx_tls proxy-tls.conf "$NGINX_TLS_PORT" "ORIGIN_PORT=$ORIGIN_PORT" \
        "CERT=$TLS_CERT" "KEY=$TLS_KEY"
    NGINX_TLS_PID=$LAST_PID
}

# start_shared SERVER_FN PID_VAR CASE MEASURED — a case measured on a server it shares
# with another case (each TLS server carries a keep-alive and a handshake case).
start_shared() {
    "$1"
    CASE_PID[$3]=${!2}
    CASE_MEASURED[$3]=$4
}

start_nginx_tls() { start_shared start_nginx_tls_server NGINX_TLS_PID nginx_tls "nginx TLS proxy, master + worker"; }
start_nginx_tls_handshake() {
    start_shared start_nginx_tls_server NGINX_TLS_PID nginx_tls_handshake "nginx TLS proxy, master + worker"
}

RINGGATE_TLS_PID=
start_ringgate_tls_server() {
    [ -n "$RINGGATE_TLS_PID" ] && return 0
    start_origin_server
    make_tls_cert
    origin_config "$WORK_DIR/ringgate-tls.yaml"
    # The case's port is the TLS listener; the plain one every ringgate has goes to
    # PORT + 2000 and is not measured.
    start_ringgate_case ringgate_tls "$((RINGGATE_TLS_PORT + 2000))" \
        "$WORK_DIR/ringgate-tls.yaml" --tls-listen "127.0.0.1:$RINGGATE_TLS_PORT" \
        --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY"
    RINGGATE_TLS_PID=$LAST_PID
}

start_ringgate_tls() { start_shared start_ringgate_tls_server RINGGATE_TLS_PID ringgate_tls "ringgate, all threads"; }
start_ringgate_tls_handshake() {
    start_shared start_ringgate_tls_server RINGGATE_TLS_PID ringgate_tls_handshake "ringgate, all threads"
}

# origin_config FILE — the decK file every ringgate case starts from: one service, the
# origin, with one route `/` (last in the file, so a case can append the route's plugins).
origin_config() {
    cat >"$1" <<EOF
_format_version: "3.0"
services:
- name: origin
  url: http://127.0.0.1:$ORIGIN_PORT
  routes:
  - name: all
    paths: [/]
EOF
}

start_ringgate() {
    start_origin_server
    origin_config "$WORK_DIR/ringgate.yaml"
    start_ringgate_case ringgate "$RINGGATE_PORT" "$WORK_DIR/ringgate.yaml"
}

# oidc_config FILE CLIENT_AUTH — the ringgate config of the openid-connect cases: the
# route to the origin carries the plugin, client credentials from the Authorization
# header, exchanged at the test IdP with CLIENT_AUTH (the method the IdP's clients are
# registered with: post-client uses client_secret_post, load-<i> client_secret_basic).
oidc_config() {
    origin_config "$1"
    cat >>"$1" <<EOF
    plugins:
    - name: openid-connect
      config:
        issuer: $IDP_ISSUER
        auth_methods: [client_credentials]
        client_credentials_param_type: [header]
        token_endpoint_auth_method: $2
EOF
}

start_ringgate_oidc() {
    start_origin_server
    start_idp
    oidc_config "$WORK_DIR/ringgate_oidc.yaml" client_secret_post
    start_ringgate_case ringgate_oidc "$RINGGATE_OIDC_PORT" "$WORK_DIR/ringgate_oidc.yaml"
}

start_ringgate_oidc_base() {
    start_origin_server
    start_idp
    oidc_config "$WORK_DIR/ringgate_oidc_base.yaml" client_secret_post
    CASE_BIN=$BASELINE_BIN
    start_ringgate_case ringgate_oidc_base "$RINGGATE_OIDC_BASE_PORT" "$WORK_DIR/ringgate_oidc_base.yaml"
    CASE_BIN=
}

start_ringgate_oidc_100k() {
    start_origin_server
    start_idp
    oidc_config "$WORK_DIR/ringgate_oidc_100k.yaml" client_secret_basic
    start_ringgate_case ringgate_oidc_100k "$RINGGATE_OIDC_100K_PORT" \
        "$WORK_DIR/ringgate_oidc_100k.yaml"
}

# The test IdP (tests/idp, through scripts/idp.sh), with as many load clients as the
# 100k case needs and tokens that outlive the run (IDP_TTL, default 3600 s here), so no
# token expires or is refreshed while requests are measured. Its env file goes to
# WORK_DIR; it is stopped with everything else.
IDP_ISSUER=
IDP_CONTROL=
start_idp() {
    [ -n "$IDP_PID" ] && return 0
    if "$root/scripts/idp.sh" status >/dev/null 2>&1; then
        die "a test IdP started by scripts/idp.sh is already running in this tree; stop it first (scripts/idp.sh stop)"
    fi
    local extra=0 envf="$WORK_DIR/idp.env" t0=$SECONDS
    if selected ringgate_oidc_100k; then extra=$OIDC_CREDENTIALS; fi
    say "starting the test IdP with $extra load clients"
    IDP_ENV_FILE=$envf IDP_EXTRA_CLIENTS=$extra IDP_TTL=${IDP_TTL:-3600} \
        "$root/scripts/idp.sh" start >"$WORK_DIR/idp-start.log" 2>&1 || {
        cat "$WORK_DIR/idp-start.log" >&2
        die "the test IdP did not start (above)"
    }
    IDP_PID=$(sed -n 's/^RINGGATE_TEST_IDP_PID=//p' "$envf")
    IDP_ISSUER=$(sed -n 's/^RINGGATE_TEST_IDP=//p' "$envf")
    IDP_CONTROL=$(sed -n 's/^RINGGATE_TEST_IDP_CONTROL=//p' "$envf")
    if [ -z "$IDP_PID" ] || [ -z "$IDP_ISSUER" ]; then die "no issuer in $envf"; fi
    say "IdP up in $((SECONDS - t0)) s at $IDP_ISSUER"
}

stop_idp() {
    [ -n "$IDP_PID" ] || return 0
    IDP_ENV_FILE="$WORK_DIR/idp.env" "$root/scripts/idp.sh" stop >/dev/null 2>&1
    stop_pids "$IDP_PID" # in case the script could not (its pid file was replaced)
    IDP_PID=
}

# idp_token_calls — token requests the IdP has counted so far.
idp_token_calls() {
    curl -sS --max-time 5 "$IDP_CONTROL/counters" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token_total"])'
}

# ---------------------------------------------------------------------------------------
# Measurement.
# ---------------------------------------------------------------------------------------

# tree_pids PID — PID and its direct children (nginx: master and workers), sorted.
tree_pids() {
    { echo "$1"; children_of "$1"; } | sort -n | tr '\n' ' '
}

# cpu_ticks PID... — "TOTAL USER": utime+stime and utime alone (all threads, in clock
# ticks) summed over the PIDs, from /proc/PID/stat fields 14 and 15. Fails if a PID is
# gone.
cpu_ticks() {
    local p stat f total=0 user=0
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
        # Field 2 (comm) may hold spaces: split after its closing parenthesis, so f[0]
        # is field 3 (state) and utime/stime (fields 14/15) are f[11]/f[12].
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
        user=$((user + f[11]))
    done
    echo "$total $user"
}

# run_wrk CASE SECONDS OUTFILE [fill] — one bounded wrk run against CASE. An auth case
# (CASE_AUTH) runs wrk/basic-auth.lua. With `fill`, each of its credentials is sent once
# and wrk is stopped (SIGINT: it still reports) as soon as its threads say they are done;
# SECONDS is then the upper bound.
run_wrk() {
    local c=$1 secs=$2 outfile=$3 mode=${4:-load} h hdr=() script=(-s "$here/wrk/report.lua")
    local sargs=() marker="$WORK_DIR/fill-$c.done" n
    while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done <<<"${CASE_HEADERS[$c]:-}"
    if [ -n "${CASE_AUTH[$c]:-}" ]; then
        script=(-s "$here/wrk/basic-auth.lua")
        read -r -a sargs <<<"${CASE_AUTH[$c]}"
        sargs=(-- "$THREADS" "${sargs[@]}")
    fi
    rm -f "$marker".*
    WRK_AUTH_MODE=$mode WRK_FILL_DONE=$marker timeout -k 5 $((secs + 30)) \
        "${LOAD_ON[@]}" wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --latency \
        "${script[@]}" "${hdr[@]}" \
        "${CASE_SCHEME[$c]:-http}://127.0.0.1:${CASE_PORT[$c]}${CASE_PATH[$c]:-/}" "${sargs[@]}" >"$outfile" 2>&1 &
    WRK_PID=$!
    if [ "$mode" = fill ]; then
        # Bounded by wrk's own -d (and timeout's): the loop ends when wrk does.
        while alive "$WRK_PID"; do
            n=$(find "$WORK_DIR" -maxdepth 1 -name "fill-$c.done.*" | wc -l)
            if [ "$n" -ge "$THREADS" ]; then
                kill -INT "$WRK_PID" 2>/dev/null || true
                break
            fi
            sleep 0.2
        done
    fi
    local rc=0
    wait "$WRK_PID" || rc=$?
    WRK_PID=
    rm -f "$marker".*
    return "$rc"
}

# basic_of CASE — the `Basic ...` value of CASE's first credential.
basic_of() {
    local a=()
    read -r -a a <<<"${CASE_AUTH[$1]}"
    if [ -n "${a[2]:-}" ]; then
        printf 'Basic %s' "$(printf '%s0:%s0' "${a[0]}" "${a[1]}" | base64 -w0)"
    else
        printf 'Basic %s' "$(printf '%s:%s' "${a[0]}" "${a[1]}" | base64 -w0)"
    fi
}

# preflight CASE — one request through CASE's proxy to the origin's /_echo_auth, which
# answers with the Authorization header it received. Anything but 200 with a Bearer
# token fails the run here, so a case that does not authenticate is never measured.
preflight() {
    local c=$1 body status
    body="$WORK_DIR/preflight-$c.txt"
    status=$(curl -sS --max-time 15 -o "$body" -w '%{http_code}' \
        -H "Authorization: $(basic_of "$c")" \
        "http://127.0.0.1:${CASE_PORT[$c]}/_echo_auth") || status=000
    if [ "$status" != 200 ] || ! grep -q '^Bearer [^ ]' "$body"; then
        say "$c: pre-flight answered $status: $(head -c 200 "$body" 2>/dev/null)"
        case ${CASE_NEEDS[$c]} in
        *idp*) say "$c: (500 is what a ringgate without openid-connect enforcement answers; its log: $WORK_DIR/$c.log)" ;;
        esac
        die "$c: pre-flight failed: expected 200 and the origin seeing 'Authorization: Bearer ...'; leave the case out with --cases"
    fi
    say "$c: pre-flight ok (upstream saw $(cut -c1-24 "$body")...)"
}

# fill CASE — send every credential of CASE once (FILL_TIMEOUT bounds it), all of which
# must answer 200: afterwards every request of the warm-up and the rounds is a cache hit.
fill() {
    local c=$1 t0=$SECONDS want a=() answered not200
    local out="$WORK_DIR/wrk-fill-$c.txt"
    read -r -a a <<<"${CASE_AUTH[$c]}"
    want=${a[2]:-1}
    say "filling $c: $want credential(s), at most $FILL_TIMEOUT s"
    run_wrk "$c" "$FILL_TIMEOUT" "$out" fill || die "wrk failed filling $c (see $out)"
    answered=$(sed -n 's/^FILL answered=\([0-9]*\).*/\1/p' "$out")
    not200=$(sed -n 's/^FILL .*not200=\([0-9]*\).*/\1/p' "$out")
    [ "${not200:-1}" -eq 0 ] || die "$c: $not200 of the fill's answers were not 200 (see $out)"
    [ "${answered:-0}" -ge "$want" ] ||
        die "$c: only ${answered:-0} of $want credentials answered within FILL_TIMEOUT=$FILL_TIMEOUT s (see $out)"
    FILL_NOTE[$c]="$want credential(s) filled in $((SECONDS - t0)) s"
    say "$c: ${FILL_NOTE[$c]}"
}
declare -A FILL_NOTE=()

# status_errors OUTFILE — responses with status >= 400 that wrk counted (it has no
# count of other non-2xx; the origin only answers 200 and the pre-flight wants 200).
status_errors() {
    local n
    n=$(result_field "$1" err_status)
    echo "${n:-0}"
}

# result_field OUTFILE KEY — a value from report.lua's RESULT line.
result_field() {
    sed -n "s/^RESULT .*\b$2=\([0-9]*\).*/\1/p" "$1"
}

# ---------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------
ensure_commands nginx:nginx wrk:wrk curl:curl python3:python3 timeout:coreutils git:git openssl:openssl

# The nginx + Lua case: Debian's lua-nginx-module and the two resty libraries Kong's
# plugins use, installed with apt-get when missing.
if selected nginx_lua_auth; then
    lua_missing=()
    for pkg in libnginx-mod-http-lua lua-resty-core lua-resty-lrucache; do
        dpkg-query -W -f '${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
            lua_missing+=("$pkg")
    done
    if [ "${#lua_missing[@]}" -gt 0 ]; then
        sudo=()
        [ "$(id -u)" -eq 0 ] || sudo=(sudo)
        say "installing missing packages: ${lua_missing[*]}"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends "${lua_missing[@]}"
    fi
fi

if needs ringgate; then
    if [ -z "$RINGGATE_BIN" ]; then
        RINGGATE_BIN="$root/target/release/ringgate"
        if [ "$build" -eq 1 ]; then
            say "building the release binary (cargo build --release)"
            (cd "$root" && cargo build --release --quiet)
        fi
    fi
    [ -x "$RINGGATE_BIN" ] || die "no ringgate binary at $RINGGATE_BIN (build it, pass --ringgate-bin, or --skip-ringgate)"
    if [ -n "$BASELINE_BIN" ] && selected ringgate_oidc_base; then
        [ -x "$BASELINE_BIN" ] || die "no ringgate binary at $BASELINE_BIN (--baseline-bin)"
    fi
fi

if needs floor; then
    if [ "$build" -eq 1 ]; then
        say "building the floor relay (cargo build --release --example floor)"
        (cd "$root" && cargo build --release --quiet --example floor)
    fi
    [ -x "$FLOOR_BIN" ] || die "no floor relay at $FLOOR_BIN (cargo build --release --example floor, or leave out the case)"
fi

mkdir -p "$WORK_DIR"
rm -f "$WORK_DIR"/*.log "$WORK_DIR"/wrk-*.txt "$WORK_DIR/raw.tsv"
raw="$WORK_DIR/raw.tsv"
printf 'round\tcase\trequests\tduration_us\tp50_us\tp90_us\tp99_us\tmax_us\terrors\tcpu_ticks\tuser_ticks\tnote\n' >"$raw"

for c in "${CASES[@]}"; do
    say "starting $c"
    "${CASE_START[$c]}"
done

# PIN=1: a proxy on a core of its own, as on an edge machine, instead of sharing both
# cores with wrk and the origin (whose cache misses and preemptions it then pays for).
# Every measured process (all threads) goes to the last CPU; wrk, the origin and the IdP
# to the others. The same for every case, so ratios stay like for like.
if [ "$PIN" -eq 1 ]; then
    cpus=$(taskset -c -p $$ | sed 's/.*: //')
    last_cpu=$(python3 -c '
import sys
cpus = set()
for part in sys.argv[1].split(","):
    lo, _, hi = part.partition("-")
    cpus.update(range(int(lo), int(hi or lo) + 1))
print(max(cpus), ",".join(str(c) for c in sorted(cpus - {max(cpus)})))' "$cpus")
    read -r sut_cpu load_cpus <<<"$last_cpu"
    [ -n "$load_cpus" ] || die "PIN=1 needs two CPUs or more (this process may use $cpus)"
    LOAD_ON=(taskset -c "$load_cpus")
    for p in $(tree_pids "$ORIGIN_PID") ${IDP_PID:+$(tree_pids "$IDP_PID")}; do
        taskset -a -c -p "$load_cpus" "$p" >/dev/null
    done
    for c in "${CASES[@]}"; do
        [ "$c" = origin ] && continue
        for p in $(tree_pids "${CASE_PID[$c]}"); do
            taskset -a -c -p "$sut_cpu" "$p" >/dev/null
        done
    done
    say "pinned: measured proxies on CPU $sut_cpu; wrk, the origin and the IdP on CPU $load_cpus"
fi

for c in "${CASES[@]}"; do
    [ -n "${CASE_AUTH[$c]:-}" ] || continue
    preflight "$c"
    fill "$c"
done

for c in "${CASES[@]}"; do
    say "warm-up $c (${WARMUP} s)"
    wout="$WORK_DIR/wrk-warmup-$c.txt"
    run_wrk "$c" "$WARMUP" "$wout" || die "wrk failed warming up $c (see $wout)"
    n=$(result_field "$wout" requests)
    [ "${n:-0}" -gt 0 ] || die "no request completed warming up $c"
    bad=$(status_errors "$wout")
    [ "$bad" -eq 0 ] || die "$c: $bad of $n warm-up answers had status >= 400 (see $wout)"
done

clk_tck=$(getconf CLK_TCK)
ncases=${#CASES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order each round so no case always runs first or right after another.
    for ((i = 0; i < ncases; i++)); do
        c=${CASES[$(((i + r - 1) % ncases))]}
        wout="$WORK_DIR/wrk-r$r-$c.txt"
        idp0=
        if [[ " ${CASE_NEEDS[$c]} " == *" idp "* ]]; then
            idp0=$(idp_token_calls) || die "cannot read the IdP's counters"
        fi
        pids_before=$(tree_pids "${CASE_PID[$c]}")
        # shellcheck disable=SC2086 # a list of PIDs, split on purpose
        read -r t0 u0 < <(cpu_ticks $pids_before) && [ -n "$t0" ] || die "$c: a measured process is gone"
        run_wrk "$c" "$DURATION" "$wout" || die "wrk failed on $c round $r (see $wout)"
        # shellcheck disable=SC2086
        read -r t1 u1 < <(cpu_ticks $pids_before) && [ -n "$t1" ] || die "$c: a measured process died during round $r"
        bad=$(status_errors "$wout")
        [ "$bad" -eq 0 ] ||
            die "$c: $bad answers with status >= 400 in round $r; a failing case is not measured (see $wout)"
        note=
        [ "$(tree_pids "${CASE_PID[$c]}")" = "$pids_before" ] || note="process set changed"
        if [ -n "$idp0" ]; then
            # Every measured request should be a cache hit: any token call is a miss.
            idp1=$(idp_token_calls) || die "cannot read the IdP's counters"
            [ "$idp1" -eq "$idp0" ] || note="${note:+$note; }$((idp1 - idp0)) IdP token calls (cache misses)"
        fi
        req=$(result_field "$wout" requests)
        dur=$(result_field "$wout" duration_us)
        errors=0
        for k in err_connect err_read err_write err_status err_timeout; do
            errors=$((errors + $(result_field "$wout" "$k")))
        done
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$req" "$dur" \
            "$(result_field "$wout" p50_us)" "$(result_field "$wout" p90_us)" \
            "$(result_field "$wout" p99_us)" "$(result_field "$wout" max_us)" \
            "$errors" "$((t1 - t0))" "$((u1 - u0))" "$note" >>"$raw"
        python3 "$here/report.py" line --clk-tck "$clk_tck" --round "$r/$ROUNDS" \
            --raw-line "$(tail -n 1 "$raw")" >&2
    done
done

# Stop the servers before writing up, so nothing runs on after the numbers are in.
stop_pids "${STARTED[@]}"
STARTED=()
stop_idp

# ---------------------------------------------------------------------------------------
# Write-up.
# ---------------------------------------------------------------------------------------
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo nogit)
dirty=
[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ] && dirty=" (uncommitted changes)"
cpu_model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu_model" ] || cpu_model=$(uname -m)
rel() { case $1 in "$root"/*) echo "${1#"$root"/}" ;; *) echo "${1##*/} (outside the repo)" ;; esac; }

meta="$WORK_DIR/meta.tsv"
{
    printf 'date\t%s\n' "$(date -u +%Y-%m-%d)"
    printf 'time\t%s\n' "$(date -u +%H:%M:%SZ)"
    printf 'commit\t%s%s\n' "$commit" "$dirty"
    printf 'kernel\t%s\n' "$(uname -r)"
    printf 'cpu\t%s, %s cores online\n' "$cpu_model" "$(nproc)"
    printf 'nginx\t%s\n' "$(nginx -v 2>&1 | sed 's/^nginx version: //')"
    printf 'wrk\t%s\n' "$(wrk -v 2>&1 | head -n 1 | awk '{print $2}')"
    if needs ringgate; then
        printf 'ringgate\t%s\n' "$(rel "$RINGGATE_BIN")"
        if [ -n "$BASELINE_BIN" ] && selected ringgate_oidc_base; then
            printf 'baseline\t%s, run as ringgate_oidc_base\n' "$(rel "$BASELINE_BIN")"
        fi
    else
        printf 'ringgate\tnot run\n'
    fi
    if needs idp; then
        printf 'idp\ttests/idp (oidc-provider, via scripts/idp.sh), token lifetime %s s\n' "${IDP_TTL:-3600}"
    fi
    if selected nginx_lua_auth; then
        printf 'lua\t%s\n' "$(dpkg-query -W -f '${Package} ${Version}, ' \
            libnginx-mod-http-lua lua-resty-core lua-resty-lrucache 2>/dev/null | sed 's/, $//')"
    fi
    fills=
    for c in "${CASES[@]}"; do
        [ -n "${FILL_NOTE[$c]:-}" ] && fills+="$c: ${FILL_NOTE[$c]}; "
    done
    [ -n "$fills" ] && printf 'fill\t%s\n' "${fills%; }"
    printf 'command\t%s\n' "$cmdline"
    printf 'load\twrk %s thread(s), %s connections, %s rounds x %s s per case, %s s warm-up per case\n' \
        "$THREADS" "$CONNECTIONS" "$ROUNDS" "$DURATION" "$WARMUP"
    if [ "$PIN" -eq 1 ]; then
        printf 'pinning\tmeasured proxies on CPU %s; wrk, the origin and the IdP on CPU %s\n' "$sut_cpu" "$load_cpus"
    else
        printf 'pinning\tnone: every process may run on every CPU\n'
    fi
    printf 'clk_tck\t%s\n' "$clk_tck"
} >"$meta"

cases="$WORK_DIR/cases.tsv"
for c in "${CASES[@]}"; do
    printf '%s\t%s\t%s\n' "$c" "${CASE_MEASURED[$c]}" "${CASE_DESC[$c]}"
done >"$cases"
ratios="$WORK_DIR/ratios.tsv"
printf '%s\n' "${RATIOS[@]}" >"$ratios"

if [ -z "$out" ]; then
    if [ "$skip_ringgate" -eq 1 ] || [ -n "$only_cases" ]; then
        # A run without every case goes to the work directory, not to the results.
        base="$WORK_DIR/$(date -u +%Y-%m-%d)-$commit-partial"
    else
        base="$root/perf/results/$(date -u +%Y-%m-%d)-$commit"
    fi
    # Never over an earlier run's report: the second of a day gets -2, and so on.
    out="$base.md"
    n=2
    while [ -e "$out" ]; do out="$base-$n.md"; n=$((n + 1)); done
fi
mkdir -p "$(dirname "$out")"
python3 "$here/report.py" markdown --meta "$meta" --cases "$cases" --ratios "$ratios" \
    --raw "$raw" --out "$out"
say "report written to $(rel "$out")"
