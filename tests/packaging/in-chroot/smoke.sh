#!/bin/bash
# Inside a Debian chroot where tunnel-client is installed (the .deb, or the RPM payload):
# what an operator does next. Usage: smoke.sh deb|rpm EXPECTED_VERSION
# Prints PASS/FAIL/SKIP lines; exits non-zero when a check failed.
set -u
cd "$(dirname "$0")" || exit 1
. ./report.sh
mode=$1
expect_version=$2
p="${CHECK_PREFIX:-} $mode:"
ENV_FILE=/etc/tunnel-client/tunnel-client.env
CONFIG=/etc/tunnel-client/config.yaml
work=/tmp/pkgtest/run-$mode
rm -rf "$work" && mkdir -p "$work"
# The stub MCP server is part of the package; the RPM keeps it in its private directory.
stub="python3 -m tunnel_client.devtools.stub"
[ "$mode" = rpm ] && stub="env PYTHONPATH=/usr/lib/tunnel-client $stub"
pids=()
trap 'for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null; done' EXIT

as_service() { python3 ./as_service.py "$@"; }

version_ok() {
    local out
    out=$(tunnel-client --version) || return 1
    echo "$out"
    [[ "$out" == "tunnel-client $expect_version (python "* ]]
}

account_ok() {
    getent passwd tunnel-client | tee /dev/stderr |
        awk -F: '$6 == "/var/lib/tunnel-client" && $7 ~ /nologin$/ { ok = 1 } END { exit !ok }'
}

dirs_ok() {
    local dir
    for dir in /var/lib/tunnel-client /run/tunnel-client; do
        [ "$(stat -c '%a %U %G' "$dir")" = "750 tunnel-client tunnel-client" ] ||
            { stat -c '%n %a %U %G' "$dir"; return 1; }
    done
}

cron_file_ok() {
    local file=/etc/cron.d/tunnel-client
    # Debian's cron skips files that are writable by others or whose names have dots.
    [ "$(stat -c '%a %U' "$file")" = "644 root" ] || { stat -c '%n %a %U' "$file"; return 1; }
    [ -z "$(find /etc/cron.d -name 'tunnel-client*.*')" ] || return 1
}

cron_command() {  # run the cron file's job exactly as cron would; print its output
    local line m h dom mon dow user cmd
    line=$(grep -Ev '^[[:space:]]*(#|$)|^[A-Z_]+=' /etc/cron.d/tunnel-client)
    read -r m h dom mon dow user cmd <<< "$line"
    [ "$m $h $dom $mon $dow $user" = "*/5 * * * * tunnel-client" ] ||
        { echo "unexpected schedule or user: $line"; return 1; }
    as_service --user "$user" --set SHELL=/bin/sh -- /bin/sh -c "$cmd" 2>&1
}

cron_silent_unconfigured() {
    local out
    out=$(cron_command)
    [ -z "$out" ] || { echo "cron would mail: $out"; return 1; }
}

cron_silent_when_ok() {
    local out
    out=$(cron_command) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "cron would mail: $out"; return 1; }
}

configure() {  # the operator's step: install the template 0640, then fill it in
    install -m 0640 -o root -g tunnel-client /usr/share/tunnel-client/tunnel-client.env "$ENV_FILE"
    # Values go in through a file read by python, so the key never appears in argv.
    python3 - "$ENV_FILE" "$work/relay.json" "$stub" <<'PY'
import json, re, sys
path, relay_path, stub = sys.argv[1:]
with open(relay_path) as handle:
    relay = json.load(handle)
with open(path) as handle:
    text = handle.read()
text = re.sub(r"(?m)^CONTROL_PLANE_API_KEY=.*$",
              lambda m: "CONTROL_PLANE_API_KEY=" + relay["api_key"], text)
text += ("\nCONTROL_PLANE_TUNNEL_ID=%s\nCONTROL_PLANE_BASE_URL=%s\nMCP_COMMAND=%s\nNO_PROXY=*\n"
         % (relay["tunnel_id"], relay["control_plane_base_url"], stub))
with open(path, "w") as handle:
    handle.write(text)
PY
    [ "$(stat -c '%a %U %G' "$ENV_FILE")" = "640 root tunnel-client" ]
}

