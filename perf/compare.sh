#!/usr/bin/env bash
# Whole-proxy comparison in one run: origin direct, nginx proxy_pass, ringgate, measured
# with wrk in interleaved rounds on this machine, written up as perf/results/DATE-COMMIT.md.
# See perf/README.md for what each number means.
#
# Usage: perf/compare.sh [--skip-ringgate] [--ringgate-bin PATH] [--no-build]
#                        [--cases a,b,c] [--out FILE]
# Env:   ROUNDS (5) DURATION (10 s) WARMUP (5 s) CONNECTIONS (50) THREADS (1)
#        ORIGIN_PORT (18080) NGINX_PROXY_PORT (18081) RINGGATE_PORT (18082)
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
for v in ROUNDS DURATION WARMUP CONNECTIONS THREADS; do
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
RINGGATE_BIN=${RINGGATE_BIN:-}
WORK_DIR=${WORK_DIR:-$root/perf/work}

skip_ringgate=0
build=1
only_cases=
out=

usage() { sed -n '2,10s/^# \{0,1\}//p' "$0"; }

while [ $# -gt 0 ]; do
    case $1 in
    --ringgate-bin | --out) cmdline+=" $1 <${1#--}>" ;;
    --cases) cmdline+=" $1 ${2:-}" ;;
    *) cmdline+=" $1" ;;
    esac
    case $1 in
    --skip-ringgate) skip_ringgate=1 ;;
    --ringgate-bin) RINGGATE_BIN=${2:?--ringgate-bin needs a path}; shift ;;
    --no-build) build=0 ;;
    --cases) only_cases=${2:?--cases needs a list}; shift ;;
    --out) out=${2:?--out needs a file}; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
    esac
    shift
done

for v in ROUNDS DURATION WARMUP CONNECTIONS THREADS; do
    if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then die "$v must be a positive integer, not '${!v}'"; fi
done

# ---------------------------------------------------------------------------------------
# Cases. Each case is a name with: a start function (which starts what it needs and sets
# CASE_PID[name] to the process whose CPU is measured — that process and its children),
# a port, an optional reference case to compute ratios against, and a description.
# Optional per case: CASE_PATH (request path, default /) and CASE_HEADERS (extra wrk
# request headers, one per line). To add a case: write start_<name>, then add_case.
# ---------------------------------------------------------------------------------------
declare -a CASES=()
declare -A CASE_START=() CASE_PORT=() CASE_VS=() CASE_DESC=() CASE_PID=()
declare -A CASE_PATH=() CASE_HEADERS=() CASE_MEASURED=()

add_case() { # name start_fn port vs description
    CASES+=("$1")
    CASE_START[$1]=$2
    CASE_PORT[$1]=$3
    CASE_VS[$1]=$4
    CASE_DESC[$1]=$5
}

add_case origin start_origin "$ORIGIN_PORT" "" \
    "origin direct: nginx \`return 200\`, 1 worker, no proxy in between"
add_case nginx_proxy start_nginx_proxy "$NGINX_PROXY_PORT" "" \
    "nginx \`proxy_pass\` to the origin, upstream keepalive pool, 1 worker"
[ "$skip_ringgate" -eq 1 ] ||
    add_case ringgate start_ringgate "$RINGGATE_PORT" nginx_proxy \
        "ringgate \`run --workers 1\`, one route to the origin"

if [ -n "$only_cases" ]; then
    selected=()
    IFS=, read -r -a wanted <<<"$only_cases"
    for c in "${wanted[@]}"; do
        [ -n "${CASE_START[$c]:-}" ] || die "unknown case '$c' (known: ${CASES[*]})"
        selected+=("$c")
    done
    CASES=("${selected[@]}")
fi

