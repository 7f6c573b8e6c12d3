#!/usr/bin/env bash
# check_readme_layout.sh - fails when README.md's "## Layout" code block does not list the tree
# truthfully: every folder under src/ (at any depth) must start a line of the block as
# "src/DIR/", every top-level tracked folder as "DIR/" or "DIR/SUB/", and every folder the
# block names must exist. Run by `make test` (layers-check) beside check_layers.sh.
# Usage: tools/check_readme_layout.sh [REPO_DIR]   (exit 1 and one line per problem)
set -euo pipefail
root=${1:-$(dirname "$0")/..}
readme="$root/README.md"
# The first word of each line of the first code block after "## Layout".
listed=$(awk '/^## Layout/{on=1; next} on && /^## /{exit}
              on && /^```/{if (inblock) exit; inblock=1; next}
              inblock && NF {print $1}' "$readme")
if [ -z "$listed" ]; then echo "README.md: no code block under \"## Layout\""; exit 1; fi
bad=0
has_line() { grep -qxF -- "$1" <<<"$listed"; }
has_prefix() { grep -q -- "^$1" <<<"$listed"; }
while IFS= read -r d; do
  has_line "$d/" || { echo "README.md Layout: folder $d/ is not listed"; bad=1; }
done < <(cd "$root" && find src -mindepth 1 -type d | sort)
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  tops=$(git -C "$root" ls-files | sed -n 's|^\([^/]*\)/.*|\1|p' | sort -u)
else
  tops=$(cd "$root" && find . -mindepth 1 -maxdepth 1 -type d ! -name '.git' ! -name 'build*' \
         ! -name node_modules -printf '%f\n' | sort)
fi
for d in $tops; do
  has_prefix "$d/" || { echo "README.md Layout: top-level folder $d/ is not listed"; bad=1; }
done
# And nothing listed that is not there (files such as src/main.c included).
while IFS= read -r p; do
  case "$p" in */*) [ -e "$root/$p" ] || { echo "README.md Layout: $p does not exist"; bad=1; } ;; esac
done <<<"$listed"
[ $bad = 0 ] && echo "readme layout ok"
exit $bad
