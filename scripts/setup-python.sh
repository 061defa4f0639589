#!/usr/bin/env bash
# Creates .venv with the released Python clamator 0.1.9 packages (interop/requirements.txt).
# Idempotent: does nothing when the venv already matches the requirements file.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
REQ=interop/requirements.txt
STAMP="$VENV/.requirements.sha256"
# Tests run this in parallel: one installs, the others wait for it.
exec 9>".venv.lock"
flock 9
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
echo "$want" > "$STAMP"
echo "python venv ready: $VENV"