# ---------------------------------------------------------------------------------------
# Processes: every PID started here is stopped on exit, Ctrl-C included.
# ---------------------------------------------------------------------------------------
STARTED=()
WRK_PID=
cleanup() {
    local rc=$?
    set +e
    trap - EXIT INT TERM
    [ -n "$WRK_PID" ] && stop_pids "$WRK_PID"
    [ "${#STARTED[@]}" -gt 0 ] && stop_pids "${STARTED[@]}"
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
# WORK_DIR/NAME.log and waits until PORT answers HTTP. Sets LAST_PID.
start_server() {
    local name=$1 port=$2
    shift 2
    port_in_use "$port" && die "port $port (for $name) is already in use; set another in the env"
    "$@" >"$WORK_DIR/$name.log" 2>&1 &
    LAST_PID=$!
    STARTED+=("$LAST_PID")
    if ! wait_http "http://127.0.0.1:$port/" "$LAST_PID" 15; then
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

start_ringgate() {
    start_origin_server
    local config="$WORK_DIR/ringgate.yaml"
    cat >"$config" <<EOF
_format_version: "3.0"
services:
- name: origin
  url: http://127.0.0.1:$ORIGIN_PORT
  routes:
  - name: all
    paths: [/]
EOF
    start_server ringgate "$RINGGATE_PORT" \
        "$RINGGATE_BIN" run --config "$config" --listen "127.0.0.1:$RINGGATE_PORT" --workers 1
    CASE_PID[ringgate]=$LAST_PID
    CASE_MEASURED[ringgate]="ringgate, all threads"
}

# ---------------------------------------------------------------------------------------
# Measurement.
# ---------------------------------------------------------------------------------------

# tree_pids PID — PID and its direct children (nginx: master and workers), sorted.
tree_pids() {
    { echo "$1"; children_of "$1"; } | sort -n | tr '\n' ' '
}

# cpu_ticks PID... — utime+stime (all threads, in clock ticks) summed over the PIDs,
# from /proc/PID/stat fields 14 and 15. Fails if a PID is gone.
cpu_ticks() {
    local p stat f total=0
    for p in "$@"; do
        stat=$(cat "/proc/$p/stat" 2>/dev/null) || return 1
        # Field 2 (comm) may hold spaces: split after its closing parenthesis, so f[0]
        # is field 3 (state) and utime/stime (fields 14/15) are f[11]/f[12].
        read -r -a f <<<"${stat##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}

# run_wrk CASE SECONDS OUTFILE — one bounded wrk run against CASE.
run_wrk() {
    local c=$1 secs=$2 outfile=$3 h hdr=()
    while IFS= read -r h; do [ -n "$h" ] && hdr+=(-H "$h"); done <<<"${CASE_HEADERS[$c]:-}"
    timeout -k 5 $((secs + 30)) \
        wrk -t "$THREADS" -c "$CONNECTIONS" -d "${secs}s" --latency \
        -s "$here/wrk/report.lua" "${hdr[@]}" \
        "http://127.0.0.1:${CASE_PORT[$c]}${CASE_PATH[$c]:-/}" >"$outfile" 2>&1 &
    WRK_PID=$!
    local rc=0
    wait "$WRK_PID" || rc=$?
    WRK_PID=
    return "$rc"
}

# result_field OUTFILE KEY — a value from report.lua's RESULT line.
result_field() {
    sed -n "s/^RESULT .*\b$2=\([0-9]*\).*/\1/p" "$1"
}

# ---------------------------------------------------------------------------------------
# Main.
# ---------------------------------------------------------------------------------------
ensure_commands nginx:nginx wrk:wrk curl:curl python3:python3 timeout:coreutils git:git

if [ "$skip_ringgate" -eq 0 ]; then
    if [ -z "$RINGGATE_BIN" ]; then
        RINGGATE_BIN="$root/target/release/ringgate"
        if [ "$build" -eq 1 ]; then
            say "building the release binary (cargo build --release)"
            (cd "$root" && cargo build --release --quiet)
        fi
    fi
    [ -x "$RINGGATE_BIN" ] || die "no ringgate binary at $RINGGATE_BIN (build it, pass --ringgate-bin, or --skip-ringgate)"
fi

mkdir -p "$WORK_DIR"
rm -f "$WORK_DIR"/*.log "$WORK_DIR"/wrk-*.txt "$WORK_DIR/raw.tsv"
raw="$WORK_DIR/raw.tsv"
printf 'round\tcase\trequests\tduration_us\tp50_us\tp90_us\tp99_us\tmax_us\terrors\tcpu_ticks\tnote\n' >"$raw"

for c in "${CASES[@]}"; do
    say "starting $c"
    "${CASE_START[$c]}"
done

for c in "${CASES[@]}"; do
    say "warm-up $c (${WARMUP} s)"
    run_wrk "$c" "$WARMUP" "$WORK_DIR/wrk-warmup-$c.txt" ||
        die "wrk failed warming up $c (see $WORK_DIR/wrk-warmup-$c.txt)"
    n=$(result_field "$WORK_DIR/wrk-warmup-$c.txt" requests)
    [ "${n:-0}" -gt 0 ] || die "no request completed warming up $c"
done

clk_tck=$(getconf CLK_TCK)
ncases=${#CASES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # Rotate the order each round so no case always runs first or right after another.
    for ((i = 0; i < ncases; i++)); do
        c=${CASES[$(((i + r - 1) % ncases))]}
        wout="$WORK_DIR/wrk-r$r-$c.txt"
        pids_before=$(tree_pids "${CASE_PID[$c]}")
        # shellcheck disable=SC2086 # a list of PIDs, split on purpose
        t0=$(cpu_ticks $pids_before) || die "$c: a measured process is gone"
        run_wrk "$c" "$DURATION" "$wout" || die "wrk failed on $c round $r (see $wout)"
        # shellcheck disable=SC2086
        t1=$(cpu_ticks $pids_before) || die "$c: a measured process died during round $r"
        note=
        [ "$(tree_pids "${CASE_PID[$c]}")" = "$pids_before" ] || note="process set changed"
        req=$(result_field "$wout" requests)
        dur=$(result_field "$wout" duration_us)
        errors=0
        for k in err_connect err_read err_write err_status err_timeout; do
            errors=$((errors + $(result_field "$wout" "$k")))
        done
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$r" "$c" "$req" "$dur" \
            "$(result_field "$wout" p50_us)" "$(result_field "$wout" p90_us)" \
            "$(result_field "$wout" p99_us)" "$(result_field "$wout" max_us)" \
            "$errors" "$((t1 - t0))" "$note" >>"$raw"
        python3 "$here/report.py" line --clk-tck "$clk_tck" --round "$r/$ROUNDS" \
            --raw-line "$(tail -n 1 "$raw")" >&2
    done
done

# Stop the servers before writing up, so nothing runs on after the numbers are in.
stop_pids "${STARTED[@]}"
STARTED=()

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
    if [ "$skip_ringgate" -eq 0 ]; then
        printf 'ringgate\t%s\n' "$(rel "$RINGGATE_BIN")"
    else
        printf 'ringgate\tskipped (--skip-ringgate)\n'
    fi
    printf 'command\t%s\n' "$cmdline"
    printf 'load\twrk %s thread(s), %s connections, %s rounds x %s s per case, %s s warm-up per case\n' \
        "$THREADS" "$CONNECTIONS" "$ROUNDS" "$DURATION" "$WARMUP"
    printf 'clk_tck\t%s\n' "$clk_tck"
} >"$meta"

cases="$WORK_DIR/cases.tsv"
for c in "${CASES[@]}"; do
    printf '%s\t%s\t%s\t%s\n' "$c" "${CASE_VS[$c]}" "${CASE_MEASURED[$c]}" "${CASE_DESC[$c]}"
done >"$cases"

if [ -z "$out" ]; then
    if [ "$skip_ringgate" -eq 1 ]; then
        # A run without ringgate validates the harness; it is not a result to keep.
        out="$WORK_DIR/$(date -u +%Y-%m-%d)-$commit-skip.md"
    else
        base="$root/perf/results/$(date -u +%Y-%m-%d)-$commit"
        out="$base.md"
        n=2
        while [ -e "$out" ]; do out="$base-$n.md"; n=$((n + 1)); done
    fi
fi
mkdir -p "$(dirname "$out")"
python3 "$here/report.py" markdown --meta "$meta" --cases "$cases" --raw "$raw" --out "$out"
say "report written to $(rel "$out")"
