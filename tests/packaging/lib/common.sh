# shellcheck shell=bash
# Start of every host-side packaging check (sourced): paths, version, result lines.
set -u
here=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$here/../.." && pwd)
. "$ROOT/packaging/scripts/lib.sh"
. "$here/lib/report.sh"
version=$(project_version "$ROOT")
