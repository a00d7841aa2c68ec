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
signature_pad/dist/signature_pad.umd.min.js signature_pad.umd.min.js
@wecom/jssdk/dist/wecom.global.prod.js wecom-jssdk.js
LIST

# The cosign client's npm code as one ES module (see static/js/cosign-deps.entry.js): @noble/curves
# is ES modules spread over many files and sm-crypto is CommonJS, so esbuild bundles them.
node_modules/.bin/esbuild static/js/cosign-deps.entry.js --bundle --format=esm --platform=browser \
  --target=es2020 --minify --legal-comments=eof --log-level=warning --outfile=static/vendor/cosign-deps.js
