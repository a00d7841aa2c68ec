#!/usr/bin/env bash
# Copy the dist files of the npm packages the pages load into static/vendor/ (ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p static/vendor
while read -r src dest; do
  [ -z "$src" ] && continue
  cp "node_modules/$src" "static/vendor/$dest"
done <<'LIST'
htmx.org/dist/htmx.min.js htmx.min.js
LIST
