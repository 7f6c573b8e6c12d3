#!/usr/bin/env bash
# tools/update_vendor.sh - refreshes web/vendor/ from npm: the official Twilio browser SDKs at
# the versions pinned in tools/vendor/package.json (+ package-lock.json, the one place they
# are pinned), with their licence files, and writes web/vendor/VERSIONS.
#
#   tools/update_vendor.sh            npm ci in tools/vendor/, then copy / bundle into web/vendor/
#   tools/update_vendor.sh --check    the same into a temp folder; fail if web/vendor/ differs
#
# To move to a new version: `cd tools/vendor && npm install twilio-sync@X twilio-taskrouter@Y`,
# run this, rebuild (web/ is compiled into the binary) and run `make test`.
#   twilio-sync        builds/twilio-sync.min.js as published: one self-contained file that
#                      sets window.Twilio.Sync.
#   twilio-taskrouter  its dist/index.window.js still require()s axios, events, lodash,
#                      loglevel, ..., so esbuild (pinned beside it) bundles it with them into
#                      one file that sets window.Twilio.TaskRouter (taskrouter-entry.js).
#                      `ws` is the page's WebSocket and the GraphQL signaling (useGraphQL,
#                      off by default) is left out (ws-shim.js, graphql-ws-shim.js).
# No vendored file references a source map (checked): no .map file is needed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/tools/vendor"
vendor="$root/web/vendor"
check=false
[[ "${1:-}" == "--check" ]] && check=true

out="$vendor"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if $check; then
  out="$tmp/out"
  mkdir -p "$out"
fi

(cd "$src" && npm ci --no-audit --no-fund --silent)
nm="$src/node_modules"
version_of() { node -p "require('$nm/$1/package.json').version"; }

cp "$nm/twilio-sync/builds/twilio-sync.min.js" "$out/twilio-sync.min.js"
cp "$nm/twilio-sync/LICENSE" "$out/twilio-sync.LICENSE.txt"
cp "$nm/twilio-sync/NOTICE.txt" "$out/twilio-sync.NOTICE.txt"

(cd "$src" && "$nm/.bin/esbuild" taskrouter-entry.js --bundle --minify --platform=browser \
  --format=iife --target=es2019 --alias:ws=./ws-shim.js --alias:graphql-ws=./graphql-ws-shim.js \
  --legal-comments=none --log-level=warning --outfile="$out/twilio-taskrouter.min.js")
# The bundle's licences: twilio-taskrouter's own and those of what esbuild put in with it.
{
  echo "web/vendor/twilio-taskrouter.min.js bundles twilio-taskrouter $(version_of twilio-taskrouter)"
  echo "with the packages below (esbuild $(version_of esbuild)); each licence follows."
  for p in twilio-taskrouter axios events lodash loglevel jwt-decode @babel/runtime; do
    echo
    echo "======== $p $(version_of "$p")"
    cat "$nm/$p/"LICENSE* 2>/dev/null || echo "(MIT; no licence file in the package)"
  done
} > "$out/twilio-taskrouter.LICENSE.txt"

for f in "$out"/*.js; do
  if grep -q 'sourceMappingURL' "$f"; then
    echo "update_vendor: $f references a source map: vendor it or strip the reference" >&2
    exit 1
  fi
done

{
  echo "# web/vendor/VERSIONS - written by tools/update_vendor.sh from tools/vendor/ (pinned there)."
  echo "twilio-sync $(version_of twilio-sync)"
  echo "twilio-taskrouter $(version_of twilio-taskrouter)"
  echo "esbuild $(version_of esbuild) (bundles twilio-taskrouter with its dependencies)"
} > "$out/VERSIONS"

if $check; then
  diff -r "$vendor" "$out" || { echo "update_vendor: web/vendor/ differs from tools/vendor/'s pins" >&2; exit 1; }
  echo "web/vendor/ matches tools/vendor/ ($(tr '\n' ' ' < "$out/VERSIONS" | cut -c1-200))"
else
  echo "web/vendor/ refreshed: twilio-sync $(version_of twilio-sync), twilio-taskrouter $(version_of twilio-taskrouter)"
fi
