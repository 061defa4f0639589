// The engine in a real process: it exits by itself once everything is stopped, a started
// server keeps it alive until then, and worker threads each get their own bridge.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { startRedis, startNats } from '../../../test-support/servers.mjs';

const redis = await startRedis();
const nats = await startNats();
after(async () => { await redis.stop(); await nats.stop(); });
const here = fileURLToPath(new URL('.', import.meta.url));

function run(script, env, killAfterMs) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: here, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
    child.on('exit', (code, signal) => { clearTimeout(timer); resolve({ code, signal, out, err, ms: Date.now() - started }); });
  });
}

const program = (stop) => `
import { z } from 'zod';
import { defineContract, defineMethod } from '@clamator-rs/protocol';
import { RedisRpcServer, RedisRpcClient } from '@clamator-rs/over-redis';
import { NatsRpcServer, NatsRpcClient } from '@clamator-rs/over-nats';
const c = defineContract('arith', { add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }) });
const nats = process.env.TRANSPORT === 'nats';
const opts = nats ? { natsUrl: process.env.NATS_URL, keyPrefix: 'exit' } : { redisUrl: process.env.REDIS_URL, keyPrefix: 'exit' };
const server = nats ? new NatsRpcServer(opts) : new RedisRpcServer(opts);
server.registerService(c, { add: async ({ a, b }) => ({ sum: a + b }) });
await server.start();
const client = nats ? new NatsRpcClient(opts) : new RedisRpcClient(opts);
await client.start();
console.log(JSON.stringify(await client.call('arith', 'add', { a: 1, b: 2 })));
${stop ? 'await client.stop(); await server.stop(); console.log("stopped");' : 'console.log("running");'}
`;

for (const transport of ['redis', 'nats']) {
  test(`${transport}: the process exits by itself after stop(), and not before`, async () => {
    const env = { TRANSPORT: transport, REDIS_URL: redis.url, NATS_URL: nats.url };
    const done = await run(program(true), env, 15_000);
    assert.equal(done.code, 0, `exit code ${done.code} ${done.signal ?? ''}: ${done.err}`);
    assert.match(done.out, /\{"sum":3\}\nstopped/);
    const running = await run(program(false), env, 3_000);
    assert.match(running.out, /running/);
    assert.equal(running.signal, 'SIGKILL', 'a started server and client keep the process alive until stopped');
  });
}

test('worker threads each get their own bridge: a client in a worker calls a server in the main thread', async () => {
  const { z } = await import('zod');
  const { defineContract, defineMethod } = await import('@clamator-rs/protocol');
  const { RedisRpcServer } = await import('@clamator-rs/over-redis');
  const c = defineContract('arith', { add: defineMethod({ params: z.object({ a: z.number(), b: z.number() }), result: z.object({ sum: z.number() }) }) });
  const server = new RedisRpcServer({ redisUrl: redis.url, keyPrefix: 'workers', logger: { error() {}, warn() {} } });
  server.registerService(c, { add: async ({ a, b }) => ({ sum: a + b }) });
  await server.start();
  const worker = (i) => new Promise((resolve, reject) => {
    const w = new Worker(`
      import { parentPort, workerData } from 'node:worker_threads';
      import { RedisRpcClient } from '@clamator-rs/over-redis';
      const client = new RedisRpcClient({ redisUrl: workerData.url, keyPrefix: 'workers' });
      await client.start();
      const sums = [];
      for (let k = 0; k < 20; k++) sums.push((await client.call('arith', 'add', { a: workerData.i, b: k })).sum);
      await client.stop();
      parentPort.postMessage(sums);
    `, { eval: true, type: 'module', workerData: { url: redis.url, i } });
    w.once('message', resolve);
    w.once('error', reject);
  });
  const results = await Promise.all([worker(100), worker(200)]);
  assert.deepEqual(results[0], Array.from({ length: 20 }, (_, k) => 100 + k));
  assert.deepEqual(results[1], Array.from({ length: 20 }, (_, k) => 200 + k));
  await server.stop();
});
