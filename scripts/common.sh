# shellcheck shell=bash
# Helpers shared by the project's scripts (scripts/*.sh, perf/compare.sh). Sourced, never
# run. Everything here works on a fresh Debian machine: what a script needs and does not
# find is installed with apt-get, once, up front.

# Prints a line on stderr, prefixed with the calling script's name.
say() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

die() {
    say "error: $*"
    exit 1
}

# ensure_commands CMD:PACKAGE ... — installs, with one apt-get run, the Debian package
# of every CMD that is not on PATH. Runs apt-get update first (a fresh machine has no
# package lists). Uses sudo when not root.
ensure_commands() {
    local pair missing=()
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    say "installing missing packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# port_in_use PORT — true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# alive PID — true while PID exists and is not a zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat:0:1}" != Z ]
}

# wait_http URL PID SECONDS — polls URL until it answers (any HTTP status), while PID
# is alive, for at most SECONDS. Fails when PID dies or time runs out.
wait_http() {
    local url=$1 pid=$2 deadline=$((SECONDS + $3))
    while [ "$SECONDS" -lt "$deadline" ]; do
        alive "$pid" || return 1
        curl -sk -o /dev/null --max-time 1 "$url" && return 0
        sleep 0.1
    done
    return 1
}

# children_of PID — the PIDs whose parent is PID (one level), from /proc.
children_of() {
    local f stat rest ppid
    for f in /proc/[0-9]*/stat; do
        stat=$(cat "$f" 2>/dev/null) || continue
        rest=${stat##*) }
        read -r _ ppid _ <<<"$rest"
        [ "$ppid" = "$1" ] && { f=${f#/proc/}; printf '%s\n' "${f%/stat}"; }
    done
    return 0
}

# stop_pids PID... — SIGTERM each PID and its children, wait up to 5 s, then SIGKILL
# what is left. Only the PIDs given (and their children) are touched.
stop_pids() {
    local p all=() deadline
    for p in "$@"; do
        alive "$p" || continue
        all+=("$p")
        while read -r c; do [ -n "$c" ] && all+=("$c"); done < <(children_of "$p")
    done
    [ "${#all[@]}" -eq 0 ] && return 0
    kill -TERM "${all[@]}" 2>/dev/null || true
    deadline=$((SECONDS + 5))
    while [ "$SECONDS" -lt "$deadline" ]; do
        local left=0
        for p in "${all[@]}"; do alive "$p" && left=1; done
        [ "$left" -eq 0 ] && return 0
        sleep 0.1
    done
    for p in "${all[@]}"; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
    return 0
}
