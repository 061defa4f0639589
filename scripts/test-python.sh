#!/usr/bin/env bash
# Tests the clamator-rs wheel (bindings/clamator-py) as a user gets it: builds it
# (scripts/build-python.sh), installs it into a fresh venv (.venv-rs) beside the released
# 0.1.9 packages, runs the pytest suite there (behaviour of both implementations side by side,
# interop with 0.1.9 both ways and in one pool, faults, NATS), then the Rust interop suite
# with its Python harness on the wheel (Python client on clamator-rs -> Rust server, Rust
# client -> Python server on clamator-rs), and the Redis Cluster test the same way (a
# redis.asyncio RedisCluster handed to clamator-rs, whose nodes it takes over).
# Usage: bash scripts/test-python.sh [--release]   (default: the debug profile, as CI)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-rs
if [ "${1:-}" = "--release" ]; then
  wheel=$(bash scripts/build-python.sh)
else
  wheel=$(bash scripts/build-python.sh --dev)
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r bindings/clamator-py/test-requirements.txt "$wheel"
echo "== pytest (bindings/clamator-py/tests) on $(basename "$wheel")"
(cd bindings/clamator-py/tests && "../../../$VENV/bin/python" -m pytest -q --durations=5)
echo "== Rust interop suite, the Python harness on clamator-rs (CLAMATOR_PY_IMPL=rs)"
CLAMATOR_PY_IMPL=rs CLAMATOR_INTEROP_PYTHON="$PWD/$VENV/bin/python" CLAMATOR_INTEROP_TS=0 \
  cargo test -q -p clamator-interop --test interop -- --nocapture interop_suite
echo "== Redis Cluster, the Python harness on clamator-rs"
CLAMATOR_PY_IMPL=rs CLAMATOR_INTEROP_PYTHON="$PWD/$VENV/bin/python" \
  cargo test -q -p clamator-interop --test cluster
