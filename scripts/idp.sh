#!/usr/bin/env bash
# The test OpenID Provider (tests/idp/): install, start, stop, status.
#
#   scripts/idp.sh install           Node.js + npm (apt-get, if missing) and `npm ci`
#                                    in tests/idp when node_modules is missing or stale
#   scripts/idp.sh start [--port N]  install, then start the IdP in the background on
#                                    127.0.0.1:N (default 0: a free port), wait until it
#                                    is ready, write the env file and print it
#   scripts/idp.sh stop              stop the IdP started by `start` (by its pid)
#   scripts/idp.sh status            print the env file and the IdP's state; exit 3
#                                    when it is not running
#
# The env file (default target/idp.env, or $IDP_ENV_FILE) holds, as KEY=value lines:
#   RINGGATE_TEST_IDP          issuer, e.g. http://127.0.0.1:40123
#   RINGGATE_TEST_IDP_CONTROL  control API, <issuer>/_control
#   RINGGATE_TEST_IDP_CLIENTS  absolute path of tests/idp/clients.json
#   RINGGATE_TEST_IDP_PID      the server's pid
# Server settings pass through the environment: IDP_EXTRA_CLIENTS (default 200),
# IDP_TTL (default 300), IDP_ALG (default RS256). See tests/idp/README.md.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=common.sh
. scripts/common.sh

root=$(pwd)
idp_dir=$root/tests/idp
state_dir=$root/target/idp
env_file=${IDP_ENV_FILE:-$root/target/idp.env}
pid_file=$state_dir/pid
log_file=$state_dir/server.log
stamp=$idp_dir/node_modules/.ringgate-install-stamp

usage() {
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Node.js 18.12 or newer (what the pinned oidc-provider 8.x supports).
ensure_node() {
    ensure_commands node:nodejs npm:npm
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 18 ] || die "Node.js $(node --version) is too old for tests/idp (needs 18.12+)"
}

install_deps() {
    ensure_node
    local want have=''
    want=$(cat "$idp_dir/package.json" "$idp_dir/package-lock.json" | sha256sum | cut -d' ' -f1)
    want="$want node-$(node --version)"
    [ -f "$stamp" ] && have=$(cat "$stamp")
    if [ ! -d "$idp_dir/node_modules/oidc-provider" ] || [ "$have" != "$want" ]; then
        say "npm ci in tests/idp"
        (cd "$idp_dir" && npm ci --no-audit --no-fund --loglevel=error) >&2
        printf '%s\n' "$want" >"$stamp"
    fi
}

# running_pid — prints the pid of the IdP started by `start`, if it is still running.
running_pid() {
    local pid
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    [ -n "$pid" ] || return 1
    alive "$pid" || return 1
    # The pid must still be our server, not a recycled number.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'server\.mjs' || return 1
    printf '%s\n' "$pid"
}

start() {
    local port=${IDP_PORT:-0}
    while [ $# -gt 0 ]; do
        case $1 in
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --port=*) port=${1#--port=}; shift ;;
            *) usage ;;
        esac
    done
    if running_pid >/dev/null && [ -f "$env_file" ]; then
        say "already running"
        cat "$env_file"
        return 0
    fi
    install_deps
    mkdir -p "$state_dir" "$(dirname "$env_file")"
    rm -f "$env_file"
    (cd "$idp_dir" && exec nohup node server.mjs --port "$port" >"$log_file" 2>&1 </dev/null) &
    local pid=$! deadline=$((SECONDS + 30)) line=''
    printf '%s\n' "$pid" >"$pid_file"
    while [ "$SECONDS" -lt "$deadline" ]; do
        line=$(grep -m1 '^IDP_READY ' "$log_file" 2>/dev/null || true)
        [ -n "$line" ] && break
        if ! alive "$pid"; then
            cat "$log_file" >&2
            die "the IdP exited during start-up (log above)"
        fi
        sleep 0.1
    done
    if [ -z "$line" ]; then
        stop_pids "$pid"
        cat "$log_file" >&2
        die "the IdP did not become ready within 30 s (log above)"
    fi
    local issuer control
    read -r _ issuer control <<<"$line"
    wait_http "$control/state" "$pid" 10 || die "the IdP's control API does not answer"
    {
        printf 'RINGGATE_TEST_IDP=%s\n' "$issuer"
        printf 'RINGGATE_TEST_IDP_CONTROL=%s\n' "$control"
        printf 'RINGGATE_TEST_IDP_CLIENTS=%s\n' "$idp_dir/clients.json"
        printf 'RINGGATE_TEST_IDP_PID=%s\n' "$pid"
    } >"$env_file.tmp"
    mv "$env_file.tmp" "$env_file"
    say "IdP ready at $issuer (pid $pid, log ${log_file#"$root"/})"
    cat "$env_file"
}

stop() {
    local pid
    if pid=$(running_pid); then
        stop_pids "$pid"
        say "stopped the IdP (pid $pid)"
    else
        say "the IdP is not running"
    fi
    rm -f "$pid_file" "$env_file"
}

status() {
    local pid control
    if ! pid=$(running_pid) || [ ! -f "$env_file" ]; then
        say "the IdP is not running"
        exit 3
    fi
    cat "$env_file"
    control=$(sed -n 's/^RINGGATE_TEST_IDP_CONTROL=//p' "$env_file")
    curl -sS --max-time 5 "$control/state"
    echo
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case $cmd in
    install) install_deps ;;
    start) start "$@" ;;
    stop) stop ;;
    status) status ;;
    *) usage ;;
esac
