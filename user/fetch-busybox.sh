#!/usr/bin/env bash
# Fetch BusyBox, Debian's busybox-static binary package, pinned by version
# and sha256, into build/ (the root file system's shell and tools; the
# initramfs takes /bin/busybox from there). As user/fetch-selftests.sh does,
# the apt source entry is made from this machine's own apt configuration
# (no mirror is named in the repository), with a private apt state under
# DEST/apt-busybox; the .deb stays in DEST/apt-busybox/pkg, so extracting
# again never downloads again. A finished extraction is marked by
# DEST/busybox-VERSION/.fetched.
set -euo pipefail

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
    echo "fetching $PACKAGE $DEB_VERSION (about 1 MB) for the root file system"
    apt-get "${apt_opts[@]}" update -qq
    rm -f "$deb"
    if ! (cd "$work/pkg" && apt-get "${apt_opts[@]}" download -qq "$PACKAGE=$DEB_VERSION"); then
        echo "error: $PACKAGE $DEB_VERSION is no longer offered by $SUITE; pin the" \
             "version 'apt-cache policy $PACKAGE' shows (and its sha256) in $0" >&2
        exit 1
    fi
    echo "$DEB_SHA256  $deb" | sha256sum -c --quiet
fi

rm -rf "$out" "$out.tmp"
mkdir -p "$out.tmp"
dpkg-deb -x "$deb" "$out.tmp"
mv "$out.tmp" "$out"
touch "$out/.fetched"
echo "BusyBox $DEB_VERSION in $out"
