#!/bin/bash
# Build tunnel-client_<version>_all.deb (debhelper + pybuild) from the working tree.
# Usage: build-deb.sh [OUTDIR]   (default dist/; DEB_VERSION overrides the version)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
version=${DEB_VERSION:-$(project_version "$root")}
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(source_date_epoch "$root")}

work=$root/build/deb
rm -rf "$work"
src=$work/tunnel-client-$version
stage_source "$root" "$src"
cp -a "$root/packaging/debian" "$src/debian"
# debhelper finds these by name: dh_installsystemd, dh_installsysusers,
# dh_installtmpfiles, dh_installcron (installed as /etc/cron.d/tunnel-client),
# dh_installlogrotate.
cp "$root/packaging/systemd/tunnel-client.service" "$src/debian/tunnel-client.service"
cp "$root/packaging/common/tunnel-client.sysusers" "$src/debian/tunnel-client.sysusers"
cp "$root/packaging/common/tunnel-client.tmpfiles" "$src/debian/tunnel-client.tmpfiles"
cp "$root/packaging/common/tunnel-client.cron" "$src/debian/tunnel-client.cron.d"
cp "$root/packaging/common/tunnel-client.logrotate" "$src/debian/tunnel-client.logrotate"
sh "$root/packaging/scripts/template-unit.sh" "$root/packaging/systemd/tunnel-client.service" \
    > "$src/debian/tunnel-client@.service"
cat > "$src/debian/changelog" <<CHANGELOG
tunnel-client ($version) unstable; urgency=medium

  * Release $version.

 -- tunnel-client maintainers <tunnel-client@packages.invalid>  $(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG

(cd "$src" && BUILD_HOME=$work in_system_env dpkg-buildpackage -us -uc -b --no-sign) \
    > "$work/build.log" 2>&1 || { tail -n 60 "$work/build.log"; exit 1; }
deb=tunnel-client_${version}_all.deb
mv "$work/$deb" "$out/$deb"
echo "$out/$deb"
