# Shared by check.sh and fuzz.sh (sourced, from the repository root).

TOOLS=tools/api-check
VENV=${API_CHECK_VENV:-target/api-check-venv}
PYTHON=${PYTHON:-python3}

# No telemetry, update notices or install-time analytics from the tools.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true SCARF_ANALYTICS=false
export DO_NOT_TRACK=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

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
