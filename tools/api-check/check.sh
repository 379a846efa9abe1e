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
TOOLS=tools/api-check
DOC=${API_CHECK_OPENAPI:-openapi/openapi.json}
VENV=${API_CHECK_VENV:-target/api-check-venv}
PYTHON=${PYTHON:-python3}

# No telemetry, update notices or install-time analytics from the tools.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true SCARF_ANALYTICS=false
export DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

# Long lines (the spec validator quotes whole documents) are cut to this many characters.
MAX_LINE=${API_CHECK_MAX_LINE:-1000}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
sha() { sha256sum "$1" | cut -d' ' -f1; }

# Installs the Python tools into the venv unless it is already built from this requirements.txt.
ensure_venv() {
  local stamp="$VENV/.api-check-requirements.sha256" want
  want=$(sha "$TOOLS/requirements.txt")
  if [[ -x "$VENV/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "== installing Python tools into $VENV"
  [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV" || return 1
  "$VENV/bin/python" -m pip install --quiet -r "$TOOLS/requirements.txt" || return 1
  echo "$want" > "$stamp"
}

# `npm ci` unless node_modules was installed from this very package-lock.json.
ensure_node_modules() {
  local stamp="$TOOLS/node_modules/.api-check-lock.sha256" want
  want=$(sha "$TOOLS/package-lock.json")
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    return 0
  fi
  echo "== npm ci in $TOOLS"
  # --ignore-scripts: no dependency needs an install script (the only one is an analytics ping).
  (cd "$TOOLS" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || return 1
  echo "$want" > "$stamp"
}

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
