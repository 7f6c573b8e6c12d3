#!/usr/bin/env bash
# tools/update_vendor.sh - refreshes web/vendor/ from npm at the versions pinned in
# web/vendor/VERSIONS: the official SDKs' browser builds and their licence files.
#
#   tools/update_vendor.sh            download (npm pack) and copy into web/vendor/
#   tools/update_vendor.sh --check    the same into a temp folder, then fail if web/vendor/ differs
#
# To move to a new version, edit VERSIONS, run this, rebuild (web/ is compiled into the binary)
# and run `make test`. What each package gives:
#   twilio-sync        builds/twilio-sync.min.js (window.Twilio.Sync), LICENSE, NOTICE.txt
#   twilio-taskrouter  dist/index.window.js (window.Twilio.TaskRouter), LICENSE.md
# The builds carry no sourceMappingURL (checked below), so no .map file is needed.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
vendor="$root/web/vendor"
check=false
[[ "${1:-}" == "--check" ]] && check=true

version_of() {
  local v
  v=$(awk -v p="$1" '$1 == p { print $2 }' "$vendor/VERSIONS")
  [[ -n "$v" ]] || { echo "update_vendor: $1 has no version in $vendor/VERSIONS" >&2; exit 1; }
  echo "$v"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out="$vendor"
if $check; then
  out="$work/out"
  mkdir -p "$out"
  cp "$vendor/VERSIONS" "$out/"
fi

# Unpacks package@version (npm pack, the registry's tarball) into $work/<package>.
fetch() {
  local pkg=$1 ver=$2
  mkdir -p "$work/$pkg"
  (cd "$work/$pkg" && npm pack --silent "$pkg@$ver" >/dev/null && tar xzf ./*.tgz)
  echo "$work/$pkg/package"
}

# Copies a build, refusing one that points at a source map we do not ship.
copy_build() {
  if grep -q 'sourceMappingURL' "$1"; then
    echo "update_vendor: $1 references a source map: vendor it or strip the reference" >&2
    exit 1
  fi
  cp "$1" "$2"
}

sync_ver=$(version_of twilio-sync)
p=$(fetch twilio-sync "$sync_ver")
copy_build "$p/builds/twilio-sync.min.js" "$out/twilio-sync.min.js"
cp "$p/LICENSE" "$out/twilio-sync.LICENSE.txt"
cp "$p/NOTICE.txt" "$out/twilio-sync.NOTICE.txt"

tr_ver=$(version_of twilio-taskrouter)
p=$(fetch twilio-taskrouter "$tr_ver")
copy_build "$p/dist/index.window.js" "$out/twilio-taskrouter.min.js"
cp "$p/LICENSE.md" "$out/twilio-taskrouter.LICENSE.txt"

if $check; then
  diff -r "$vendor" "$out" >/dev/null || { echo "update_vendor: web/vendor/ differs from npm" >&2; exit 1; }
  echo "web/vendor/ matches twilio-sync $sync_ver and twilio-taskrouter $tr_ver"
else
  echo "web/vendor/: twilio-sync $sync_ver, twilio-taskrouter $tr_ver"
fi
