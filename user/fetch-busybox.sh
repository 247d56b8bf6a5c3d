#!/usr/bin/env bash
# Fetch BusyBox, Debian's busybox-static binary package, pinned by version
# and sha256, into build/ (the root file system's shell and tools; the
# initramfs takes /bin/busybox from there) through user/fetch-deb.sh, with
# its private apt state under DEST/apt-busybox; the .deb stays in
# DEST/apt-busybox/pkg, so extracting again never downloads again. A
# finished extraction is marked by DEST/busybox-VERSION/.fetched.
set -euo pipefail
. "$(dirname "$0")/fetch-deb.sh"

PACKAGE=busybox-static
DEB_VERSION=1:1.35.0-4+deb12u1+b1           # bookworm (12.x point release) main
FILE_VERSION=1.35.0-4+deb12u1+b1            # the version in the file name (no epoch)
DEB=${PACKAGE}_1%3a${FILE_VERSION}_amd64.deb
DEB_SHA256=3d3fdbe91d4660c873e14b092c213fe81c1da6362daa236eb25d0171eb108744
SUITE=bookworm

dest=${1:?usage: fetch-busybox.sh DEST_DIR}
out_name=busybox-$FILE_VERSION
[ -f "$dest/$out_name/.fetched" ] && exit 0
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$dest/apt-busybox
out=$dest/$out_name
deb=$work/pkg/$DEB

fetch_deb "$work" "$PACKAGE" "$DEB_VERSION" "$DEB" "$DEB_SHA256" "$SUITE" "(about 1 MB) for the root file system"

rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
dpkg-deb -x "$deb" "$out.tmp"
mv "$out.tmp" "$out"
touch "$out/.fetched"
echo "BusyBox $DEB_VERSION in $out"
