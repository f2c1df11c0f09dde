# shellcheck shell=bash
# Debian chroots for the packaging tests (sourced). A pristine debootstrap "minbase" of each
# suite is cached under .cache/packaging/ and copied for every run, so each run starts
# from a clean system while only the first one pays for debootstrap.
#
# Needs: ROOT (the checkout). Optional: DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR.

DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY_MIRROR=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
# Bump when the base recipe changes, so stale caches are not reused.
CHROOT_RECIPE=1
PACKAGING_CACHE=${PACKAGING_CACHE:-$ROOT/.cache/packaging}

chroot_base() {  # SUITE -> path of the cached pristine base, built on first use
    local suite=$1 base=$PACKAGING_CACHE/base-$1-r$CHROOT_RECIPE
    mkdir -p "$PACKAGING_CACHE"
    (
        # One builder at a time per machine; others wait for its result.
        flock 9
        if [ ! -e "$base/.complete" ]; then
            safe_remove "$base"
            debootstrap --variant=minbase "$suite" "$base" "$DEBIAN_MIRROR" \
                > "$PACKAGING_CACHE/debootstrap-$suite.log" 2>&1 ||
                { tail -n 20 "$PACKAGING_CACHE/debootstrap-$suite.log" >&2; exit 1; }
            write_sources "$suite" "$base"
            rm -f "$base"/var/cache/apt/archives/*.deb
            touch "$base/.complete"
        fi
    ) 9> "$PACKAGING_CACHE/base-$suite.lock" >&2 || return 1
    echo "$base"
}

write_sources() {  # SUITE DIR: the archive plus security updates, as on a real install
    local security="$1-security"
    [ "$1" = buster ] && security="$1/updates"
    cat > "$2/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR $1 main
deb $DEBIAN_MIRROR $1-updates main
deb $DEBIAN_SECURITY_MIRROR $security main
SOURCES
}

chroot_start() {  # SUITE DIR: a fresh copy of the base at DIR, ready to chroot into
    local suite=$1 dir=$2 base
    base=$(chroot_base "$suite") || return 1
    unmount_under "$dir"  # left over from an interrupted run
    safe_remove "$dir" || return 1
    mkdir -p "$(dirname "$dir")"
    cp -a "$base" "$dir"
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    # Like a container build: packages may not start daemons (cron) inside the chroot.
    printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"
    chmod 0755 "$dir/usr/sbin/policy-rc.d"
    # A throwaway tree: skip dpkg's per-file fsync, which dominates install time here.
    echo force-unsafe-io > "$dir/etc/dpkg/dpkg.cfg.d/force-unsafe-io"
    mount -t proc proc "$dir/proc"
    mount -t tmpfs -o mode=1777 tmpfs "$dir/dev/shm"
    # systemd-analyze verify (247) sets up a manager and needs to see its cgroup.
    mount -t sysfs -o ro sysfs "$dir/sys"
    mount -t cgroup2 -o ro cgroup2 "$dir/sys/fs/cgroup" 2>/dev/null || true
}

chroot_stop() {  # SUITE DIR: keep downloaded packages for the next run, unmount, delete
    local suite=$1 dir=$2 base=$PACKAGING_CACHE/base-$1-r$CHROOT_RECIPE
    [ -d "$dir" ] || return 0
    if [ -d "$base/var/cache/apt/archives" ]; then
        find "$dir/var/cache/apt/archives" -maxdepth 1 -name '*.deb' \
            -exec cp -n -t "$base/var/cache/apt/archives" {} + 2>/dev/null || true
    fi
    unmount_under "$dir"
    safe_remove "$dir"
}

unmount_under() {  # DIR: every mount at or below DIR, deepest first
    local mnt
    for mnt in $(mounts_under "$1" | sort -r); do
        umount "$mnt" 2>/dev/null || umount -l "$mnt"
    done
}

mounts_under() {  # DIR -> mount points at or below DIR
    awk -v d="$1" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/mounts
}

safe_remove() {  # DIR: delete a chroot tree, never through a mount point
    [ -e "$1" ] || return 0
    if [ -n "$(mounts_under "$1")" ]; then
        echo "refusing to delete $1: something is still mounted below it" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}

in_chroot() {  # DIR CMD...: run with a clean environment, as a login on that system would
    local dir=$1
    shift
    chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root \
        LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
