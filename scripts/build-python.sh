#!/usr/bin/env bash
# Builds the clamator-rs wheel (bindings/clamator-py: PyO3 + maturin) into target/wheels/.
# maturin comes from PyPI into .tools/maturin (bindings/clamator-py/build-requirements.txt).
# Usage: bash scripts/build-python.sh [--dev]   (--dev: the debug profile, as the test suite
# uses it: shares the workspace's debug build and is quicker; benchmarks use the default,
# release)
set -euo pipefail
cd "$(dirname "$0")/.."
# The bindings workspace builds into the root target directory: what it shares with the main
# workspace (the same crates with the same features) is built once.
export CARGO_TARGET_DIR="$PWD/target"
PY=${PYTHON:-python3}
TOOLS=.tools/maturin
REQ=bindings/clamator-py/build-requirements.txt
exec 9>".tools.maturin.lock"
flock 9
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if ! [ -x "$TOOLS/bin/maturin" ] || [ "$(cat "$TOOLS/.requirements.sha256" 2>/dev/null)" != "$want" ]; then
  rm -rf "$TOOLS"
  "$PY" -m venv "$TOOLS"
  "$TOOLS/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" > "$TOOLS/.requirements.sha256"
fi
profile=(--release)
[ "${1:-}" = "--dev" ] && profile=(--profile dev)
rm -f target/wheels/clamator_rs-*.whl
# manylinux_2_34: maturin audits the wheel (it links only libc/libm, symbols up to GLIBC_2.34:
# installs on Debian 12, Ubuntu 22.04, RHEL 9 and later). manylinux2014 (glibc 2.17) would need
# a build against an older glibc (a manylinux container, or maturin --zig).
"$TOOLS/bin/maturin" build --quiet "${profile[@]}" -m bindings/clamator-py/Cargo.toml \
  --interpreter "$PY" --compatibility manylinux_2_34 --out target/wheels >&2
ls target/wheels/clamator_rs-*.whl
