#!/usr/bin/env bash
# `make api-check`: static checks of the committed API documents.
#   1. openapi-spec-validator   openapi/openapi.json is a valid OpenAPI 3.1 document
#   2. redocly lint             Redocly's `recommended` rules (tools/api-check/redocly.yaml)
#   3. openapi-typescript + tsc types generated from the document, and a typed client
#                               (tools/api-check/client/main.ts) that must compile strictly
#   4. @asyncapi/parser         openapi/asyncapi.{json,yaml,yml}, when there is one
# Every step runs even when an earlier one fails; the exit status is non-zero when any failed.
# Run from anywhere (it changes to the repository root). Tools are installed on first use:
# Python ones into target/api-check-venv, node ones into tools/api-check/node_modules; both
# are reinstalled only when requirements.txt or package-lock.json change.
# Environment: PYTHON (default python3), API_CHECK_VENV (default target/api-check-venv),
# API_CHECK_OPENAPI (another OpenAPI document to check, default openapi/openapi.json).
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
source tools/api-check/lib.sh
DOC=${API_CHECK_OPENAPI:-openapi/openapi.json}

# Long lines (the spec validator quotes whole documents) are cut to this many characters.
MAX_LINE=${API_CHECK_MAX_LINE:-1000}

failed=()
step() { # step NAME COMMAND...: runs it, times it, remembers a failure
  local name=$1 start status
  shift
  echo
  echo "== $name"
  start=$(now)
  "$@" 2>&1 | cut -c "1-$MAX_LINE"
  status=${PIPESTATUS[0]}
  if [[ $status -eq 0 ]]; then
    echo "-- $name: ok ($(elapsed "$start") s)"
  else
    echo "-- $name: FAILED, exit $status ($(elapsed "$start") s)"
    failed+=("$name")
  fi
}

start_all=$(now)
setup_start=$(now)
ensure_venv || { echo "cannot install the Python tools (see above)"; exit 2; }
ensure_node_modules || { echo "cannot install the node tools (see above)"; exit 2; }
echo "== tools ready ($(elapsed "$setup_start") s)"

NODE_BIN=$TOOLS/node_modules/.bin

# All errors, not only the first (a dangling $ref still stops it at that one).
step "openapi-spec-validator" \
  "$VENV/bin/openapi-spec-validator" --validation-errors all "$DOC"

step "redocly lint" \
  "$NODE_BIN/redocly" lint --config "$TOOLS/redocly.yaml" --format stylish \
  --max-problems 100000 "$DOC"

typed_client() {
  # Generated from the committed document each run (client/schema.d.ts is not committed).
  # Run in client/, where no redocly.yaml is found: openapi-typescript would otherwise lint
  # with it, and linting is the previous step's job.
  rm -f "$TOOLS/client/schema.d.ts"
  local doc
  doc=$(realpath "$DOC") || return 1
  (cd "$TOOLS/client" && ../node_modules/.bin/openapi-typescript "$doc" --output schema.d.ts) ||
    return 1
  "$NODE_BIN/tsc" --noEmit --pretty false -p "$TOOLS/tsconfig.json"
}
step "openapi-typescript + tsc --noEmit" typed_client

asyncapi=()
for candidate in openapi/asyncapi.json openapi/asyncapi.yaml openapi/asyncapi.yml; do
  [[ -f "$candidate" ]] && asyncapi+=("$candidate")
done
if [[ ${#asyncapi[@]} -gt 0 ]]; then
  step "asyncapi parser" node "$TOOLS/asyncapi-validate.mjs" "${asyncapi[@]}"
else
  echo
  echo "== asyncapi parser"
  echo "no AsyncAPI document yet (openapi/asyncapi.json or .yaml)"
fi

echo
if [[ ${#failed[@]} -eq 0 ]]; then
  echo "api-check: all checks passed ($(elapsed "$start_all") s)"
  exit 0
fi
echo "api-check: ${#failed[@]} check(s) failed: $(IFS=,; echo "${failed[*]}" | sed 's/,/, /g') ($(elapsed "$start_all") s)"
exit 1
