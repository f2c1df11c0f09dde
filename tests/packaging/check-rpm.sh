#!/bin/bash
# The built .rpm, read with rpm -qp: requirements, files, modes, config markings, scripts.
# (Its payload runs in the Debian 11 chroot: check-debian.sh.)  Usage: check-rpm.sh RPM
. "$(dirname "$0")/lib/common.sh"
rpm=$(realpath "$1")
q() { rpm -qp --nosignature "$@" "$rpm" 2>/dev/null; }

identity() {
    [ "$(q --qf '%{NAME} %{VERSION} %{ARCH}')" = "tunnel-client $version noarch" ]
}

base_repo_requirements() {
    local got expected
    got=$(q --requires | grep -Ev '^(rpmlib\(|/bin/sh$|config\(tunnel-client\))' | sort -u)
    expected=$(printf '%s\n' "ca-certificates" "cronie" "python3 >= 3.9" \
        "python3-jsonschema >= 3.2" "python3-pyyaml >= 5.3.1" "python3-requests >= 2.25.1" \
        "python3-urllib3 >= 1.26.5" "shadow-utils" "systemd" | sort -u)
    diff <(echo "$expected") <(echo "$got")
}

config_noreplace() {
    # %config(noreplace): rpm keeps the operator's edits and writes the new file as .rpmnew.
    diff <(q --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' | awk 'NF == 2 && $1 ~ /c/' | sort) \
        <(printf '%s\n' "cn /etc/cron.d/tunnel-client" "cn /etc/logrotate.d/tunnel-client" \
            "cn /etc/tunnel-client/config.yaml")
}

file_list() {
    local files want missing=0
    files=$(q --list)
    for want in /usr/bin/tunnel-client /usr/lib/tunnel-client/tunnel_client/cli/__init__.py \
        /usr/lib/systemd/system/tunnel-client.service /usr/lib/sysusers.d/tunnel-client.conf \
        /usr/lib/tmpfiles.d/tunnel-client.conf /usr/share/tunnel-client/tunnel-client.env \
        /usr/share/man/man8/tunnel-client.8 /var/lib/tunnel-client /run/tunnel-client \
        /etc/logrotate.d/tunnel-client /var/log/tunnel-client; do
        grep -qx "$want" <<< "$files" || { echo "missing: $want"; missing=1; }
    done
    # Private directory only: nothing in a version-specific site-packages, no bytecode.
    if grep -E 'site-packages|dist-packages|\.pyc$' <<< "$files"; then missing=1; fi
    grep -qx /etc/tunnel-client/tunnel-client.env <<< "$files" && { echo "secrets file shipped"; missing=1; }
    return $missing
}

modes_and_owners() {
    diff <(q --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' |
            grep -E ' (/usr/bin/tunnel-client|/var/lib/tunnel-client|/var/log/tunnel-client|/run/tunnel-client|/etc/tunnel-client/config.yaml|/usr/share/tunnel-client/tunnel-client.env)$' | sort -k4) \
        <(printf '%s\n' "-rw-r--r-- root root /etc/tunnel-client/config.yaml" \
            "drwxr-x--- tunnel-client tunnel-client /run/tunnel-client" \
            "-rwxr-xr-x root root /usr/bin/tunnel-client" \
            "-rw-r--r-- root root /usr/share/tunnel-client/tunnel-client.env" \
            "drwxr-x--- tunnel-client tunnel-client /var/lib/tunnel-client" \
            "drwxr-x--- tunnel-client tunnel-client /var/log/tunnel-client" | sort -k4)
}

scriptlets() {
    local scripts
    scripts=$(q --scripts)
    # %pre creates the account before files owned by it are laid down.
    grep -q 'useradd -r -g tunnel-client -d /var/lib/tunnel-client -s /sbin/nologin' <<< "$scripts" &&
        # The preset (EL: disabled) decides on first install; erase disables and stops;
        # upgrade restarts a running service only.
        grep -q 'systemctl --no-reload preset tunnel-client.service' <<< "$scripts" &&
        grep -q 'systemctl --no-reload disable --now tunnel-client.service' <<< "$scripts" &&
        grep -q 'systemctl try-restart tunnel-client.service' <<< "$scripts" &&
        grep -q 'python3 -m compileall -q /usr/lib/tunnel-client' <<< "$scripts" &&
        ! grep -Eq 'userdel|groupdel' <<< "$scripts"
}

same_files() {  # the shared files, byte for byte, and a launcher pointing at the payload
    local x
    x=$(mktemp -d)
    (cd "$x" && rpm2cpio "$rpm" | cpio -idm --quiet) &&
        cmp "$ROOT/packaging/systemd/tunnel-client.service" "$x/usr/lib/systemd/system/tunnel-client.service" &&
        cmp "$ROOT/packaging/common/tunnel-client.cron" "$x/etc/cron.d/tunnel-client" &&
        cmp "$ROOT/packaging/common/tunnel-client.logrotate" "$x/etc/logrotate.d/tunnel-client" &&
        cmp "$ROOT/conf/config.yaml" "$x/etc/tunnel-client/config.yaml" &&
        diff -r -x __pycache__ -x '*.pyc' "$ROOT/tunnel_client" "$x/usr/lib/tunnel-client/tunnel_client" &&
        [ "$(head -n 1 "$x/usr/bin/tunnel-client")" = "#!/usr/bin/python3 -s" ] &&
        grep -q 'sys.path.insert(0, "/usr/lib/tunnel-client")' "$x/usr/bin/tunnel-client"
    local rc=$?
    rm -rf "$x"
    return $rc
}

check "rpm: tunnel-client $version noarch" identity
check "rpm: requires base-repo packages only" base_repo_requirements
check "rpm: config.yaml, the cron and logrotate files are %config(noreplace)" config_noreplace
check "rpm: private /usr/lib/tunnel-client, unit, sysusers, tmpfiles, env template, man page" file_list
check "rpm: modes and owners" modes_and_owners
check "rpm: %pre account, preset, disable on erase, try-restart on upgrade" scriptlets
check "rpm: payload matches the tree; launcher uses the private directory" same_files
check "rpm: digests" rpm -K --nosignature "$rpm"
[ "$FAILED" -eq 0 ]
