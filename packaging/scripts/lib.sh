# shellcheck shell=bash
# Shared helpers for the packaging scripts (sourced, not run).

# Debian's tools first: a pyenv or venv python3 on PATH breaks pybuild and dh_python3.
SYSTEM_PATH=/usr/sbin:/usr/bin:/sbin:/bin

project_version() {  # ROOT -> the version in tunnel_client/__init__.py
    sed -n 's/^__version__ = "\([^"]*\)"$/\1/p' "$1/tunnel_client/__init__.py"
}

source_date_epoch() {  # ROOT -> last commit time, so rebuilds of one commit are identical
    git -C "$1" log -1 --format=%ct 2>/dev/null || date +%s
}

stage_source() {  # ROOT DEST: the files a package is built from, without build debris
    mkdir -p "$2"
    (cd "$1" && tar --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' -cf - \
        tunnel_client setup.cfg setup.py README.md docs/configuration.md conf packaging) |
        (cd "$2" && tar -xf -)
}

in_system_env() {  # CMD... with a clean environment and Debian's PATH
    env -i PATH="$SYSTEM_PATH" HOME="${BUILD_HOME:-/tmp}" LANG=C.UTF-8 \
        SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-}" "$@"
}
