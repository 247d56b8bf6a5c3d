# Sourced by user/fetch-busybox.sh and user/fetch-selftests.sh: one Debian
# binary package, pinned by version and sha256, downloaded once into
# WORK/pkg. The apt source entry is made from this machine's own apt
# configuration (no mirror is named in the repository), with a private apt
# state under WORK, so the machine's own apt lists are never touched.
#
#   fetch_deb WORK PACKAGE DEB_VERSION DEB_FILE SHA256 SUITE WHY
#
# prints nothing when WORK/pkg/DEB_FILE is already there with that sha256;
# exits with an error when the archive no longer offers the version.

fetch_deb() {
    local work=$1 package=$2 version=$3 file=$4 sha256=$5 suite=$6 why=$7
    local deb=$work/pkg/$file
    if [ -f "$deb" ] && echo "$sha256  $deb" | sha256sum -c --quiet >/dev/null 2>&1; then
        return 0
    fi
    mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/pkg"
    # The Debian archive this machine already uses: the first URI of a
    # .sources stanza or sources.list line that serves Debian's "main".
    local uri
    uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && / main/ {for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}' /etc/apt/sources.list)
    fi
    [ -n "$uri" ] || { echo "error: no Debian archive found in the apt configuration" >&2; exit 1; }
    echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main" > "$work/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=-"
                    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
                    -o "APT::Sandbox::User=root")
    echo "fetching $package $version $why"
    apt-get "${apt_opts[@]}" update -qq
    rm -f "$deb"
    if ! (cd "$work/pkg" && apt-get "${apt_opts[@]}" download -qq "$package=$version"); then
        echo "error: $package $version is no longer offered by $suite; pin the" \
             "version 'apt-cache policy $package' shows (and its sha256) in $0" >&2
        exit 1
    fi
    echo "$sha256  $deb" | sha256sum -c --quiet
}
