#!/usr/bin/env bash
# The project's test command, the one the README gives and CI (.ci/run) calls.
#
# On a fresh Debian machine it first installs what the tests need, then runs, from the
# repository root whatever the current directory:
#   cargo fmt --all -- --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --all-targets   (unit, integration, bins; criterion benches run in their
#                               test mode: each bench once, nothing measured)
#   cargo test --doc
# Every step runs even when an earlier one failed, so one run shows every problem; the
# script exits non-zero if any step failed and ends with a summary.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=common.sh
. scripts/common.sh

# ---------------------------------------------------------------------------------------
# What the tests need.
# ---------------------------------------------------------------------------------------

# A C compiler (crates that build C, e.g. mimalloc), curl (for rustup below; the Admin
# API documentation requests and the TLS listener tests use the real curl), openssl
# (`s_client` against the TLS listener) and wrk (load across reloads in tests/cli.rs).
ensure_commands cc:build-essential curl:curl openssl:openssl wrk:wrk

# Rust, through rustup (Debian's own rustc is older than Cargo.toml's rust-version).
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    say "installing Rust with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --profile minimal --component rustfmt,clippy
    PATH="$HOME/.cargo/bin:$PATH"
fi
if command -v rustup >/dev/null 2>&1; then
    cargo fmt --version >/dev/null 2>&1 || rustup component add rustfmt
    cargo clippy --version >/dev/null 2>&1 || rustup component add clippy
fi

# --- Test IdP ---------------------------------------------------------------------------
# The openid-connect tests run against the Node OpenID Provider pinned in tests/idp/
# (oidc-provider from the npm registry, by its lockfile). Install it now, so a fresh
# machine fails here, loudly, if it cannot.
scripts/idp.sh install
# -------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------
# The steps.
# ---------------------------------------------------------------------------------------
log_dir=$(mktemp -d)
trap 'rm -rf "$log_dir"' EXIT

names=()
results=()
step() { # name command...
    local name=$1
    shift
    printf '\n==> %s: %s\n' "$name" "$*"
    local rc=0
    "$@" 2>&1 | tee "$log_dir/$name.log" || rc=$?
    names+=("$name")
    if [ "$rc" -eq 0 ]; then results+=(ok); else results+=("FAILED (exit $rc)"); fi
}

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# What ringgate says during the tests is recorded here for the redaction step.
export RINGGATE_TEST_RECORD="$PWD/target/tmp/record"
rm -rf "$RINGGATE_TEST_RECORD"
step fmt cargo fmt --all -- --check
step clippy cargo clippy --all-targets -- -D warnings
step test cargo test --all-targets
step doc cargo test --doc
step idp node --test tests/idp/
step redaction python3 scripts/redaction.py "$RINGGATE_TEST_RECORD"

# Test totals, summed over every "test result:" line of cargo test and cargo test --doc.
read -r passed failed_tests ignored < <(cat "$log_dir/test.log" "$log_dir/doc.log" | awk '
    /^test result:/ {
        for (i = 1; i < NF; i++) {
            if ($(i + 1) ~ /^passed/) p += $i
            if ($(i + 1) ~ /^failed/) f += $i
            if ($(i + 1) ~ /^ignored/) g += $i
        }
    }
    END { print p + 0, f + 0, g + 0 }')

failed=0
printf '\n==> summary\n'
for i in "${!names[@]}"; do
    printf '  %-7s %s\n' "${names[$i]}" "${results[$i]}"
    [ "${results[$i]}" = ok ] || failed=1
done
printf '  %s ignored tests\n' "$ignored"
if [ "$failed" -ne 0 ]; then
    printf 'scripts/test.sh: FAILED\n'
else
    printf 'scripts/test.sh: all steps passed\n'
fi
# Last line: the test totals (cargo test and cargo test --doc together).
printf 'tests: %s passed, %s failed\n' "$passed" "$failed_tests"
exit "$failed"
