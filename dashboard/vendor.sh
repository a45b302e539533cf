#!/usr/bin/env bash
# `make vendor`: fetch the dashboard's front-end libraries from the npm registry (pinned versions)
# and copy the files it serves, with their licences, into dashboard/static/vendor/.
# Nothing is built at run time and nothing is loaded from a CDN.
set -euo pipefail
cd "$(dirname "$0")"
PICO=2.1.1
UPLOT=1.6.32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@picocss/pico@$PICO" "uplot@$UPLOT" >/dev/null)
for tgz in "$tmp"/*.tgz; do
  mkdir -p "${tgz%.tgz}" && tar xzf "$tgz" -C "${tgz%.tgz}"
done
out=static/vendor
rm -rf "$out/pico" "$out/uplot"
mkdir -p "$out/pico" "$out/uplot"
cp "$tmp/picocss-pico-$PICO/package/css/pico.min.css" "$tmp/picocss-pico-$PICO/package/LICENSE.md" "$out/pico/"
cp "$tmp/uplot-$UPLOT/package/dist/uPlot.esm.js" "$tmp/uplot-$UPLOT/package/dist/uPlot.min.css" \
   "$tmp/uplot-$UPLOT/package/LICENSE" "$out/uplot/"
echo "@picocss/pico $PICO (npm), MIT" > "$out/pico/VERSION"
echo "uplot $UPLOT (npm), MIT" > "$out/uplot/VERSION"
echo "vendored: @picocss/pico $PICO, uplot $UPLOT → dashboard/$out"
