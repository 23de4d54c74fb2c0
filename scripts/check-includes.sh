#!/usr/bin/env bash
# The tiers of src/ may only include downwards (see docs/ARCHITECTURE.md):
#   src/core/    includes core/ alone: nothing from format/ or any tier above;
#   src/format/  includes core/ and format/, never core/net.h (nets are
#                built from definitions above both, in src/api/).
# Headers without a folder (netsurg.h, caffe.pb-c.h, system headers) are
# free.  Prints each offending #include with its file and line; exit 1 if
# there is any.  `make test` runs it before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bad=0
# The quoted #include "folder/file" lines under DIR, as file:line:text.
includes() {
  grep -rHnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]*/[^"]*"' \
    --include='*.c' --include='*.h' "$1" || true
}
report() {
  local hit
  while IFS= read -r hit; do
    echo "check-includes: $hit: $1" >&2
    bad=1
  done
}
# only DIR FOLDERS WHY: every folder-qualified include names one of FOLDERS.
only() {
  report "$3" < <(includes "$1" | grep -vE "#[[:space:]]*include[[:space:]]*\"($2)/" || true)
}
# never DIR HEADER WHY
never() { report "$3" < <(includes "$1" | grep -F "\"$2\"" || true); }

only src/core 'core' "src/core/ includes only src/core/"
only src/format 'core|format' "src/format/ includes only src/core/ and src/format/"
never src/format core/net.h "src/format/ never includes core/net.h (nets are built in src/api/)"
exit $bad
