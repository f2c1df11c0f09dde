#!/bin/bash
# The .deb on a clean Debian: apt install (distro packages only), run, upgrade, purge.
# Usage: check-debian.sh SUITE DEB UPGRADE_DEB [RPM]
#   With RPM (the Debian 11 floor): also the project's test suite on the installed
#   package, and the RPM payload on the same Python 3.9 stack as EL9.
. "$(dirname "$0")/lib/common.sh"
. "$here/lib/chroot.sh"
suite=$1
deb=$(realpath "$2") deb2=$(realpath "$3") rpm=${4:+$(realpath "$4")}
version=$(dpkg-deb -f "$deb" Version)
version2=$(dpkg-deb -f "$deb2" Version)
C=$PACKAGING_CACHE/work-$suite
p=$suite
t0=$SECONDS

trap 'chroot_stop "$suite" "$C"' EXIT
if ! chroot_start "$suite" "$C"; then
    fail "$p clean chroot from debootstrap ($DEBIAN_MIRROR)"
    exit 1
fi
echo "INFO $p chroot ready in $((SECONDS - t0))s"
mkdir -p "$C/tmp/pkgtest"
cp "$here"/in-chroot/* "$here/lib/report.sh" "$deb" "$deb2" "$C/tmp/pkgtest/"
debname=$(basename "$deb") deb2name=$(basename "$deb2")

only_ours_is_local() {  # every installed package but ours must come from an archive
    local local_pkgs
    local_pkgs=$(in_chroot "$C" apt list --installed 2>/dev/null | grep ',local\]' | cut -d/ -f1)
    [ "$local_pkgs" = tunnel-client ] || { echo "local packages: $local_pkgs"; return 1; }
}

upgrade_keeps_config() {
    in_chroot "$C" VERSION2="$version2" DEB2="/tmp/pkgtest/$deb2name" sh -ec '
        printf "# edited by the operator\n" >> /etc/tunnel-client/config.yaml
        sha256sum /etc/tunnel-client/config.yaml /etc/tunnel-client/tunnel-client.env \
            > /tmp/pkgtest/before.sum
        touch /var/lib/tunnel-client/state-marker
        apt-get install -y -q "$DEB2"
        test "$(dpkg-query -W -f="\${Version}" tunnel-client)" = "$VERSION2"
        sha256sum -c /tmp/pkgtest/before.sum
        test -e /var/lib/tunnel-client/state-marker
        test -z "$(find /etc/tunnel-client /etc/cron.d -name "*.dpkg-*")"
        tunnel-client --version'
}

t1=$SECONDS
check "$p apt installs $debname, pulling distro packages only" \
    in_chroot "$C" sh -c "apt-get update -qq && apt-get install -y -q /tmp/pkgtest/$debname"
echo "INFO $p apt install took $((SECONDS - t1))s"
check "$p nothing but tunnel-client is installed from outside the archive" only_ours_is_local
in_chroot "$C" python3 -c '
import sys, requests, urllib3, yaml, jsonschema
try:
    from importlib.metadata import version
    js = version("jsonschema")
except Exception:
    js = jsonschema.__version__
print("INFO '"$p"' stack: python %s, requests %s, urllib3 %s, PyYAML %s, jsonschema %s"
      % (sys.version.split()[0], requests.__version__, urllib3.__version__, yaml.__version__, js))'
systemd_version=$(in_chroot "$C" systemd-analyze --version | awk 'NR == 1 { print $2 }')
check "$p systemd-analyze verify on systemd $systemd_version" \
    in_chroot "$C" systemd-analyze verify --man=no /lib/systemd/system/tunnel-client.service
in_chroot "$C" CHECK_PREFIX="$p" bash /tmp/pkgtest/smoke.sh deb "$version" || FAILED=$((FAILED + 1))

if [ -n "$rpm" ]; then
    mkdir -p "$C/tmp/pkgtest/src"
    # The checkout's files (tests use repo-level helpers such as benchmarks/), minus the
    # code itself: the tests must import the installed package.
    (cd "$ROOT" && git ls-files -co --exclude-standard -z |
        grep -zv -e '^tunnel_client/' -e '^packaging/' | tar --null -T - -cf -) |
        tar -C "$C/tmp/pkgtest/src" -xf -
    cp "$ROOT"/.cache/packaging/tools/wheels/trustme-*.whl "$C/tmp/pkgtest/" 2>/dev/null ||
        echo "INFO $p no trustme wheel (make packaging-tools): its tests will skip"
    t1=$SECONDS
    in_chroot "$C" CHECK_PREFIX="$p" bash /tmp/pkgtest/testsuite.sh /tmp/pkgtest/src ||
        FAILED=$((FAILED + 1))
    cp "$C/tmp/pkgtest/pytest.log" "$ROOT/build/test-packaging-pytest-$suite.log" 2>/dev/null &&
        echo "INFO $p pytest output in build/test-packaging-pytest-$suite.log"
    echo "INFO $p test suite took $((SECONDS - t1))s"
fi

check "$p upgrade to $version2 keeps the operator's config, secrets and state" upgrade_keeps_config
in_chroot "$C" CHECK_PREFIX="$p" bash /tmp/pkgtest/purge.sh || FAILED=$((FAILED + 1))

if [ -n "$rpm" ]; then
    # Lay the RPM payload down as rpm would (the account already exists: purge kept it),
    # then what %post does, then the same operator story.
    (cd "$C" && rpm2cpio "$rpm" | cpio -idm --quiet)
    in_chroot "$C" systemd-tmpfiles --create /usr/lib/tmpfiles.d/tunnel-client.conf
    in_chroot "$C" CHECK_PREFIX="$p" bash /tmp/pkgtest/smoke.sh rpm "$version" ||
        FAILED=$((FAILED + 1))
fi
echo "INFO $p done in $((SECONDS - t0))s"
[ "$FAILED" -eq 0 ]
