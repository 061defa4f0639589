#!/usr/bin/env bash
# Builds clamator for TypeScript: the native engine (bindings/clamator-node, napi-rs) into
# node/packages/engine-linux-x64-gnu/, the npm packages (node/: npm ci, tsc -b) and the
# interop drivers' generated contracts (node/interop/generated, from interop/generated/ts).
# Usage: bash scripts/build-node.sh [--release] [--glibc VERSION]
#   default             the debug engine, as the test command uses it (it shares the debug
#                       build of bindings/ with the clamator-rs wheel)
#   --release           an optimized engine (benchmarks, packages to publish)
#   --glibc 2.17        linked by zig against that glibc's symbols (ziglang from PyPI and
#                       cargo-zigbuild from crates.io, into .tools), so the package installs
#                       on RHEL/CentOS 7, Amazon Linux 2, Debian 8 and later; checked with
#                       objdump (no symbol of a later glibc)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="$PWD/target"
profile=debug
glibc=
while [ $# -gt 0 ]; do
  case "$1" in
    --release) profile=release ;;
    --glibc) glibc=${2:?--glibc needs a version, e.g. 2.17}; shift ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
  shift
done
flags=()
[ "$profile" = release ] && flags+=(--release)
if [ -n "$glibc" ]; then
  bash scripts/setup-zig.sh >&2
  export PATH="$PWD/.tools/cargo-zigbuild/bin:$PWD/.tools/zig/bin:$PATH"
  target=x86_64-unknown-linux-gnu
  cargo zigbuild --quiet "${flags[@]}" --manifest-path bindings/Cargo.toml -p clamator-node --target "$target.$glibc" >&2
  lib=target/$target/$profile/libclamator_node.so
else
  cargo build --quiet "${flags[@]}" --manifest-path bindings/Cargo.toml -p clamator-node >&2
  lib=target/$profile/libclamator_node.so
fi
out=node/packages/engine-linux-x64-gnu/clamator-engine.linux-x64-gnu.node
cp "$lib" "$out"
if [ -n "$glibc" ]; then
  newest=$(objdump -T "$out" | grep -o 'GLIBC_[0-9.]*' | sort -uV | tail -1)
  if [ "$(printf '%s\nGLIBC_%s\n' "$newest" "$glibc" | sort -V | tail -1)" != "GLIBC_$glibc" ]; then
    echo "the engine needs $newest, newer than glibc $glibc" >&2
    exit 1
  fi
  echo "engine links glibc symbols up to $newest (asked: $glibc)" >&2
fi
cd node
if [ ! -d node_modules/typescript ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --silent >&2
fi
npx tsc -b packages/protocol packages/engine packages/over-memory packages/over-redis packages/over-nats >&2
npx tsc -p interop >&2
npx tsc -p test-fixtures/original-shape >&2
echo "node/packages built ($profile engine${glibc:+, glibc $glibc})" >&2
