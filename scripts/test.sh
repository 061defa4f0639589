#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, docs, unit/integration/doc tests, and the
# interop suite against the released Python clamator 0.1.9 (installed into .venv here).
# Needs: Rust stable, Python >= 3.11, Node >= 18 with npm, redis-server, nats-server and openssl on PATH
# (chromium is installed by scripts/setup-browser.sh when run as root).
# Usage: bash scripts/test.sh            everything (what CI runs)
#        bash scripts/test.sh --quick    fmt, clippy and the unit tests: a few minutes
set -euo pipefail
cd "$(dirname "$0")/.."
quick=false
[ "${1:-}" = "--quick" ] && quick=true

echo "== system packages"
bash scripts/ensure-deps.sh

echo "== cargo fmt --check (the main workspace and bindings/)"
cargo fmt --all -- --check
cargo fmt --all --manifest-path bindings/Cargo.toml -- --check

echo "== cargo clippy -D warnings (the main workspace, all features; bindings/, into the same target directory)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
CARGO_TARGET_DIR="$PWD/target" cargo clippy --manifest-path bindings/Cargo.toml --workspace --all-targets -- -D warnings

if $quick; then
  echo "== unit tests (cargo test --workspace --all-features --lib --bins)"
  cargo test --workspace --all-features --lib --bins
  echo "quick tier passed (the whole suite: bash scripts/test.sh)"
  exit 0
fi

echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet
# and the facade as a newcomer builds it: default features (links to feature-gated modules)
RUSTDOCFLAGS="-D warnings" cargo doc -p clamator --no-deps --quiet

echo "== every feature combination of the facade builds; redis alone links no OpenSSL"
for features in "" memory macros memory,macros redis redis,macros tls nats codegen memory,macros,redis,tls,nats,codegen; do
  cargo check --quiet -p clamator --no-default-features ${features:+--features "$features"}
done
cargo check --quiet -p clamator-over-redis --no-default-features --tests
if cargo tree -p clamator --no-default-features --features redis -e normal | grep -qi openssl; then
  echo "clamator with features = [\"redis\"] links OpenSSL; TLS must stay behind the tls feature" >&2
  exit 1
fi

echo "== the published crates package (metadata, licence files, no dev-dependency cycles)"
cargo package --quiet --workspace --exclude clamator-interop --exclude clamator-bench \
  --exclude clamator-test-support --exclude clamator-examples --exclude clamator-ui-tests --no-verify --allow-dirty

echo "== python venv with clamator 0.1.9 (interop/requirements.txt)"
bash scripts/setup-python.sh

echo "== valkey-server 8.1 (interop/valkey-requirements.txt) into .tools/valkey"
bash scripts/setup-valkey.sh

echo "== chromium + playwright-core (browser/package.json) for the dashboard's browser test"
bash scripts/setup-browser.sh

echo "== generated code is current (clamator codegen --check)"
bash scripts/codegen.sh --check

echo "== generated TypeScript type-checks (tsc + zod from npm)"
bash scripts/check-ts.sh

echo "== clamator for TypeScript (node/): the engine linked against glibc 2.17 by zig, the packages, their tests"
bash scripts/test-node.sh --glibc 2.17

echo "== cargo test (unit, integration, doc tests)"
cargo test --workspace --all-features -- --skip interop_suite

echo "== interop suite (Rust <-> Python clamator 0.1.9 over Redis)"
cargo test -p clamator-interop --test interop -- --nocapture interop_suite

echo "== clamator-rs wheel (bindings/clamator-py): built, installed into a fresh venv, pytest on it beside 0.1.9, the interop suite with the Python harness on it"
bash scripts/test-python.sh

echo "== on Valkey 8.1 too: the Redis transport tests (cluster and Sentinel included), the fault tests and the interop suite (CLAMATOR_TEST_SERVER=valkey)"
export CLAMATOR_TEST_SERVER=valkey
cargo test -p clamator-over-redis --all-features --tests
cargo test -p clamator-interop --all-features --test faults --test processes --test extra_fields --test metrics --test otel --test cluster -- --skip nats
CLAMATOR_INTEROP_TS=0 cargo test -p clamator-interop --test interop -- --nocapture interop_suite
unset CLAMATOR_TEST_SERVER

echo "== chaos smoke, Redis and NATS (30 s each: servers SIGKILLed, SIGTERMed and SIGSTOPped, the broker restarted; scripts/chaos.sh)"
bash scripts/chaos.sh --smoke
bash scripts/chaos.sh --nats --smoke
