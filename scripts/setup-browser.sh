#!/usr/bin/env bash
# Installs what the dashboard's browser tests need: Debian's chromium (as root, when missing)
# and playwright-core from npm (browser/package.json, pinned; it drives the system chromium,
# it downloads no browser).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing chromium (Debian package)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's chromium package (apt-get install chromium)" >&2
    exit 1
  fi
fi
if [ ! -d browser/node_modules/playwright-core ]; then
  (cd browser && npm ci --no-audit --no-fund --silent)
fi
echo "browser tests ready: $(chromium --version 2>/dev/null | head -1), playwright-core $(node -p 'require("./browser/node_modules/playwright-core/package.json").version')"
