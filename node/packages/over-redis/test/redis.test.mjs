import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError, ClamatorTransportError, deadline, requestId } from '@clamator-rs/protocol';
import {
  RedisRpcServer, RedisRpcClient, commandStream, replyStream, consumerGroupName, consumerName,
} from '@clamator-rs/over-redis';
import { startRedis } from '../../../test-support/servers.mjs';
import { arith, handlers, quiet, eventually } from './fixture.mjs';

const redis = await startRedis();
after(() => redis.stop());
let n = 0;
const prefix = () => `t${++n}`;

async function serve(keyPrefix, opts = {}, overrides) {
  const h = handlers(overrides);
  const server = new RedisRpcServer({ redisUrl: redis.url, keyPrefix, logger: quiet, ...opts });
  server.registerService(arith, h.handlers);
  await server.start();
  return { server, seen: h.seen };
}

async function client(keyPrefix, opts = {}) {
  const c = new RedisRpcClient({ redisUrl: redis.url, keyPrefix, ...opts });
  await c.start();
  return c;
}

test('keys', () => {
  assert.equal(commandStream('app', 'arith'), 'app:cmds:arith');
  assert.equal(replyStream('app', 'c1'), 'app:replies:c1');
  assert.equal(consumerGroupName('arith'), 'arith');
  assert.equal(consumerName('arith', 's1'), 'arith:s1');
});

test('round trip: a result, an RpcError -32000, -32602, a notification', async () => {
  const p = prefix();
  const { server, seen } = await serve(p);
  const c = await client(p);
  assert.deepEqual(await c.call('arith', 'add', { a: 2, b: 3 }), { sum: 5 });
  await assert.rejects(c.call('arith', 'divide', { a: 1, b: 0 }), (e) => e instanceof RpcError && e.code === -32000 && e.message === 'division by zero');
  await assert.rejects(c.call('arith', 'add', { a: 'x', b: 1 }), (e) => e instanceof RpcError && e.code === -32602);
  await c.notify('arith', 'ping', { tag: 'x' });
  await eventually('the notification ran', () => seen.pinged.includes('x'));
  await c.stop();
  await server.stop();
});

test('timeout: an 800 ms handler against a 100 ms timeout is a ClamatorTransportError("call timeout")', async () => {
  const p = prefix();
  const { server } = await serve(p);
  const c = await client(p, { defaultTimeoutMs: 100 });
  const started = Date.now();
  await assert.rejects(c.call('arith', 'slowAdd', { a: 1, b: 2, sleepMs: 800 }), (e) => e instanceof ClamatorTransportError && e.message === 'call timeout');
  assert.ok(Date.now() - started < 700, 'it failed at its timeout, not when the handler ended');
  await c.stop();
  await server.stop({ graceMs: 2000 });
});

test('worker pool: two servers share 50 calls, each gets some', async () => {
  const p = prefix();
  const a = await serve(p, { instanceId: 'a' });
  const b = await serve(p, { instanceId: 'b' });
  const c = await client(p);
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => c.call('arith', 'slowAdd', { a: i, b: 1, sleepMs: 20 })));
  assert.deepEqual(results.map((r) => r.sum), Array.from({ length: 50 }, (_, i) => i + 1));
  assert.ok(a.seen.handled > 0 && b.seen.handled > 0, `a ${a.seen.handled}, b ${b.seen.handled}`);
  assert.equal(a.seen.handled + b.seen.handled, 50);
  await c.stop();
  await a.server.stop();
  await b.server.stop();
});

test('crash recovery: a server that hangs is stopped without grace; another reclaims its call', async () => {
  const p = prefix();
  const hang = await serve(p, { instanceId: 's1', consumerClaimIdleMs: 300, shutdownGraceMs: 0 }, {
    add: () => new Promise(() => {}),
  });
  const c = await client(p, { defaultTimeoutMs: 15_000 });
  const call = c.call('arith', 'add', { a: 1, b: 2 });
  await new Promise((r) => setTimeout(r, 200));
  await hang.server.stop({ graceMs: 0 });
  const s2 = await serve(p, { instanceId: 's2', consumerClaimIdleMs: 300 });
  const started = Date.now();
  assert.deepEqual(await call, { sum: 3 });
  assert.ok(Date.now() - started < 10_000);
  await c.stop();
  await s2.server.stop();
});

