#!/bin/bash
# Build tunnel-client-<version>-1.noarch.rpm (or the .src.rpm with RPM_MODE=srpm) with
# rpmbuild from the working tree, on EL or on Debian.
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

# RPM_MODE=srpm: a source RPM that rebuilds on EL with `rpmbuild --rebuild` alone (the
# version is fixed in the spec it carries).
mode=-bb
[ "${RPM_MODE:-rpm}" = srpm ] && mode=-bs
sed "s/%{tc_version}/$version/" "$root/packaging/rpm/tunnel-client.spec" \
    > "$work/SOURCES/tunnel-client.spec"
BUILD_HOME=$work in_system_env rpmbuild "$mode" --quiet \
    --define "_topdir $work" \
    --define "use_source_date_epoch_as_buildtime 1" \
    "$work/SOURCES/tunnel-client.spec" > "$work/build.log" 2>&1 ||
    { tail -n 60 "$work/build.log"; exit 1; }
if [ "$mode" = -bs ]; then
    rpm=tunnel-client-$version-1.src.rpm
    mv "$work/SRPMS/$rpm" "$out/$rpm"
else
    rpm=tunnel-client-$version-1.noarch.rpm
    mv "$work/RPMS/noarch/$rpm" "$out/$rpm"
fi
echo "$out/$rpm"
