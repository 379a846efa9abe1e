#!/usr/bin/env bash
# `make fuzz-api`: schemathesis against a live server, every check, bounded examples.
#
#   tools/api-check/fuzz.sh BINARY [SCHEMATHESIS_ARGS...]
#   e.g. tools/api-check/fuzz.sh target/debug/switchboard --include-path-regex '^/v1/tags'
#   (schemathesis runs in a temporary folder: give any path in SCHEMATHESIS_ARGS absolute)
#
# It starts BINARY (`switchboard serve`) on a new SQLite database in a temporary folder, on a
# free loopback port, with a demo organization (`seed-demo`, so that ids in requests name real
# rows) and an admin of it made with `create-admin`; signs in with POST /v1/auth/login; runs
# `schemathesis run openapi/openapi.json --checks all` with the bearer token; stops the server.
# Reports (schemathesis.json: the run's summary; junit.xml: each failure with its request and
# response) and the server's log go to target/api-check-fuzz/ (replaced each run). Every run
# starts afresh: schemathesis and Hypothesis keep their caches (.schemathesis/, .hypothesis/,
# which would replay earlier failures) in the temporary folder, removed at the end.
# Exit status: schemathesis's (non-zero when anything failed), 2 on a setup error.
#
# Environment:
#   FUZZ_MAX_EXAMPLES   test cases per operation and phase (default 20)
#   FUZZ_SEED           schemathesis's random seed, for reproducible runs (default 1)
#   FUZZ_WORKERS        concurrent schemathesis workers (default 1: with more, Python 3.11
#                       can fail a test with "SystemError: AST constructor recursion depth
#                       mismatch", CPython gh-106905; one worker takes ~35 s here anyway)
#   FUZZ_PHASES         e.g. examples,coverage,fuzzing (default: schemathesis's, all of them)
#   FUZZ_CONVERSATIONS  conversations of the demo organization (default 200; 0: no demo data,
#                       the admin is made by the SWITCHBOARD_BOOTSTRAP_* first start instead)
#   FUZZ_TIMEOUT        seconds before the whole schemathesis run is stopped (default 3600)
#   FUZZ_OPENAPI        the document to test (default openapi/openapi.json)
#   FUZZ_REPORT_DIR     where reports go (default target/api-check-fuzz)
#                       (both relative to the repository root, or absolute)
#   FUZZ_REPORTS        schemathesis report formats (default junit,json; also ndjson, har, vcr)
set -uo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 BINARY [SCHEMATHESIS_ARGS...]   (e.g. target/debug/switchboard)" >&2
  exit 2
fi
BINARY=$(realpath "$1") || exit 2
shift
if [[ ! -x "$BINARY" ]]; then
  echo "fuzz: $BINARY is not an executable (build it first: make build)" >&2
  exit 2
fi

cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 2
source tools/api-check/lib.sh

MAX_EXAMPLES=${FUZZ_MAX_EXAMPLES:-20}
SEED=${FUZZ_SEED:-1}
WORKERS=${FUZZ_WORKERS:-1}
CONVERSATIONS=${FUZZ_CONVERSATIONS:-200}
TIMEOUT=${FUZZ_TIMEOUT:-3600}
DOC=$(realpath "${FUZZ_OPENAPI:-openapi/openapi.json}") || exit 2
CONFIG=$(realpath tools/api-check/schemathesis.toml) || exit 2
REPORT_DIR=${FUZZ_REPORT_DIR:-target/api-check-fuzz}
REPORTS=${FUZZ_REPORTS:-junit,json}
EMAIL=fuzz-admin@api-check.example
PASSWORD="api-check-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"

start_all=$(now)
ensure_venv || { echo "fuzz: cannot install the Python tools (see above)" >&2; exit 2; }

mkdir -p "$REPORT_DIR" || exit 2
REPORT_DIR=$(realpath "$REPORT_DIR")
# Only this script's own files: FUZZ_REPORT_DIR may name a folder with other things in it.
(cd "$REPORT_DIR" && rm -f schemathesis.json junit.xml events.ndjson requests.har cassette.yaml \
  server.log seed-demo.log create-admin.log)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-fuzz.XXXXXX") || exit 2
DB="sqlite://$WORK/switchboard.db"
LOG="$REPORT_DIR/server.log"
SERVER_PID=

