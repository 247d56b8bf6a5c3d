#!/usr/bin/env bash
# Fetch Linux's mm self-tests (tools/testing/selftests/vm/ of Linux 6.1) from
# Debian's linux-source-6.1 binary package, pinned by version and sha256,
# into build/, through user/fetch-deb.sh. The .deb (about 139 MB) stays in
# DEST/apt-linux-source/pkg, so extracting again never downloads again; a
# finished extraction is marked by DEST/linux-selftests-VERSION/.fetched.
#
# Only the self-tests' own folder and what its programs include are taken
# from the inner linux-source-6.1.tar.xz: tools/testing/selftests/vm/,
# tools/testing/selftests/kselftest.h (what map_fixed_noreplace,
# mremap_dontunmap and mremap_test include besides libc), its sibling
# kselftest_harness.h, lib.mk (the self-tests' Makefile include, for
# reference) and the tree's COPYING.
set -euo pipefail
. "$(dirname "$0")/fetch-deb.sh"

PACKAGE=linux-source-6.1
DEB_VERSION=6.1.176-1                       # bookworm (12.x point release) main
DEB=${PACKAGE}_${DEB_VERSION}_all.deb
DEB_SHA256=9305d1a151b8e83dcb88aa11361e7b9513f0c252bdf7f5647e4542762d99c094
SUITE=bookworm
INNER=./usr/src/linux-source-6.1.tar.xz
TOP=linux-source-6.1
MEMBERS=(
    "$TOP/tools/testing/selftests/vm"
    "$TOP/tools/testing/selftests/kselftest.h"
    "$TOP/tools/testing/selftests/kselftest_harness.h"
    "$TOP/tools/testing/selftests/lib.mk"
    "$TOP/COPYING"
)

dest=${1:?usage: fetch-selftests.sh DEST_DIR}
out_name=linux-selftests-$DEB_VERSION
[ -f "$dest/$out_name/.fetched" ] && exit 0
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$dest/apt-linux-source
out=$dest/$out_name
deb=$work/pkg/$DEB

fetch_deb "$work" "$PACKAGE" "$DEB_VERSION" "$DEB" "$DEB_SHA256" "$SUITE" "(about 139 MB) for Linux's mm self-tests"

rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -xO "$INNER" |
    tar -xJ -C "$out.tmp" --strip-components=1 "${MEMBERS[@]}"
mv "$out.tmp" "$out"
touch "$out/.fetched"
echo "Linux $DEB_VERSION self-tests in $out"
