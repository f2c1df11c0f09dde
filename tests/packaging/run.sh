#!/bin/bash
# make test-packaging: every packaging check in order, then one tally line.
# Usage: run.sh DEB UPGRADE_DEB RPM TOOLS_BIN
. "$(dirname "$0")/lib/common.sh"
deb=$1 deb2=$2 rpm=$3 tools=$4
log=$ROOT/build/test-packaging.log
mkdir -p "$(dirname "$log")"
start=$SECONDS
status=0

step() {  # NAME CMD...: run one check script, keep its lines, time it
    local t0=$SECONDS
    echo "== $1"
    shift
    "$@" || status=1
    echo "INFO took $((SECONDS - t0))s"
}

{
    step "systemd unit and cron job" "$here/check-unit.sh"
    step "shell scripts" check "scripts: shellcheck" bash -c \
        'cd "$0" && shellcheck -S warning -e SC2154,SC2034 packaging/scripts/*.sh tests/packaging/*.sh tests/packaging/lib/*.sh tests/packaging/in-chroot/*.sh' "$ROOT"
    step "python floor" check "python: vermin finds nothing newer than 3.9" \
        "$tools/vermin" -t=3.9- --violations --eval-annotations --no-tips \
        "$ROOT/tunnel_client" "$here" "$ROOT/packaging/common/tunnel-client.launcher"
    step ".deb contents" "$here/check-deb.sh" "$deb"
    step ".rpm contents" "$here/check-rpm.sh" "$rpm"
    step "container recipe and Kubernetes manifests" \
        "$tools/python" "$here/check_deploy.py" "$ROOT" "$tools"
    step "Debian 11 (bullseye): .deb, test suite, RPM payload" \
        "$here/check-debian.sh" bullseye "$deb" "$deb2" "$rpm"
    step "Debian 13 (trixie): .deb" "$here/check-debian.sh" trixie "$deb" "$deb2"
    step "container image without a container engine" "$here/check-image.sh"
    echo "status=$status"
} 2>&1 | tee "$log"

passed=$(grep -c '^PASS' "$log")
failed=$(grep -c '^FAIL' "$log")
skipped=$(grep -c '^SKIP' "$log")
echo "test-packaging took $((SECONDS - start))s; log in ${log#$ROOT/}"
echo "test-packaging: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && grep -qx 'status=0' "$log"
