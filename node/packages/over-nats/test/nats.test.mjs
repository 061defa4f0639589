import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { RpcError, ClamatorTransportError, requestId } from '@clamator-rs/protocol';
import { NatsRpcServer, NatsRpcClient, commandSubject, commandStream, replySubject, deadLetterStream } from '@clamator-rs/over-nats';
import { startNats } from '../../../test-support/servers.mjs';
import { arith, handlers, quiet, eventually } from '../../over-redis/test/fixture.mjs';

const nats = await startNats();
after(() => nats.stop());
let n = 0;
const prefix = () => `n${++n}`;

async function serve(keyPrefix, opts = {}, overrides) {
  const h = handlers(overrides);
  const server = new NatsRpcServer({ natsUrl: nats.url, keyPrefix, logger: quiet, ...opts });
  server.registerService(arith, h.handlers);
  await server.start();
  return { server, seen: h.seen };
}

async function client(keyPrefix, opts = {}) {
  const c = new NatsRpcClient({ natsUrl: nats.url, keyPrefix, ...opts });
  await c.start();
  return c;
}

test('names', () => {
  assert.equal(commandSubject('app', 'arith'), 'app.cmds.arith');
  assert.equal(commandStream('app', 'arith'), 'app_cmds_arith');
  assert.equal(replySubject('app', 'c1'), 'app.replies.c1');
  assert.equal(deadLetterStream('app', 'arith'), 'app_dead_arith');
});

test('round trip, errors, a notification, a timeout, requestId()', async () => {
  const p = prefix();
  let id;
  const { server, seen } = await serve(p, {}, { add: async ({ a, b }) => { id = requestId(); return { sum: a + b }; } });
  const c = await client(p);
  assert.deepEqual(await c.call('arith', 'add', { a: 2, b: 3 }), { sum: 5 });
  assert.match(id, /^[0-9a-f-]{36}$/);
  await assert.rejects(c.call('arith', 'divide', { a: 1, b: 0 }), (e) => e instanceof RpcError && e.code === -32000);
  await assert.rejects(c.call('arith', 'add', { a: 'x' }), (e) => e instanceof RpcError && e.code === -32602);
  await c.notify('arith', 'ping', { tag: 'n' });
  await eventually('the notification ran', () => seen.pinged.includes('n'));
  await assert.rejects(c.call('arith', 'slowAdd', { a: 1, b: 2, sleepMs: 800 }, { timeoutMs: 100 }),
    (e) => e instanceof ClamatorTransportError && e.message === 'call timeout');
  await c.stop();
  await server.stop({ graceMs: 2000 });
});

test('a service no server ever served fails at once, naming the missing stream', async () => {
  const c = await client(prefix());
  await assert.rejects(c.call('nobody', 'x', {}), (e) => e instanceof ClamatorTransportError && /no stream .*_cmds_nobody/.test(e.message));
  await c.stop();
});

test('worker pool, and a stopped server\'s running request given to the other at once', async () => {
  const p = prefix();
  const a = await serve(p, { instanceId: 'a' });
  const b = await serve(p, { instanceId: 'b' });
  const c = await client(p);
  await Promise.all(Array.from({ length: 40 }, (_, i) => c.call('arith', 'slowAdd', { a: i, b: 0, sleepMs: 20 })));
  assert.ok(a.seen.handled > 0 && b.seen.handled > 0, `a ${a.seen.handled}, b ${b.seen.handled}`);
  // a hangs; stopped without grace, its request goes back (NAK) and b answers it
  const hang = await serve(p, { instanceId: 'h', ackWaitMs: 1000 }, { add: () => new Promise(() => {}) });
  await a.server.stop();
  await b.server.stop();
  const call = c.call('arith', 'add', { a: 1, b: 2 }, { timeoutMs: 15_000 });
  await new Promise((r) => setTimeout(r, 300));
  const other = await serve(p, { instanceId: 'o' });
  await hang.server.stop({ graceMs: 0 });
  assert.deepEqual(await call, { sum: 3 });
  await c.stop();
  await other.server.stop();
});