doctor_offline() {
    local out rc
    out=$(as_service -- tunnel-client doctor --offline --config "$CONFIG" --env-file "$ENV_FILE" 2>&1)
    rc=$?
    echo "$out"
    [ "$rc" -eq 0 ] && [[ "$(head -n 1 <<< "$out")" == "TUNNEL-CLIENT OK"* ]]
}

readyz_ok() {
    python3 - <<'PY'
import sys, urllib.request
with open("/run/tunnel-client/admin.url") as handle:
    base = handle.read().strip()
with urllib.request.urlopen(base + "/readyz", timeout=5) as reply:
    body = reply.read().decode()
print(reply.status, body)
sys.exit(0 if reply.status == 200 else 1)
PY
}

echo_ok() {
    local out
    out=$(tunnel-client dev call "$1" tools/call \
        '{"name":"echo","arguments":{"input":"through the package"}}') || { echo "$out"; return 1; }
    echo "$out"
    grep -q "through the package" <<< "$out"
}

cron_mails_when_daemon_stopped() {
    local out
    out=$(cron_command)
    echo "$out"
    [[ "$out" == "TUNNEL-CLIENT CRITICAL"* ]]
}

relay_url() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mcp_url"])' "$work/relay.json"; }

stop_daemon() {  # SIGTERM, then the exit status must be 0 within the drain budget
    kill -TERM "$daemon_pid"
    wait_for 40 bash -c "! kill -0 $daemon_pid 2>/dev/null" || return 1
    wait "$daemon_pid"
    local rc=$?
    echo "daemon exit status $rc"
    [ "$rc" -eq 0 ] && grep -q '^STOPPING=1' "$work/notify.log"
}

check "$p tunnel-client --version reports $expect_version" version_ok
check "$p service account (nologin, home /var/lib/tunnel-client)" account_ok
check "$p /var/lib and /run directories 0750 tunnel-client" dirs_ok
check "$p cron file root-owned 0644, name without dots" cron_file_ok
check "$p unconfigured: no env file shipped, so ConditionPathExists= holds the unit back" test ! -e "$ENV_FILE"
check "$p unconfigured: cron job stays silent" cron_silent_unconfigured

# A local control plane and the stub MCP server stand in for the real ones.
tunnel-client dev relay --url-file "$work/relay.json" > "$work/relay.log" 2>&1 &
pids+=("$!")
check "$p local control plane up" wait_for 20 test -s "$work/relay.json"
check "$p env file installed 0640 root:tunnel-client from the template" configure

check "$p doctor --offline on the shipped config: OK" doctor_offline

# The daemon as systemd would run it: service user, env file, NOTIFY_SOCKET, watchdog.
python3 ./notify_listen.py "$work/notify.sock" "$work/notify.log" &
pids+=("$!")
wait_for 10 test -S "$work/notify.sock"
python3 ./as_service.py --env-file "$ENV_FILE" --set NOTIFY_SOCKET="$work/notify.sock" \
    --set WATCHDOG_USEC=2000000 -- \
    tunnel-client run --config "$CONFIG" --health.listen-addr 127.0.0.1:0 \
    > "$work/daemon.log" 2>&1 &
daemon_pid=$!
pids+=("$daemon_pid")
if check "$p run: READY=1 on the notify socket" wait_for 30 grep -q '^READY=1' "$work/notify.log"; then
    mcp_url=$(relay_url)
    check "$p run: tools/list through the tunnel" tunnel-client dev call "$mcp_url" tools/list
    check "$p run: tools/call echo through the tunnel" echo_ok "$mcp_url"
    check "$p run: /readyz 200 via /run/tunnel-client/admin.url" readyz_ok
    check "$p run: WATCHDOG=1 while workers live" wait_for 10 grep -q '^WATCHDOG=1' "$work/notify.log"
    check "$p cron job as tunnel-client: doctor --quiet prints nothing" cron_silent_when_ok
    check "$p run: SIGTERM drains, STOPPING=1, exit 0" stop_daemon
    check "$p cron job reports CRITICAL once the daemon is stopped" cron_mails_when_daemon_stopped
else
    tail -n 30 "$work/daemon.log" | sed 's/^/    | /'
fi
[ "$FAILED" -eq 0 ]
