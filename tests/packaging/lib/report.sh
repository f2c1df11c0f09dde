# shellcheck shell=bash
# Result lines for the packaging checks (sourced). Each check prints one line,
# "PASS name", "FAIL name" or "SKIP name: reason"; tests/packaging/run.sh counts them.

REPORT_LOG=${REPORT_LOG:-/tmp/packaging-check.log}
FAILED=0

pass() { echo "PASS $*"; }
skip() { echo "SKIP $*"; }
fail() {
    echo "FAIL $*"
    FAILED=$((FAILED + 1))
}

check() {  # NAME CMD...: PASS when CMD exits 0, else FAIL with the end of its output
    local name=$1
    shift
    if "$@" > "$REPORT_LOG" 2>&1; then
        pass "$name"
    else
        fail "$name (exit $?)"
        tail -n 25 "$REPORT_LOG" | sed 's/^/    | /'
    fi
}

wait_for() {  # SECONDS CMD...: poll CMD until it succeeds; bounded, never a fixed sleep
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}
