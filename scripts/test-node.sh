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

echo "== the packages as a user gets them: npm pack, installed into a new project, a call over Redis"
cd ..
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true' EXIT
(cd node && npm pack --silent --workspaces --pack-destination "$tmp" >/dev/null)
zod=$(node -p 'require("./node/node_modules/zod/package.json").version')
(cd "$tmp" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund ./clamator-rs-*.tgz "zod@$zod")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
redis-server --port "$port" --save '' --appendonly no --daemonize no >/dev/null &
redis_pid=$!
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.05; done
cat > "$tmp/app.mjs" <<'JS'
import { z } from 'zod';
import { defineContract, defineMethod } from '@clamator-rs/protocol';
import { RedisRpcServer, RedisRpcClient } from '@clamator-rs/over-redis';
const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
});
const url = process.argv[2];
const server = new RedisRpcServer({ redisUrl: url, keyPrefix: 'app' });
server.registerService(arith, { add: async ({ a, b }) => ({ sum: a + b }) });
await server.start();
const client = new RedisRpcClient({ redisUrl: url, keyPrefix: 'app' });
await client.start();
console.log(JSON.stringify(await client.call('arith', 'add', { a: 2, b: 3 })));
await client.stop();
await server.stop();
JS
out=$(cd "$tmp" && timeout 30 node app.mjs "redis://127.0.0.1:$port")
[ "$out" = '{"sum":5}' ] || { echo "the installed packages answered $out" >&2; exit 1; }
echo "installed from the packed tarballs ($(ls "$tmp"/*.tgz | wc -l) packages), called over Redis: $out; the process exited by itself"
