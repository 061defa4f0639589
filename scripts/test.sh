#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, docs, unit/integration/doc tests, and the
# interop suite against the released Python clamator 0.1.9 (installed into .venv here).
# Needs: Rust stable, Python >= 3.11, Node >= 18 with npm, redis-server, nats-server and openssl on PATH
# (chromium is installed by scripts/setup-browser.sh when run as root).
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== system packages"
bash scripts/ensure-deps.sh

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

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
  --exclude clamator-test-support --exclude clamator-examples --exclude clamator-py --no-verify --allow-dirty

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

echo "== cargo test (unit, integration, doc tests)"
# Without clamator-py (it has no Rust tests; its pytest suite runs below): its redis TLS is
# rustls, and cargo would unify that into this build, so the Redis crates' TLS tests would run
# on rustls instead of the native-tls their users get (and `#insecure` would be refused).
cargo test --workspace --exclude clamator-py --all-features -- --skip interop_suite

echo "== interop suite (Rust <-> Python clamator 0.1.9 over Redis)"
cargo test -p clamator-interop --test interop -- --nocapture interop_suite

echo "== clamator-rs wheel (crates/clamator-py): built, installed into a fresh venv, pytest on it beside 0.1.9, the interop suite with the Python harness on it"
bash scripts/test-python.sh

echo "== on Valkey 8.1 too: the Redis transport tests (cluster and Sentinel included), the fault tests and the interop suite (CLAMATOR_TEST_SERVER=valkey)"
export CLAMATOR_TEST_SERVER=valkey
cargo test -p clamator-over-redis --all-features --tests
cargo test -p clamator-interop --all-features --test faults --test processes --test extra_fields --test metrics --test otel --test cluster -- --skip nats
cargo test -p clamator-interop --test interop -- --nocapture interop_suite
unset CLAMATOR_TEST_SERVER

echo "== chaos smoke, Redis and NATS (30 s each: servers SIGKILLed, SIGTERMed and SIGSTOPped, the broker restarted; scripts/chaos.sh)"
bash scripts/chaos.sh --smoke
bash scripts/chaos.sh --nats --smoke
