#!/bin/bash
# Build tunnel-client-<version>-1.noarch.rpm with Debian's rpmbuild from the working tree.
# Usage: build-rpm.sh [OUTDIR]   (default dist/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
. "$here/lib.sh"
out=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
version=$(project_version "$root")
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(source_date_epoch "$root")}

work=$root/build/rpm
rm -rf "$work"
mkdir -p "$work/SOURCES" "$work/stage"
stage_source "$root" "$work/stage/tunnel-client-$version"
tar -C "$work/stage" --sort=name --owner=0 --group=0 --mtime="@$SOURCE_DATE_EPOCH" \
    -czf "$work/SOURCES/tunnel-client-$version.tar.gz" "tunnel-client-$version"

BUILD_HOME=$work in_system_env rpmbuild -bb --quiet \
    --define "_topdir $work" \
    --define "tc_version $version" \
    --define "use_source_date_epoch_as_buildtime 1" \
    "$root/packaging/rpm/tunnel-client.spec" > "$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log"; exit 1; }
rpm=tunnel-client-$version-1.noarch.rpm
mv "$work/RPMS/noarch/$rpm" "$out/$rpm"
echo "$out/$rpm"
