#!/usr/bin/env bash
# Installs what links the bindings against an old glibc: zig (the ziglang package from PyPI,
# pinned in bindings/zig-requirements.txt) into .tools/zig, and cargo-zigbuild (crates.io,
# pinned here) into .tools/cargo-zigbuild. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
ZIGBUILD_VERSION=0.24.1
REQ=bindings/zig-requirements.txt
exec 9>".tools.zig.lock"
flock 9
want=$(sha256sum "$REQ" | cut -d' ' -f1)
if ! [ -x .tools/zig/bin/python ] || [ "$(cat .tools/zig/.requirements.sha256 2>/dev/null)" != "$want" ]; then
  rm -rf .tools/zig
  python3 -m venv .tools/zig
  .tools/zig/bin/python -m pip install --quiet --disable-pip-version-check -r "$REQ"
  echo "$want" > .tools/zig/.requirements.sha256
fi
# cargo-zigbuild runs `python -m ziglang` when no `zig` is on PATH: give it the venv's python
printf '#!/bin/sh\nexec "%s" -m ziglang "$@"\n' "$PWD/.tools/zig/bin/python" > .tools/zig/bin/zig
chmod +x .tools/zig/bin/zig
if ! [ -x .tools/cargo-zigbuild/bin/cargo-zigbuild ] || ! .tools/cargo-zigbuild/bin/cargo-zigbuild --version | grep -q "$ZIGBUILD_VERSION"; then
  cargo install --quiet --locked --version "$ZIGBUILD_VERSION" cargo-zigbuild --root .tools/cargo-zigbuild
fi
echo "zig $(.tools/zig/bin/zig version), $(.tools/cargo-zigbuild/bin/cargo-zigbuild --version)"
