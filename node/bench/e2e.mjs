// End to end over one Redis (run by scripts/bench-node.sh, which starts the servers): a
// closed-loop load of `arith.add` at N in flight against whatever serves the prefix, from a
// TypeScript client on @clamator-rs/over-redis. Prints one JSON line like `clamator bench`:
// calls, ok, elapsed_s, calls_per_s, p50_ms, p99_ms.
//   node bench/e2e.mjs client <redis-url> <prefix> <calls> <in-flight>
//   node bench/e2e.mjs server <redis-url> <prefix>          (prints READY; SIGTERM stops it)
import { z } from 'zod';
import { defineContract, defineMethod } from '@clamator-rs/protocol';
import { RedisRpcClient, RedisRpcServer } from '@clamator-rs/over-redis';

const [role, url, prefix, calls = '20000', inFlight = '256'] = process.argv.slice(2);
const arith = defineContract('arith', {
  add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }),
});

if (role === 'server') {
  const server = new RedisRpcServer({ redisUrl: url, keyPrefix: prefix });
  server.registerService(arith, { add: async ({ a, b }) => ({ sum: a + b }) });
  await server.start();
  process.on('SIGTERM', () => server.stop());
  process.stdout.write('READY\n');
} else {
  const client = new RedisRpcClient({ redisUrl: url, keyPrefix: prefix });
  await client.start();
  const n = Number(calls);
  const latencies = [];
  let next = 0;
  let ok = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: Number(inFlight) }, async () => {
    while (next++ < n) {
      const t = performance.now();
      try {
        await client.call('arith', 'add', { a: 1, b: 2 });
        ok++;
      } catch { /* counted as not ok */ }
      latencies.push(performance.now() - t);
    }
  }));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
  process.stdout.write(`${JSON.stringify({ calls: n, ok, elapsed_s: elapsed, calls_per_s: n / elapsed, p50_ms: pct(50), p99_ms: pct(99) })}\n`);
  await client.stop();
}
