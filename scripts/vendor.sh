#!/usr/bin/env bash
# Fetch the pages' third-party scripts from npm at pinned versions into web/static/vendor,
# with their licences. Run by hand when a version changes (`make vendor`); the result is
# committed, so nothing is loaded from a CDN or npm at run time.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/maxloyalty/web/static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fetch() {  # package version file-in-package target-name
    (cd "$work" && npm pack --silent "$1@$2" >/dev/null)
    mkdir -p "$work/$1"
    tar xzf "$work/$1-$2.tgz" -C "$work/$1"
    cp "$work/$1/package/$3" "$dest/$4"
    cp "$work/$1/package/LICENSE" "$dest/$4.LICENSE"
    echo "$1@$2 $3 -> $4 sha256:$(sha256sum "$dest/$4" | cut -c1-64)"
}

mkdir -p "$dest"
{
    fetch htmx.org 2.0.11 dist/htmx.min.js htmx.min.js
    fetch html5-qrcode 2.3.8 html5-qrcode.min.js html5-qrcode.min.js
} > "$dest/VERSIONS"
cat "$dest/VERSIONS"
