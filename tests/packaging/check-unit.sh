#!/bin/bash
# The systemd unit and the cron job: hardening score and the promises the packages rely
# on. (`systemd-analyze verify` runs in the chroots, on systemd 247 and 257.)
. "$(dirname "$0")/lib/common.sh"
unit=$ROOT/packaging/systemd/tunnel-client.service
cron=$ROOT/packaging/common/tunnel-client.cron
ENV_FILE=/etc/tunnel-client/tunnel-client.env
CONFIG=/etc/tunnel-client/config.yaml

value() { sed -n "s/^$1=//p" "$unit"; }

security_ok() {  # exposure "OK" or better: PERFECT < SAFE < OK < MEDIUM < EXPOSED < UNSAFE
    local line
    line=$(systemd-analyze security --offline=yes --no-pager "$unit" 2>&1 | grep 'Overall exposure level')
    echo "$line"
    [[ "$line" =~ :\ [0-9.]+\ (PERFECT|SAFE|OK) ]]
}

expect() {  # KEY EXPECTED: the unit sets KEY to exactly EXPECTED
    [ "$(value "$1")" = "$2" ] || { echo "$1=$(value "$1"), expected $2"; return 1; }
}

gated_on_env_file() {
    expect ConditionPathExists "$ENV_FILE" && expect EnvironmentFile "-$ENV_FILE"
}

notify_service() {
    expect Type notify && expect NotifyAccess main && expect User tunnel-client &&
        expect ExecStart "/usr/bin/tunnel-client run --config $CONFIG" &&
        expect RuntimeDirectoryPreserve yes
}

fails_open_on_old_systemd() {
    # An allow-list filter can end up nearly empty on systemd 239 (EL8); a deny-list
    # just blocks less there.
    [[ "$(value SystemCallFilter)" == "~"* ]] || { echo "SystemCallFilter must be a deny-list"; return 1; }
    # JIT runtimes (node, npx) run as stdio MCP servers inside this sandbox.
    ! grep -q '^MemoryDenyWriteExecute=yes' "$unit" || { echo "MemoryDenyWriteExecute breaks node"; return 1; }
}

cron_matches_unit() {
    local job
    job=$(grep -Ev '^[[:space:]]*(#|$)|^[A-Z_]+=' "$cron")
    echo "$job"
    [ "$(wc -l <<< "$job")" -eq 1 ] &&
        [[ "$job" == "*/5 * * * * tunnel-client "* ]] &&
        [[ "$job" == *"[ -e $ENV_FILE ]"* ]] &&
        [[ "$job" == *"tunnel-client doctor --quiet --require-daemon "* ]] &&
        [[ "$job" == *" --config $CONFIG --env-file $ENV_FILE" ]] &&
        grep -q '^SHELL=/bin/sh$' "$cron" && grep -q '^PATH=' "$cron"
}

check "unit: systemd-analyze security scores OK or better" security_ok
check "unit: starts only once the env file exists, and loads it" gated_on_env_file
check "unit: Type=notify as tunnel-client with the packaged config" notify_service
check "unit: deny-list syscall filter, no MemoryDenyWriteExecute" fails_open_on_old_systemd
check "cron: every 5 minutes as tunnel-client, doctor --quiet on the unit's files" cron_matches_unit
[ "$FAILED" -eq 0 ]
