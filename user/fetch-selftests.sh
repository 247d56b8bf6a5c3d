#!/usr/bin/env bash
# Fetch Linux's mm self-tests (tools/testing/selftests/vm/ of Linux 6.1) from
# Debian's linux-source-6.1 binary package, pinned by version and sha256,
# into build/. The apt source entry is made from this machine's own apt
# configuration (as guest/fetch-micropython.sh does), so no mirror is named in
# the repository. The .deb (about 139 MB) stays in DEST/apt-linux-source/pkg,
# so extracting again never downloads again; a finished extraction is marked
# by DEST/linux-selftests-VERSION/.fetched.
#
# Only the self-tests' own folder and what its programs include are taken
# from the inner linux-source-6.1.tar.xz: tools/testing/selftests/vm/,
# tools/testing/selftests/kselftest.h (what map_fixed_noreplace,
# mremap_dontunmap and mremap_test include besides libc), its sibling
# kselftest_harness.h, lib.mk (the self-tests' Makefile include, for
# reference) and the tree's COPYING.
set -euo pipefail

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

have_deb() { [ -f "$deb" ] && echo "$DEB_SHA256  $deb" | sha256sum -c --quiet >/dev/null 2>&1; }

if ! have_deb; then
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/pkg"
    # The Debian archive this machine already uses: the first URI of a
    # .sources stanza or sources.list line that serves Debian's "main".
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && / main/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { echo "error: no Debian archive found in the apt configuration" >&2; exit 1; }
    echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $SUITE main" > "$work/sources.list"
    apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
              -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
              -o "APT::Sandbox::User=root")
    echo "fetching $PACKAGE $DEB_VERSION (about 139 MB) for Linux's mm self-tests"
    apt-get "${apt_opts[@]}" update -qq
    rm -f "$work/pkg/$DEB"
    if ! (cd "$work/pkg" && apt-get "${apt_opts[@]}" download -qq "$PACKAGE=$DEB_VERSION"); then
        echo "error: $PACKAGE $DEB_VERSION is no longer offered by $SUITE; pin the" \
             "version 'apt-cache policy $PACKAGE' shows (and its sha256) in $0" >&2
        exit 1
    fi
    echo "$DEB_SHA256  $deb" | sha256sum -c --quiet
fi

rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
dpkg-deb --fsys-tarfile "$deb" | tar -xO "$INNER" |
    tar -xJ -C "$out.tmp" --strip-components=1 "${MEMBERS[@]}"
mv "$out.tmp" "$out"
touch "$out/.fetched"
echo "Linux $DEB_VERSION self-tests in $out"
