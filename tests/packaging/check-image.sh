#!/bin/bash
# The container recipe, built and run without a container engine (image_check.py).
. "$(dirname "$0")/lib/common.sh"
. "$here/lib/chroot.sh"
C=$PACKAGING_CACHE/work-image
R=$PACKAGING_CACHE/work-image-ro
cleanup() {
    unmount_under "$R"
    rmdir "$R" 2> /dev/null
    chroot_stop trixie "$C"
}
trap cleanup EXIT
unmount_under "$R"
chroot_start trixie "$C" || { fail "image: clean Debian 13 tree from debootstrap"; exit 1; }
"${PYTHON:-python3}" "$here/image_check.py" "$ROOT" "$C" "$R"