stop_server() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
  fi
  SERVER_PID=
}
cleanup() {
  stop_server
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the database: a demo organization and an admin of it, or a bare first start ----------
step_start=$(now)
bootstrap_env=()
if [[ "$CONVERSATIONS" -gt 0 ]]; then
  "$BINARY" seed-demo --database-url "$DB" --conversations "$CONVERSATIONS" \
    > "$REPORT_DIR/seed-demo.log" 2>&1 ||
    { echo "fuzz: seed-demo failed:" >&2; cat "$REPORT_DIR/seed-demo.log" >&2; exit 2; }
  SWITCHBOARD_ADMIN_PASSWORD="$PASSWORD" "$BINARY" create-admin --database-url "$DB" \
    --org "Demo Co" --email "$EMAIL" --name "API check fuzzer" \
    > "$REPORT_DIR/create-admin.log" 2>&1 ||
    { echo "fuzz: create-admin failed:" >&2; cat "$REPORT_DIR/create-admin.log" >&2; exit 2; }
  echo "== database: demo organization with $CONVERSATIONS conversations, admin $EMAIL ($(elapsed "$step_start") s)"
else
  bootstrap_env=(SWITCHBOARD_BOOTSTRAP_ORG="API check" SWITCHBOARD_BOOTSTRAP_EMAIL="$EMAIL"
    SWITCHBOARD_BOOTSTRAP_PASSWORD="$PASSWORD")
  echo "== database: empty; the first start makes the admin $EMAIL"
fi

free_port() {
  "$VENV/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# --- the server --------------------------------------------------------------------------
# - Outbound channel deliveries (POSTs to a channel's outbound_url, which the fuzzer makes up)
#   go through a proxy on a closed loopback port: nothing leaves the machine and each attempt
#   fails at once. One attempt per message.
# - Access tokens outlive the run (the default 15 minutes may not).
# - The sign-in rate limits are lifted: the fuzzer's many failed sign-ins would otherwise turn
#   every later one into 429 and make results depend on the order of the tests.
step_start=$(now)
BASE=
for attempt in 1 2 3; do
  PORT=$(free_port) || exit 2
  env "${bootstrap_env[@]}" \
    SWITCHBOARD_BIND="127.0.0.1:$PORT" \
    SWITCHBOARD_DATABASE_URL="$DB" \
    SWITCHBOARD_DATA_DIR="$WORK/data" \
    SWITCHBOARD_ACCESS_TOKEN_TTL=86400 \
    SWITCHBOARD_LOGIN_FAILURES_PER_ACCOUNT=1000000 \
    SWITCHBOARD_LOGIN_FAILURES_PER_ADDRESS=1000000 \
    SWITCHBOARD_DELIVERY_MAX_ATTEMPTS=1 \
    SWITCHBOARD_SHUTDOWN_TIMEOUT=5 \
    SWITCHBOARD_WORKERS=2 \
    HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 ALL_PROXY=http://127.0.0.1:9 \
    http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9 \
    NO_PROXY= no_proxy= \
    RUST_LOG="${RUST_LOG:-warn}" \
    "$BINARY" serve >> "$LOG" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if curl -fsS --noproxy '*' -o /dev/null "http://127.0.0.1:$PORT/readyz" 2>/dev/null; then
      BASE="http://127.0.0.1:$PORT"
      break
    fi
    sleep 0.2
  done
  [[ -n "$BASE" ]] && break
  stop_server
  grep -q "cannot listen" "$LOG" || break # not a port race: do not retry
done
if [[ -z "$BASE" ]]; then
  echo "fuzz: the server did not become ready; its log ($LOG):" >&2
  tail -n 40 "$LOG" >&2
  exit 2
fi
echo "== server: $BASE, pid $SERVER_PID ($(elapsed "$step_start") s)"

# --- sign in -----------------------------------------------------------------------------
token_of() { # reads a TokenResponse on stdin
  "$VENV/bin/python" -c 'import json, sys; print(json.load(sys.stdin)["access_token"])'
}
TOKEN=$(printf '{"email":"%s","password":"%s"}' "$EMAIL" "$PASSWORD" |
  curl -fsS --noproxy '*' "$BASE/v1/auth/login" -H 'content-type: application/json' \
    --data-binary @- | token_of) ||
  { echo "fuzz: cannot sign in as $EMAIL" >&2; exit 2; }
echo "== signed in as $EMAIL"

# --- schemathesis --------------------------------------------------------------------------
phases=()
[[ -n "${FUZZ_PHASES:-}" ]] && phases=(--phases "$FUZZ_PHASES")
# Fixed file names (schemathesis would stamp them with the time): schemathesis.json, junit.xml…
reports=(--report "$REPORTS" --report-dir "$REPORT_DIR")
IFS=, read -r -a formats <<< "$REPORTS"
for format in "${formats[@]}"; do
  case $format in
    json) reports+=(--report-json-path "$REPORT_DIR/schemathesis.json") ;;
    junit) reports+=(--report-junit-path "$REPORT_DIR/junit.xml") ;;
    ndjson) reports+=(--report-ndjson-path "$REPORT_DIR/events.ndjson") ;;
    har) reports+=(--report-har-path "$REPORT_DIR/requests.har") ;;
    vcr) reports+=(--report-vcr-path "$REPORT_DIR/cassette.yaml") ;;
  esac
done
step_start=$(now)
echo "== schemathesis: $DOC against $BASE, --checks all, --max-examples $MAX_EXAMPLES, --seed $SEED"
SCHEMATHESIS=$(realpath "$VENV/bin/schemathesis")
# In the temporary folder: its caches go there, not into the work tree.
(cd "$WORK" && NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost \
  HYPOTHESIS_STORAGE_DIRECTORY="$WORK/.hypothesis" \
  timeout --signal=INT --kill-after=30 "$TIMEOUT" \
  "$SCHEMATHESIS" --config-file "$CONFIG" run "$DOC" \
  --exclude-path /v1/ws \
  --url "$BASE" \
  --header "Authorization: Bearer $TOKEN" \
  --checks all \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --workers "$WORKERS" \
  "${phases[@]}" \
  --request-timeout 30 \
  --generation-database none \
  "${reports[@]}" \
  --no-color \
  "$@")
status=$?
echo "== schemathesis: exit $status ($(elapsed "$step_start") s)"

# A run that changed the fuzzing admin's password or role would have tested the rest signed
# out: say so rather than leave a wall of 401s unexplained.
me=$(curl -sS --noproxy '*' -o /dev/null -w '%{http_code}' "$BASE/v1/me" \
  -H "Authorization: Bearer $TOKEN")
if [[ "$me" != 200 ]]; then
  echo "fuzz: WARNING: GET /v1/me with the run's token now answers $me: the token was revoked" \
    "during the run (e.g. PATCH /v1/users/{id} changed the fuzzing admin); later results are" \
    "of a signed-out client"
fi
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "fuzz: WARNING: the server exited during the run; see $LOG"
fi
stop_server
echo "== reports: $REPORT_DIR (server log: $LOG)"
echo "fuzz-api: done ($(elapsed "$start_all") s), exit $status"
exit "$status"
