#!/usr/bin/env bash
# Tests clamator for TypeScript (node/): builds the engine and the packages
# (scripts/build-node.sh, the same flags), then runs node's test runner over every package's
# tests (packages/*/test/*.test.mjs): protocol and memory without a broker; Redis, NATS and
# the process tests against private redis-server / nats-server processes they start.
# Usage: bash scripts/test-node.sh [--release] [--glibc 2.17]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build-node.sh "$@"
cd node
node --test --test-concurrency=1 --test-reporter=spec packages/*/test/*.test.mjs
