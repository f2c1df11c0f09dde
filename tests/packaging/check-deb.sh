#!/bin/bash
# The built .deb, read with dpkg-deb: dependencies, conffiles, payload, maintainer scripts.
# Usage: check-deb.sh DEB
. "$(dirname "$0")/lib/common.sh"
deb=$(realpath "$1")
x=$(mktemp -d)
trap 'rm -rf "$x"' EXIT
dpkg-deb -R "$deb" "$x"
site=$x/usr/lib/python3/dist-packages

named_for_version() {
    [ "$(basename "$deb")" = "tunnel-client_${version}_all.deb" ] &&
        [ "$(dpkg-deb -f "$deb" Architecture)" = all ]
}

distro_dependencies_only() {
    local name bad=0
    dpkg-deb -f "$deb" Depends
    for name in $(dpkg-deb -f "$deb" Depends | tr ',|' '\n\n' | sed 's/(.*)//; s/ //g'); do
        case $name in
        # procps: /bin/kill for the unit's ExecReload (systemctl reload).
        systemd | systemd-standalone-sysusers | systemd-sysusers | python3:any | ca-certificates | procps) ;;
        python3-jsonschema | python3-requests | python3-urllib3 | python3-yaml) ;;
        *) echo "unexpected dependency: $name"; bad=1 ;;
        esac
    done
    return $bad
}

conffiles_ok() {
    diff <(sort "$x/DEBIAN/conffiles") <(printf '%s\n' /etc/cron.d/tunnel-client \
        /etc/logrotate.d/tunnel-client /etc/tunnel-client/config.yaml)
}

every_source_file_shipped() {  # catches directories setup.cfg's find: skips (no __init__.py)
    local file missing=0
    while read -r file; do
        [ -e "$site/$file" ] || { echo "not in the .deb: $file"; missing=1; }
    done < <(cd "$ROOT" && find tunnel_client -type f ! -name '*.pyc' ! -path '*/__pycache__/*')
    return $missing
}

no_bytecode() { [ -z "$(find "$x" -name '*.pyc' -o -name __pycache__)" ]; }

same_files() {
    cmp "$ROOT/packaging/systemd/tunnel-client.service" "$x/lib/systemd/system/tunnel-client.service" &&
        cmp "$ROOT/packaging/common/tunnel-client.cron" "$x/etc/cron.d/tunnel-client" &&
        cmp "$ROOT/packaging/common/tunnel-client.logrotate" "$x/etc/logrotate.d/tunnel-client" &&
        cmp "$ROOT/packaging/common/tunnel-client.sysusers" "$x/usr/lib/sysusers.d/tunnel-client.conf" &&
        cmp "$ROOT/packaging/common/tunnel-client.tmpfiles" "$x/usr/lib/tmpfiles.d/tunnel-client.conf" &&
        cmp "$ROOT/conf/config.yaml" "$x/etc/tunnel-client/config.yaml" &&
        cmp "$ROOT/conf/tunnel-client.env" "$x/usr/share/tunnel-client/tunnel-client.env" &&
        [ -f "$x/usr/share/man/man8/tunnel-client.8.gz" ] &&
        [ ! -e "$x/etc/tunnel-client/tunnel-client.env" ]
}

upgrade_restarts_not_stops() {
    # prerm may stop the service only on removal; postinst restarts it after an upgrade.
    # (dh_installsystemd --no-start would stop it on upgrade and never start it again.)
    awk '/deb-systemd-invoke stop/ && prev !~ /"\$1" = remove/ { bad = 1 } { prev = $0 } END { exit bad }' \
        "$x/DEBIAN/prerm" && grep -q '_dh_action=restart' "$x/DEBIAN/postinst"
}

account_and_dirs_at_install() {
    grep -q 'systemd-sysusers .*tunnel-client.conf' "$x/DEBIAN/postinst" &&
        grep -q 'systemd-tmpfiles .*--create tunnel-client.conf' "$x/DEBIAN/postinst"
}

purge_keeps_user() {
    grep -q 'rm -rf /var/lib/tunnel-client' "$x/DEBIAN/postrm" &&
        ! grep -Eq 'userdel|deluser|groupdel' "$x/DEBIAN/postrm"
}

check "deb: named tunnel-client_${version}_all.deb, Architecture: all" named_for_version
check "deb: depends on distro packages only" distro_dependencies_only
check "deb: conffiles are config.yaml, the cron file and the logrotate file" conffiles_ok
check "deb: every file under tunnel_client/ is installed" every_source_file_shipped
check "deb: no bytecode in the payload (py3compile builds it on the target)" no_bytecode
check "deb: unit, cron, logrotate, sysusers, tmpfiles, config, env template, man page as in the tree" same_files
check "deb: upgrade restarts the service, never leaves it stopped" upgrade_restarts_not_stops
check "deb: postinst creates the account and directories" account_and_dirs_at_install
check "deb: purge removes state, keeps the account" purge_keeps_user
[ "$FAILED" -eq 0 ]
