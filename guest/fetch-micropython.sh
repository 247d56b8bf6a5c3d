#!/usr/bin/env bash
# Fetch MicroPython's source as Debian's source package, pinned by version and
# sha256, into build/. The apt source entry is made from this machine's own
# apt configuration, so no mirror is named in the repository.
set -euo pipefail

VERSION=1.25.0
DEB_VERSION=1.25.0+ds-1
ORIG=micropython_${VERSION}+ds.orig.tar.xz
ORIG_SHA256=7b25be99a502f070b2de81dafc08da7051d992325d6e67daa9045a918fffdbea
SUITES="trixie sid"

dest=${1:?usage: fetch-micropython.sh DEST_DIR}
[ -f "$dest/micropython-$VERSION/.fetched" ] && exit 0
mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
work=$dest/apt
mkdir -p "$work/lists/partial" "$work/pkg"

# The Debian archive this machine already uses: the first URI of a .sources
# stanza or sources.list line that serves Debian's "main" component.
uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
    uri=$(awk '$1 == "deb" && / main/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
fi
[ -n "$uri" ] || { echo "error: no Debian archive found in the apt configuration" >&2; exit 1; }

: > "$work/sources.list"
for suite in $SUITES; do
    echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" >> "$work/sources.list"
done
apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
          -o "Dir::State::Lists=$work/lists" -o "APT::Sandbox::User=root")
apt-get "${apt_opts[@]}" update -qq
(cd "$work/pkg" && apt-get "${apt_opts[@]}" source --download-only -qq "micropython=$DEB_VERSION")

echo "$ORIG_SHA256  $work/pkg/$ORIG" | sha256sum -c --quiet
tar -xJf "$work/pkg/$ORIG" -C "$dest"
touch "$dest/micropython-$VERSION/.fetched"
echo "MicroPython $VERSION source in $dest/micropython-$VERSION"
