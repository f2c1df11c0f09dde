#!/bin/bash
# Inside the Debian 11 chroot: the project's test suite against the installed package,
# with Debian's own pytest and libraries (the compatibility floor, tested).
# Usage: testsuite.sh SRC_DIR   (the checkout minus tunnel_client/ copied there)
set -u
src=$1
p="${CHECK_PREFIX:-} deb:"
# Debian's pytest, responses, cryptography and tinyproxy (the forward proxy the networking
# tests drive); trustme comes as a wheel from the host (Debian 11's is too old for the
# tests). hypothesis and the mcp SDK are absent: the tests that need them must skip.
apt-get install -y -q python3-pytest python3-responses python3-cryptography python3-idna \
    > /tmp/pkgtest/pytest-install.log 2>&1 ||
    { echo "FAIL $p install Debian's pytest and test libraries"; tail -n 20 /tmp/pkgtest/pytest-install.log; exit 1; }
install_tinyproxy() {  # the newest version the mirror can deliver (security pools may lag)
    local v
    apt-get install -y -q tinyproxy >> /tmp/pkgtest/pytest-install.log 2>&1 && return 0
    for v in $(apt-cache madison tinyproxy | awk '{ print $3 }'); do
        apt-get install -y -q "tinyproxy=$v" "tinyproxy-bin=$v" \
            >> /tmp/pkgtest/pytest-install.log 2>&1 && return 0
    done
    return 1
}
install_tinyproxy ||
    echo "SKIP $p tinyproxy could not be installed: the forward-proxy tests will skip"
extras=/tmp/pkgtest
for wheel in /tmp/pkgtest/trustme-*.whl; do
    [ -f "$wheel" ] && extras="$extras:$wheel"
done
python3 - <<'PY'
import sys
from importlib.metadata import version
names = ["requests", "urllib3", "PyYAML", "jsonschema", "pytest", "responses",
         "cryptography"]
found = ["%s %s" % (name, version(name)) for name in names]
print("INFO test suite runs on python %s with %s" % (sys.version.split()[0], ", ".join(found)))
PY
cd "$src" || exit 1
# Markers for peers this chroot does not have: the mcp SDK, node, a browser.
# The installed package is what gets imported: there is no tunnel_client/ in $src.
# Tests that need a missing optional extra are reported as skipped (optional_extras.py).
PYTHONPATH="$extras" \
    python3 -m pytest -q -p no:cacheprovider -p optional_extras \
    -m "not sdk and not node and not browser" tests > /tmp/pkgtest/pytest.log 2>&1
rc=$?
if grep -q 'optional test extra' /tmp/pkgtest/pytest.log; then
    echo "SKIP $p tests that need an optional extra absent on Debian 11:"
    grep '^SKIPPED.*optional test extra' /tmp/pkgtest/pytest.log | sed 's/^/    | /'
fi
summary=$(tail -n 1 /tmp/pkgtest/pytest.log)
if [ "$rc" -eq 0 ]; then
    echo "PASS $p project test suite on the installed package ($summary)"
else
    echo "FAIL $p project test suite on the installed package ($summary)"
    grep -E '^(FAILED|ERROR)' /tmp/pkgtest/pytest.log | sort -u | head -n 30 | sed 's/^/    | /'
    exit 1
fi
