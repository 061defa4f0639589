#!/usr/bin/env bash
# Benchmarks clamator for Rust against the released Python clamator 0.1.9, side by side in
# one run on one private redis-server. Writes bench/results.{json,md} and bench/chart.png.
# Usage: bash scripts/bench.sh [output-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench}
cargo build --release -p clamator-bench -p clamator-cli -p clamator-interop
bash scripts/setup-python.sh
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r interop/bench-requirements.txt
./target/release/clamator-bench "$OUT"
.venv/bin/python interop/py/chart.py "$OUT/results.json" "$OUT/chart.png"
echo "wrote $OUT/results.md, $OUT/results.json, $OUT/chart.png"
