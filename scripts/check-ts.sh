#!/usr/bin/env bash
# Type-checks the generated TypeScript (interop/generated/ts, the codegen golden files) and a
# usage file with tsc against zod installed from npm (interop/ts/package.json, pinned), and the
# TypeScript contract fixture of `codegen import --ts` (interop/ts/import_fixtures).
set -euo pipefail
cd "$(dirname "$0")/../interop/ts"
if [ ! -x node_modules/.bin/tsc ] || [ ! -d node_modules/zod-to-json-schema ]; then
  npm ci --no-audit --no-fund --silent
fi
node_modules/.bin/tsc -p tsconfig.json
echo "generated TypeScript type-checks (tsc $(node_modules/.bin/tsc --version | cut -d' ' -f2), zod $(node -p 'require("zod/package.json").version'))"
