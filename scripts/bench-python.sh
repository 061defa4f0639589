#!/usr/bin/env bash
# Benchmarks clamator-rs against the released 0.1.9 Python packages, same run, same Redis:
# the bridge measurement (per-call futures vs the batched bridge, no broker) and end to end
# (Python client -> Python server, each implementation and mixed). Builds the release wheel,
# installs it into .venv-rs-bench, starts a private redis-server. Not part of the test command.
# Usage: bash scripts/bench-python.sh [seconds-per-row]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
VENV=.venv-rs-bench
wheel=$(bash scripts/build-python.sh)
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
  -r bindings/clamator-py/test-requirements.txt "$wheel"
port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save "" --appendonly no --bind 127.0.0.1 >/dev/null &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done
echo "== bridge: per-call futures vs batched (bindings/clamator-py/bench/bridge.py)"
"$VENV/bin/python" bindings/clamator-py/bench/bridge.py 50000
echo
echo "== end to end over Redis (bindings/clamator-py/bench/e2e.py)"
"$VENV/bin/python" bindings/clamator-py/bench/e2e.py "redis://127.0.0.1:$port" "${1:-5}"
echo
echo "== a 0.1.9 server behind each client (bindings/clamator-py/bench/mixed.py)"
(cd bindings/clamator-py/bench && "../../../$VENV/bin/python" mixed.py "redis://127.0.0.1:$port" 3 "${1:-5}")
