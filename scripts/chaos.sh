#!/usr/bin/env bash
# Chaos run of the Redis transport (see crates/clamator-interop/src/bin/chaos.rs): a private
# redis-server with AOF, three server processes, a load of calls, SIGKILL + restart of a server
# every few seconds, one SIGSTOP longer than the claim idle, one Redis restart. Prints a table
# and exits 1 unless no call is lost, every duplicate is explained and nothing leaked.
#   bash scripts/chaos.sh            # 120 s of load, release build
#   bash scripts/chaos.sh --smoke    # 30 s of load, debug build (what CI runs)
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
