#!/usr/bin/env bash
# check_layers.sh - fails when a source file includes a header of a higher layer, or a header
# that src/LAYERS reserves for some folders (database, HTTP and libcurl headers).
#
# src/LAYERS names the layers bottom up, one line each: `layer NAME folder...`. A file under
# src/FOLDER/ may include "X/..." only where X's layer is at or below its own; a file at the top
# of src/ is in the layer that lists `.`. `header NAME folder...` lines say which folders alone
# may include <NAME>. Each file must also say its layer in its opening comment ("Layer: NAME.").
# Usage: tools/check_layers.sh [SRC_DIR]   (exit 1 and one line per violation)
set -euo pipefail
src=${1:-$(dirname "$0")/../src}
rules="$src/LAYERS"
declare -A rank=() layer_of=() allowed=()
n=0
while read -r kind name rest; do
  case "$kind" in
    layer) n=$((n + 1)); rank[$name]=$n
           for f in $rest; do layer_of[$f]=$name; done ;;
    header) allowed[$name]="$rest" ;;
    ''|'#'*) ;;
    *) echo "$rules: unknown line: $kind $name $rest"; exit 2 ;;
  esac
done < "$rules"

folder_of() { # path relative to src -> its folder ('.' at the top), longest match in LAYERS
  local p=$1 d
  d=$(dirname "$p")
  while [ "$d" != "." ]; do
    [ -n "${layer_of[$d]+x}" ] && { echo "$d"; return; }
    d=$(dirname "$d")
  done
  echo .
}

bad=0
while IFS= read -r -d '' file; do
  rel=${file#"$src"/}
  fo=$(folder_of "$rel")
  me=${layer_of[$fo]:-}
  if [ -z "$me" ]; then echo "$rel: folder $fo has no layer in LAYERS"; bad=1; continue; fi
  if ! awk '{print} /\*\//{exit}' "$file" | grep -q "Layer: $me\."; then
    echo "$rel: opening comment must say \"Layer: $me\""; bad=1
  fi
  while IFS= read -r inc; do
    ifo=$(folder_of "$inc")
    il=${layer_of[$ifo]:-}
    if [ -z "$il" ]; then echo "$rel: includes \"$inc\" of unknown folder"; bad=1; continue; fi
    if [ "${rank[$il]}" -gt "${rank[$me]}" ]; then
      echo "$rel: layer $me includes \"$inc\" of higher layer $il"; bad=1
    fi
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$file")
  while IFS= read -r sys; do
    [ -n "${allowed[$sys]+x}" ] || continue
    ok=0
    for f in ${allowed[$sys]}; do
      case "$rel" in "$f"/*) ok=1 ;; esac
    done
    [ $ok = 1 ] || { echo "$rel: <$sys> is reserved for ${allowed[$sys]}"; bad=1; }
  done < <(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*<\([^>]*\)>.*/\1/p' "$file")
done < <(find "$src" -name '*.[ch]' -print0 | sort -z)
# No circle between modules: a .c and its .h are one module; tsort reports any loop.
edges=$(find "$src" -name '*.[ch]' | sort | while read -r file; do
  m=${file#"$src"/}; m=${m%.[ch]}
  sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)\.h".*/\1/p' "$file" |
    while read -r inc; do [ "$inc" != "$m" ] && echo "$m $inc"; done
done)
if ! loops=$(printf '%s\n' "$edges" | tsort 2>&1 >/dev/null) || [ -n "$loops" ]; then
  echo "include circle between modules:"
  printf '%s\n' "$loops" | sed 's/^tsort: //; s/^-: input contains a loop:/  loop:/; s/^-: /  /
                                 /^[^ ]/s/^/    /'
  bad=1
fi
[ $bad = 0 ] && echo "layers ok"
exit $bad
