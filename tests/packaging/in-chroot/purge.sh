#!/bin/bash
# Inside the chroot: purge the package and check that only the service account is left.
set -u
cd "$(dirname "$0")" || exit 1
. ./report.sh
p="${CHECK_PREFIX:-} deb:"
owned=$(dpkg-query -L tunnel-client)
apt-get purge -y -q tunnel-client > /tmp/pkgtest/purge.log 2>&1 ||
    { fail "$p apt-get purge"; tail -n 20 /tmp/pkgtest/purge.log; exit 1; }

package_files_gone() {
    local path left=0
    while read -r path; do
        # Shared directories (/usr/bin, /etc/cron.d...) stay; everything else must go.
        [ -d "$path" ] && continue
        if [ -e "$path" ] || [ -L "$path" ]; then echo "left behind: $path"; left=1; fi
    done <<< "$owned"
    return $left
}

nothing_named_tunnel_client() {
    local found
    found=$(find / -xdev \( -path /proc -o -path /tmp -o -path /var/cache/apt \
        -o -path /var/lib/apt \) -prune -o \( -name '*tunnel-client*' -o -name '*tunnel_client*' \) -print)
    [ -z "$found" ] || { echo "$found"; return 1; }
}

check "$p purge removes every packaged file" package_files_gone
check "$p purge removes config, secrets, state and runtime dirs" \
    bash -c '! ls -d /etc/tunnel-client /var/lib/tunnel-client /run/tunnel-client 2>/dev/null'
check "$p purge leaves nothing named tunnel-client on disk" nothing_named_tunnel_client
check "$p purge keeps the tunnel-client account" getent passwd tunnel-client
[ "$FAILED" -eq 0 ]
