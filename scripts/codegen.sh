#!/usr/bin/env bash
# Regenerates the interop contracts' Python, TypeScript and Rust code and the manifest from
# the committed contract documents in contracts/. With --check, writes nothing and fails
# (naming what drifted) if anything is out of date.
# Usage: bash scripts/codegen.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo run --quiet -p clamator-cli -- codegen --docs contracts \
  --out-py interop/generated/py \
  --out-ts interop/generated/ts \
  --out-rust crates/clamator-interop/src/generated \
  --manifest interop/generated/manifest.json "$@"
# The same arith contract in the original @clamator/codegen shape (types inferred from a
# hand-written contract object), run against @clamator-rs/* by the TypeScript tests.
cargo run --quiet -p clamator-cli -- codegen --docs contracts/arith.openrpc.json \
  --out-ts node/test-fixtures/original-shape/generated \
  --ts-contract-import '../contracts/{service}.js' "$@"
