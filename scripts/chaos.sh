#!/usr/bin/env bash
# Chaos run of the Redis transport, or with --nats of the NATS JetStream transport (see
# crates/clamator-interop/src/bin/chaos.rs): a private broker (redis-server with AOF, or
# nats-server -js with file storage), three server processes, a load of calls, a server
# SIGKILLed or SIGTERMed and restarted every few seconds, one SIGSTOP longer than the claim
# idle / ack wait, broker SIGKILL + restart (NATS: twice, and its consumer deleted once).
# Prints a table and exits 1 unless no call is lost, no request that never ran is
# dead-lettered, every duplicate is explained and nothing is left or leaked.
#   bash scripts/chaos.sh [--nats]            # 120 s of load, release build
#   bash scripts/chaos.sh [--nats] --smoke    # 30 s of load, debug build (what CI runs)
# Other flags: --duration-s N --in-flight N --claim-idle-ms N --kill-every-ms N --json FILE
# CLAMATOR_TEST_SERVER=valkey runs it on Valkey (bash scripts/setup-valkey.sh first).
set -euo pipefail
cd "$(dirname "$0")/.."
profile=release
for arg in "$@"; do
  [ "$arg" = "--smoke" ] && profile=debug
done
if [ "$profile" = release ]; then
  cargo build --quiet --release -p clamator-interop --bins
  exec target/release/clamator-chaos "$@"
else
  cargo build --quiet -p clamator-interop --bins
  exec target/debug/clamator-chaos "$@"
fi
