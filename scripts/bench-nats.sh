#!/usr/bin/env bash
# clamator over NATS JetStream next to clamator over Redis (Rust and the released Python
# 0.1.9) and a floor of plain async-nats request/reply, in one run on private redis-server and
# nats-server -js processes: S1 latency and S2 throughput @256, medians of N rounds.
# The full suite (scripts/bench.sh) has the NATS rows of every scenario.
# Usage: bash scripts/bench-nats.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
cargo build --release -p clamator-bench -p clamator-cli -p clamator-interop
bash scripts/setup-python.sh
./target/release/clamator-bench --nats "${1:-3}"