test('handlers see requestId() and deadline() of the call they serve', async () => {
  const p = prefix();
  let seen;
  const { server } = await serve(p, {}, { add: async ({ a, b }) => { seen = { id: requestId(), deadline: deadline() }; return { sum: a + b }; } });
  const c = await client(p);
  const before = Date.now();
  await c.call('arith', 'add', { a: 1, b: 1 }, { timeoutMs: 5000 });
  assert.match(seen.id, /^[0-9a-f-]{36}$/);
  assert.ok(seen.deadline > before + 4000 && seen.deadline <= Date.now() + 5000, `deadline ${seen.deadline - before} ms after the call`);
  await c.stop();
  await server.stop();
});

test('concurrency: 64 handlers at once by default, one at a time with ordered', async () => {
  for (const [opts, want] of [[{}, 20], [{ ordered: true }, 1]]) {
    const p = prefix();
    let running = 0;
    let most = 0;
    const { server } = await serve(p, opts, {
      slowAdd: async ({ a, b, sleepMs }) => { running++; most = Math.max(most, running); await new Promise((r) => setTimeout(r, sleepMs)); running--; return { sum: a + b }; },
    });
    const c = await client(p);
    await Promise.all(Array.from({ length: 20 }, () => c.call('arith', 'slowAdd', { a: 1, b: 1, sleepMs: 50 })));
    assert.equal(most, want, JSON.stringify(opts));
    await c.stop();
    await server.stop();
  }
});

test('an ioredis client passed as redis is taken over by its options and never closed', async () => {
  const { default: IORedis } = await import('ioredis');
  const r = new IORedis(redis.url, { lazyConnect: true });
  const p = prefix();
  const server = new RedisRpcServer({ redis: r, keyPrefix: p, logger: quiet });
  server.registerService(arith, handlers().handlers);
  await server.start();
  const c = new RedisRpcClient({ redis: r, keyPrefix: p });
  await c.start();
  assert.deepEqual(await c.call('arith', 'add', { a: 1, b: 1 }), { sum: 2 });
  await c.stop();
  await server.stop();
  assert.equal(r.status, 'wait', 'the user\'s client was left as it was (never connected, never closed)');
  r.disconnect();
  assert.throws(() => new RedisRpcClient({ redis: r, redisUrl: redis.url, keyPrefix: p }), { message: 'provide either `redis` or `redisUrl`, not both' });
  const prefixed = new IORedis(redis.url, { lazyConnect: true, keyPrefix: 'x:' });
  assert.throws(() => new RedisRpcClient({ redis: prefixed, keyPrefix: p }), /keyPrefix "x:".*set clamator's keyPrefix option instead/);
  const insecure = new IORedis({ lazyConnect: true, tls: { rejectUnauthorized: false } });
  assert.throws(() => new RedisRpcServer({ redis: insecure, keyPrefix: p }), /rejectUnauthorized: false.*give the server's CA as tls.ca instead/);
  prefixed.disconnect();
  insecure.disconnect();
});

test('a wrong password is named by the engine, not a hang', async () => {
  const secured = await startRedis(['--requirepass', 's3cret']);
  try {
    const c = new RedisRpcClient({ redisUrl: secured.url.replace('redis://', 'redis://:wrong@'), keyPrefix: 'x' });
    await assert.rejects(c.start(), (e) => e instanceof ClamatorTransportError && /WRONGPASS|invalid password|AuthenticationFailed|auth/i.test(e.message));
    const { default: IORedis } = await import('ioredis');
    const ok = new IORedis(secured.url, { lazyConnect: true, password: 's3cret' });
    const server = new RedisRpcServer({ redis: ok, keyPrefix: 'pw', logger: quiet });
    server.registerService(arith, handlers().handlers);
    await server.start();
    const client2 = new RedisRpcClient({ redis: ok, keyPrefix: 'pw' });
    await client2.start();
    assert.deepEqual(await client2.call('arith', 'add', { a: 2, b: 2 }), { sum: 4 }, 'the password of the ioredis options was used');
    await client2.stop();
    await server.stop();
    ok.disconnect();
  } finally {
    await secured.stop();
  }
});
